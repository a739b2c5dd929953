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
import weakref
from typing import NamedTuple

import numpy as np
import pennylane as qml
from pennylane.measurements import ExpectationMP

from . import amplitude_kernel, angle_gradient
from .encodings import (
    collect_words,
    find_amplitude_encoding,
    flatten_outputs,
    input_parameter_indices,
    is_complex,
    output_sentences,
    word_expectations,
    word_tape,
    word_variances,
)
from .execution import ANCILLA_LABEL, ancilla_and_device, execute_batch, shots_of

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


def _check_finite(x, name):
    if qml.math.is_abstract(x):
        return
    values = np.asarray(qml.math.unwrap(x))
    if not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {values.dtype}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or inf; attributions need finite values.")


_SUPPORTED_INTERFACES = ("numpy", "autograd", "jax")


def _check_interfaces(args, kwargs):
    """Refuse arrays of frameworks the engine does not combine with its NumPy constants."""
    for leaf in _leaves((args, kwargs)):
        interface = qml.math.get_interface(leaf)
        if interface not in _SUPPORTED_INTERFACES:
            raise TypeError(
                f"Explanations take NumPy, autograd or JAX arrays; got a {interface} value. "
                "Pass NumPy arrays (e.g. x.detach().numpy()) to explain a torch-interface QNode: "
                "the attributions then come back as NumPy arrays (for differentiable "
                "explanations use JAX)."
            )


class ModelCall:
    """One call ``qnode(*args, **kwargs)`` traced into its tape, with the input at ``argnum``.

    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev)
    ... def f(x):
    ...     qml.RY(x[0], 0)
    ...     return qml.expval(qml.Z(0))
    >>> call = ModelCall(f, (np.array([0.3]),), {}, 0)
    >>> call.kind, call.n_outputs
    ('angle', 1)
    """

    def __init__(self, qnode, args, kwargs, argnum):
        if not isinstance(qnode, qml.QNode):
            raise TypeError(f"Attribution decorators wrap a qml.QNode, got {type(qnode).__name__}.")
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
            self.args = self.args[: self.argnum] + (self.x,) + self.args[self.argnum + 1 :]
        _check_finite(self.x, "The input")
        self.shape = tuple(qml.math.shape(self.x))
        self.tape = self.tape_at(self.x)
        self.encoding = find_amplitude_encoding(self.tape)
        self.sentences = output_sentences(self.tape)
        self.shots = shots_of(self.tape)
        if self.encoding is not None:
            self._check_amplitude_input()

    @property
    def kind(self):
        return "amplitude" if self.encoding is not None else "angle"

    @property
    def n_outputs(self):
        return len(self.sentences)

    @property
    def feature_shape(self):
        """Shape of an attribution: the input's, or the padded amplitude vector's."""
        if self.encoding is not None and int(np.prod(self.shape)) != self.encoding.dim:
            return (self.encoding.dim,)
        return self.shape

    def tape_at(self, x):
        """The tape of the model with the input replaced by ``x`` (nothing is executed)."""
        args = self.args[: self.argnum] + (x,) + self.args[self.argnum + 1 :]
        try:
            return qml.workflow.construct_tape(self.qnode, level="user")(*args, **self.kwargs)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"The model cannot be built with an input of shape {qml.math.shape(x)}: {error}"
            ) from error

    def _check_amplitude_input(self):
        if not qml.math.is_abstract(self.x) and np.allclose(qml.math.unwrap(self.x), 0):
            raise ValueError("An all-zero vector cannot be amplitude-embedded; give a non-zero input.")

    def amplitude_of(self, x):
        """The amplitude vector the embedding prepares for ``x`` (zero stays zero)."""
        if not qml.math.is_abstract(x) and np.allclose(qml.math.unwrap(x), 0):
            return qml.math.zeros_like(self.encoding.vector)
        return find_amplitude_encoding(self.tape_at(x)).vector

    @functools.cached_property
    def input_indices(self):
        """Gate parameters of the expanded tape that depend on the input (angle encodings)."""

        def tape_of(*args, **kwargs):
            tape = qml.workflow.construct_tape(self.qnode, level="user")(*args, **kwargs)
            return angle_gradient.expand_for_shifts(tape)

        indices = input_parameter_indices(tape_of, self.args, self.kwargs, self.argnum)
        if not indices:
            raise ValueError(
                "No gate parameter of the circuit depends on the input argument "
                f"(argnums={self.argnum}); check argnums."
            )
        return indices

    def expanded_tape_at(self, x):
        return angle_gradient.expand_for_shifts(self.tape_at(x))

    def input_params(self, x):
        """The input-dependent gate parameters at ``x`` as one flat vector."""
        params = self.expanded_tape_at(x).get_parameters(trainable_only=False)
        return qml.math.stack([qml.math.reshape(params[i], ()) for i in self.input_indices])


# ---------------------------------------------------------------------------------------------
# requests of the attribution methods
# ---------------------------------------------------------------------------------------------


def _differentiated(args, argnum):
    """Whether a non-input argument is being differentiated by JAX right now (eager grad)."""
    leaves = [leaf for i, a in enumerate(args) if i != argnum for leaf in _leaves(a)]
    return any(type(leaf).__name__ in ("JVPTracer", "LinearizeTracer") for leaf in leaves)


def _leaves(value):
    try:
        import jax  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover
        return [value]
    return jax.tree_util.tree_leaves(value)


def _norm(v):
    return qml.math.sqrt(qml.math.sum(qml.math.abs(v) ** 2))


def safe_unit(v):
    """``(v/‖v‖, ‖v‖)``; a zero vector maps to the uniform state with norm 0 (so its term
    vanishes) without any branch on values, which keeps it jit-compatible."""
    norm = _norm(v)
    dim = qml.math.shape(v)[0]
    uniform = qml.math.ones_like(v) / np.sqrt(dim)
    is_zero = norm < 1e-300
    unit = qml.math.where(is_zero, uniform, v / qml.math.where(is_zero, 1.0, norm))
    return unit, norm


class Engine:
    """Turns gradient/kernel/forward requests for one :class:`ModelCall` into a tape batch.

    ``gradient`` is resolved once for the call (see :func:`resolve_gradient`).
    """

    def __init__(self, call: ModelCall, gradient="auto", ancilla=None):
        self.call = call
        self.rule = resolve_gradient(call, gradient)
        self.device = call.device
        self.ancilla = ancilla if ancilla is not None else ANCILLA_LABEL
        if self.rule in ("hadamard_all", "hadamard") and self.device is not None:
            self.ancilla, self.device = ancilla_and_device(self.device, call.tape.wires, ancilla)
        if self.rule == "adjoint" and call.kind == "amplitude" and call.device.name != "default.qubit":
            if _differentiated(call.args, call.argnum):
                raise ValueError(
                    f'gradient="adjoint" returns state vectors, which {self.device.name} cannot '
                    'differentiate; to differentiate explanations with respect to the weights '
                    'use gradient="hadamard_all" (or default.qubit).'
                )
        self.batch = TapeBatch()
        self._direct = []  # requests computed without circuits (autodiff rules)

    # -- generic requests, in attribution space --------------------------------------------------

    @property
    def point(self):
        """The input in attribution space, flat: the amplitude vector, or the input features."""
        call = self.call
        if call.kind == "amplitude":
            return call.encoding.vector
        return qml.math.reshape(call.x, (-1,))

    def to_point(self, x):
        """Map an input-shaped array (e.g. a baseline) to attribution space."""
        call = self.call
        if call.kind == "amplitude":
            return call.amplitude_of(x)
        return qml.math.reshape(x, (-1,))

    def gradient(self, points):
        """Request ``∂f_k/∂p`` at each flat point; returns ``get(lookup) -> (values, variances)``
        of shape ``(n_points, K, d)``. Complex amplitudes give ``∂/∂Re + i ∂/∂Im``."""
        call = self.call
        if call.kind == "angle":
            handle = self.input_gradient(points)
            return lambda lookup: (lookup(handle).real, lookup(handle).real_variance)
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

    def forward_at(self, point):
        """Request the outputs ``f_k`` at a flat point (amplitudes of any norm, or features).

        Returns ``get(lookup) -> (values, variances)``, both of shape ``(K,)``: the circuit
        measures every Pauli word of the outputs, so that with shots each output's variance is
        known (words treated as independent estimates).
        """
        call = self.call
        plan = collect_words(call.sentences)
        scale = 1.0
        if call.kind == "amplitude":
            unit, norm = safe_unit(point)
            prep = qml.StatePrep(unit, wires=call.encoding.wires)
            tape = call.tape.copy(operations=[prep, *call.tape.operations[1:]])
            scale = norm**2  # f is the quadratic form a† M a
        else:
            tape = call.tape_at(qml.math.reshape(point, call.shape))
        identity = qml.math.asarray(plan.identity)
        if not plan.words:  # constant outputs
            return lambda lookup: (scale * identity, qml.math.zeros_like(identity))
        coeffs = qml.math.asarray(plan.coefficients)

        def estimate(results):
            expectations = word_expectations(results[0])
            variances = word_variances(expectations, call.shots)
            return coeffs @ expectations + identity, coeffs**2 @ variances

        handle = self.batch.add([word_tape(tape, plan.words)], estimate)

        def get(lookup):
            values, variances = lookup(handle)
            return scale * values, scale**2 * variances

        return get

    def kernel(self, pairs, imag=False):
        """Request ``K(u, v)`` (see :mod:`.amplitude_kernel`) for normalised pairs."""
        call = self.call
        if self.rule == "backprop":
            return self._add_direct(
                lambda: amplitude_kernel.backprop_kernel(
                    call.tape, call.encoding, pairs, self.device, imag=imag
                )
            )
        device_wires = self.device.wires if self.device is not None else None
        state_wires = list(device_wires) if device_wires is not None else list(call.tape.wires)
        tapes, fn = amplitude_kernel.kernel_tapes(
            call.tape, call.encoding, call.sentences, pairs, self.rule,
            ancilla=self.ancilla, imag=imag, state_wires=state_wires,
        )  # fmt: skip
        return self.batch.add(tapes, fn)

    # -- angle inputs ---------------------------------------------------------------------------

    def input_gradient(self, points):
        """Request ``∂f_k/∂x`` at flat input points: values and variances ``(n_points, K, d)``."""
        call = self.call
        points = [qml.math.reshape(p, call.shape) for p in points]
        if self.rule in ("backprop", "adjoint"):
            return self._add_direct(lambda: self._autodiff_gradient(points))
        requests = []
        for x in points:
            tapes, fn = angle_gradient.shift_tapes(
                call.expanded_tape_at(x), call.input_indices, call.sentences
            )
            jac = angle_gradient.classical_jacobian(call.input_params, x)
            requests.append((self.batch.add(tapes, fn), jac))
        return ("chain", requests)

    def _autodiff_gradient(self, points):
        """``∂f/∂x`` by JAX autodiff through the simulator (see :func:`_autodiff_jacobian`)."""
        import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

        call = self.call
        jacobian = _autodiff_jacobian(call.qnode, call.argnum, self.rule, self.device, call.kwargs)
        jac = jacobian(jnp.stack(points), call.args)  # (n_points, K, *shape)
        values = jnp.reshape(jac, (len(points), call.n_outputs, -1))
        return amplitude_kernel.KernelValues(values, None, jnp.zeros_like(values), None)

    def _add_direct(self, thunk):
        self._direct.append(thunk)
        return ("direct", len(self._direct) - 1)

    @property
    def n_direct_requests(self):
        """Requests computed by simulator autodiff rather than by circuits of the batch."""
        return len(self._direct)

    def run(self):
        """Execute the batch once; returns a function that looks up request values."""
        diff_method = self.call.qnode.diff_method
        if self.device.name != "default.qubit" and self.call.kind == "amplitude":
            # Hadamard tests hold controlled preparations that device (adjoint) differentiation
            # does not support; parameter shift differentiates them with respect to the weights.
            # State-returning tapes ("adjoint" rule) are differentiable by backprop only.
            diff_method = None if self.rule == "adjoint" else "parameter-shift"
        return self.postprocess(execute_batch(self.batch.tapes, self.device, diff_method=diff_method))

    def postprocess(self, results):
        """Map the batch's results to a function that looks up request values."""
        values = self.batch.postprocess(results)
        direct = [thunk() for thunk in self._direct]

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
            return values[handle]

        return lookup


_JACOBIAN_CACHE = weakref.WeakKeyDictionary()


def _autodiff_jacobian(qnode, argnum, rule, device, kwargs):
    """A jit-compiled ``jacobian(points, args)``: ``vmap`` over the points of one reverse-mode
    Jacobian through the simulator, so the circuit is traced and compiled once per QNode (cached
    while the QNode lives) whatever the number of points. Keyword arguments of the call are
    closed over, so calls with keyword arguments are not cached."""
    import jax  # pylint: disable=import-outside-toplevel

    key = (argnum, rule, device)
    cache = _JACOBIAN_CACHE.setdefault(qnode, {})
    if not kwargs and key in cache:
        return cache[key]

    def jacobian(points, args):
        def outputs(x):
            call_args = args[:argnum] + (x,) + args[argnum + 1 :]
            tape = qml.workflow.construct_tape(qnode, level="user")(*call_args, **kwargs)
            result = execute_batch([tape], device, diff_method=rule)[0]
            return flatten_outputs(result, tape)

        return jax.vmap(jax.jacrev(outputs))(points)

    compiled = jax.jit(jacobian)
    if not kwargs:
        cache[key] = compiled
    return compiled


def resolve_gradient(call: ModelCall, gradient: str) -> str:
    """The input-gradient rule for ``call``; ``"auto"`` picks:

    * amplitude inputs: ``"adjoint"`` (state-vector sweep) on an analytic state-vector simulator
      (default.qubit, lightning.*), else ``"hadamard_all"`` (one circuit per Pauli word);
    * angle inputs: ``"backprop"`` on analytic default.qubit with JAX, ``"adjoint"`` on analytic
      lightning.* with JAX when every output is an expectation value, else
      ``"parameter-shift"``.
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
    if call.kind == "amplitude":
        if gradient == "auto":
            return "adjoint" if analytic_sv else "hadamard_all"
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
            if analytic_sv and is_jax and expvals_only:
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
                'use "backprop" or "parameter-shift" for probabilities.'
            )
    return gradient
