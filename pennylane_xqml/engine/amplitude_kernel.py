"""Layer 2 for amplitude inputs: circuits that measure ``conj(u) ⊙ (M v)`` for every feature.

For an amplitude-embedded model ``f(a) = a† M a`` with ``M = U† O U``, every attribution this
package computes is built from the *kernel*

.. math:: K(u, v)_i = \\overline{u_i}\\,(M v)_i, \\qquad i = 0, \\dots, N-1,

for normalised vectors ``u`` and ``v``:

* gradient at ``z``: ``∂f/∂Re z + i ∂f/∂Im z = 2 M z = 2 √N ‖z‖ K(s, z/‖z‖)`` with ``s`` the
  uniform superposition;
* exact integrated gradients (DESIGN.md, fact 1): ``IG = ‖a-a'‖ ‖a+a'‖ Re K(u, v)`` with
  ``u = (a-a')/‖a-a'‖`` and ``v = (a+a')/‖a+a'‖``.

``O`` is split into Pauli words ``P_w`` (the identity is done classically, ``M_I = 1``), and for
each word one of four rules gives ``K_w``:

``"hadamard_all"``
    One circuit per word for *all* ``N`` features: the state ``(|0>|u> + |1>|v>)/√2`` (ancilla
    first; one ``StatePrep`` on ``n + 1`` wires), then ``U``, the word controlled by the ancilla,
    ``U†``, Hadamard on the ancilla, and ``probs`` of ancilla and data wires:
    ``P(0,i) - P(1,i) = Re K_w(u, v)_i``. An ``S†`` on the ancilla before its Hadamard gives the
    imaginary part. Only a Pauli word is ever controlled, never ``U``.
``"hadamard"``
    HATTRIQ's per-feature test: ``N`` circuits per word, each with the basis state ``|i>``
    on the 0 branch and reading ``<Z>`` of the ancilla, ``= Re <i|M_w|v>``.
``"adjoint"``
    Simulators only: one circuit per word, ``|v>``, ``U``, ``P_w``, ``U†``, returning the
    state, which *is* ``M_w v``: a forward and a backward sweep, like adjoint differentiation.
``"backprop"``
    Simulators with JAX only: ``M v`` from reverse-mode autodiff of the device simulation of
    the original circuit at ``v`` (no extra circuits).

With shots, the post-processing also returns the variance of each estimate (the circuits are
independent, so variances of a sum of words add with squared coefficients).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pennylane as qml

from .encodings import collect_words, conj, flatten_outputs, is_complex
from .execution import execute_batch, shots_of

CIRCUIT_RULES = ("hadamard_all", "hadamard", "adjoint")
AMPLITUDE_RULES = CIRCUIT_RULES + ("backprop",)


class KernelValues(NamedTuple):
    """``K(u, v)`` for a list of pairs: arrays of shape ``(n_pairs, n_outputs, N)``.

    ``imag`` and ``imag_variance`` are ``None`` unless the imaginary part was requested.
    Variances are zero on analytic devices.
    """

    real: object
    imag: object
    real_variance: object
    imag_variance: object


def _unitary_ops(tape):
    return tape.operations[1:]


def _adjoint_ops(ops):
    return [qml.adjoint(op) for op in reversed(ops)]


# ---------------------------------------------------------------------------------------------
# circuit builders, one per rule
# ---------------------------------------------------------------------------------------------


def _branch_state(left, right):
    """``(|0>|left> + |1>|right>)/√2`` on ``[ancilla, *wires]`` as one vector.

    Preparing this joint state with one ``StatePrep`` is equivalent to DESIGN.md's Hadamard on
    the ancilla followed by two preparations controlled on its value, and costs fewer gates: a
    state preparation on ``n + 1`` qubits instead of two controlled ones on ``n``.
    """
    dtype = "complex128" if is_complex(left) or is_complex(right) else "float64"
    left, right = qml.math.cast(left, dtype), qml.math.cast(right, dtype)
    return qml.math.concatenate([left, right]) / np.sqrt(2)


def device_ordered(wires, state_wires):
    """``wires`` sorted by their position in the device's wire order ``state_wires`` (wires the
    device does not list keep their relative order, after the listed ones)."""
    rank = {w: i for i, w in enumerate(state_wires or [])}
    return sorted(wires, key=lambda w: rank.get(w, len(rank)))


def _permute(vector, wires, target):
    """The amplitudes ``vector`` over ``wires`` rewritten over the wire order ``target``."""
    if list(wires) == list(target):
        return vector
    tensor = qml.math.reshape(vector, (2,) * len(wires))
    tensor = qml.math.transpose(tensor, [list(wires).index(w) for w in target])
    return qml.math.reshape(tensor, (-1,))


def _hadamard_test_tape(tape, wires, left, right, word, ancilla, imag, measurement, state_wires):
    """The Hadamard test. Its joint state is prepared on the wires in device order (some plugins
    do not honour a preparation or a measurement on permuted wires, see :func:`device_ordered`)."""
    body = _unitary_ops(tape)
    joint = [ancilla, *wires]
    prep_wires = device_ordered(joint, state_wires)
    ops = [
        qml.StatePrep(_permute(_branch_state(left, right), joint, prep_wires), wires=prep_wires),
        *body,
        qml.ctrl(word.operation(), ancilla),
        *_adjoint_ops(body),
    ]
    if imag:
        ops.append(qml.adjoint(qml.S(ancilla)))
    ops.append(qml.Hadamard(ancilla))
    return qml.tape.QuantumScript(ops, [measurement], shots=tape.shots)


def _hadamard_all_tape(tape, wires, u, v, word, ancilla, imag, state_wires):
    measurement = qml.probs(wires=device_ordered([ancilla, *wires], state_wires))
    return _hadamard_test_tape(tape, wires, u, v, word, ancilla, imag, measurement, state_wires)


def _hadamard_feature_tape(tape, wires, index, v, word, ancilla, imag, state_wires):
    basis = np.zeros(2 ** len(wires))
    basis[index] = 1.0
    measurement = qml.expval(qml.PauliZ(ancilla))
    return _hadamard_test_tape(tape, wires, basis, v, word, ancilla, imag, measurement, state_wires)


def _adjoint_tape(tape, wires, v, word):
    body = _unitary_ops(tape)
    ops = [qml.StatePrep(v, wires=wires), *body, word.operation(), *_adjoint_ops(body)]
    return qml.tape.QuantumScript(ops, [qml.state()])


# ---------------------------------------------------------------------------------------------
# per-rule results -> K_w(u, v) for every (pair, word)
# ---------------------------------------------------------------------------------------------


def _probability_difference(result, dim, shots, measured, joint):
    """``P(0, i) - P(1, i)`` from probabilities over the ``measured`` wires (device order),
    rearranged to the ``joint`` order ``[ancilla, *wires]``."""
    probs = qml.math.reshape(_permute(result, measured, joint), (2, dim))
    difference = probs[0] - probs[1]
    if shots is None:
        return difference, qml.math.zeros_like(difference)
    return difference, (probs[0] + probs[1] - difference**2) / shots


def _data_amplitudes(state, state_wires, wires):
    """Amplitudes of ``state`` over ``wires`` with every other wire in |0>."""
    n = len(state_wires)
    tensor = qml.math.reshape(state, (2,) * n)
    order = [state_wires.index(w) for w in wires] + [
        k for k, w in enumerate(state_wires) if w not in wires
    ]
    tensor = qml.math.transpose(tensor, order)
    tensor = qml.math.reshape(tensor, (2 ** len(wires), -1))
    return tensor[:, 0]


def kernel_tapes(
    tape, encoding, sentences, pairs, rule, ancilla=None, imag=False, state_wires=None
):
    """Tapes measuring ``K(u, v)`` for every pair and every output, and their post-processing.

    Args:
        tape: the model's tape (first operation the amplitude encoding).
        encoding (AmplitudeEncoding): from :func:`~.find_amplitude_encoding`.
        sentences (list[PauliSentence]): the outputs, from :func:`~.output_sentences`.
        pairs (list[tuple]): normalised vectors ``(u, v)``.
        rule (str): one of ``"hadamard_all"``, ``"hadamard"``, ``"adjoint"``.
        ancilla: the ancilla wire (Hadamard rules).
        imag (bool): also compute ``Im K``.
        state_wires: the device's wire order: the state's (``"adjoint"``), and the order in
            which the Hadamard tests prepare and measure their wires.

    Returns:
        tuple[list[QuantumScript], callable]: the tapes and a function mapping their results
        to :class:`KernelValues`.
    """
    wires = list(encoding.wires)
    dim = encoding.dim
    plan = collect_words(sentences)
    shots = shots_of(tape)
    tapes = []
    parts = (False, True) if imag else (False,)

    if rule == "hadamard_all":
        for u, v in pairs:
            for word in plan.words:
                tapes.extend(
                    _hadamard_all_tape(tape, wires, u, v, word, ancilla, p, state_wires)
                    for p in parts
                )
    elif rule == "hadamard":
        needs_imag = imag or any(is_complex(u) for u, _ in pairs)
        feature_parts = (False, True) if needs_imag else (False,)
        for _, v in pairs:
            for word in plan.words:
                for index in range(dim):
                    tapes.extend(
                        _hadamard_feature_tape(tape, wires, index, v, word, ancilla, p, state_wires)
                        for p in feature_parts
                    )
    elif rule == "adjoint":
        if shots is not None:
            raise ValueError('gradient="adjoint" needs an analytic simulator (no shots).')
        for _, v in pairs:
            tapes.extend(_adjoint_tape(tape, wires, v, word) for word in plan.words)
    else:
        raise ValueError(
            f"Unknown amplitude gradient rule {rule!r}; expected one of {CIRCUIT_RULES}."
        )

    def postprocess(results):
        per_pair_word = _per_rule_values(
            results, rule, pairs, plan, dim, shots, imag, wires, state_wires, ancilla
        )
        return _combine_words(per_pair_word, pairs, plan, imag)

    return tapes, postprocess


def _per_rule_values(results, rule, pairs, plan, dim, shots, imag, wires, state_wires, ancilla):
    """List over pairs of lists over words of (re, im, var_re, var_im) vectors of length N."""
    values = []
    cursor = iter(results)
    joint = [ancilla, *wires]
    measured = device_ordered(joint, state_wires)
    for u, _ in pairs:
        per_word = []
        for _word in plan.words:
            if rule == "hadamard_all":
                re, var_re = _probability_difference(next(cursor), dim, shots, measured, joint)
                im, var_im = (
                    _probability_difference(next(cursor), dim, shots, measured, joint)
                    if imag
                    else (None, None)
                )
            elif rule == "hadamard":
                re, im, var_re, var_im = _feature_values(cursor, u, dim, shots, imag)
            else:  # adjoint: the state is M_w v
                mv = _data_amplitudes(next(cursor), state_wires, wires)
                kernel = conj(u) * mv
                re, im = qml.math.real(kernel), qml.math.imag(kernel)
                var_re = var_im = qml.math.zeros_like(re)
            per_word.append((re, im, var_re, var_im))
        values.append(per_word)
    return values


def _feature_values(cursor, u, dim, shots, imag):
    needs_imag = imag or is_complex(u)
    re_mv, im_mv = [], []
    for _ in range(dim):
        re_mv.append(next(cursor))
        if needs_imag:
            im_mv.append(next(cursor))
    re_mv = qml.math.stack(re_mv)
    var = (
        (lambda e: (1 - e**2) / shots) if shots is not None else (lambda e: qml.math.zeros_like(e))
    )
    if not needs_imag:
        return u * re_mv, None, u**2 * var(re_mv), None
    im_mv = qml.math.stack(im_mv)
    ur, ui = qml.math.real(u), qml.math.imag(u)
    re = ur * re_mv + ui * im_mv
    im = ur * im_mv - ui * re_mv
    var_re = ur**2 * var(re_mv) + ui**2 * var(im_mv)
    var_im = ur**2 * var(im_mv) + ui**2 * var(re_mv)
    return re, (im if imag else None), var_re, (var_im if imag else None)


def _combine_part(per_word, overlap_part, plan, part):
    """One part (0: real, 1: imaginary) of ``Σ_w c_kw K_w + c_kI overlap`` and its variance."""
    identity = qml.math.asarray(plan.identity)[:, None] * overlap_part
    if not per_word:  # only an identity term: no circuit, no variance
        return identity, qml.math.zeros_like(identity)
    coeffs = qml.math.asarray(plan.coefficients)
    words = qml.math.stack([w[part] for w in per_word])
    variances = qml.math.stack([w[part + 2] for w in per_word])
    return coeffs @ words + identity, coeffs**2 @ variances


def _combine_words(per_pair_word, pairs, plan, imag):
    real, im, var_re, var_im = [], [], [], []
    for (u, v), per_word in zip(pairs, per_pair_word):
        overlap = conj(u) * v
        value, variance = _combine_part(per_word, qml.math.real(overlap), plan, 0)
        real.append(value)
        var_re.append(variance)
        if imag:
            value, variance = _combine_part(per_word, qml.math.imag(overlap), plan, 1)
            im.append(value)
            var_im.append(variance)
    stack = qml.math.stack
    return KernelValues(
        stack(real), stack(im) if imag else None, stack(var_re), stack(var_im) if imag else None
    )


def backprop_kernel(tape, encoding, pairs, device, imag=False):
    """``K(u, v)`` from JAX reverse-mode autodiff of the simulation at ``v`` (no extra circuits).

    ``∂f_k/∂Re v + i ∂f_k/∂Im v = 2 (M_k v)`` for every output ``k`` (one backward pass each).
    Needs JAX parameters and a device that supports ``diff_method="backprop"``.
    """
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    wires = encoding.wires
    body = _unitary_ops(tape)

    def outputs(re, im):
        state = re + 1j * im
        t = qml.tape.QuantumScript(
            [qml.StatePrep(state, wires=wires, validate_norm=False), *body], tape.measurements
        )
        return flatten_outputs(execute_batch([t], device, diff_method="backprop")[0], t)

    real, im = [], []
    for u, v in pairs:
        v = jnp.asarray(v, dtype=jnp.complex128)
        d_re, d_im = jax.jacrev(outputs, argnums=(0, 1))(jnp.real(v), jnp.imag(v))
        mv = (d_re + 1j * d_im) / 2
        kernel = jnp.conj(jnp.asarray(u)) * mv
        real.append(jnp.real(kernel))
        im.append(jnp.imag(kernel))
    real = jnp.stack(real)
    zeros = jnp.zeros_like(real)
    return KernelValues(real, jnp.stack(im) if imag else None, zeros, zeros if imag else None)
