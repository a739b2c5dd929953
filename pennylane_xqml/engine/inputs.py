"""Layer 1: how the input argument reaches the circuit, found by tracing, never by guessing.

PennyLane's own gradient transforms find the map from a QNode argument to gate parameters by
tracing the QNode with that argument as a tracer (:func:`qml.gradients.classical_jacobian`).
This module does the same, once per explanation:

* :class:`JaxInputTrace` builds the tape with the input as an *abstract* JAX value
  (:func:`jax.make_jaxpr`), so the circuit's structure cannot depend on the input's value: a
  transform that merges two rotations into an angle of exactly 0 keeps the gate, and the
  result is right at every input. The map from the input to every gate parameter is kept as a
  jaxpr and evaluated at the many inputs a method needs (path points, coalitions, shifted
  points), under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` alike. Which parameters depend on
  the input is read off the jaxpr's data flow, not off values.
* :class:`PointwiseInputTrace` is the fallback for pre-processing JAX cannot trace
  (``pennylane.numpy`` functions on NumPy/autograd inputs): the tape is rebuilt at every input
  with autograd, and a change of structure between inputs is an error, never a silent result.

Only the input is traced: other arguments (weights, integers such as a layer count,
``BasisState`` bit arrays) are passed as they are, as ``jax.grad`` leaves them.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np
import pennylane as qml


class InputTraceError(ValueError):
    """The QNode's use of its input cannot be traced (raised before any circuit runs)."""


def _jax():
    import jax  # pylint: disable=import-outside-toplevel

    return jax


# Whether JAX's precision is one this package switched to for the moment (see x64_mode).
_SWITCHED = contextvars.ContextVar("xqml_switched_precision", default=False)


@contextlib.contextmanager
def x64_mode(enabled: bool):
    """A context with JAX's 64-bit mode on or off (``jax.enable_x64``; older JAX, as the
    Catalyst route pins, has it as ``jax.experimental.enable_x64``), for this thread only; a
    no-op when the mode already is ``enabled``.

    JAX caches the canonical (device-ready) form of a NumPy array while anything it traced
    holds that form, whatever mode it was made in. So nothing traced inside a switched context
    may outlive it with a NumPy array of the user's (or a constant of PennyLane's) in it: the
    user's code would later receive its 64-bit form in float32 mode (an executable compiled for
    ``f32`` handed an ``f64`` buffer). Code that caches traced functions asks
    :func:`switched_precision` and does not cache in a switched context, and
    :class:`JaxInputTrace` keeps private copies of its constants."""
    jax = _jax()
    if bool(jax.config.jax_enable_x64) == enabled:
        yield
        return
    context = getattr(jax, "enable_x64", None)
    if context is None:
        from jax import experimental  # pylint: disable=import-outside-toplevel

        context = (experimental.enable_x64 if enabled else experimental.disable_x64)()
    else:
        context = context(enabled)
    token = _SWITCHED.set(True)
    try:
        with context:
            yield
    finally:
        _SWITCHED.reset(token)


def switched_precision() -> bool:
    """Whether JAX runs, for the moment, in a precision :func:`x64_mode` switched to (the
    process's own mode is the other): traced functions must not be cached then."""
    return _SWITCHED.get()


def enable_x64() -> None:
    """Turn JAX's 64-bit mode on for the rest of the process (the reproductions' and the demo's
    entry points: their published numbers are float64). JAX's compilation caches are cleared
    when the mode changes, so no executable compiled in float32 is handed float64 buffers."""
    jax = _jax()
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
        jax.clear_caches()


def is_jax_value(value) -> bool:
    """Whether ``value`` is a JAX array or tracer."""
    jax = _jax()
    return isinstance(value, (jax.Array, jax.core.Tracer))


def _dependent_outputs(jaxpr) -> list[bool]:
    """For each output of ``jaxpr``, whether its value depends on the (single) input variable.

    A forward data-flow pass: an equation's outputs depend on the input when any of its inputs
    does (nested jaxprs are treated as one equation, which can only over-approximate)."""
    dependent = set(jaxpr.invars)
    for eqn in jaxpr.eqns:
        if any(not _is_literal(v) and v in dependent for v in eqn.invars):
            dependent.update(eqn.outvars)
    return [not _is_literal(v) and v in dependent for v in jaxpr.outvars]


def _is_literal(var) -> bool:
    return type(var).__name__ == "Literal"


def _structure(tape):
    """What must not change between inputs: operation types, wires and parameter counts."""
    return [(type(op).__name__, tuple(op.wires), op.num_params) for op in tape.operations]


def bind_broadcast_parameters(tape, params):
    """``tape`` with every parameter replaced by ``params``, some of them broadcast (a leading
    batch axis), and its operators rebuilt from their pytree so that each computes its batch
    size anew: ``QuantumScript.bind_new_parameters`` keeps the batch size some operators cache
    (``qml.MultiRZ`` stays unbatched, and a device then receives an array where it expects a
    number). Raises ``ValueError`` when the operators' batch sizes do not agree."""
    rebuilt = rebuilt_operators(tape.bind_new_parameters(params, list(range(len(params)))))
    _ = rebuilt.batch_size  # checks that the operators' batch sizes agree
    return rebuilt


def rebuilt_operators(tape):
    """``tape`` with its operators rebuilt from their pytree, so each computes its batch size
    from its parameters (see :func:`bind_broadcast_parameters`)."""
    jax = _jax()
    leaves, treedef = jax.tree_util.tree_flatten(tape)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def traced_in_switched_precision(jax_call: bool) -> bool:
    """Whether a call is traced in a precision switched for it: inside :func:`x64_mode`
    (64-bit torch tensors), or NumPy/autograd arrays only (``jax_call=False``, traced in 64-bit,
    see :func:`trace_input`) while JAX runs in float32."""
    return switched_precision() or (not jax_call and not _jax().config.jax_enable_x64)


def private_jit(fn):
    """``jax.jit(fn)`` for a precision switched for the moment (:func:`x64_mode`), safe to
    keep after it: ``fn`` is traced once per argument types into a jaxpr whose NumPy constants
    are copies (PennyLane's Pauli eigenvalues, the user's arrays stay untouched), and that jaxpr
    is compiled. Keep the result, not ``fn``: JAX's tracing caches hold what ``fn`` traced while
    ``fn`` lives, so it is traced through a wrapper that dies after tracing."""
    jax = _jax()
    compiled = {}

    def call(*args):
        flat, tree = jax.tree_util.tree_flatten(args)
        key = (tree, tuple(jax.typeof(a) for a in flat))
        if key not in compiled:
            closed, shapes = jax.make_jaxpr(lambda *a: fn(*a), return_shape=True)(*args)
            run = jax.jit(jax.extend.core.jaxpr_as_fun(_private_constants(closed)))
            compiled[key] = (run, jax.tree_util.tree_structure(shapes))
        run, out_tree = compiled[key]
        return jax.tree_util.tree_unflatten(out_tree, run(*flat))

    return call


class MixedPrecisionConstantError(TypeError):
    """A NumPy constant of the QNode reached a trace in a switched precision in the other
    precision (see :func:`_check_typed`)."""


def _check_typed(closed, x):
    """Raise :class:`MixedPrecisionConstantError` when the map traced in a switched precision
    is ill-typed: a NumPy array the QNode reads from elsewhere than its arguments (a global)
    whose float32 form the user's compiled code holds enters a 64-bit trace as float32 where
    JAX traced float64 (NumPy calls then fall back to :class:`PointwiseInputTrace`)."""
    jax = _jax()
    try:
        jax.eval_shape(jax.extend.core.jaxpr_as_fun(closed), x)
    except TypeError as error:
        raise MixedPrecisionConstantError(
            "A NumPy array the QNode reads from outside its arguments is held by JAX in the "
            "other precision than this explanation's (compiled code of yours uses it while "
            "JAX runs in float32, and this explanation runs in 64-bit; JAX keeps one form of "
            f"an array). Pass it to the QNode as an argument, or as a JAX array ({error})"
        ) from error


def _private_constants(closed):
    """``closed`` with its NumPy constants (arrays the traced function closed over: the
    user's weights, PennyLane's constants) copied, in the dtype the jaxpr expects: JAX's
    canonical form of the user's arrays is then not kept alive by this trace, which may be made
    in a switched precision and outlive it (see :func:`x64_mode`). (A float32 form the user's
    compiled code holds reaches a 64-bit trace as float32; the cast makes it the float64 the
    jaxpr was traced with, rounded to float32, where JAX would fail on mismatched dtypes.)"""
    consts = [
        np.array(c, dtype=var.aval.dtype) if isinstance(c, np.ndarray) else c
        for var, c in zip(closed.jaxpr.constvars, closed.consts)
    ]
    return closed.replace(consts=consts) if consts else closed


class JaxInputTrace:
    """The input's path into the circuit, traced once with JAX.

    Args:
        tape_fn (callable): ``tape_fn(x)`` builds the tape for input ``x`` (all other arguments
            closed over).
        x: the real input (a concrete array or a JAX tracer); only its shape and dtype are used.
        x64 (bool): trace and evaluate in 64-bit precision (used for NumPy/autograd inputs, so
            that JAX's default float32 never lowers their precision).

    Attributes:
        template (QuantumScript): the tape traced at an abstract input; its input parameters are
            placeholders, never executed: use :meth:`tape` for a tape at a real input.
        dependent (list[int]): indices into ``template.get_parameters(trainable_only=False)`` of
            the parameters that depend on the input.
    """

    def __init__(self, tape_fn, x, x64=False):
        jax = _jax()
        self.x64 = x64
        self._tape_fn = tape_fn
        self.shape = tuple(qml.math.shape(x))
        holder = {}

        def traced_parameters(x_traced):
            # Operations on the other (concrete) arguments are evaluated, not staged, so
            # Python control flow on a weight (`if w > 0`) works as in a plain QNode.
            with _jax().ensure_compile_time_eval():
                tape = tape_fn(x_traced)
            params = tape.get_parameters(trainable_only=False)
            holder["tape"], holder["traced"] = (
                tape,
                [i for i, p in enumerate(params) if is_jax_value(p)],
            )
            return [params[i] for i in holder["traced"]]

        with self.precision():
            # make_jaxpr abstracts its argument: only shape, dtype (and, under shard_map, the
            # varying axes of a tracer) are used, never the value.
            # (a copy of a NumPy input: see _private_constants)
            x = x if is_jax_value(x) else jax.numpy.asarray(np.array(qml.math.unwrap(x)))
            self.dtype = x.dtype
            closed = jax.make_jaxpr(traced_parameters)(x)
            closed = _private_constants(closed)
            if switched_precision():
                _check_typed(closed, x)
        self.template = holder["tape"]
        self._traced = holder["traced"]
        self._fixed = self.template.get_parameters(trainable_only=False)
        self._fn = jax.extend.core.jaxpr_as_fun(closed)
        flags = _dependent_outputs(closed.jaxpr)
        self.dependent = [i for i, flag in zip(self._traced, flags) if flag]

    def precision(self):
        """The JAX precision the map is traced and evaluated in."""
        return x64_mode(True) if self.x64 else contextlib.nullcontext()

    def _evaluate(self, x) -> list:
        """Every gate parameter at ``x``, as the jaxpr returns them (JAX values)."""
        jnp = _jax().numpy
        with self.precision():
            values = self._fn(jnp.asarray(x, dtype=self.dtype).reshape(self.shape))
        params = list(self._fixed)
        for i, value in zip(self._traced, values):
            params[i] = value
        return params

    def parameters(self, x) -> list:
        """Every gate parameter of :attr:`template` at input ``x`` (NumPy arrays for NumPy
        inputs, so their tapes run in 64-bit NumPy; JAX values otherwise)."""
        params = self._evaluate(x)
        if self.x64 and not any(isinstance(p, _jax().core.Tracer) for p in params):
            params = [np.asarray(p) if i in self._traced else p for i, p in enumerate(params)]
        return params

    def tape(self, x):
        """The tape at input ``x`` (same structure as :attr:`template`).

        Operators whose parameters PennyLane cannot rebind (``qml.evolve`` of a Hamiltonian
        raises ``IndexError`` in ``bind_new_parameters``) are rebuilt by calling the QNode at
        ``x``; the result must keep the template's structure."""
        try:
            return self.template.bind_new_parameters(
                self.parameters(x), list(range(len(self._fixed)))
            )
        except (IndexError, ValueError, TypeError):
            tape = self._tape_fn(x)
            if _structure(tape) != _structure(self.template):
                raise InputTraceError(
                    "The circuit's structure changed between inputs of the explanation, and its "
                    "operators cannot be rebound to new parameters."
                ) from None
            return tape

    def batched_tape(self, xs):
        """One parameter-broadcast tape of the circuit at every input of ``xs`` (leading axis:
        the inputs): the map is evaluated once, vectorised with :func:`jax.vmap`; parameters
        that do not depend on the input stay unbatched. ``None`` when an operation does not
        accept a broadcast parameter."""
        jax = _jax()
        dependent = set(self.dependent)
        out_axes = [0 if i in dependent else None for i in self._traced]
        with self.precision():
            xs = jax.numpy.asarray(xs, dtype=self.dtype)
            xs = jax.numpy.reshape(xs, (xs.shape[0], *self.shape))
            values = jax.vmap(lambda x: list(self._fn(x)), out_axes=out_axes)(xs)
        params = list(self._fixed)
        for i, value in zip(self._traced, values):
            params[i] = value
        if self.x64 and not any(isinstance(p, jax.core.Tracer) for p in params):
            params = [np.asarray(p) if i in self._traced else p for i, p in enumerate(params)]
        try:
            tape = bind_broadcast_parameters(self.template, params)
        except (IndexError, ValueError, TypeError):
            return None
        return tape if tape.batch_size == xs.shape[0] else None

    def jacobians(self, xs):
        """``∂θ/∂x`` at every input of ``xs``: shape ``(n_inputs, n_flat_params, x.size)``."""
        jax = _jax()
        with self.precision():
            xs = jax.numpy.asarray(xs, dtype=self.dtype)
            xs = jax.numpy.reshape(xs, (xs.shape[0], *self.shape))
            holomorphic = "complex" in str(xs.dtype)
            jac = jax.vmap(jax.jacfwd(self.input_parameters, holomorphic=holomorphic))(xs)
            jac = jax.numpy.reshape(jac, (xs.shape[0], -1, int(np.prod(self.shape))))
            return np.asarray(jac) if self.x64 else jac

    def input_parameters(self, x):
        """The input-dependent parameters at ``x``, flattened into one vector."""
        jnp = _jax().numpy
        params = self._evaluate(x)
        flat = [jnp.reshape(jnp.asarray(params[i]), (-1,)) for i in self.dependent]
        return jnp.concatenate(flat) if flat else jnp.zeros((0,))

    def jacobian(self, x):
        """``∂θ/∂x`` of the input-dependent parameters, shape ``(n_flat_params, x.size)``."""
        jax = _jax()
        with self.precision():
            x = jax.numpy.asarray(x, dtype=self.dtype)
            holomorphic = "complex" in str(x.dtype)
            jac = jax.jacfwd(self.input_parameters, holomorphic=holomorphic)(x)
            jac = jax.numpy.reshape(jac, (-1, int(np.prod(self.shape))))
            return np.asarray(jac) if self.x64 else jac


class PointwiseInputTrace:
    """The fallback for pre-processing JAX cannot trace (``pennylane.numpy`` functions).

    Dependence is found with autograd at the real input; the tape is rebuilt at every input and
    must keep the structure it has at the real input and at a random one, or an error says so.
    """

    def __init__(self, tape_fn, x):
        from autograd.core import VJPNode  # pylint: disable=import-outside-toplevel
        from autograd.tracer import isbox, new_box, trace_stack  # pylint: disable=import-outside-toplevel

        self.tape_fn, self.x64 = tape_fn, True
        self.shape = tuple(qml.math.shape(x))
        x = np.asarray(qml.math.unwrap(x))
        with trace_stack.new_trace() as trace:
            boxed = new_box(x, trace, VJPNode.new_root())
            tape = tape_fn(boxed)
            params = tape.get_parameters(trainable_only=False)
            self.dependent = [
                i
                for i, p in enumerate(params)
                if isbox(p) and p._trace == trace  # pylint: disable=protected-access
            ]
        self.template = tape_fn(x)
        random = np.random.default_rng(7).uniform(0.1, 0.9, size=self.shape).astype(x.dtype)
        if _structure(tape_fn(random)) != _structure(self.template):
            raise InputTraceError(
                "The circuit's structure depends on the input's value (a gate appears or "
                "disappears, for example a rotation merged to an angle of 0), and its "
                "pre-processing cannot be traced with JAX. Write the pre-processing with "
                "qml.math or jax.numpy functions (or pass JAX inputs), so the explanation can be "
                "traced at an abstract input."
            )

    def tape(self, x):
        tape = self.tape_fn(np.asarray(qml.math.unwrap(x)))
        if _structure(tape) != _structure(self.template):
            raise InputTraceError(
                "The circuit's structure changed between inputs of the explanation; write the "
                "pre-processing with qml.math or jax.numpy functions so it can be traced."
            )
        return tape

    def parameters(self, x):
        return self.tape(x).get_parameters(trainable_only=False)

    def batched_tape(self, xs):
        """``None``: without a traced map the tape is rebuilt input by input, so callers take
        their per-input path (see :meth:`JaxInputTrace.batched_tape`)."""
        del xs

    def input_parameters(self, x):
        params = self.tape_fn(x).get_parameters(trainable_only=False)
        flat = [qml.math.reshape(params[i], (-1,)) for i in self.dependent]
        return qml.math.concatenate(flat) if flat else np.zeros((0,))

    def jacobian(self, x):
        from pennylane import numpy as pnp  # pylint: disable=import-outside-toplevel

        x = pnp.array(np.asarray(qml.math.unwrap(x)), requires_grad=True)
        jac = qml.jacobian(self.input_parameters)(x)
        return np.reshape(np.asarray(jac), (-1, int(np.prod(self.shape))))


_UNTRACEABLE = (
    "The QNode's pre-processing of its input (argnums={argnum}) cannot be traced: {error}. "
    "Write it with qml.math, jax.numpy or pennylane.numpy functions (plain NumPy ufuncs such "
    "as np.tanh turn the input into a constant) and pass NumPy, autograd or JAX arrays."
)


_JAX_CALL_HINT = (
    " The call has JAX arrays, so the map is traced with JAX: pennylane.numpy functions cannot "
    "follow it; with pennylane.numpy pre-processing pass NumPy or pennylane.numpy arrays."
)


def trace_input(tape_fn, x, argnum, jax_call):
    """How ``x`` reaches the tape built by ``tape_fn``: a :class:`JaxInputTrace`, or a
    :class:`PointwiseInputTrace` when JAX cannot trace the pre-processing of NumPy inputs.

    ``jax_call`` says whether any argument of the call is a JAX value (then the map is traced
    in JAX's current precision; otherwise in 64-bit, like NumPy). JAX's tracer errors are
    ``TypeError`` subclasses.
    """
    try:
        return JaxInputTrace(tape_fn, x, x64=not jax_call)
    except MixedPrecisionConstantError as error:
        if jax_call:
            raise InputTraceError(str(error)) from error
    except TypeError as error:
        if jax_call:
            raise InputTraceError(
                _UNTRACEABLE.format(argnum=argnum, error=_first_line(error)) + _JAX_CALL_HINT
            ) from error
    try:
        return PointwiseInputTrace(tape_fn, x)
    except InputTraceError:
        raise
    except (TypeError, ValueError, AttributeError) as error:
        raise InputTraceError(
            _UNTRACEABLE.format(argnum=argnum, error=_first_line(error))
        ) from error


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def depends_on_autograd(fn, x) -> bool:
    """Whether ``fn(x)`` depends on ``x``, followed by autograd (for functions written with
    ``pennylane.numpy`` that JAX cannot trace): ``x`` is boxed and the output's box checked."""
    from autograd.core import VJPNode  # pylint: disable=import-outside-toplevel
    from autograd.tracer import isbox, new_box, trace_stack  # pylint: disable=import-outside-toplevel

    with trace_stack.new_trace() as trace:
        out = fn(new_box(np.asarray(qml.math.unwrap(x), dtype=float), trace, VJPNode.new_root()))
        flat = out if isinstance(out, (list, tuple)) else [out]
        return any(isbox(v) and v._trace == trace for v in flat)  # pylint: disable=protected-access


def eager():
    """Evaluate JAX operations on concrete values eagerly, even inside ``jax.jit``."""
    return _jax().ensure_compile_time_eval()
