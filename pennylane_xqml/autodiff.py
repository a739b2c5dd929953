"""Hardware-ready input gradients inside JAX and PyTorch autodiff: the Hadamard-test VJP.

PennyLane differentiates the amplitudes of a ``StatePrep``/``AmplitudeEmbedding`` only through
its decomposition into rotations: ``O(2^n)`` shifted circuits per gradient, and NaN where an
amplitude is 0 (the rotation angles are ``arccos``/``arctan`` of ratios of amplitudes). For a
model ``f_k(a) = a† M_k a`` with ``M_k = U† O_k U`` the whole amplitude gradient at ``a`` comes
from **one Hadamard-test circuit per Pauli word** of the outputs (:mod:`.engine.amplitude_kernel`,
rule ``"hadamard_all"``): the uniform state ``s`` on one branch of an ancilla, ``a`` on the
other, gives ``P(0, i) - P(1, i) = Re(M_w a)_i / √N`` for every ``i`` at once.

:func:`hadamard_vjp` wraps a QNode so that, inside ``jax.grad``/``jax.vjp`` (a
``jax.custom_vjp``) or ``torch.autograd`` (a ``torch.autograd.Function``), the vector-Jacobian
product with respect to the input that feeds the leading amplitude embedding comes from those
circuits, run on the QNode's own device with its shots. The other arguments (the weights) keep
the QNode's own ``diff_method``. :func:`input_vjp` is the same VJP as a plain function, with the
covariance of its shot estimate.

**Convention.** The VJP is the derivative of the QNode as the function of its input argument
that it is: with ``AmplitudeEmbedding(x, normalize=True)`` (and ``pad_with``) the embedded vector
is ``a(x) = pad(x)/‖pad(x)‖``, and ``∂f/∂x = Jᵀ ∂f/∂a`` with ``J = ∂a/∂x = (I - a aᵀ)/‖x‖`` on
the input's entries. ``J`` is the Jacobian of the QNode's own classical map from its argument to
the prepared vector, traced once with JAX (:mod:`.engine.inputs`), so slices, reorderings and
scalings of the input before the embedding are chained too. This matches
``diff_method="backprop"`` to machine precision, except at concrete inputs whose norm is
already 1: there PennyLane's ``AmplitudeEmbedding(normalize=True)`` skips the division, so eager
backprop differentiates the unnormalised map (no projection), while ``jax.jit`` of it and this
VJP differentiate the normalised one. (The attribution methods use a different,
amplitude-space convention, ``g(a) = ‖a‖² f(a/‖a‖)``; that is not what autodiff of a QNode
computes, so it is not used here.)
"""

from __future__ import annotations

import functools
import inspect
from typing import NamedTuple

import numpy as np
import pennylane as qml
from pennylane.pauli import PauliSentence

from .engine.amplitude_kernel import kernel_tapes
from .engine.core import ModelCall
from .engine.encodings import collect_words, is_complex
from .engine.execution import ancilla_and_device, concrete_tapes, execute_batch
from .engine.validation import check_no_program_capture

__all__ = ["HadamardVJP", "hadamard_vjp", "input_vjp"]


# ---------------------------------------------------------------------------------------------
# the VJP as a plain function (NumPy in, NumPy out)
# ---------------------------------------------------------------------------------------------


def _to_numpy(value):
    """A NumPy copy of a torch tensor or JAX/autograd array; other objects unchanged."""
    if hasattr(value, "detach"):  # torch
        return value.detach().cpu().numpy()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(qml.math.unwrap(value))
    return value


def _resolve_argnum(qnode, argnums, n_args):
    if isinstance(argnums, str):
        names = list(inspect.signature(qnode.func).parameters)
        if argnums not in names or names.index(argnums) >= n_args:
            raise ValueError(
                f"argnums={argnums!r} does not name a positional argument of the call "
                f"(the QNode's arguments: {names})."
            )
        return names.index(argnums)
    if isinstance(argnums, bool) or not isinstance(argnums, (int, np.integer)):
        raise TypeError(
            f"argnums must be one int (or an argument name); got {argnums!r}. The Hadamard-test "
            "VJP differentiates the one input that feeds the amplitude embedding."
        )
    if not -n_args <= argnums < n_args:
        raise ValueError(f"argnums={argnums} does not name an argument of the call ({n_args}).")
    return int(argnums) % n_args


def _batch_size(qnode, args, kwargs, argnum):
    """``None`` for one input, else the number of rows of a batched input (leading axis)."""
    tape = qml.workflow.construct_tape(qnode, level="top")(*args, **kwargs)
    size = tape.batch_size
    if size is None:
        return None
    x = args[argnum]
    if qml.math.ndim(x) < 2 or qml.math.shape(x)[0] != size:
        raise ValueError(
            f"The circuit is broadcast over {size} rows, but not along the leading axis of the "
            f"input (shape {qml.math.shape(x)}): only the input may be batched, along axis 0."
        )
    return size


def _flatten_cotangent(cotangent, tape, n_rows):
    """Cotangents in the QNode's output structure as an array ``(n_rows, n_outputs)``."""
    several = len(tape.measurements) > 1
    parts = cotangent if several else (cotangent,)
    if several and (not isinstance(parts, (tuple, list)) or len(parts) != len(tape.measurements)):
        raise ValueError(
            f"The cotangent must be a tuple with one entry per measurement of the QNode "
            f"({len(tape.measurements)}); got {type(cotangent).__name__}."
        )
    return np.concatenate(
        [np.reshape(np.asarray(_to_numpy(p), dtype=float), (n_rows, -1)) for p in parts], axis=1
    )


def _hadamard_tapes(call, words, pairs, ancilla):
    """One ``"hadamard_all"`` tape per (pair, word), on the device that has the ancilla, and the
    post-processing to per-word kernels ``K_w(s, a)`` (:class:`~.KernelValues`, outputs = words).
    """
    ancilla, device = ancilla_and_device(call.device, call.tape.wires, ancilla)
    per_word = [PauliSentence({word: 1.0}) for word in words]
    if device.wires is None:  # integer wires in our own order, so the state order is ours
        state_wires = [*call.tape.wires, ancilla]
        tapes, post = kernel_tapes(
            call.tape, call.encoding, per_word, pairs, "hadamard_all", ancilla, False, state_wires
        )
        wire_map = {w: i for i, w in enumerate(state_wires)}
        tapes = [qml.map_wires(tape, wire_map)[0][0] for tape in tapes]
    else:
        tapes, post = kernel_tapes(
            call.tape, call.encoding, per_word, pairs, "hadamard_all", ancilla, False, device.wires
        )
    return tapes, post, device


def input_vjp(qnode, args, cotangent, *, argnums=0, kwargs=None, ancilla=None, covariance=False):
    """The VJP ``Σ_k c_k ∂f_k/∂x`` of a QNode with respect to the input of its leading amplitude
    embedding, from one Hadamard-test circuit per Pauli word (per input row).

    Args:
        qnode (QNode): a QNode whose first operation is an ``AmplitudeEmbedding``/``StatePrep``
            fed by argument ``argnums`` (directly or through a classical map).
        args (tuple): the QNode's positional arguments (NumPy, JAX, autograd or torch arrays).
            The input may be batched along its leading axis (the QNode then broadcasts).
        cotangent: ``c``, in the structure of the QNode's output (one array per measurement,
            with the batch axis first for a batched input).
        argnums (int or str): the input argument (position or name).
        kwargs (dict): keyword arguments of the QNode (not differentiated).
        ancilla: a free wire for the Hadamard tests; by default a spare device wire, or a
            sibling device with one more wire (default.qubit with the same seed, lightning.*).
        covariance (bool): also return the covariance of the shot estimate (zeros when analytic).

    Returns:
        numpy.ndarray: the VJP, shaped like the input; with ``covariance=True`` also the
        covariance ``(*batch, d, d)`` over the flattened input entries of each row. Rows are
        independent circuits; the covariance is the exact multinomial one of the estimator
        (the ``2N`` outcomes of each word's circuit), evaluated at the measured frequencies.

    Example:
        >>> dev = qml.device("default.qubit", wires=3)
        >>> @qml.qnode(dev)
        ... def f(x, w):
        ...     qml.AmplitudeEmbedding(x, wires=[0, 1], normalize=True)
        ...     qml.RY(w, wires=0)
        ...     return qml.expval(qml.Z(0))
        >>> x = np.array([1.0, 0.0, 0.5, 0.0])
        >>> with qml.Tracker(dev) as tracker:
        ...     g = input_vjp(f, (x, 0.3), 1.0)
        >>> tracker.totals["executions"]  # one circuit: one Pauli word
        1
        >>> xp = qml.numpy.array(x)
        >>> bool(np.allclose(g, qml.grad(lambda x: f(x, 0.3))(xp)))  # backprop on the simulator
        True
        >>> shifted = qml.QNode(f.func, dev, diff_method="parameter-shift")  # the hardware rule
        >>> bool(np.isnan(qml.grad(lambda x: shifted(x, 0.3))(xp)).any())  # zero amplitudes
        True
    """
    check_no_program_capture("input_vjp")
    if not isinstance(qnode, qml.QNode):
        raise TypeError(f"input_vjp differentiates a qml.QNode; got {type(qnode).__name__}.")
    kwargs = dict(kwargs or {})
    args = tuple(_to_numpy(a) for a in args)
    argnum = _resolve_argnum(qnode, argnums, len(args))
    x = np.asarray(args[argnum])
    if is_complex(x):
        raise TypeError(
            "hadamard_vjp/input_vjp take real inputs; complex amplitudes have no real VJP."
        )
    n_rows = _batch_size(qnode, args, kwargs, argnum)
    rows = x if n_rows is not None else x[None]
    if np.any(np.all(rows.reshape(len(rows), -1) == 0, axis=1)):
        raise ValueError("An all-zero input cannot be amplitude-embedded (it has no direction).")
    first = args[:argnum] + (rows[0],) + args[argnum + 1 :]
    call = ModelCall(qnode, first, kwargs, argnum)
    if call.kind != "amplitude":
        raise ValueError(
            f"Argument {argnum} does not feed a leading AmplitudeEmbedding/StatePrep; the "
            "Hadamard-test VJP is for amplitude inputs (angle inputs: use the QNode's own "
            "diff_method, e.g. parameter-shift)."
        )
    if is_complex(call.encoding.vector):
        raise TypeError("hadamard_vjp needs a real amplitude vector; the circuit's is complex.")
    weights = _flatten_cotangent(cotangent, call.tape, len(rows))
    plan = collect_words(call.sentences)
    if weights.shape[1] != len(plan.identity):
        raise ValueError(
            f"The cotangent has {weights.shape[1]} entries per row, the QNode "
            f"{len(plan.identity)} scalar outputs."
        )
    # the prepared vector is real (checked above) but may be held in a complex dtype
    vectors = [np.real(np.asarray(call.amplitude_of(row))) for row in rows]
    jacobians = [np.real(np.asarray(call.amplitude_jacobian(row))) for row in rows]
    dim = call.encoding.dim
    uniform = np.full(dim, 1 / np.sqrt(dim))
    values = variances = None
    if plan.words:
        tapes, post, device = _hadamard_tapes(
            call, plan.words, [(uniform, a) for a in vectors], ancilla
        )
        kernel = post(execute_batch(concrete_tapes(tapes), device, diff_method=None))
        values = np.asarray(kernel.real)  # (rows, words, N): Re K_w(s, a) = Re(M_w a)/√N
        variances = np.asarray(kernel.real_variance)
    grads, covs = [], []
    for b, (a, jac) in enumerate(zip(vectors, jacobians)):
        word_weights = weights[b] @ plan.coefficients  # (W,)
        grad_a = 2 * (weights[b] @ plan.identity) * a  # the identity terms: ∂(c aᵀa)/∂a
        cov = np.zeros((jac.shape[1], jac.shape[1]))
        if plan.words:
            grad_a = grad_a + 2 * np.sqrt(dim) * word_weights @ values[b]
            cov = _word_covariance(values[b], variances[b], word_weights, jac, dim, call.shots)
        grads.append(grad_a @ jac)
        covs.append(cov)
    shape = x.shape
    grads = np.reshape(np.stack(grads), shape)
    if not covariance:
        return grads
    covs = np.stack(covs)
    return grads, covs if n_rows is not None else covs[0]


def _word_covariance(values, variances, word_weights, jac, dim, shots):
    """Covariance of ``Jᵀ Σ_w 2√N c_w D_w`` over the input entries.

    Each word's circuit has ``2N`` outcomes ``(ancilla, i)``; ``D_i = P(0,i) - P(1,i)`` and its
    reported variance is ``(P(0,i) + P(1,i) - D_i²)/shots``. A linear function ``λ·D`` of one
    circuit's frequencies has variance ``(Σ λ_i² (P(0,i)+P(1,i)) - (λ·D)²)/shots``, so with
    ``Λ = 2√N c_w J`` the covariance is ``(Λᵀ diag(S) Λ - (ΛᵀD)(ΛᵀD)ᵀ)/shots``; words are
    independent circuits, so their covariances add."""
    d = jac.shape[1]
    cov = np.zeros((d, d))
    if shots is None:
        return cov
    for value, variance, weight in zip(values, variances, word_weights):
        lam = 2 * np.sqrt(dim) * weight * jac  # (N, d)
        occupancy = shots * variance + value**2  # P(0,i) + P(1,i)
        mean = lam.T @ value
        cov += (lam.T @ (occupancy[:, None] * lam) - np.outer(mean, mean)) / shots
    return cov


# ---------------------------------------------------------------------------------------------
# the wrappers
# ---------------------------------------------------------------------------------------------


def _is_torch(value) -> bool:
    return type(value).__module__.startswith("torch")


def _is_float_array(value) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and ("float" in str(dtype) or "complex" in str(dtype))


def hadamard_vjp(qnode, *, argnums=0, ancilla=None):
    """Wrap ``qnode`` so that autodiff gets the input gradient from Hadamard tests.

    The wrapped function has the QNode's signature and returns what it returns. Under
    ``jax.grad``/``jax.vjp``/``jax.jit`` (JAX arguments: a ``jax.custom_vjp``) or
    ``torch.autograd`` (torch arguments: a ``torch.autograd.Function``), its vector-Jacobian
    product with respect to the input ``argnums``, which feeds the QNode's leading
    ``AmplitudeEmbedding``/``StatePrep``, is :func:`input_vjp`: one Hadamard-test circuit per
    Pauli word of the outputs (per input row), executed on the QNode's device with its shots, so
    it runs on hardware and is finite where an amplitude is 0. Every other floating-point
    argument (the weights) is differentiated by the QNode's own ``diff_method``. Arguments may
    be passed by position or by keyword (they are bound by the QNode's signature, as
    ``qml.qnn.TorchLayer`` passes them); only keyword-only arguments are never differentiated.

    Args:
        qnode (QNode): the model; ``interface="jax"``/``"torch"``/``"auto"``.
        argnums (int or str): the input argument (position or name).
        ancilla: a free wire for the Hadamard tests (see :func:`input_vjp`). Give the device one
            spare wire so they run on the very device (and ``qml.Tracker``) of the QNode.

    Returns:
        HadamardVJP: ``wrapped(*args, **kwargs)``, with the QNode's ``func``, ``interface`` and
        other attributes, so that it can be the QNode of a ``qml.qnn.TorchLayer``:
        ``qml.qnn.TorchLayer(hadamard_vjp(qnode), weight_shapes)``, or
        ``layer.qnode = hadamard_vjp(layer.qnode, argnums="inputs")``.

    The input may be batched along its leading axis (the QNode broadcasts it; the VJP runs one
    Hadamard test per word and row). Only first derivatives are defined (the VJP is computed
    from circuit results, not traced), and with JAX the VJP runs as a host callback
    (``jax.pure_callback``), so it works under ``jax.jit``; under ``jax.vmap`` it loops over the
    mapped rows (the QNode then needs ``interface="jax-jit"``, as PennyLane's own parameter
    shift does). NumPy arguments are taken as JAX arrays.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> dev = qml.device("default.qubit", wires=3)
        >>> @qml.qnode(dev, interface="jax", diff_method="parameter-shift")
        ... def f(x, w):
        ...     qml.AmplitudeEmbedding(x, wires=[0, 1], normalize=True)
        ...     qml.RY(w, wires=0)
        ...     return qml.expval(qml.Z(0))
        >>> model = hadamard_vjp(f)
        >>> x = jnp.array([1.0, 0.0, 0.5, 0.0])
        >>> gx, gw = jax.grad(model, argnums=(0, 1))(x, jnp.array(0.3))
        >>> bool(jnp.all(jnp.isfinite(gx)))
        True
        >>> backprop = qml.QNode(f.func, dev, interface="jax", diff_method="backprop")
        >>> bool(jnp.allclose(gx, jax.grad(backprop)(x, 0.3), atol=1e-6))
        True
    """
    if not isinstance(qnode, qml.QNode):
        raise TypeError(f"hadamard_vjp wraps a qml.QNode; got {type(qnode).__name__}.")
    if isinstance(argnums, str) and argnums not in inspect.signature(qnode.func).parameters:
        names = list(inspect.signature(qnode.func).parameters)
        raise ValueError(f"argnums={argnums!r} does not name an argument of the QNode ({names}).")
    return HadamardVJP(qnode, argnums, ancilla)


class HadamardVJP:
    """A QNode whose amplitude input is differentiated by Hadamard tests (made by
    :func:`hadamard_vjp`).

    Calling it calls the QNode (arguments by position or by keyword, as the QNode takes them);
    ``func``, ``interface``, ``device`` and the QNode's other attributes are the QNode's, so it
    stands in for the QNode of a ``qml.qnn.TorchLayer`` (``qml.qnn.TorchLayer(hadamard_vjp(
    qnode), weight_shapes)`` or ``layer.qnode = hadamard_vjp(layer.qnode, argnums="inputs")``).
    :attr:`qnode` is the wrapped QNode; attribution methods applied to the wrapper explain it
    (``xqml.saliency(layer.qnode)``).
    """

    #: attribution transforms explain ``self.qnode`` (:mod:`.engine.transform`)
    explains_as_its_qnode = True

    def __init__(self, qnode, argnums, ancilla):
        # private names only: qml.qnn.TorchLayer routes ``layer.<name> = value`` to its qnode
        # when ``name`` is in the qnode's ``__dict__`` (so ``layer.qnode = ...`` must not be)
        self._qnode, self._argnums, self._ancilla = qnode, argnums, ancilla
        functools.update_wrapper(self, qnode.func, updated=())

    @property
    def qnode(self):
        """The wrapped QNode."""
        return self._qnode

    @property
    def func(self):
        """The QNode's quantum function (``qml.qnn.TorchLayer`` reads its signature)."""
        return self._qnode.func

    def __getattr__(self, name):
        if name.startswith("_"):  # not yet set (unpickling, copying)
            raise AttributeError(name)
        return getattr(self._qnode, name)

    def __repr__(self):
        return f"<HadamardVJP of {self._qnode!r}>"

    def __deepcopy__(self, memo):
        """The wrapper itself: it holds no trainable state, so a deep copy of a model that uses
        it (``copy.deepcopy(module)`` to fine-tune a copy) shares the QNode and its device: a
        ``qml.Tracker`` of that device counts the copy's circuits too."""
        return self

    def __call__(self, *args, **kwargs):
        check_no_program_capture("hadamard_vjp")
        args, kwargs = _bind(self._qnode, args, kwargs)
        argnum = _resolve_argnum(self._qnode, self._argnums, len(args))
        _check_leading_embedding(self._qnode, args, kwargs)
        if any(_is_torch(a) for a in (*args, *kwargs.values())):
            return _torch_call(self._qnode, argnum, self._ancilla, args, kwargs)
        return _jax_call(self._qnode, argnum, self._ancilla, args, kwargs)


def _bind(qnode, args, kwargs):
    """``(args, kwargs)`` with every argument that can be positional made positional, by the
    QNode's signature (``qml.qnn.TorchLayer`` passes everything by keyword)."""
    try:
        bound = inspect.signature(qnode.func).bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"The arguments do not match the QNode's signature: {error}") from error
    return tuple(bound.args), dict(bound.kwargs)


def _check_leading_embedding(qnode, args, kwargs):
    """Refuse, before anything runs, a QNode whose circuit does not start with a state
    preparation (the full check, that the input feeds it, runs with the VJP)."""
    tape = qml.workflow.construct_tape(qnode, level="top")(*args, **kwargs)
    if not tape.operations or not isinstance(tape.operations[0], qml.StatePrep):
        raise ValueError(
            "hadamard_vjp needs a QNode whose first operation is an AmplitudeEmbedding/StatePrep "
            "fed by the input; for angle inputs use the QNode's own diff_method."
        )


def _split(args, argnum):
    """Indices of the differentiable positional arguments other than the input."""
    return [i for i, a in enumerate(args) if i != argnum and _is_float_array(a)]


def _instantiate(cotangent):
    """A symbolic zero cotangent (an output that is not differentiated) as an array of zeros."""
    from jax.custom_derivatives import SymbolicZero  # pylint: disable=import-outside-toplevel

    if isinstance(cotangent, SymbolicZero):
        return np.zeros(cotangent.shape, cotangent.dtype)
    return cotangent


def _jax_call(qnode, argnum, ancilla, args, kwargs):
    import jax  # pylint: disable=import-outside-toplevel
    from jax.custom_derivatives import SymbolicZero  # pylint: disable=import-outside-toplevel

    diff = _split(args, argnum)

    def assemble(x, weights):
        full = list(args)
        full[argnum] = x
        for i, w in zip(diff, weights):
            full[i] = w
        return full

    def run(x, weights):
        return qnode(*assemble(x, weights), **kwargs)

    @jax.custom_vjp
    def model(x, weights):
        return run(x, weights)

    def forward(x, weights):
        values = [w.value for w in weights]
        if any(w.perturbed for w in weights):
            out, pullback = jax.vjp(lambda ws: run(x.value, ws), values)
        else:
            out, pullback = run(x.value, values), None
        # the residuals' structure carries whether the input is differentiated (() or None)
        return out, (x.value, values, pullback, () if x.perturbed else None)

    def backward(residuals, cotangent):
        x, values, pullback, x_wanted = residuals
        cotangent = jax.tree.map(
            _instantiate, cotangent, is_leaf=lambda c: isinstance(c, SymbolicZero)
        )
        if pullback is None:
            weight_cotangents = [jax.numpy.zeros_like(v) for v in values]
        else:
            (weight_cotangents,) = pullback(cotangent)
        if x_wanted is None:
            return jax.numpy.zeros_like(x), weight_cotangents

        def host_vjp(x, values, cotangent):
            out = input_vjp(
                qnode, assemble(x, values), cotangent, argnums=argnum, kwargs=kwargs,
                ancilla=ancilla,
            )  # fmt: skip
            return np.asarray(out, dtype=x.dtype)

        shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
        x_cotangent = jax.pure_callback(
            host_vjp, shape, x, values, cotangent, vmap_method="sequential"
        )
        return x_cotangent, weight_cotangents

    model.defvjp(forward, backward, symbolic_zeros=True)
    x = jax.numpy.asarray(args[argnum])
    return model(x, [jax.numpy.asarray(args[i]) for i in diff])


class _TorchCall(NamedTuple):
    """What the torch backward needs: the QNode, the input's position, the call."""

    qnode: object
    argnum: int
    ancilla: object
    args: tuple
    kwargs: dict


@functools.cache
def _torch_function():
    """The ``torch.autograd.Function`` (built on first use: torch is an optional extra)."""
    import torch  # pylint: disable=import-outside-toplevel
    from torch.autograd.function import once_differentiable  # pylint: disable=import-outside-toplevel

    class HadamardVJPFunction(torch.autograd.Function):
        """``apply(call, x, *outputs)``: the identity on the QNode's ``outputs`` (computed
        with the input detached, so the weights are differentiated by the QNode's own
        ``diff_method`` through PennyLane's torch graph); its backward adds the Hadamard-test
        VJP for ``x`` and passes the cotangents on to that graph. When only ``x`` is
        differentiated (``torch.autograd.grad(out, x)``, Captum), no weight circuit runs."""

        @staticmethod
        def forward(ctx, call, x, *outputs):  # pylint: disable=unused-argument
            # PyTorch's documented way to keep non-tensor state for backward: a ctx attribute
            ctx.hadamard_vjp_state = call
            return tuple(output.clone() for output in outputs)

        @staticmethod
        @once_differentiable
        def backward(ctx, *grads):
            call = ctx.hadamard_vjp_state
            x_grad = None
            if ctx.needs_input_grad[1]:
                x = call.args[call.argnum]
                cotangent = tuple(grads) if len(grads) > 1 else grads[0]
                vjp = input_vjp(
                    call.qnode, call.args, cotangent, argnums=call.argnum, kwargs=call.kwargs,
                    ancilla=call.ancilla,
                )  # fmt: skip
                x_grad = torch.as_tensor(vjp, dtype=x.dtype, device=x.device)
            return (None, x_grad, *grads)

    return HadamardVJPFunction


def _torch_call(qnode, argnum, ancilla, args, kwargs):
    import torch  # pylint: disable=import-outside-toplevel

    x = args[argnum]
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    detached = list(args)
    detached[argnum] = x.detach()
    out = qnode(*detached, **kwargs)  # the weights' graph: the QNode's own diff_method
    outputs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    call = _TorchCall(qnode, argnum, ancilla, tuple(detached), kwargs)
    results = _torch_function().apply(call, x, *outputs)
    return results if isinstance(out, (tuple, list)) else results[0]
