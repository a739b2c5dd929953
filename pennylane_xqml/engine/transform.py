"""The public face of every attribution method: a ``qml.transform``.

Each method (integrated gradients, saliency, ...) is a :class:`pennylane.transform`:

* applied to a **QNode** (``@xqml.saliency`` or ``xqml.saliency(qnode, ...)``), it returns an
  :class:`ExplainedQNode`, a callable with the QNode's signature. This QNode-level hook is needed
  because a method may re-trace the QNode at other inputs (integrated-gradient path points,
  noisy copies, classical pre-processing of angle encodings);
* applied to a **tape** whose first operation is an amplitude embedding, it returns
  ``(tapes, postprocessing)`` like any PennyLane transform, the input being the prepared
  amplitude vector;
* any PennyLane transform applied to an :class:`ExplainedQNode` (for example
  ``qml.transforms.merge_rotations``) is applied to the wrapped QNode, so compilation passes
  compose with explanations in either order.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import NamedTuple

import pennylane as qml
from pennylane.transforms.core import Transform

from .compiled import (
    catalyst_tracing,
    check_compilable,
    check_compilable_plan,
    run_tapes,
    untraceable_input,
)
from .core import GRADIENT_RULES, Engine, ModelCall, bind_arguments
from .cost import cost_report
from .encodings import find_amplitude_encoding, output_sentences
from .execution import shots_of
from .functions import FunctionCall, FunctionEngine, model_call
from .inputs import InputTraceError
from .plan import Plan, execute_plan
from .torch_bridge import call_with_torch, constant_options, detached, has_torch
from .validation import check_bool, check_no_program_capture, is_int


class Options(NamedTuple):
    """Options every attribution method shares (validated by :func:`split_options`)."""

    argnums: int | str = 0
    target: int | None = None
    gradient: str = "auto"
    ancilla: object = None
    return_convergence_delta: bool = False
    return_stderr: bool = False
    broadcast: bool = True


def split_options(method_class, options):
    """``(method, Options)`` from keyword options; the method validates its own. Torch tensors
    among the options (``baselines``, ``background``, ``root``, ...) are taken as NumPy arrays."""
    options = constant_options(options, method_class.public_name)
    common = {k: options.pop(k) for k in Options._fields if k in options}
    shared = Options(**common)
    argnums = shared.argnums
    if not (is_int(argnums) or isinstance(argnums, str)):
        raise TypeError(
            f"argnums must be one int or argument name (the input argument), got {argnums!r}."
        )
    if shared.gradient not in GRADIENT_RULES:
        raise ValueError(f"Unknown gradient={shared.gradient!r}; expected one of {GRADIENT_RULES}.")
    check_bool(shared.broadcast, "broadcast")
    if shared.target is not None and not is_int(shared.target):
        raise TypeError(f"target must be an int or None, got {shared.target!r}.")
    return method_class(**options), shared


def needs_preparation(method) -> bool:
    """Whether ``method`` must run circuits before its plan exists (its ``prepare`` step, such
    as Taylor-Fourier's ``root="search"``)."""
    return bool(getattr(method, "needs_preparation", False))


def _engine_for(call, options):
    if options.target is not None and not -call.n_outputs <= options.target < call.n_outputs:
        raise ValueError(
            f"target={options.target} is out of range: the model has {call.n_outputs} outputs."
        )
    if isinstance(call, FunctionCall):
        return FunctionEngine(call, options.gradient, options.ancilla, broadcast=options.broadcast)
    return Engine(call, options.gradient, options.ancilla, broadcast=options.broadcast)


def prepare_method(call, options, method):
    """``method`` with its preparation step done for ``call`` (this step runs circuits: each of
    them a plan executed by :func:`~.plan.execute_plan`); ``method`` itself when it has none."""
    if not needs_preparation(method):
        return method
    return method.prepare(_engine_for(call, options))


def prepared_plan(call, options, method) -> Plan:
    """The plan of ``method`` for ``call`` after its preparation step, if it has one (which runs
    circuits, see :func:`prepare_method`); ``call`` is traced once for both."""
    return make_plan(call, options, prepare_method(call, options, method))


def make_plan(call, options, method) -> Plan:
    """The :class:`~.plan.Plan` of ``method`` for ``call`` (validated; nothing runs).

    A method with a preparation step (:func:`needs_preparation`) is refused: run
    :func:`prepare_method` first (``explained.prepare(*args)``), so that a plan never hides
    circuits that run while it is built."""
    engine = _engine_for(call, options)
    if needs_preparation(method):
        raise ValueError(
            f"{method.public_name}: {method.preparation_note} runs circuits before the "
            f"explanation's plan exists, so no plan can be built without running them. Call "
            f"explained.prepare(*args) first (it runs that step and returns an explanation whose "
            f".plan(*args), .construct_batch(*args) and .draw(*args) run nothing), or "
            f"{method.preparation_alternative}."
        )
    finish = method.build(engine, delta=options.return_convergence_delta)
    return engine.plan(method.public_name, lambda lookup: _format(call, finish(lookup), options))


def _format(call, result, options):
    """Select the target and assemble ``attr``, ``(attr, delta)``, ``(attr, [delta,] stderr)``."""
    shape = (call.n_outputs, *call.feature_shape)
    values = qml.math.reshape(result.values, shape)
    stderr = qml.math.sqrt(qml.math.reshape(result.variance, shape))
    delta = result.delta
    single = call.single_output
    if options.target is not None or single:
        k = 0 if single else options.target
        values, stderr = values[k], stderr[k]
        delta = None if delta is None else delta[k]
    out = (values,)
    if options.return_convergence_delta:
        out += (delta,)
    if options.return_stderr:
        out += (stderr,)
    return out[0] if len(out) == 1 else out


_NOT_ONE_CIRCUIT = (
    "An explanation is not one circuit, so PennyLane's circuit views ({name}) do not apply to "
    "it: use explained.draw(*args), explained.construct_batch(*args) or explained.plan(*args) "
    "for the explanation's circuits, or apply them to explained.qnode for the model's."
)
_CIRCUIT_VIEWS = frozenset({"func", "compile_pipeline", "transform_program", "construct"})
_AUTOGRAPH = (
    " Catalyst's qml.qjit(..., autograph=True) reads a QNode's func to convert it: compile an "
    "explanation without autograph (the default)."
)


class Explanation:
    """What every explained model does (an :class:`ExplainedQNode` or an
    :class:`ExplainedFunction`): build the plan of a call, run it, show and cost its circuits.

    Subclasses set ``model`` (what is explained), ``method`` and ``options``, and define
    :meth:`traced_call`."""

    def traced_call(self, args, kwargs):
        """The traced call (:class:`~.core.ModelCall` or :class:`~.functions.FunctionCall`)."""
        raise NotImplementedError

    def input_of(self, *args, **kwargs):
        """The explained argument of a call, or ``None`` when it cannot be found (the engine
        then raises its own error)."""
        try:
            args, _, argnum = bind_arguments(self.model, args, kwargs, self.options.argnums)
        except (TypeError, ValueError):
            return None
        return args[argnum] if -len(args) <= argnum < len(args) else None

    def with_method(self, method):
        """This explanation with another method object (a prepared one)."""
        return type(self)(self.model, method, self.options)

    def plan(self, *args, **kwargs) -> Plan:
        """The :class:`~.plan.Plan` of the explanation of ``model(*args, **kwargs)``: its
        tapes, device(s) and processing function (after validation; nothing runs).

        A method with a preparation step that runs circuits (Taylor-Fourier's
        ``root="search"``) raises here: ``explained.prepare(*args).plan(*args)`` runs that step
        first. Torch tensors are explained as detached JAX arrays here."""
        args, kwargs = detached(args, kwargs)
        return make_plan(self.traced_call(args, kwargs), self.options, self.method)

    @property
    def needs_preparation(self) -> bool:
        """Whether :meth:`prepare` must run circuits before :meth:`plan` can be built."""
        return needs_preparation(self.method)

    def prepare(self, *args, **kwargs):
        """This explanation with its preparation step done for ``model(*args, **kwargs)``.

        For Taylor-Fourier's ``root="search"`` this runs the Newton search (one plan of forward
        and gradient circuits per step) and returns an explanation whose root is the one found
        for these arguments; for every other method it returns ``self`` and runs nothing.
        Calling the explanation is ``execute_plan(explained.prepared_plan(*args))``, which
        does both while tracing the call once."""
        if not self.needs_preparation:
            return self
        args, kwargs = detached(args, kwargs)
        call = self.traced_call(args, kwargs)
        return self.with_method(prepare_method(call, self.options, self.method))

    def construct_batch(self, *args, **kwargs):
        """The tapes one explanation executes (after validation; nothing runs)."""
        return list(self.plan(*args, **kwargs).tapes)

    def draw(self, *args, index=0, **kwargs):
        """Text drawing of the ``index``-th generated tape."""
        tapes = self.construct_batch(*args, **kwargs)
        return qml.drawer.tape_text(tapes[index], decimals=2, max_length=120)

    def cost(self, *args, target_stderr=None, gate_set=None, **kwargs):
        """Circuits, gates and shots of one explanation, before it runs (see :mod:`.cost`)."""
        return cost_report(self, *args, target_stderr=target_stderr, gate_set=gate_set, **kwargs)

    def prepared_plan(self, *args, **kwargs) -> Plan:
        """``self.prepare(*args, **kwargs).plan(*args, **kwargs)``, tracing the call once: the
        plan that calling the explanation executes (its preparation step, if any, runs here)."""
        args, kwargs = detached(args, kwargs)
        return prepared_plan(self.traced_call(args, kwargs), self.options, self.method)

    def __call__(self, *args, **kwargs):
        """The explanation of ``model(*args, **kwargs)``.

        Torch tensors (a ``torch``-interface QNode, the ``qnode`` of a ``qml.qnn.TorchLayer``)
        give torch tensors of the input's dtype and device, differentiable with
        ``torch.autograd`` with respect to every tensor that requires grad (see
        :mod:`.torch_bridge`). Inside ``qml.qjit`` the tapes become Catalyst QNodes."""
        check_no_program_capture(f"pennylane-xqml's {self.method.public_name}")
        if catalyst_tracing():  # inside qml.qjit: the tapes become Catalyst QNodes
            return self._compiled_call(*args, **kwargs)
        if has_torch(args, kwargs):
            return call_with_torch(self.explain, args, kwargs, x=self.input_of(*args, **kwargs))
        return self.explain(*args, **kwargs)

    def explain(self, *args, **kwargs):
        """The explanation of a call with NumPy, autograd or JAX arrays (what calling the
        explanation runs): ``execute_plan(self.prepared_plan(*args, **kwargs))``."""
        return execute_plan(self.prepared_plan(*args, **kwargs))

    def _compiled_call(self, *args, **kwargs):
        """The explanation inside a ``qml.qjit`` program (what calling it does while Catalyst
        traces): the plan as usual, its tapes run as Catalyst QNodes (:mod:`.compiled`).

        Explanations Catalyst does not compile (other methods or devices, autodiff rules,
        shots, input maps JAX cannot trace) are refused with a ``ValueError`` while tracing,
        and function models with a ``TypeError``, before anything is compiled or run."""
        if not isinstance(self.model, qml.QNode):
            raise TypeError(
                "Catalyst (qml.qjit) compiles explanations of a QNode; this explanation is of a "
                "function of QNodes. Call it without qml.qjit (jax.jit works)."
            )
        check_compilable(self.method.public_name, self.model.device)
        try:
            plan = self.plan(*args, **kwargs)
        except InputTraceError as error:
            raise untraceable_input(error) from error
        check_compilable_plan(plan)
        return execute_plan(plan, run_tapes)


class ExplainedQNode(Explanation, qml.QNode):
    """A QNode wrapped by an attribution method: call it like the QNode to get attributions.

    Returns the attribution (shape of the input, or ``(n_outputs, *shape)`` when the QNode has
    several outputs and no ``target`` is set); with ``return_convergence_delta=True`` the tuple
    ``(attributions, delta)``; with ``return_stderr=True`` the standard errors are appended:
    ``(attributions, stderr)`` or ``(attributions, delta, stderr)`` (zeros on analytic devices).

    **What an explained QNode is** (see CONTRIBUTING.md): a wrapper that is a ``qml.QNode`` for
    PennyLane's QNode-level operations, and whose calls run a :class:`~.plan.Plan`:

    * ``qml.set_shots(explained, n)``, ``explained.update_shots(n)`` and
      ``explained.update(device=...)`` give the explanation of the updated QNode;
    * PennyLane transforms applied to it (``qml.transforms.merge_rotations(explained)``) act on
      the QNode it explains, so compilation passes compose in either order;
    * ``qml.draw``, ``qml.specs`` and ``qml.workflow.construct_batch`` refuse it with a message:
      an explanation is a batch of circuits, shown by :meth:`draw`, :meth:`construct_batch`
      and :meth:`plan`.

    Other attributes (``device``, ``interface``, ``diff_method``, ...) are the QNode's.
    """

    # A wrapper: QNode.__init__ is deliberately not called; the QNode's state is self.qnode's.
    def __init__(self, qnode, method, options: Options):  # pylint: disable=super-init-not-called
        if isinstance(qnode, ExplainedQNode):
            raise TypeError(
                f"{method.public_name} explains a model, and this QNode is already an "
                f"explanation ({qnode.method.public_name}); explain explained.qnode instead."
            )
        if not isinstance(qnode, qml.QNode):
            raise TypeError(f"Attribution decorators wrap a qml.QNode, got {type(qnode).__name__}.")
        self.qnode, self.method, self.options = qnode, method, options
        functools.update_wrapper(self, qnode, updated=())

    @property
    def model(self):
        return self.qnode

    def __getattr__(self, name):
        if name in ("qnode", "method", "options"):  # not yet set (e.g. during unpickling)
            raise AttributeError(name)
        if name in _CIRCUIT_VIEWS:
            hint = _AUTOGRAPH if name == "func" else ""
            raise AttributeError(_NOT_ONE_CIRCUIT.format(name=name) + hint)
        return getattr(self.qnode, name)

    def __repr__(self):
        return f"<ExplainedQNode: {self.method.public_name} of {self.qnode!r}>"

    def traced_call(self, args, kwargs):
        return ModelCall(self.qnode, args, kwargs, self.options.argnums)

    def update(self, **kwargs):
        """This explanation of ``self.qnode.update(**kwargs)`` (a new device, diff_method...)."""
        return ExplainedQNode(self.qnode.update(**kwargs), self.method, self.options)

    def update_shots(self, shots):
        """This explanation of the QNode with its shots replaced (also
        ``qml.set_shots(explained, shots=n)``)."""
        return ExplainedQNode(self.qnode.update_shots(shots), self.method, self.options)


class ExplainedFunction(Explanation):
    """A function of QNodes (the user's model) wrapped by an attribution method: call it like
    the function to get attributions of its output.

    The QNodes the function calls are found by running it (:mod:`.functions`); each runs its
    own circuits on its own device, and the classical code around them is differentiated by
    JAX (JAX inputs) or autograd (NumPy inputs). Calls, return values, ``plan``, ``prepare``,
    ``construct_batch``, ``draw`` and ``cost`` are as for :class:`ExplainedQNode`; a plan of a
    model whose QNodes run on several devices lists them in ``plan.parts``.
    """

    device = None  # the QNodes' devices are those of each call's plan

    def __init__(self, func, method, options: Options):
        if isinstance(func, Explanation):
            raise TypeError(
                f"{method.public_name} explains a model, and this one is already an "
                f"explanation ({func.method.public_name}); explain its .model instead."
            )
        self.func, self.method, self.options = func, method, options
        functools.update_wrapper(self, func, updated=())

    @property
    def model(self):
        return self.func

    def __repr__(self):
        return f"<ExplainedFunction: {self.method.public_name} of {self.func!r}>"

    def traced_call(self, args, kwargs):
        return model_call(self.func, args, kwargs, self.options.argnums)


@Transform.generic_register
def _apply_to_explained_qnode(obj: ExplainedQNode, transform, *targs, **tkwargs):
    """PennyLane transforms applied to an explanation act on the QNode it explains."""
    return ExplainedQNode(transform(obj.qnode, *targs, **tkwargs), obj.method, obj.options)


class TapeCall:
    """A bare tape seen as a model call: the input is its amplitude-embedding vector.

    Baselines are then amplitude vectors themselves (a zero baseline is the zero vector).
    """

    device = None

    def __init__(self, tape):
        self.tape = tape
        self.encoding = find_amplitude_encoding(tape)
        if self.encoding is None:
            raise ValueError(
                "Applied to a tape, attribution transforms need an amplitude embedding "
                "(StatePrep/AmplitudeEmbedding first); for angle encodings apply them to the QNode, "
                "which can re-trace the circuit at new inputs."
            )
        self.sentences = output_sentences(tape)
        self.shots = shots_of(tape)
        self.x = self.encoding.vector
        self.shape = self.feature_shape = (self.encoding.dim,)

    kind = "amplitude"
    straight = True  # the input *is* the amplitude vector

    @property
    def n_outputs(self):
        return len(self.sentences)

    @property
    def single_output(self):
        return len(self.tape.measurements) == 1 and self.n_outputs == 1

    @staticmethod
    def amplitude_of(vector):
        return vector


_KEYWORD_ONLY = (
    "{name}: options are keyword-only (got the positional value(s) {args!r}); write them as "
    "keywords, e.g. saliency(qnode, abs=False)."
)


_SHARED_DOC = """
The model may also be a function of QNodes (a classifier plus a bias, a ``tanh`` or softmax
head, several QNodes, a kernel SVM): decorate the function and the explanation is of its
output, each QNode's circuits run on its own device (an
:class:`~pennylane_xqml.ExplainedFunction`; see the
*Function models* page of the documentation).

Options every method shares:
    argnums (int or str): the QNode argument explained (its position or name; default 0).
    target (int or None): the output explained when the QNode has several (Captum's name);
        ``None`` explains every output.
    gradient (str): the input-gradient rule: ``"auto"`` (default), ``"hadamard_all"``,
        ``"hadamard"``, ``"adjoint"``, ``"backprop"`` or ``"parameter-shift"``.
    ancilla: the wire of the Hadamard tests' ancilla (default: a free wire, or a new one).
    return_stderr (bool): also return the shot standard errors (zeros when analytic).
    broadcast (bool): run circuits that differ only in their parameters (coalitions, shifts,
        path points, noise samples) as one parameter-broadcast tape (default ``True``; the
        values equal the per-tape path's). ``False`` runs every circuit as its own tape.
"""

_DELTA_DOC = """    return_convergence_delta (bool): also return the completeness gap (Captum's name).
"""


def signature_of(method_class) -> inspect.Signature:
    """The public signature of a method: ``(qnode=None, *, <its options>, <shared options>)``,
    with every default, as ``help()`` and ``inspect.signature`` show it."""
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, p in inspect.signature(method_class).parameters.items()
    ]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
        for name, default in Options._field_defaults.items()
        if name != "return_convergence_delta" or method_class.has_convergence_delta
    ]
    qnode = inspect.Parameter("qnode", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
    return inspect.Signature([qnode, *own, *shared])


def attribution_transform(method_class, doc):
    """Make the ``qml.transform`` of an attribution method.

    ``method_class(**method_options)`` validates and holds the method's hyper-parameters and
    provides ``build(engine, delta)``; ``doc`` is the public docstring.
    """

    def tape_transform(tape, **options):
        check_no_program_capture(f"pennylane-xqml's {method_class.public_name}")
        method, shared = split_options(method_class, dict(options))
        plan = make_plan(TapeCall(tape), shared, method)
        return plan.tapes, lambda results: plan.processing_fn(results, ())

    def setup_inputs(*targs, **tkwargs):
        if targs:
            raise TypeError(_KEYWORD_ONLY.format(name=method_class.public_name, args=targs))
        split_options(method_class, dict(tkwargs))  # validate eagerly, before any circuit
        return (), tkwargs

    signature = signature_of(method_class)
    name = method_class.public_name
    shared_doc = _SHARED_DOC + (_DELTA_DOC if method_class.has_convergence_delta else "")
    tape_transform.__doc__ = f"{name}{signature}\n\n{doc}{shared_doc}"
    tape_transform.__name__ = tape_transform.__qualname__ = name
    tape_transform.__signature__ = signature
    transform = qml.transform(tape_transform, setup_inputs=setup_inputs)

    @transform.register
    def _apply_to_qnode(qnode: qml.QNode, *targs, **options):
        if targs:
            raise TypeError(_KEYWORD_ONLY.format(name=method_class.public_name, args=targs))
        method, shared = split_options(method_class, dict(options))
        return ExplainedQNode(qnode, method, shared)

    @transform.register
    def _apply_to_function(obj: Callable, *targs, **options):
        if getattr(obj, "explains_as_its_qnode", False):  # xqml.hadamard_vjp(qnode)
            return _apply_to_qnode(obj.qnode, *targs, **options)
        if targs:
            raise TypeError(_KEYWORD_ONLY.format(name=method_class.public_name, args=targs))
        if isinstance(getattr(obj, "qnode", None), qml.QNode):  # qml.qnn.TorchLayer, KerasLayer
            raise TypeError(
                f"{method_class.public_name} explains a QNode or a function of QNodes; got "
                f"{type(obj).__name__}, a layer whose weights live inside it. Explain its QNode: "
                f"xqml.{method_class.public_name}(layer.qnode), called as "
                "explained(x, **layer.qnode_weights)."
            )
        method, shared = split_options(method_class, dict(options))
        return ExplainedFunction(obj, method, shared)

    return transform
