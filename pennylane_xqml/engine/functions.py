"""Function models: the user's model is a function of QNodes, not only a bare QNode.

PennyLane's demos wrap QNodes in functions (``circuit(weights, x) + bias``, ``tanh`` or
softmax heads, a kernel ``Σ α_i k(x, s_i) + b`` calling one QNode per support vector, ensembles
of QNodes on different devices). Such a model is explained as a whole:

1. **Finding the QNode calls.** The function is run once with its real arguments while every
   ``qml.QNode`` call is intercepted (:func:`intercepting`): each call is recorded and returns a
   placeholder of its output's shape, so nothing runs. A call's circuit is then seen as a
   QNode *of the function's input*: a copy of the QNode (same device, options and transforms)
   whose quantum function re-runs the model's classical code up to that call with the input
   given, so the path from the model's input to the gate parameters (through the model's
   pre-processing and the QNode's) is traced by the same machinery as for a bare QNode
   (:class:`~.core.ModelCall`).
2. **The head.** The model's output as a function of its input and of the QNodes' outputs,
   ``h(x, q_1, ..., q_N)``, is the function itself run with each QNode call returning a given
   value. It is evaluated (and differentiated, by JAX or autograd: never by a rule of ours) in
   the processing of the explanation's plan, from the circuits' results.
3. **Requests.** :class:`FunctionEngine` answers the engine's public requests (``point``,
   ``to_point``, ``forward_at``, ``gradient``) for the whole model: forward values are
   ``h(x, q(x))``; gradients are ``∂h/∂x + Σ_i ∂h/∂q_i ∂q_i/∂x``, the QNode derivatives coming
   from each QNode's own circuit rule (Hadamard tests, parameter shift, adjoint or backprop on
   its own device) and the chain by autodiff of ``h``. Standard errors go through the head by
   the (first-order) delta method. Every circuit of one explanation, of every QNode, is in one
   plan, executed as one batch per device.
4. **Affine heads fold into the observable.** When the model is one QNode call followed by an
   affine map of its expectation values that does not use the input otherwise
   (``2 * circuit(w, x) + b``), the map is folded into the measured observable and the model
   *is* a QNode (:func:`folded_qnode`): every method applies to it exactly as to a QNode
   (exact amplitude integrated gradients, Taylor-Fourier, QLRP).

**Attribution space.** As for a bare QNode: when every QNode call receives the input straight
into a leading amplitude embedding and the head uses the input only through the QNodes, the
model is explained in amplitude space (the QNodes' outputs as quadratic forms of the amplitude
vector); otherwise per entry of the function's input.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings

import numpy as np
import pennylane as qml
from pennylane.measurements import ExpectationMP, ProbabilityMP

from .core import Engine, ModelCall, bind_arguments
from .dataflow import is_affine_in, outputs_depend_on
from .encodings import is_complex
from .inputs import depends_on_autograd, is_jax_value
from .plan import Plan, PlanBlock
from .validation import check_finite, check_no_program_capture, leaves

# ---------------------------------------------------------------------------------------------
# intercepting QNode calls
# ---------------------------------------------------------------------------------------------


class _Handlers(threading.local):
    """Each thread's stack of interception handlers (innermost last)."""

    def __init__(self):
        super().__init__()
        self.stack = []


_LOCAL = _Handlers()
_PATCH_LOCK = threading.Lock()
_PATCH = {"count": 0, "original": None}


def _handlers():
    return _LOCAL.stack


@contextlib.contextmanager
def intercepting(handler):
    """Route every ``qml.QNode`` call made by this thread to ``handler(qnode, args, kwargs)``.

    The one deliberate change to another library's state in the package: ``qml.QNode.__call__``
    is wrapped while at least one interception is active (in any thread) and restored exactly
    when the last one ends; calls from other threads go to the original."""
    with _PATCH_LOCK:
        if _PATCH["count"] == 0:
            original = qml.QNode.__call__

            @functools.wraps(original)
            def call(self, *args, **kwargs):
                stack = _handlers()
                if stack and type(self) is qml.QNode:
                    return stack[-1](self, args, kwargs)
                return original(self, *args, **kwargs)

            _PATCH["original"] = original
            qml.QNode.__call__ = call
        _PATCH["count"] += 1
    _handlers().append(handler)
    try:
        yield
    finally:
        _handlers().pop()
        with _PATCH_LOCK:
            _PATCH["count"] -= 1
            if _PATCH["count"] == 0:
                qml.QNode.__call__ = _PATCH["original"]


class _Captured(Exception):
    """Raised by the recording handler to stop the model at the call being captured."""

    def __init__(self, args, kwargs):
        super().__init__("captured")
        self.args, self.kwargs = args, kwargs


class FunctionModelError(ValueError):
    """A function model that cannot be explained (raised before any circuit runs)."""


class NotAQNodeError(FunctionModelError, AttributeError):
    """A method asked a function model for the circuit of one QNode (an ``AttributeError`` too,
    so ``getattr(call, name, default)`` keeps working)."""


# ---------------------------------------------------------------------------------------------
# one QNode call inside the model
# ---------------------------------------------------------------------------------------------


def _output_layout(tape):
    """``[(kind, size)]`` per measurement of ``tape``: how a flat output vector maps back to
    the QNode's return value."""
    layout = []
    for mp in tape.measurements:
        if isinstance(mp, ExpectationMP):
            layout.append(("scalar", 1))
        elif isinstance(mp, ProbabilityMP) and mp.obs is None and len(mp.wires):
            layout.append(("vector", 2 ** len(mp.wires)))
        else:
            raise FunctionModelError(
                f"A QNode inside the model returns {mp!r}; function models are explained "
                "through QNodes returning qml.expval(...) or qml.probs(wires=...)."
            )
    return layout


def _unflatten(flat, layout, several):
    """The QNode's return value from its flat outputs ``flat`` (shape ``(K,)``)."""
    parts, start = [], 0
    for kind, size in layout:
        parts.append(flat[start] if kind == "scalar" else flat[start : start + size])
        start += size
    return tuple(parts) if several else parts[0]


class QNodeCall:
    """The ``index``-th QNode call of a model run: which QNode, and the layout of its outputs."""

    def __init__(self, index, qnode, args, kwargs):
        self.index, self.qnode = index, qnode
        tape = qml.workflow.construct_tape(qnode, level="user")(*args, **kwargs)
        if tape.batch_size is not None:
            raise FunctionModelError(
                f"QNode call {index} of the model is a parameter-broadcast call (batch size "
                f"{tape.batch_size}); explain one input at a time (xqml.explain_batch maps an "
                "explanation over rows)."
            )
        self.layout = _output_layout(tape)
        self.several = len(tape.measurements) > 1
        self.size = sum(size for _, size in self.layout)

    def value(self, flat):
        return _unflatten(flat, self.layout, self.several)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


def bind_function_arguments(func, args, kwargs, argnums):
    """``(args, kwargs, argnum)`` bound by ``func``'s signature (:func:`~.core.bind_arguments`),
    with ``argnum`` checked and made non-negative."""
    args, kwargs, argnums = bind_arguments(func, args, kwargs, argnums)
    if not -len(args) <= argnums < len(args):
        raise ValueError(
            f"argnums={argnums} does not name an argument of the call ({len(args)} given)."
        )
    return args, kwargs, argnums % len(args)


def _placeholder(call, like, fill=0.25):
    """A QNode output of the right structure (default 0.25: no division by zero in a head)."""
    return call.value(qml.math.full((call.size,), fill, like=like))


def _framework(x):
    return "jax" if is_jax_value(x) else "numpy"


class FunctionCall:
    """One call ``func(*args, **kwargs)`` of a function model, with the input at ``argnum``.

    Attributes:
        calls (list[QNodeCall]): the QNode calls of the run, in order.
        sub_calls (list[ModelCall]): each call's circuit as a QNode of the model's input.
        space (str): ``"amplitude"`` or ``"input"`` (see the module docstring).
    """

    straight = False  # never the one-QNode closed forms (the kernel requests)

    def __init__(self, func, args, kwargs, argnum):
        check_no_program_capture("pennylane-xqml")
        args, kwargs, argnum = bind_function_arguments(func, args, kwargs, argnum)
        self.func, self.args, self.kwargs, self.argnum = func, args, kwargs, argnum
        x = args[argnum]
        if isinstance(x, (list, tuple)) or np.isscalar(x):
            x = qml.math.asarray(x, like="numpy") * 1.0
        elif not np.issubdtype(np.dtype(qml.math.get_dtype_name(x)), np.inexact):
            x = x * 1.0
        if is_complex(x):
            raise TypeError(
                "Function models are explained for real inputs; got a complex input. Explain "
                "the QNode itself for complex amplitude inputs."
            )
        check_finite(x, "The input")
        self.x = x
        self.shape = tuple(qml.math.shape(x))
        jax_call = any(is_jax_value(leaf) for leaf in leaves((args, kwargs)))
        self.framework = "jax" if jax_call else "numpy"
        self.calls, output = self._record()
        if not self.calls:
            raise FunctionModelError(
                "The model calls no QNode: there is nothing quantum to explain. Decorate a "
                "qml.QNode (not its quantum function), or a function that calls QNodes."
            )
        self.output_shape = _output_shape(output)
        self._check_not_sequential()
        with warnings.catch_warnings():  # a QNode the input misses: checked for the model below
            warnings.filterwarnings("ignore", "No gate parameter of the circuit depends")
            self.sub_calls = [
                ModelCall(self.sub_qnode(c), self.sub_args(self.x), {}, 0) for c in self.calls
            ]
        self.space = self._space()
        if self.space == "input":
            self.sub_calls = [
                ModelCall(self.sub_qnode(c), self.sub_args(self.x), {}, 0, amplitude_space=False)
                if sub.straight
                else sub
                for c, sub in zip(self.calls, self.sub_calls)
            ]
        if not any(self._reaches(sub) for sub in self.sub_calls) and not self.head_uses_input:
            raise FunctionModelError(
                f"The model's input (argnums={self.argnum}) reaches none of its QNodes' gate "
                "parameters and is not used by its classical code: every attribution would be 0. "
                "Check argnums."
            )

    # -- running the model ----------------------------------------------------------------------

    def run(self, x, qvalues):
        """The model at input ``x`` with the ``i``-th QNode call returning ``qvalues[i]`` (flat
        outputs)."""
        args = list(self.args)
        args[self.argnum] = qml.math.reshape(x, self.shape)
        counter = iter(range(len(self.calls)))

        def handler(qnode, call_args, call_kwargs):  # pylint: disable=unused-argument
            index = next(counter, None)
            if index is None or qnode is not self.calls[index].qnode:
                raise FunctionModelError(
                    "The model's QNode calls changed between runs (a different QNode or count "
                    "of calls for another input): the model must call the same QNodes in the "
                    "same order at every input."
                )
            return self.calls[index].value(qvalues[index])

        with intercepting(handler):
            return self.func(*args, **self.kwargs)

    def head(self, x, qvalues):
        """The model's outputs, flat (shape ``(K,)``), at ``x`` with QNode outputs ``qvalues``."""
        out = self.run(x, qvalues)
        return qml.math.concatenate(_flat_leaves(out))

    def _record(self):
        calls = []

        def handler(qnode, call_args, call_kwargs):
            call = QNodeCall(len(calls), qnode, call_args, call_kwargs)
            calls.append(call)
            return _placeholder(call, like=self.framework)

        try:
            with intercepting(handler):
                out = self.func(*self.args, **self.kwargs)
        except FunctionModelError:
            raise
        except (TypeError, ValueError) as error:
            hint = (
                " A call with torch tensors runs as the same call with JAX arrays: write the "
                "model's classical code with qml.math functions or Python operators (they "
                "dispatch on either), not torch functions."
                if "Tensor" in str(error)
                else ""
            )
            raise FunctionModelError(
                f"The model could not be run with its QNode calls intercepted: {error}.{hint}"
            ) from error
        return calls, out

    @property
    def n_outputs(self):
        return int(np.prod(self.output_shape)) if self.output_shape else 1

    @property
    def single_output(self):
        return self.output_shape == ()

    @property
    def feature_shape(self):
        if self.space == "amplitude":
            return self.sub_calls[0].feature_shape
        return self.shape

    @property
    def shots(self):
        shots = [sub.shots for sub in self.sub_calls if sub.shots]
        return shots[0] if shots else None

    @property
    def kind(self):
        """``"amplitude"`` when a QNode of the model embeds the input as amplitudes (methods
        then check that the amplitude vectors at their points exist), else ``"angle"``."""
        return "amplitude" if any(sub.kind == "amplitude" for sub in self.sub_calls) else "angle"

    def amplitude_of(self, x):
        """The amplitude vectors the model's QNodes prepare for ``x``, concatenated (in
        amplitude space: the one vector they share)."""
        if self.space == "amplitude":
            return self.sub_calls[0].amplitude_of(x)
        vectors = [sub.amplitude_of(x) for sub in self.sub_calls if sub.kind == "amplitude"]
        return qml.math.concatenate([qml.math.reshape(v, (-1,)) for v in vectors])

    # -- each QNode call as a QNode of the model's input ------------------------------------------

    def sub_args(self, x):
        return (x,) + tuple(a for i, a in enumerate(self.args) if i != self.argnum)

    def capture(self, index, x, rest):
        """The arguments of QNode call ``index`` when the model runs at ``x`` (``rest``: the
        model's other arguments); earlier calls return placeholders."""
        args = list(rest)
        args.insert(self.argnum, x)
        seen = []

        def handler(qnode, call_args, call_kwargs):  # pylint: disable=unused-argument
            if len(seen) == index:
                raise _Captured(call_args, call_kwargs)
            seen.append(qnode)
            return _placeholder(self.calls[len(seen) - 1], like=_framework(x))

        try:
            with intercepting(handler):
                self.func(*args, **self.kwargs)
        except _Captured as captured:
            return captured.args, captured.kwargs
        raise FunctionModelError(
            f"QNode call {index} of the model did not happen for another input: the model must "
            "call the same QNodes at every input."
        )

    def sub_qnode(self, call):
        """QNode call ``call`` as a QNode of ``(x, *other model arguments)``."""
        qnode, index = call.qnode, call.index

        def circuit(x, *rest):
            args, kwargs = self.capture(index, x, rest)
            return qnode.func(*args, **kwargs)

        return qnode.update(func=circuit)

    # -- structure ------------------------------------------------------------------------------

    def _check_not_sequential(self):
        """Refuse a QNode whose arguments depend on another QNode's output (the calls are
        explained side by side, each as a function of the model's input): the model is run
        with two different placeholder outputs and the QNodes' arguments compared (concrete
        values only; under ``jax.jit`` the eager call has checked them)."""
        if len(self.calls) < 2:
            return
        recorded = []
        for fill in (0.25, 0.75):

            def handler(qnode, call_args, call_kwargs, fill=fill, seen=None):
                seen = recorded[-1]
                call = self.calls[len(seen)]
                seen.append((call_args, call_kwargs))
                return _placeholder(call, like=self.framework, fill=fill)

            recorded.append([])
            with intercepting(handler):
                self.func(*self.args, **self.kwargs)
        for (a0, k0), (a1, k1) in zip(*recorded):
            first, second = leaves((a0, k0)), leaves((a1, k1))
            for u, v in zip(first, second):
                if qml.math.is_abstract(u) or qml.math.is_abstract(v):
                    continue
                if not np.array_equal(
                    np.asarray(qml.math.unwrap(u)), np.asarray(qml.math.unwrap(v))
                ):
                    raise FunctionModelError(
                        "An argument of a QNode inside the model depends on another QNode's "
                        "output (QNodes chained one after another): function models are "
                        "explained with each QNode as a function of the model's input only."
                    )

    def _placeholder_outputs(self):
        return [np.full(c.size, 0.25) for c in self.calls]

    @functools.cached_property
    def head_uses_input(self):
        """Whether the head uses the input other than through the QNodes: read off the jaxpr,
        or followed by autograd for a head JAX cannot trace (``pennylane.numpy``)."""
        qvalues = self._placeholder_outputs()
        x = self.x
        if qml.math.is_abstract(x):
            import jax  # pylint: disable=import-outside-toplevel

            x = jax.ShapeDtypeStruct(self.shape, x.dtype)
        else:
            x = np.asarray(qml.math.unwrap(x)) * 1.0
        try:
            return outputs_depend_on(lambda x, q: self.head(x, q), (x, qvalues), [0])
        except (TypeError, ValueError):
            pass
        try:
            return depends_on_autograd(lambda x: self.head(x, qvalues), x)
        except (TypeError, ValueError, AttributeError):  # followed by neither: assume it does
            return True

    def head_is_affine(self):
        """Whether the head is affine in the QNodes' outputs and does not use the input (read
        off the jaxpr; a head JAX cannot trace is not folded)."""
        qvalues = self._placeholder_outputs()
        if self.head_uses_input:
            return False
        try:
            return is_affine_in(lambda x, q: self.head(x, q), (np.zeros(self.shape), qvalues), [1])
        except (TypeError, ValueError):
            return False

    @staticmethod
    def _reaches(sub):
        return sub.encoding is not None or bool(sub.trace.dependent)

    def _space(self):
        straight = all(sub.straight for sub in self.sub_calls)
        dims = {sub.encoding.dim for sub in self.sub_calls if sub.encoding is not None}
        if straight and len(dims) == 1 and not self.head_uses_input:
            return "amplitude"
        return "input"

    def __getattr__(self, name):
        if name.startswith("__") or name in ("calls", "sub_calls", "space", "x"):
            raise AttributeError(name)
        raise NotAQNodeError(
            f"This method needs the circuit of one QNode ({name!r}), and the model is a function "
            "of QNodes with a head that is not an affine map of one QNode's expectation values. "
            "Explain it with integrated_gradients (a quadrature), saliency, input_x_gradient, "
            "smoothgrad, feature_ablation, shapley_values, shapley_value_sampling, kernel_shap "
            "or lime, or explain the QNode itself."
        )


def _output_shape(out):
    """The shape of the model's output: an array's own, or ``(K,)`` for a tuple of outputs."""
    flat = _flat_leaves(out)
    if not flat:
        raise FunctionModelError("The model returns nothing to explain.")
    if len(flat) == 1 and not isinstance(out, (tuple, list)):
        return tuple(qml.math.shape(out))
    return (sum(int(np.prod(qml.math.shape(v))) for v in flat),)


def _flat_leaves(out):
    if isinstance(out, (tuple, list)):
        return [qml.math.reshape(v, (-1,)) for v in out]
    return [qml.math.reshape(out, (-1,))]


# ---------------------------------------------------------------------------------------------
# affine heads: the model is a QNode
# ---------------------------------------------------------------------------------------------


def _concrete(value) -> bool:
    return not any(qml.math.is_abstract(leaf) for leaf in leaves(value))


def folded_qnode(call: FunctionCall):
    """The model as one QNode of ``(x, *other arguments)`` when its head is an affine map
    ``A q + b`` of one QNode call's expectation values that does not use the input otherwise,
    with ``A`` and ``b`` concrete (not traced); else ``None``. The QNode measures
    ``expval(Σ_k A_jk O_k + b_j I)`` for each output ``j`` of the model."""
    if len(call.calls) != 1 or any(kind != "scalar" for kind, _ in call.calls[0].layout):
        return None
    if not call.head_is_affine():
        return None
    import jax  # pylint: disable=import-outside-toplevel

    size = call.calls[0].size
    x = np.zeros(call.shape)
    with jax.ensure_compile_time_eval():
        try:
            offset = call.head(x, [np.zeros(size)])
            scale = jax.jacfwd(lambda q: call.head(x, [q]))(np.zeros(size))
        except (TypeError, ValueError):
            return None
    if not _concrete((offset, scale)):
        return None
    offset = np.asarray(offset, dtype=float).reshape(-1)
    scale = np.asarray(scale, dtype=float).reshape(len(offset), size)
    qnode, several = call.calls[0].qnode, not call.single_output

    def circuit(x, *rest):
        args, kwargs = call.capture(0, x, rest)
        returned = qnode.func(*args, **kwargs)
        returned = list(returned) if isinstance(returned, (tuple, list)) else [returned]
        for mp in returned:
            qml.QueuingManager.remove(mp)
        observables = [mp.obs for mp in returned]
        wire = observables[0].wires[0] if len(observables[0].wires) else None
        outputs = []
        for row, bias in zip(scale, offset):
            terms = [float(c) * obs for c, obs in zip(row, observables) if c != 0]
            if bias != 0 or not terms:
                identity = qml.Identity(wire) if wire is not None else qml.Identity()
                terms.append(float(bias) * identity)
            outputs.append(qml.expval(qml.sum(*terms) if len(terms) > 1 else terms[0]))
        return tuple(outputs) if several else outputs[0]

    return qnode.update(func=circuit)


def model_call(model, args, kwargs, argnum):
    """The traced call of ``model``: a :class:`~.core.ModelCall` for a QNode, or for a function
    model whose affine head folds into the observable (:func:`folded_qnode`); otherwise a
    :class:`FunctionCall`."""
    if isinstance(model, qml.QNode):
        return ModelCall(model, args, kwargs, argnum)
    call = FunctionCall(model, args, kwargs, argnum)
    folded = folded_qnode(call)
    if folded is None:
        return call
    return ModelCall(folded, call.sub_args(call.x), {}, 0)


# ---------------------------------------------------------------------------------------------
# the engine of a function model
# ---------------------------------------------------------------------------------------------


class _JaxCalculus:
    """Derivatives of the head with JAX (JAX calls: jit, vmap and grad pass through)."""

    @staticmethod
    def jacobian(fn, argnum):
        import jax  # pylint: disable=import-outside-toplevel

        return jax.jacfwd(fn, argnums=argnum)

    @staticmethod
    def map(fn, *arrays):
        """``fn`` over the leading axis: ``jax.vmap``, or one point at a time for a head with
        Python control flow on the QNodes' outputs (``max(q, 0)``), which ``vmap`` cannot
        trace but concrete values can run (under ``jax.jit`` it fails as the plain model
        does)."""
        import jax  # pylint: disable=import-outside-toplevel

        try:
            return jax.vmap(fn)(*arrays)
        except jax.errors.ConcretizationTypeError:
            if any(qml.math.is_abstract(a) for a in arrays):
                raise
            n = qml.math.shape(arrays[0])[0]
            return qml.math.stack([fn(*[a[i] for a in arrays]) for i in range(n)])


class _AutogradCalculus:
    """Derivatives of the head with autograd (NumPy and autograd calls: float64, and heads
    written with ``pennylane.numpy``)."""

    @staticmethod
    def jacobian(fn, argnum):
        import autograd  # pylint: disable=import-outside-toplevel

        def jac(*args):
            args = [np.asarray(qml.math.unwrap(a), dtype=float) for a in args]
            with warnings.catch_warnings():  # a head that ignores x: its Jacobian is 0, rightly
                warnings.filterwarnings("ignore", "Output seems independent of input")
                return np.asarray(autograd.jacobian(fn, argnum)(*args))

        return jac

    @staticmethod
    def map(fn, *arrays):
        arrays = [np.asarray(qml.math.unwrap(a)) for a in arrays]
        return np.stack([fn(*[a[i] for a in arrays]) for i in range(len(arrays[0]))])


class FunctionEngine:
    """The engine's public requests (``point``, ``to_point``, ``forward_at``, ``gradient``) for
    a :class:`FunctionCall`, from one :class:`~.core.Engine` per QNode call and the head."""

    def __init__(self, call: FunctionCall, gradient="auto", ancilla=None, broadcast=True):
        self.call, self.broadcast = call, broadcast
        self.engines = [Engine(sub, gradient, ancilla, broadcast) for sub in call.sub_calls]
        rules = []
        for engine in self.engines:
            if engine.rule not in rules:
                rules.append(engine.rule)
        self.rule = "+".join(rules)
        self.device = self.engines[0].device
        self.calculus = _JaxCalculus() if call.framework == "jax" else _AutogradCalculus()
        self.with_shots = any(sub.shots for sub in call.sub_calls)
        self._sizes = [c.size for c in call.calls]
        self._checked = False

    # -- the head as a function of flat QNode outputs --------------------------------------------

    def _split(self, q):
        parts, start = [], 0
        for size in self._sizes:
            parts.append(q[start : start + size])
            start += size
        return parts

    def _head(self, x, q):
        """The model's flat outputs at ``x`` with all QNodes' flat outputs ``q`` (``(ΣK_i,)``);
        in amplitude space the head does not use ``x``: the call's input stands in."""
        if self.call.space == "amplitude":
            x = self.call.x
        else:
            x = qml.math.reshape(x, self.call.shape)
        return self.call.head(x, self._split(q))

    def _check_differentiable(self):
        """Differentiate the head once at placeholder values (nothing runs), so a head the
        calculus cannot follow is refused before any circuit runs."""
        if self._checked:
            return
        q = np.full(sum(self._sizes), 0.25)
        x = np.asarray(qml.math.unwrap(self.point)) if _concrete(self.point) else None
        try:
            if x is not None:
                self.calculus.jacobian(self._head, 1)(x * 1.0, q)
                if self.call.space == "input":
                    self.calculus.jacobian(self._head, 0)(x * 1.0, q)
        except (TypeError, ValueError, AttributeError) as error:
            library = "JAX" if self.call.framework == "jax" else "autograd"
            raise FunctionModelError(
                f"The model's classical code cannot be differentiated by {library} ({error}). "
                "Write it with qml.math, jax.numpy (JAX inputs) or pennylane.numpy (NumPy "
                "inputs) functions; plain NumPy ufuncs such as np.tanh cannot be followed."
            ) from error
        self._checked = True

    # -- requests ---------------------------------------------------------------------------------

    @property
    def point(self):
        if self.call.space == "amplitude":
            return self.engines[0].point
        return qml.math.reshape(self.call.x, (-1,))

    def to_point(self, x):
        if self.call.space == "amplitude":
            return self.engines[0].to_point(x)
        return qml.math.reshape(x, (-1,)) * 1.0

    def _outputs(self, gets, lookups):
        """Flat QNode outputs and variances ``(ΣK_i,)`` from per-engine getters."""
        values, variances = zip(*[get(lk) for get, lk in zip(gets, lookups)])
        return qml.math.concatenate(values), qml.math.concatenate(variances)

    def forward_at(self, point):
        """Request the model's outputs at ``point``: ``get(lookups) -> (values, variances)`` of
        shape ``(K,)`` (variances by the delta method through the head)."""
        gets = [engine.forward_at(point) for engine in self.engines]
        calculus = self.calculus

        def get(lookups):
            q, q_var = self._outputs(gets, lookups)
            values = self._head(point, q)
            if not self.with_shots:
                return values, qml.math.zeros_like(values)
            jac = calculus.jacobian(self._head, 1)(point, q)  # (K, ΣK_i)
            return values, qml.math.tensordot(jac**2, q_var, axes=1)

        return get

    def gradient(self, points):
        """Request ``∂F_k/∂p`` at each point: ``get(lookups) -> (values, variances)`` of shape
        ``(n_points, K, d)``, the head's Jacobian chained with each QNode's input gradient."""
        self._check_differentiable()
        grads = [engine.gradient(points) for engine in self.engines]
        forwards = [[engine.forward_at(p) for p in points] for engine in self.engines]
        calculus = self.calculus

        def grad_at(p, q, g):  # q (ΣK_i,), g (ΣK_i, d): the model's gradient at p
            def linearised(x):
                return self._head(x, q + qml.math.tensordot(g, x - p, axes=1))

            return calculus.jacobian(linearised, 0)(p)

        def get(lookups):
            g_parts, g_vars, q_parts, q_vars = [], [], [], []
            for grad, fwd, lookup in zip(grads, forwards, lookups):
                values, variances = grad(lookup)  # (n, K_i, d)
                g_parts.append(values)
                g_vars.append(variances)
                outs = [f(lookup) for f in fwd]
                q_parts.append(qml.math.stack([v for v, _ in outs]))
                q_vars.append(qml.math.stack([v for _, v in outs]))
            g = qml.math.real(qml.math.concatenate(g_parts, axis=1))  # (n, ΣK_i, d)
            q = qml.math.concatenate(q_parts, axis=1)  # (n, ΣK_i)
            p = qml.math.stack(list(points))
            values = calculus.map(grad_at, p, q, g)  # (n, K, d)
            if not self.with_shots:
                return values, qml.math.zeros_like(values)
            g_var = qml.math.concatenate(g_vars, axis=1)
            q_var = qml.math.concatenate(q_vars, axis=1)

            def variance_at(p, q, g, q_var, g_var):
                d_q = calculus.jacobian(grad_at, 1)(p, q, g)  # (K, d, ΣK_i)
                d_g = calculus.jacobian(grad_at, 2)(p, q, g)  # (K, d, ΣK_i, d)
                return qml.math.tensordot(d_q**2, q_var, axes=1) + qml.math.tensordot(
                    d_g**2, g_var, axes=2
                )

            return values, calculus.map(variance_at, p, q, g, q_var, g_var)

        return get

    def plan(self, method, finish):
        """One :class:`~.plan.Plan` of every QNode's circuits (one block per device)."""
        subs = [engine.plan(method, lambda lookup: lookup) for engine in self.engines]
        tapes, requests, blocks, spans = [], [], [], []
        for sub in subs:
            spans.append((len(tapes), len(sub.tapes), len(requests), len(sub.simulator_requests)))
            tapes.extend(sub.tapes)
            requests.extend(sub.simulator_requests)
            if (
                blocks
                and blocks[-1].device is sub.device
                and blocks[-1].diff_method == sub.diff_method
            ):
                blocks[-1] = blocks[-1]._replace(n_tapes=blocks[-1].n_tapes + len(sub.tapes))
            else:
                blocks.append(PlanBlock(len(sub.tapes), sub.device, sub.diff_method))

        def processing_fn(results, values):
            lookups = tuple(
                sub.processing_fn(results[t : t + nt], values[v : v + nv])
                for sub, (t, nt, v, nv) in zip(subs, spans)
            )
            return finish(lookups)

        return Plan(
            method=method,
            embedding="function",
            rule=self.rule,
            tapes=tuple(tapes),
            device=blocks[0].device,
            diff_method=blocks[0].diff_method,
            simulator_requests=tuple(requests),
            processing_fn=processing_fn,
            broadcast=self.broadcast,
            blocks=tuple(blocks) if len(blocks) > 1 else (),
        )
