"""Layer 1: find where the input enters a tape, and what the tape measures.

Two kinds of input encoding are recognised:

* **amplitude**: the first operation is a :class:`~pennylane.StatePrep` (which includes
  :class:`~pennylane.AmplitudeEmbedding`). The attribution lives in *amplitude space*: on the
  padded, normalised vector that the operation prepares, which is the quantity the model is a
  quadratic form of.
* **angle**: any gate parameters that depend on the input argument (AngleEmbedding,
  IQPEmbedding, ``qml.RY(np.pi * x[0])`` ...). The engine finds them with :mod:`.inputs`
  (the QNode traced at an abstract input); :func:`input_parameter_indices`, which compares
  tapes at two random stand-ins, remains for Grad-CAM's hybrid models and the cost report.

Measurements are turned into *outputs*: every ``expval`` is one scalar output and every
``probs`` contributes one output per basis state. Each output is a linear combination of Pauli
words (:class:`~pennylane.pauli.PauliSentence`), which is what the Hadamard tests measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pennylane as qml
from pennylane.measurements import ExpectationMP, ProbabilityMP
from pennylane.pauli import PauliSentence, PauliWord

from .inputs import eager


def is_complex(value) -> bool:
    """Whether ``value`` (NumPy, JAX or autograd, possibly traced) has a complex dtype."""
    return "complex" in str(qml.math.get_dtype_name(value))


def conj(value):
    """Complex conjugate of complex values; real values are returned unchanged."""
    return qml.math.conj(value) if is_complex(value) else value


@dataclass(frozen=True)
class AmplitudeEncoding:
    """The state preparation that carries the input of an amplitude-embedded tape."""

    op: qml.operation.Operator

    @property
    def wires(self):
        return self.op.wires

    @property
    def vector(self):
        """The prepared (padded, normalised) amplitude vector, possibly a tracer."""
        return self.op.data[0]

    @property
    def dim(self):
        return 2 ** len(self.op.wires)


def find_amplitude_encoding(tape) -> AmplitudeEncoding | None:
    """Return the amplitude encoding of ``tape``, or ``None`` when it has none.

    The encoding must be the first operation; a ``StatePrep`` anywhere else is rejected because
    the Hadamard tests prepare the input state themselves.

    >>> tape = qml.tape.QuantumScript([qml.AmplitudeEmbedding([1., 1.], wires=0, normalize=True)],
    ...                               [qml.expval(qml.Z(0))])
    >>> find_amplitude_encoding(tape).dim
    2
    """
    preps = [i for i, op in enumerate(tape.operations) if isinstance(op, qml.StatePrep)]
    if not preps:
        return None
    if preps != [0]:
        raise ValueError(
            "The amplitude embedding (StatePrep/AmplitudeEmbedding) must be the first and only "
            f"state preparation of the circuit; found it at operation positions {preps}."
        )
    op = tape.operations[0]
    if qml.math.ndim(op.data[0]) != 1:
        raise ValueError(
            "Broadcast amplitude embeddings are not supported inside an attribution; "
            "use jax.vmap over the inputs instead."
        )
    return AmplitudeEncoding(op)


#: Templates that prepare the state given by their first parameter, a state vector, exactly
#: (up to a global phase) from ``|0...0>``: a leading one is an amplitude embedding, seen by the
#: engine as the :class:`~pennylane.StatePrep` it is equivalent to.
VECTOR_PREPARATIONS = (qml.MottonenStatePreparation, qml.MultiplexerStatePreparation)

#: Templates that prepare a state from data without being an exact ``StatePrep`` of a vector of
#: the input (approximate, extra wires, tensors or coefficients of chosen basis states): an input
#: reaching them is refused.
OTHER_PREPARATIONS = (qml.QROMStatePreparation, qml.MPSPrep, qml.Superposition)


#: Gates given by a matrix: an input in their matrix has no parameter-shift rule.
MATRIX_OPERATIONS = (
    qml.QubitUnitary,
    qml.ControlledQubitUnitary,
    qml.DiagonalQubitUnitary,
    qml.BlockEncode,
)


def is_vector_preparation(op) -> bool:
    """Whether ``op`` prepares the state vector given as its first parameter (``StatePrep``,
    ``AmplitudeEmbedding``, Mottonen's and the multiplexer's state preparations)."""
    return isinstance(op, (qml.StatePrep, *VECTOR_PREPARATIONS))


def as_state_prep(tape, index=0):
    """``tape`` with its vector preparation at position ``index`` rewritten as an equal
    :class:`~pennylane.StatePrep` and moved to the front (the caller checks that no earlier
    operation acts on its wires, so the move changes nothing: the wires are still ``|0>``).

    >>> ops = [qml.RY(0.3, 2), qml.MottonenStatePreparation([0.6, 0.8], wires=[0])]
    >>> as_state_prep(qml.tape.QuantumScript(ops, [qml.expval(qml.Z(0))]), index=1).operations
    [StatePrep(array([0.6, 0.8]), wires=[0]), RY(0.3, wires=[2])]
    """
    ops = list(tape.operations)
    op = ops.pop(index)
    if not isinstance(op, qml.StatePrep):
        op = qml.StatePrep(op.data[0], wires=op.wires)
    return tape.copy(operations=[op, *ops])


def parameter_owners(tape) -> list:
    """For each entry of ``tape.get_parameters(trainable_only=False)``, the operator it belongs
    to: an operation, or the observable of a measurement (``(op, is_measurement)`` pairs)."""
    owners = []
    for op in tape.operations:
        owners.extend((op, False) for _ in op.data)
    for mp in tape.measurements:
        if mp.obs is not None:
            owners.extend((mp.obs, True) for _ in mp.obs.data)
    return owners


def _pauli_sentence_of(obs, wire_order) -> PauliSentence:
    sentence = obs.pauli_rep
    if sentence is not None:
        return sentence
    try:
        matrix = qml.matrix(obs, wire_order=obs.wires)
        return qml.pauli_decompose(np.asarray(matrix), wire_order=obs.wires, pauli=True)
    except Exception as error:  # concrete matrix needed to decompose
        raise ValueError(
            f"Cannot write the observable {obs} as a sum of Pauli words; attributions of "
            "expectation values need a Pauli decomposition with concrete coefficients."
        ) from error


def _projector_sentence(bits, wires) -> PauliSentence:
    """|b><b| on ``wires`` as (1/2^m) Σ_S (-1)^{b·S} Z_S."""
    m = len(wires)
    sentence = PauliSentence()
    for subset in range(2**m):
        word = {}
        sign = 1
        for k, wire in enumerate(wires):
            if (subset >> (m - 1 - k)) & 1:
                word[wire] = "Z"
                sign *= -1 if bits[k] else 1
        sentence[PauliWord(word)] = sign / 2**m
    return sentence


def device_wire_order(device, tape) -> list:
    """The wire order of the device's states and of ``qml.probs()`` without wires: the
    device's wires, or for a device created without ``wires=`` the order PennyLane maps the
    tape to (:meth:`~.QuantumScript.map_to_standard_wires`): sorted when the labels are already
    ``0..n-1``, else the order in which the tape uses them.

    >>> tape = qml.tape.QuantumScript([qml.X("b"), qml.X("a")], [qml.probs()])
    >>> device_wire_order(None, tape)
    ['b', 'a']
    >>> device_wire_order(None, qml.tape.QuantumScript([qml.X(1), qml.X(0)], [qml.probs()]))
    [0, 1]
    """
    device_wires = getattr(device, "wires", None)
    if device_wires is not None:
        return list(device_wires)
    mapped = tape.map_to_standard_wires()
    if mapped is tape:
        return sorted(tape.wires)
    position = {}
    for before, after in zip(
        tape.operations + tape.measurements, mapped.operations + mapped.measurements
    ):
        position.update(zip(before.wires, after.wires))
    return sorted(position, key=position.get)


def output_sentences(tape, device=None) -> list[PauliSentence]:
    """The tape's scalar outputs, each as a Pauli sentence (``expval`` -> 1, ``probs`` -> 2^m).

    ``qml.probs()`` without wires covers the device's wires when the device has them (as the
    QNode returns it), else the tape's wires.

    >>> tape = qml.tape.QuantumScript([], [qml.expval(qml.Z(0)), qml.probs(wires=[1])])
    >>> len(output_sentences(tape))
    3
    """
    sentences = []
    for mp in tape.measurements:
        if isinstance(mp, ExpectationMP) and mp.obs is not None:
            sentences.append(_pauli_sentence_of(mp.obs, tape.wires))
        elif isinstance(mp, ProbabilityMP) and mp.obs is None:
            wires = mp.wires if len(mp.wires) else device_wire_order(device, tape)
            for index in range(2 ** len(wires)):
                bits = [(index >> (len(wires) - 1 - k)) & 1 for k in range(len(wires))]
                sentences.append(_projector_sentence(bits, wires))
        else:
            raise ValueError(
                f"Unsupported measurement {mp!r} for attribution: the model must return "
                "qml.expval(...) of observables or qml.probs(wires=...). State, variance, "
                "sample and counts outputs cannot be attributed (a device with shots cannot "
                "return a state, and variances are not linear in the state)."
            )
    return sentences


class OutputWords(NamedTuple):
    """Outputs as ``coefficients @ <words> + identity``."""

    words: list  # non-identity PauliWords, in a fixed order
    coefficients: np.ndarray  # (n_outputs, n_words)
    identity: np.ndarray  # (n_outputs,)


def collect_words(sentences) -> OutputWords:
    """The distinct non-identity Pauli words of ``sentences`` and each output's coefficients."""
    identity_word = PauliWord({})
    words = []
    for sentence in sentences:
        for word in sentence:
            if word != identity_word and word not in words:
                words.append(word)
    coefficients = np.zeros((len(sentences), len(words)))
    identity = np.zeros(len(sentences))
    for k, sentence in enumerate(sentences):
        for word, coeff in sentence.items():
            if word == identity_word:
                identity[k] = np.real(coeff)
            else:
                coefficients[k, words.index(word)] = np.real(coeff)
    return OutputWords(words, coefficients, identity)


def flatten_outputs(result, tape):
    """Flatten a tape result (single, tuple, probs) into a vector of the tape's outputs."""
    if len(tape.measurements) == 1:
        return qml.math.reshape(result, (-1,))
    return qml.math.concatenate([qml.math.reshape(r, (-1,)) for r in result])


def random_like(value, rng):
    """A random stand-in of ``value``'s shape (uniform in [0.1, 0.9]); non-arrays are kept."""
    if isinstance(value, (int, bool, str)) or value is None:
        return value
    shape = qml.math.shape(value)
    if qml.math.is_abstract(value) or hasattr(value, "shape"):
        dtype = np.complex128 if is_complex(value) else np.float64
        sample = rng.uniform(0.1, 0.9, size=shape)
        return sample.astype(dtype)
    if isinstance(value, float):
        return float(rng.uniform(0.1, 0.9))
    return value


def input_parameter_indices(tape_of, args, kwargs, argnum) -> list[int]:
    """Indices (into ``tape.get_parameters(trainable_only=False)``) of gate parameters that
    depend on ``args[argnum]``; ``tape_of(*args, **kwargs)`` builds the tape.

    The model is traced at two random NumPy stand-ins of the input (other arguments replaced by
    fixed random stand-ins of their shapes) and the parameters that change are the input's.
    Nothing is executed, and it works when the real arguments are JAX tracers.
    """
    rng = np.random.default_rng(1234)
    others = [random_like(a, rng) if i != argnum else None for i, a in enumerate(args)]
    x = args[argnum]

    def params_at(sample):
        call_args = list(others)
        call_args[argnum] = sample
        tape = tape_of(*call_args, **kwargs)
        return [
            np.asarray(p, dtype=complex).ravel() for p in tape.get_parameters(trainable_only=False)
        ]

    with eager():
        first = params_at(random_like(x, rng))
        second = params_at(random_like(x, rng))
    if len(first) != len(second) or any(a.shape != b.shape for a, b in zip(first, second)):
        raise ValueError(
            "The circuit's structure changes with the input values; attributions need a circuit "
            "whose gates do not depend on the input's values (only their parameters may)."
        )
    return [i for i, (a, b) in enumerate(zip(first, second)) if not np.array_equal(a, b)]
