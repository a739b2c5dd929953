"""The machinery every attribution method shares (written once, used by all).

* :class:`ModelCall` traces one call of the user's QNode into its tape (nothing runs), finds the
  input encoding and the outputs, and validates the input.
* :class:`Engine` turns requests such as "the input gradient at these points" or "the amplitude
  kernel of these pairs" into tapes; every request of one explanation is collected in a
  :class:`TapeBatch` and executed by **one** :func:`qml.execute` call.

The public decorators built on this live in :mod:`.transform`.
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref
from typing import NamedTuple

import numpy as np
import pennylane as qml
from pennylane.measurements import ExpectationMP

from . import amplitude_kernel, angle_gradient
from .encodings import (
    MATRIX_OPERATIONS,
    OTHER_PREPARATIONS,
    as_state_prep,
    find_amplitude_encoding,
    flatten_outputs,
    is_complex,
    is_vector_preparation,
    output_sentences,
    parameter_owners,
)
from .estimation import estimate_outputs
from .execution import ANCILLA_LABEL, ancilla_and_device, execute_batch, shots_of
from .inputs import (
    InputTraceError,
    eager,
    is_jax_value,
    private_jit,
    switched_precision,
    trace_input,
    traced_in_switched_precision,
)
from .plan import Plan
from .validation import check_finite, check_no_program_capture, leaves

GRADIENT_RULES = ("auto", "hadamard_all", "hadamard", "adjoint", "backprop", "parameter-shift")
_STATE_SIMULATORS = ("default.qubit", "lightning.qubit", "lightning.kokkos", "lightning.gpu")


class Attribution(NamedTuple):
    """A method's raw result: ``values`` and ``variance`` of shape ``(n_outputs, *feature_shape)``
    and, when requested, ``delta`` of shape ``(n_outputs,)``."""

    values: object
    variance: object
    delta: object = None


# ---------------------------------------------------------------------------------------------
# one batch of tapes per explanation
# ---------------------------------------------------------------------------------------------


class TapeBatch:
    """Collect ``(tapes, postprocessing)`` requests, so that they execute all at once."""

    def __init__(self):
        self.tapes = []
        self._requests = []

    def add(self, tapes, postprocess):
        """Queue ``tapes``; returns the index of the request's value in :meth:`postprocess`."""
        self._requests.append((len(self.tapes), len(tapes), postprocess))
        self.tapes.extend(tapes)
        return len(self._requests) - 1

    def postprocess(self, results):
        """Each request's post-processed value, from the results of :attr:`tapes`."""
        return [fn(results[start : start + size]) for start, size, fn in self._requests]


# ---------------------------------------------------------------------------------------------
# a traced call of the model
# ---------------------------------------------------------------------------------------------


_SUPPORTED_INTERFACES = ("numpy", "autograd", "jax")


def _check_interfaces(args, kwargs):
    """Refuse arrays of frameworks the engine does not combine with its NumPy constants."""
    for leaf in leaves((args, kwargs)):
        interface = qml.math.get_interface(leaf)
        if interface not in _SUPPORTED_INTERFACES:
            hint = (
                " Calling an explained QNode takes torch tensors (explained(x, weights)); "
                "here pass NumPy or JAX arrays (e.g. x.detach().numpy())."
                if interface == "torch"
                else ""
            )
            raise TypeError(
                f"Explanations take NumPy, autograd or JAX arrays; got a {interface} value." + hint
            )


def _concrete_integers(value):
    """Concrete JAX integer or boolean arrays (``BasisState`` bits, counts) as NumPy arrays, so
    decompositions that branch on them keep working while the input is traced."""
    concrete = is_jax_value(value) and not qml.math.is_abstract(value)
    if concrete and ("int" in str(value.dtype) or "bool" in str(value.dtype)):
        return np.asarray(value)
    return value


def _private_arrays(tree):
    """``tree`` with its NumPy arrays copied, for a call explained in a precision switched for
    it (:func:`.inputs.x64_mode`): JAX keeps one canonical form of a NumPy array while anything
    traced holds it, so tracing the user's own arrays in 64-bit would hand them to the user's
    float32 code as float64, and a float32 form the user's compiled code holds would reach the
    64-bit explanation rounded."""
    import jax  # pylint: disable=import-outside-toplevel

    return jax.tree_util.tree_map(lambda a: a.copy() if isinstance(a, np.ndarray) else a, tree)


def bind_arguments(model, args, kwargs, argnums):
    """``(args, kwargs, argnum)`` with every argument that can be positional made positional,
    so an input passed by keyword (``model(x=..., w=...)``) and ``argnums`` given by name work.
    ``model``: a QNode (bound by its quantum function's signature) or a function."""
    func = model.func if isinstance(model, qml.QNode) else model
    kind = "QNode" if isinstance(model, qml.QNode) else "model"
    try:
        signature = inspect.signature(func)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(argnums, str):
            raise TypeError(f"argnums={argnums!r} cannot be resolved: {error}") from error
        return tuple(args), dict(kwargs), argnums
    args, kwargs = tuple(bound.args), dict(bound.kwargs)
    if isinstance(argnums, str):
        names = list(signature.parameters)
        if argnums not in names or names.index(argnums) >= len(args):
            raise ValueError(
                f"argnums={argnums!r} does not name a positional argument of the {kind} "
                f"(its arguments: {names})."
            )
        argnums = names.index(argnums)
    return args, kwargs, argnums


class ModelCall:
    """One call ``qnode(*args, **kwargs)`` traced into its tape, with the input at ``argnum``.

    The input's path into the circuit is traced once (:mod:`.inputs`); every tape of the
    explanation is that template with new parameters, so its structure never depends on the
    input's value.

    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev)
    ... def f(x):
    ...     qml.RY(x[0], 0)
    ...     return qml.expval(qml.Z(0))
    >>> call = ModelCall(f, (np.array([0.3]),), {}, 0)
    >>> call.kind, call.n_outputs
    ('angle', 1)
    """

    def __init__(self, qnode, args, kwargs, argnum, amplitude_space=True):
        check_no_program_capture("pennylane-xqml")
        if not isinstance(qnode, qml.QNode):
            raise TypeError(f"Attribution decorators wrap a qml.QNode, got {type(qnode).__name__}.")
        args, kwargs, argnum = bind_arguments(qnode, args, kwargs, argnum)
        if not -len(args) <= argnum < len(args):
            raise ValueError(
                f"argnums={argnum} does not name an argument of the call ({len(args)} given)."
            )
        _check_interfaces(args, kwargs)
        self.qnode, self.args, self.kwargs = qnode, tuple(args), kwargs
        self.device = qnode.device
        self.argnum = argnum % len(args)
        self.x = args[self.argnum]
        if isinstance(self.x, (list, tuple)) or np.isscalar(self.x):
            self.x = qml.math.asarray(self.x, like="numpy") * 1.0
        elif "int" in str(qml.math.get_dtype_name(self.x)) or "bool" in str(
            qml.math.get_dtype_name(self.x)
        ):
            self.x = self.x * 1.0
        self.args = tuple(
            self.x if i == self.argnum else _concrete_integers(a) for i, a in enumerate(self.args)
        )
        check_finite(self.x, "The input")
        self.shape = tuple(qml.math.shape(self.x))
        self.jax_call = any(is_jax_value(leaf) for leaf in leaves((self.args, self.kwargs)))
        if traced_in_switched_precision(self.jax_call):
            self.args, self.kwargs = _private_arrays((self.args, self.kwargs))
            self.x = self.args[self.argnum]
        self._rewrite = None  # tape -> tape: a vector preparation of the input made a StatePrep
        self.trace = self._trace(lambda tape: tape)
        keep_embedding = self._embedding_decomposed()
        if keep_embedding:
            self.trace = self._trace(lambda tape: tape, keep_embedding=True)
        index = self._input_preparation()
        if index is not None:
            self._rewrite = functools.partial(as_state_prep, index=index)
            self.trace = self._trace(lambda tape: tape, keep_embedding=keep_embedding)
        owners = parameter_owners(self.trace.template)
        inputs_of = [owners[i] for i in self.trace.dependent]
        #: the input reaches the coefficients of an observable (not only gate parameters)
        self.observable_input = any(in_measurement for _, in_measurement in inputs_of)
        #: the input sets the bits of a BasisState/BasisEmbedding
        self.basis_input = any(isinstance(op, qml.BasisState) for op, _ in inputs_of)
        self.tape = self.trace.tape(self.x)
        self.sentences = output_sentences(self.tape, self.device)
        self.shots = shots_of(self.tape)
        self.encoding = self._amplitude_encoding()
        # amplitude_space=False: attributed per entry of the input even when it goes straight
        # into the embedding (a QNode inside a function model explained in input space)
        self.straight = self.encoding is not None and amplitude_space and self._is_straight()
        if self.encoding is not None:
            self._check_amplitude_input()
            if not self.straight and (is_complex(self.x) or is_complex(self.encoding.vector)):
                raise TypeError(
                    "This QNode transforms its input before the amplitude embedding; attributions "
                    "chained through that map need real inputs and amplitudes."
                )
        elif not self.trace.dependent:
            warnings.warn(
                f"No gate parameter of the circuit depends on the input argument "
                f"(argnums={self.argnum}): the model ignores it, and every attribution is 0. "
                "Check argnums if this is not intended.",
                UserWarning,
                stacklevel=4,
            )
        if self.encoding is None and is_complex(self.x):
            raise TypeError(
                "Complex inputs are supported for amplitude embeddings only; the input of this "
                "model sets gate angles, which are real. Pass a real array."
            )

    def _trace(self, finish, keep_embedding=False):
        """Trace ``finish(tape at x)`` as a function of the input (see :mod:`.inputs`).

        ``keep_embedding``: the user's transforms (``qml.compile``...) are applied to the
        circuit after its leading amplitude embedding only, so the embedding stays a StatePrep
        and the amplitude-space convention holds whatever the transforms decompose."""

        def tape_fn(x):
            args = self.args[: self.argnum] + (x,) + self.args[self.argnum + 1 :]
            rewrite = self._rewrite or (lambda tape: tape)
            if not keep_embedding:
                return finish(
                    rewrite(
                        qml.workflow.construct_tape(self.qnode, level="user")(*args, **self.kwargs)
                    )
                )
            top = qml.workflow.construct_tape(self.qnode, level="top")(*args, **self.kwargs)
            pipeline = qml.workflow.get_compile_pipeline(self.qnode, level="user")(
                *args, **self.kwargs
            )
            (body,), _ = pipeline((top.copy(operations=top.operations[1:]),))
            return finish(rewrite(body.copy(operations=[top.operations[0], *body.operations])))

        try:
            return trace_input(tape_fn, self.x, self.argnum, self.jax_call)
        except InputTraceError:
            raise
        except (ValueError, TypeError, IndexError) as error:
            raise ValueError(
                f"The model cannot be built with an input of shape {self.shape}: {error}"
            ) from error

    def _embedding_decomposed(self):
        """Whether the user's transforms turned a leading amplitude embedding into gates."""
        user_ops = self.trace.template.operations
        if user_ops and is_vector_preparation(user_ops[0]):
            return False
        top = qml.workflow.construct_tape(self.qnode, level="top")(*self.args, **self.kwargs)
        return bool(top.operations) and is_vector_preparation(top.operations[0])

    def _input_preparation(self):
        """The position of a state preparation of the input to rewrite as a leading
        ``StatePrep`` (a Mottonen or multiplexer preparation, or a preparation after operations
        on other wires only), ``None`` when there is none to rewrite. Preparations the engine
        cannot attribute exactly are refused here, before any circuit runs."""
        template = self.trace.template
        owners = parameter_owners(template)
        reached = [owners[i][0] for i in self.trace.dependent]
        for op in reached:
            if isinstance(op, OTHER_PREPARATIONS):
                raise TypeError(
                    f"The input reaches {op.name}, a state preparation that is not an exact "
                    "StatePrep of a vector of the input (approximate, or with work wires), so it "
                    "cannot be attributed in amplitude space, and its decomposition's angles are "
                    "no input convention. Prepare the input with qml.AmplitudeEmbedding, "
                    "qml.StatePrep or qml.MottonenStatePreparation as the first operation."
                )
        ops = template.operations
        preps = [
            i
            for i, op in enumerate(ops)
            if is_vector_preparation(op) and any(op is r for r in reached)
        ]
        if not preps or (preps[0] == 0 and isinstance(ops[0], qml.StatePrep)):
            return None
        index = preps[0]
        wires = set(ops[index].wires)
        touched = [op.name for op in ops[:index] if wires & set(op.wires)]
        if touched:
            raise ValueError(
                f"The input prepares a state ({ops[index].name}) after operations that act on "
                f"its wires ({', '.join(sorted(set(touched)))}): a state preparation of the "
                "input is attributed in amplitude space, which needs it to start from |0> on its "
                "wires. Make it the circuit's first operation (or apply the other operations "
                "to other wires before it)."
            )
        return index

    def _amplitude_encoding(self):
        """The amplitude encoding when the input reaches a leading StatePrep, else ``None``."""
        template = self.trace.template
        ops = template.operations
        if not ops or not isinstance(ops[0], qml.StatePrep) or 0 not in self.trace.dependent:
            return None
        if self.trace.dependent != [0]:
            raise ValueError(
                "The input reaches the circuit twice: through the amplitude embedding and through "
                "later gate parameters. Amplitude attributions would ignore the second path, so "
                "this is refused; feed the later gates from a separate argument."
            )
        return find_amplitude_encoding(self.tape)

    def _is_straight(self):
        """Whether the embedded vector is the input itself (padded, normalised), checked at two
        random concrete inputs; otherwise the QNode transforms its input first (reorders,
        scales...). The tape is built afresh at the probes, so no tracer of the call (jit, vmap,
        shard_map) is mixed with them."""
        d = int(np.prod(self.shape))
        if d > self.encoding.dim:
            return False
        rng = np.random.default_rng(11)
        with eager():
            for _ in range(2):
                probe = rng.uniform(0.5, 1.5, size=self.shape)
                probe = probe / np.linalg.norm(probe)  # a state vector whatever the template
                args = self.args[: self.argnum] + (probe,) + self.args[self.argnum + 1 :]
                tape = qml.workflow.construct_tape(self.qnode, level="top")(*args, **self.kwargs)
                prep = next(op for op in tape.operations if is_vector_preparation(op))
                vector = prep.data[0]
                if qml.math.is_abstract(vector):
                    return False
                ratio = np.asarray(vector)[:d] / probe.reshape(-1)
                if not np.allclose(ratio, ratio[0], rtol=1e-4, atol=0) or ratio[0].real <= 0:
                    return False
        return True

    @property
    def kind(self):
        return "amplitude" if self.encoding is not None else "angle"

    @property
    def n_outputs(self):
        return len(self.sentences)

    @property
    def single_output(self):
        """Whether the QNode returns one scalar (its attribution has no output axis)."""
        return len(self.tape.measurements) == 1 and self.n_outputs == 1

    @property
    def feature_shape(self):
        """Shape of an attribution: the input's, or the padded amplitude vector's."""
        if self.straight and int(np.prod(self.shape)) != self.encoding.dim:
            return (self.encoding.dim,)
        return self.shape

    def tape_at(self, x):
        """The tape of the model at input ``x`` (nothing is executed)."""
        return self.trace.tape(x)

    def _check_amplitude_input(self):
        if not qml.math.is_abstract(self.x) and np.all(np.asarray(qml.math.unwrap(self.x)) == 0):
            raise ValueError(
                "An all-zero vector cannot be amplitude-embedded; give a non-zero input."
            )

    def amplitude_of(self, x):
        """The amplitude vector the embedding prepares for ``x`` (for a straight embedding,
        zero stays zero: the quadratic form's value there is 0)."""
        if (
            self.straight
            and not qml.math.is_abstract(x)
            and np.all(np.asarray(qml.math.unwrap(x)) == 0)
        ):
            return qml.math.zeros_like(self.encoding.vector)
        return self.trace.parameters(x)[0]

    def amplitude_jacobian(self, x):
        """``∂a/∂x`` of the prepared vector, shape ``(2**n, x.size)``."""
        return self.trace.jacobian(x)

    @functools.cached_property
    def shift_trace(self):
        """The input's path into the tape decomposed for parameter shifts (angle encodings)."""
        return self._trace(angle_gradient.expand_for_shifts)

    @property
    def input_indices(self):
        """Gate parameters of the expanded tape that depend on the input (angle encodings).

        Raises ``ValueError`` when the input reaches what gate-parameter shifts cannot see or
        shift: an observable's coefficients, or a gate's matrix (``qml.QubitUnitary``)."""
        self.check_gate_path()
        return self.shift_trace.dependent

    def check_gate_path(self):
        """Refuse rules that differentiate the gate parameters only (parameter shift, Taylor
        terms, the adjoint method) when the input also enters elsewhere."""
        if self.observable_input:
            raise ValueError(
                "The input reaches the coefficients of a measured observable (e.g. "
                "qml.expval(x[0] * qml.Z(0))): rules that shift or differentiate gate "
                'parameters (gradient="parameter-shift" or "adjoint", Taylor-Fourier, QLRP) '
                'would miss that path, so they are refused. Use gradient="backprop" '
                "(default.qubit with JAX inputs), which differentiates the whole QNode, or a "
                "perturbation method (feature_ablation, shapley_values, kernel_shap, lime), "
                "which re-evaluates it."
            )
        owners = parameter_owners(self.trace.template)
        reached = [owners[i][0] for i in self.trace.dependent]
        matrices = [op.name for op in reached if isinstance(op, MATRIX_OPERATIONS)]
        if matrices:
            raise ValueError(
                f"The input reaches the matrix of {matrices[0]}: gate parameters with a shift "
                "rule are angles, and the angles of a decomposed matrix are undefined where the "
                "decomposition is degenerate, so parameter-shift rules are refused. Use "
                'gradient="backprop" (default.qubit with JAX inputs) or a perturbation method, '
                "or build the gate from rotations of the input."
            )

    def expanded_tape_at(self, x):
        return self.shift_trace.tape(x)

    def input_params(self, x):
        """The input-dependent gate parameters at ``x`` as one flat vector."""
        return self.shift_trace.input_parameters(x)

    def input_jacobian(self, x):
        """``∂θ/∂x`` of :meth:`input_params`, shape ``(n_params, x.size)``."""
        return self.shift_trace.jacobian(x)


# ---------------------------------------------------------------------------------------------
# requests of the attribution methods
# ---------------------------------------------------------------------------------------------


def _jax_tracer():
    import jax  # pylint: disable=import-outside-toplevel

    return jax.core.Tracer


def _differentiated(args, argnum):
    """Whether a non-input argument is being differentiated by JAX right now (eager grad)."""
    flat = [leaf for i, a in enumerate(args) if i != argnum for leaf in leaves(a)]
    return any(type(leaf).__name__ in ("JVPTracer", "LinearizeTracer") for leaf in flat)


def _norm(v):
    return qml.math.sqrt(qml.math.sum(qml.math.abs(v) ** 2))


def safe_unit(v):
    """``(v/‖v‖, ‖v‖)``; a zero vector maps to the uniform state with norm 0 (so its term
    vanishes) without any branch on values, which keeps it jit-compatible."""
    norm = _norm(v)
    dim = qml.math.shape(v)[0]
    uniform = qml.math.ones_like(v) / np.sqrt(dim)
    is_zero = norm == 0  # exact: float32 norms underflow long before 1e-300
    unit = qml.math.where(is_zero, uniform, v / qml.math.where(is_zero, 1.0, norm))
    return unit, norm


_VISITED = (
    "a point this explanation evaluates (the input, a baseline, a path point, a coalition or a "
    "noisy sample)"
)


def _concrete_values(values):
    """The concrete arrays among ``values`` as NumPy arrays (tracers are skipped: under
    ``jit`` or while the weights are differentiated their values cannot be read)."""
    import jax  # pylint: disable=import-outside-toplevel

    out = []
    for value in values:
        if isinstance(value, jax.core.Tracer) or qml.math.is_abstract(value):
            continue
        try:
            array = np.asarray(qml.math.unwrap(value))
        except (TypeError, ValueError):
            continue
        if np.issubdtype(array.dtype, np.number):
            out.append(array)
    return out


def refuse_non_finite(values, point, what):
    """Raise ``ValueError`` when a concrete array of ``values`` holds NaN or inf, naming the
    input ``point`` at which ``what`` was evaluated (before any circuit runs)."""
    if any(not np.all(np.isfinite(v)) for v in _concrete_values(values)):
        shown = np.array2string(
            np.asarray(qml.math.unwrap(point)), precision=6, threshold=24, separator=", "
        )
        raise ValueError(
            f"{what} is NaN or inf at the input {shown}, {_VISITED}: the QNode's map from its "
            "input to the circuit is undefined there, so the explanation is refused (a NaN "
            "would otherwise spread silently). Change the baseline (or background), or "
            "write the map so it is finite there."
        )


class Engine:
    """Turns gradient/kernel/forward requests for one :class:`ModelCall` into a tape batch.

    ``gradient`` is resolved once for the call (see :func:`resolve_gradient`).
    """

    def __init__(self, call: ModelCall, gradient="auto", ancilla=None, broadcast=True):
        self.call = call
        self.broadcast = broadcast
        self.rule = resolve_gradient(call, gradient)
        self.device = call.device
        self.ancilla = ancilla if ancilla is not None else ANCILLA_LABEL
        if self.rule in ("hadamard_all", "hadamard") and self.device is not None:
            self.ancilla, self.device = ancilla_and_device(self.device, call.tape.wires, ancilla)
        adjoint_states = self.rule == "adjoint" and call.kind == "amplitude"
        if (
            adjoint_states
            and call.device.name != "default.qubit"
            and _differentiated(call.args, call.argnum)
        ):
            raise ValueError(
                f'gradient="adjoint" returns state vectors, which {self.device.name} cannot '
                "differentiate; to differentiate explanations with respect to the weights "
                'use gradient="hadamard_all" (or default.qubit).'
            )
        self.batch = TapeBatch()
        self._direct = []  # requests computed without circuits (autodiff rules)

    # -- generic requests, in attribution space --------------------------------------------------

    @property
    def point(self):
        """The input in attribution space, flat: the amplitude vector (straight amplitude
        embeddings), or the QNode's input."""
        call = self.call
        if call.straight:
            return call.encoding.vector
        return qml.math.reshape(call.x, (-1,))

    def to_point(self, x):
        """Map an input-shaped array (e.g. a baseline) to attribution space."""
        call = self.call
        if call.straight:
            return call.amplitude_of(x)
        if is_complex(x) and not is_complex(call.x):
            raise TypeError(
                "A complex reference input (baseline or background) was given for a model with "
                "a real input (gate angles, or amplitudes of a transformed input are real); its "
                "imaginary part would be dropped silently. Pass a real array."
            )
        return qml.math.reshape(x, (-1,))

    def gradient(self, points):
        """Request ``∂f_k/∂p`` at each flat point; returns ``get(lookup) -> (values, variances)``
        of shape ``(n_points, K, d)``. Complex amplitudes give ``∂/∂Re + i ∂/∂Im``."""
        call = self.call
        if call.basis_input:
            raise ValueError(
                "The input sets the bits of a BasisState/BasisEmbedding: the model is defined at "
                "bit strings only, so input gradients (saliency, input_x_gradient, smoothgrad, "
                "integrated_gradients, taylor_fourier, qlrp) do not exist and are refused. Use "
                "a perturbation method, which flips bits: feature_ablation, shapley_values, "
                "shapley_value_sampling, kernel_shap or lime, with a bit-string baseline "
                "(default: all zeros)."
            )
        if call.kind == "angle":
            handle = self.input_gradient(points)
            return lambda lookup: (lookup(handle).real, lookup(handle).real_variance)
        if not call.straight:
            return self._chained_amplitude_gradient(points)
        dim = call.encoding.dim
        uniform = qml.math.ones_like(points[0]) / np.sqrt(dim)
        units = [safe_unit(z) for z in points]
        complex_input = is_complex(points[0])
        handle = self.kernel([(uniform, unit) for unit, _ in units], imag=complex_input)
        scale = qml.math.stack([2 * np.sqrt(dim) * norm for _, norm in units])[:, None, None]

        def get(lookup):
            kv = lookup(handle)
            if complex_input:
                values = scale * (kv.real + 1j * kv.imag)
                variances = scale**2 * (kv.real_variance + kv.imag_variance)
            else:
                values, variances = scale * kv.real, scale**2 * kv.real_variance
            return values, variances

        return get

    def _chained_amplitude_gradient(self, points):
        """``∂f/∂x = Jᵀ 2 Re(M a)`` for a QNode that transforms its input ``x`` into the
        amplitudes ``a(x)`` (``J = ∂a/∂x``, traced): the amplitude gradient at the prepared
        unit vector, by the kernel's circuits, chained through the QNode's own map."""
        call = self.call
        dim = call.encoding.dim
        inputs = [qml.math.reshape(p, call.shape) for p in points]
        vectors = [call.amplitude_of(x) for x in inputs]
        jacobians = qml.math.stack([call.amplitude_jacobian(x) for x in inputs])  # (n, N, d)
        for x, vector, jacobian in zip(inputs, vectors, jacobians):
            refuse_non_finite(
                [vector, jacobian], x, "The amplitude vector the QNode prepares (or its Jacobian)"
            )
        uniform = qml.math.ones_like(vectors[0]) / np.sqrt(dim)
        handle = self.kernel([(uniform, a) for a in vectors])
        scale = 2 * np.sqrt(dim)

        def get(lookup):
            kv = lookup(handle)  # (n, K, N)
            values = qml.math.einsum("nkj,njd->nkd", scale * kv.real, jacobians)
            variances = qml.math.einsum("nkj,njd->nkd", scale**2 * kv.real_variance, jacobians**2)
            return values, variances

        return get

    def forward_at(self, point):
        """Request the outputs ``f_k`` at a flat point in attribution space (amplitudes of any
        norm for a straight amplitude embedding, else the QNode's input).

        Returns ``get(lookup) -> (values, variances)``, both of shape ``(K,)``, estimated by
        :func:`~.estimation.estimate_outputs` (with shots, the variances count the covariance of
        the words measured together).
        """
        call = self.call
        scale = 1.0
        if call.kind == "amplitude":
            if call.straight:
                unit, norm = safe_unit(point)
                scale = norm**2  # f is the quadratic form a† M a
            else:
                unit = call.amplitude_of(qml.math.reshape(point, call.shape))
                check_finite(
                    unit,
                    "The amplitude vector the QNode prepares for a perturbed input (a feature set to a zero baseline can leave the embedding a zero vector to normalise; give a non-zero baseline)",
                )
            prep = qml.StatePrep(unit, wires=call.encoding.wires)
            tape = call.tape.copy(operations=[prep, *call.tape.operations[1:]])
            sentences = call.sentences
        else:
            x = qml.math.reshape(point, call.shape)
            tape = call.tape_at(x)
            params = tape.get_parameters(trainable_only=False)
            refuse_non_finite(params, x, "A gate parameter (or observable coefficient)")
            if call.basis_input:
                self._check_bits(x)
            # the input in an observable's coefficients: the outputs at this point
            sentences = output_sentences(tape, self.device) if call.observable_input else None
            sentences = sentences or call.sentences
        tapes, estimate = estimate_outputs(tape, sentences, call.shots, self.device)
        handle = self.batch.add(tapes, estimate)

        def get(lookup):
            values, variances = lookup(handle)
            return scale * values, scale**2 * variances

        return get

    def _check_bits(self, x):
        """Refuse a perturbed point whose entries are not bits where they differ from the input
        (a baseline or background that is not a bit string): BasisState casts its parameter to
        integers, so a value such as 0.5 would silently become 0."""
        for value, own in zip(_concrete_values([x]), _concrete_values([self.call.x])):
            value, own = value.reshape(-1), own.reshape(-1)
            if not np.all((value == 0) | (value == 1) | (value == own)):
                shown = np.array2string(np.asarray(qml.math.unwrap(x)), separator=", ")
                raise ValueError(
                    f"The input sets the bits of a BasisState/BasisEmbedding, and at the input "
                    f"{shown} ({_VISITED}) they are not bits. Perturbation methods flip bits "
                    "between the input and the reference: give a bit-string baseline or "
                    "background (0s and 1s; the default 0 is all zeros)."
                )

    def kernel(self, pairs, imag=False):
        """Request ``K(u, v)`` (see :mod:`.amplitude_kernel`) for normalised pairs."""
        call = self.call
        if self.rule == "backprop":
            return self._add_direct(
                lambda: amplitude_kernel.backprop_kernel(
                    call.tape, call.encoding, pairs, self.device, imag=imag
                )
            )
        if self.device is not None and self.device.wires is None:
            # A device without wires orders its state by PennyLane's standard-wire map; give it
            # integer wires in our own order, so that order is unambiguous.
            hadamard = self.rule in ("hadamard_all", "hadamard")
            state_wires = list(call.tape.wires) + ([self.ancilla] if hadamard else [])
            wire_map = {w: i for i, w in enumerate(state_wires)}
        else:
            state_wires = (
                list(self.device.wires) if self.device is not None else list(call.tape.wires)
            )
            wire_map = None
        tapes, fn = amplitude_kernel.kernel_tapes(
            call.tape, call.encoding, call.sentences, pairs, self.rule,
            ancilla=self.ancilla, imag=imag, state_wires=state_wires,
        )  # fmt: skip
        if wire_map is not None:
            tapes = [qml.map_wires(tape, wire_map)[0][0] for tape in tapes]
        return self.batch.add(tapes, fn)

    # -- angle inputs ---------------------------------------------------------------------------

    def input_gradient(self, points):
        """Request ``∂f_k/∂x`` at flat input points: values and variances ``(n_points, K, d)``."""
        call = self.call
        points = [qml.math.reshape(p, call.shape) for p in points]
        if self.rule in ("backprop", "adjoint"):
            if self.rule == "adjoint":
                call.check_gate_path()
            self._check_map(call.trace, points)
            return self._add_direct(lambda: self._autodiff_gradient(points))
        if self.broadcast and call.input_indices:
            handle = self._broadcast_input_gradient(points)
            if handle is not None:
                return handle
        requests = []
        for x in points:
            tape = call.expanded_tape_at(x)
            jac = call.input_jacobian(x)
            refuse_non_finite(
                [*tape.get_parameters(trainable_only=False), jac],
                x,
                "A gate parameter (or its derivative with respect to the input)",
            )
            tapes, fn = angle_gradient.shift_tapes(
                tape, call.input_indices, call.sentences, device=self.device
            )
            requests.append((self.batch.add(tapes, fn), jac))
        return ("chain", requests)

    @staticmethod
    def _check_map(trace, points):
        """Refuse NaN/inf in the traced map (values and Jacobian) at the gradient points, for
        the rules that differentiate the QNode itself (checked before anything runs)."""
        for x in points:
            if isinstance(x, _jax_tracer()) or qml.math.is_abstract(x):
                return
            refuse_non_finite(
                [trace.input_parameters(x), trace.jacobian(x)],
                x,
                "A gate parameter (or its derivative with respect to the input)",
            )

    def _broadcast_input_gradient(self, points):
        """The shifted circuits of every point as one broadcast circuit (``None`` when an
        operation of the circuit does not accept broadcast parameters)."""
        call = self.call
        xs = qml.math.stack(points)
        tape = call.shift_trace.batched_tape(xs)
        if tape is None:
            return None
        jacobians = call.shift_trace.jacobians(xs)
        self._refuse_non_finite_rows(
            tape.get_parameters(trainable_only=False), jacobians, points, call.input_indices
        )
        built = angle_gradient.broadcast_shift_tapes(
            tape, call.input_indices, call.sentences, device=self.device
        )
        if built is None:
            return None
        tapes, fn = built
        return ("broadcast_chain", self.batch.add(tapes, fn), jacobians)

    @staticmethod
    def _refuse_non_finite_rows(params, jacobians, points, indices):
        """:func:`refuse_non_finite` for a broadcast tape: name the first point whose input
        parameters (``indices``, batched) or Jacobian row is not finite."""
        batched = [params[i] for i in indices]
        arrays = _concrete_values([*batched, jacobians])
        if all(np.all(np.isfinite(a)) for a in arrays):
            return
        for row, x in enumerate(points):
            values = [qml.math.reshape(p, (len(points), -1))[row] for p in batched]
            refuse_non_finite(
                [*values, jacobians[row]],
                x,
                "A gate parameter (or its derivative with respect to the input)",
            )

    def _autodiff_gradient(self, points):
        """``∂f/∂x`` by JAX autodiff through the simulator (see :func:`_autodiff_jacobian`)."""
        import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

        call = self.call
        jacobian, dynamic = _autodiff_jacobian(
            call.qnode, call.argnum, self.rule, self.device, call.kwargs, call.args
        )
        jac = jacobian(jnp.stack(points), dynamic)  # (n_points, K, *shape)
        values = jnp.reshape(jac, (len(points), call.n_outputs, -1))
        return amplitude_kernel.KernelValues(values, None, jnp.zeros_like(values), None)

    def _add_direct(self, thunk):
        self._direct.append(thunk)
        return ("direct", len(self._direct) - 1)

    @property
    def diff_method(self):
        """What ``qml.execute`` gets, so explanations stay differentiable in the weights."""
        if self.device.name != "default.qubit" and self.call.kind == "amplitude":
            # Hadamard tests hold controlled preparations that device (adjoint) differentiation
            # does not support; parameter shift differentiates them with respect to the weights.
            # State-returning tapes ("adjoint" rule) are differentiable by backprop only.
            return None if self.rule == "adjoint" else "parameter-shift"
        return self.call.qnode.diff_method

    def plan(self, method, finish):
        """The :class:`~.plan.Plan` of every request made so far; ``finish(lookup)`` is the
        method's processing of the request values."""
        return Plan(
            method=method,
            embedding=self.call.kind,
            rule=self.rule,
            tapes=tuple(self.batch.tapes),
            device=self.device,
            diff_method=self.diff_method if self.device is not None else None,
            simulator_requests=tuple(self._direct),
            processing_fn=lambda results, values: finish(self.postprocess(results, values)),
            broadcast=self.broadcast,
        )

    def postprocess(self, results, direct=()):
        """Map the batch's results (and the simulator requests' values) to a function that
        looks up request values. Nothing runs here."""
        values = self.batch.postprocess(results)

        def lookup(handle):
            if isinstance(handle, tuple) and handle[0] == "direct":
                return direct[handle[1]]
            if isinstance(handle, tuple) and handle[0] == "chain":
                grads, variances = [], []
                for index, jac in handle[1]:
                    shift = values[index]
                    grads.append(shift.value @ jac)
                    variances.append(shift.variance @ jac**2)
                grads, variances = qml.math.stack(grads), qml.math.stack(variances)
                return amplitude_kernel.KernelValues(grads, None, variances, None)
            if isinstance(handle, tuple) and handle[0] == "broadcast_chain":
                shift, jac = values[handle[1]], handle[2]  # (n, K, P) and (n, P, d)
                grads = qml.math.einsum("nkp,npd->nkd", shift.value, jac)
                variances = qml.math.einsum("nkp,npd->nkd", shift.variance, jac**2)
                return amplitude_kernel.KernelValues(grads, None, variances, None)
            return values[handle]

        return lookup


_JACOBIAN_CACHE = weakref.WeakKeyDictionary()


def _is_static(value):
    """Arguments JAX must not trace: Python ints/bools/strings, integer arrays, other objects
    (a layer count, ``BasisState`` bits). They are passed to the QNode as they are."""
    for leaf in leaves(value):
        if is_jax_value(leaf):
            if not qml.math.is_abstract(leaf) and "int" in str(leaf.dtype):
                return True
            continue
        if isinstance(leaf, (bool, int, str)) or leaf is None:
            return True
        dtype = getattr(leaf, "dtype", None)
        if dtype is None and not isinstance(leaf, (float, complex)):
            return True
        if dtype is not None and not np.issubdtype(dtype, np.inexact):
            return True
    return False


def _static_key(static):
    """A hashable key for the static arguments, or ``None`` when they cannot be hashed."""
    try:
        key = tuple(
            (i, (a.dtype.str, a.shape, a.tobytes()) if isinstance(a, np.ndarray) else a)
            for i, a in sorted(static.items())
        )
        hash(key)
    except TypeError:
        return None
    return key


def _autodiff_jacobian(qnode, argnum, rule, device, kwargs, args):
    """A jit-compiled ``jacobian(points, dynamic_args)``: ``vmap`` over the points of one
    reverse-mode Jacobian through the simulator, so the circuit is traced and compiled once per
    QNode (cached while the QNode lives) whatever the number of points. Static arguments
    (integers, integer arrays, other objects: see :func:`_is_static`) and keyword arguments are
    closed over; calls with keyword arguments or unhashable static arguments are not cached.

    Returns ``(jacobian, dynamic_args)``."""
    import jax  # pylint: disable=import-outside-toplevel

    static = {i: a for i, a in enumerate(args) if i != argnum and _is_static(a)}
    dynamic = tuple(a if i not in static else None for i, a in enumerate(args))
    static_key = _static_key(static)
    key = (argnum, rule, device, static_key, switched_precision())
    cache = _JACOBIAN_CACHE.setdefault(qnode, {})
    cacheable = not kwargs and static_key is not None
    if cacheable and key in cache:
        return cache[key], dynamic

    def jacobian(points, dynamic_args):
        def outputs(x):
            call_args = [static.get(i, a) for i, a in enumerate(dynamic_args)]
            call_args[argnum] = x
            tape = qml.workflow.construct_tape(qnode, level="user")(*call_args, **kwargs)
            result = execute_batch([tape], device, diff_method=rule)[0]
            return flatten_outputs(result, tape)

        return jax.vmap(jax.jacrev(outputs))(points)

    # In a precision switched for this call (64-bit torch tensors in a float32 process), a
    # jitted `jacobian` would keep JAX's 64-bit form of the QNode's NumPy constants alive for
    # the user's float32 code (see .inputs.x64_mode): it is compiled from a private trace.
    jitted = private_jit(jacobian) if switched_precision() else jax.jit(jacobian)
    eager = []

    def compiled(points, dynamic_args):
        # Python control flow on a non-input argument (`if w > 0`, `qml.cond(w > 0, ...)`)
        # needs its concrete value, which jit hides: such a QNode is differentiated eagerly
        # (only the input is traced, as in a plain QNode), and stays so for this QNode.
        if not eager:
            try:
                return jitted(points, dynamic_args)
            except jax.errors.ConcretizationTypeError:
                eager.append(True)
        return jacobian(points, dynamic_args)

    if cacheable:
        cache[key] = compiled
    return compiled, dynamic


def resolve_gradient(call: ModelCall, gradient: str) -> str:
    """The input-gradient rule for ``call``; ``"auto"`` picks:

    * amplitude inputs: ``"adjoint"`` (state-vector sweep) on an analytic state-vector simulator
      (default.qubit, lightning.*), else ``"hadamard_all"`` (one circuit per Pauli word);
    * angle inputs: ``"backprop"`` on analytic default.qubit with JAX, ``"adjoint"`` on analytic
      lightning.* with JAX when every output is an expectation value, else
      ``"parameter-shift"``.

    While ``jax.grad`` (or ``torch.autograd``) differentiates the weights, lightning.* gets the
    circuit rules (``"hadamard_all"``, ``"parameter-shift"``): JAX autodiff through its
    callback cannot be differentiated again.
    """
    if gradient not in GRADIENT_RULES:
        raise ValueError(f"Unknown gradient={gradient!r}; expected one of {GRADIENT_RULES}.")
    device = call.device
    if device is None:  # a bare tape: only circuit rules apply
        if gradient in ("adjoint", "backprop"):
            raise ValueError(
                f'gradient="{gradient}" needs a simulator; apply the transform to a QNode.'
            )
        return "hadamard_all" if gradient == "auto" else gradient
    analytic_sv = call.shots is None and device.name in _STATE_SIMULATORS
    is_jax = qml.math.get_interface(call.x) == "jax"
    # JAX autodiff through lightning.* (a callback) is not differentiable again with respect
    # to the weights: when they are being differentiated, "auto" picks a circuit rule there.
    simulator_autodiff = device.name == "default.qubit" or not _differentiated(
        call.args, call.argnum
    )
    if call.kind == "amplitude":
        if gradient == "auto":
            return "adjoint" if analytic_sv and simulator_autodiff else "hadamard_all"
        if gradient == "parameter-shift":
            raise ValueError(
                'gradient="parameter-shift" does not apply to amplitude embeddings; use '
                '"hadamard_all", "hadamard", "adjoint" or "backprop".'
            )
    else:
        if gradient == "auto":
            expvals_only = all(isinstance(mp, ExpectationMP) for mp in call.tape.measurements)
            if analytic_sv and is_jax and device.name == "default.qubit":
                return "backprop"
            if analytic_sv and is_jax and expvals_only and simulator_autodiff:
                return "adjoint"
            return "parameter-shift"
        if gradient in ("hadamard_all", "hadamard"):
            raise ValueError(
                f'gradient="{gradient}" is for amplitude embeddings; angle encodings use '
                '"parameter-shift", "backprop" or "adjoint".'
            )
    if gradient in ("adjoint", "backprop") and not analytic_sv:
        raise ValueError(
            f'gradient="{gradient}" needs an analytic state-vector simulator ({_STATE_SIMULATORS}) '
            f"without shots; {device.name} with shots={call.shots} needs a circuit rule "
            '("hadamard_all" for amplitudes, "parameter-shift" for angles).'
        )
    if gradient == "backprop" and (device.name != "default.qubit" or not is_jax):
        raise ValueError('gradient="backprop" needs default.qubit and JAX inputs.')
    if gradient == "adjoint" and call.kind == "angle":
        if not is_jax:
            raise ValueError('gradient="adjoint" for angle inputs needs JAX inputs.')
        if any(not isinstance(mp, ExpectationMP) for mp in call.tape.measurements):
            raise ValueError(
                'gradient="adjoint" for angle inputs supports expectation values only; '
                'use "parameter-shift" for probabilities (or "backprop" on default.qubit).'
            )
    return gradient
