"""PyTorch tensors in and out of explanations.

An explanation of a call with torch tensors *is* the explanation of the same call with JAX
arrays (same values and dtypes), returned as torch tensors:

* every torch tensor of the call (the input, the weights, a TorchLayer's ``qnode_weights``) is
  handed to the engine as a JAX array, so the input's path into the circuit is traced as for
  any JAX call and ``gradient="auto"`` picks the same rule as for JAX inputs;
* when a tensor requires grad (and torch's grad mode is on), the results come from a
  :class:`torch.autograd.Function` whose ``backward`` runs the explanation again under
  :func:`jax.vjp` and applies that vector-Jacobian product: explanations are differentiable
  with ``torch.autograd`` wherever they are with ``jax.grad`` (and the error is JAX's where
  they are not); an explanation that is never differentiated costs one plain run;
* the results are torch tensors with the input's precision and device (``float32`` for
  ``float32`` inputs; complex attributions of complex inputs stay complex).

Tensors of 64-bit precision are handed to JAX in its 64-bit mode (:func:`.inputs.x64_mode`),
so that JAX's default float32 never lowers their precision.

Only first-order gradients are available (``backward`` is ``once_differentiable``).
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from .inputs import x64_mode
from .validation import check_finite, precision_bits


def _jax():
    import jax  # pylint: disable=import-outside-toplevel

    return jax


def _torch():
    import torch  # pylint: disable=import-outside-toplevel

    return torch


def is_torch_value(value) -> bool:
    """Whether ``value`` is a torch tensor (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def has_torch(*values) -> bool:
    """Whether any leaf of the pytrees ``values`` is a torch tensor."""
    return any(is_torch_value(leaf) for leaf in _jax().tree_util.tree_leaves(values))


def _numpy(tensor):
    return tensor.detach().cpu().resolve_conj().resolve_neg().numpy()


def _precision(tensors):
    """JAX's 64-bit mode when a tensor is 64-bit and the mode is off, else no change."""
    torch = _torch()
    wide = any(t.dtype in (torch.float64, torch.complex128) for t in tensors)
    if wide and not _jax().config.jax_enable_x64:
        return x64_mode(True)
    return contextlib.nullcontext()


def _result_dtype(reference, value):
    """The torch dtype of a result: the input's precision (real or complex like ``value``);
    integer and boolean results (class indices) keep their dtype."""
    torch = _torch()
    if value.dtype.kind in "biu":
        return torch.from_numpy(np.zeros(0, value.dtype)).dtype
    if reference is None or not (reference.is_floating_point() or reference.is_complex()):
        real = torch.get_default_dtype()
    else:
        real = reference.real.dtype if reference.is_complex() else reference.dtype
    if np.iscomplexobj(value):
        return torch.complex128 if real == torch.float64 else torch.complex64
    return real


def _to_torch(value, reference):
    torch = _torch()
    device = reference.device if reference is not None else None
    array = np.array(value)  # a writable copy (JAX's buffers are read-only)
    return torch.as_tensor(array, dtype=_result_dtype(reference, array), device=device)


def check_tensors(tensors, x) -> None:
    """Refuse torch values that cannot be explained, before anything is traced or run: tensors
    on several devices, and a non-finite input ``x`` (when it is a tensor)."""
    devices = {str(t.device) for t in tensors}
    if len(devices) > 1:
        raise ValueError(
            f"The call's torch tensors are on several devices ({sorted(devices)}); move them "
            "to one device."
        )
    if is_torch_value(x):
        check_finite(_numpy(x), "The input")


def constant_options(options: dict, where: str) -> dict:
    """``options`` (a method's keyword options) with every torch tensor among them (at any depth
    of a list, tuple or dict) as a NumPy array of the same dtype: options such as
    ``baselines``, ``background``, ``root``, ``feature_mask`` and ``baseline_data`` are
    constants of the explanation, as NumPy and JAX arrays are.

    A tensor that requires grad is refused (options are not differentiated: pass
    ``tensor.detach()``), and so is a tensor with NaN or inf in an option that holds numbers.
    """
    jax = _jax()

    def convert(path, leaf):
        if not is_torch_value(leaf):
            return leaf
        name = jax.tree_util.keystr(path)
        if leaf.requires_grad:
            raise ValueError(
                f"{where}: the option {name.strip('[]')} is a torch tensor that requires grad; "
                "options are constants of the explanation and are not differentiated. Pass "
                "tensor.detach() (the explanation stays differentiable with respect to the "
                "call's own tensors)."
            )
        return _numpy(leaf)

    return jax.tree_util.tree_map_with_path(convert, options)


_COMPLEX = (
    "Complex attributions (of complex amplitude inputs) are not differentiable with "
    "torch.autograd; explain real inputs, or call the explanation under torch.no_grad()."
)


def call_with_torch(explain, args, kwargs, x=None, differentiable=True):
    """``explain(*args, **kwargs)`` with every torch tensor of the call given as a JAX array;
    the results come back as torch tensors like ``x`` (the explained input).

    With torch's grad mode on and a tensor that requires grad, the results are differentiable
    with ``torch.autograd`` (their ``backward`` is :func:`jax.vjp` of ``explain``).
    ``differentiable=False`` (for functions that return host arrays, such as
    :func:`~.batching.explain_batch`) gives results detached from every tensor.

    >>> import torch, pennylane as qml, pennylane_xqml as xqml
    >>> dev = qml.device("default.qubit", wires=1)
    >>> @xqml.saliency(abs=False)
    ... @qml.qnode(dev, interface="torch")
    ... def model(x, w):
    ...     qml.RY(x[0] + w, wires=0)
    ...     return qml.expval(qml.Z(0))
    >>> w = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    >>> attribution = model(torch.tensor([0.3], dtype=torch.float64), w)  # -sin(x + w)
    >>> attribution.backward()
    >>> round(attribution.item(), 6), round(w.grad.item(), 6)  # d/dw: -cos(0.5)
    (-0.479426, -0.877583)
    """
    jax, torch = _jax(), _torch()
    flat, tree = jax.tree_util.tree_flatten((args, kwargs))
    positions = [i for i, leaf in enumerate(flat) if is_torch_value(leaf)]
    tensors = [flat[i] for i in positions]
    check_tensors(tensors, x)
    reference = x if is_torch_value(x) else next(iter(tensors), None)
    differentiated = [
        i
        for i, t in zip(positions, tensors)
        if differentiable and torch.is_grad_enabled() and t.requires_grad
    ]
    if differentiated and any(t.is_complex() for t in tensors):
        raise NotImplementedError(_COMPLEX)
    with _precision(tensors):
        for i in positions:
            flat[i] = jax.numpy.asarray(_numpy(flat[i]))

        def run(*primals):
            leaves = list(flat)
            for i, primal in zip(differentiated, primals):
                leaves[i] = primal
            call_args, call_kwargs = tree.unflatten(leaves)
            return explain(*call_args, **call_kwargs)

        outputs, output_tree = jax.tree_util.tree_flatten(run())
    values = [_to_torch(value, reference) for value in outputs]
    if not differentiated:
        return output_tree.unflatten(values)
    if any(np.iscomplexobj(np.asarray(value)) for value in outputs):
        raise NotImplementedError(_COMPLEX)
    inputs = [tensor for i, tensor in zip(positions, tensors) if i in differentiated]
    backward = _backward(run, [flat[i] for i in differentiated], tensors, inputs)
    converted = _function(backward).apply(values, *inputs)
    return output_tree.unflatten(list(converted))


def _backward(run, primals, tensors, inputs):
    """``grads -> gradients of inputs``: :func:`jax.vjp` of ``run`` at ``primals`` (computed
    when torch asks for it, so explanations that are never differentiated run no JAX
    autodiff), with torch tensors around it."""
    jax, torch = _jax(), _torch()

    def backward(grads):
        with _precision(tensors):
            outputs, vjp = jax.vjp(run, *primals)
            leaves, output_tree = jax.tree_util.tree_flatten(outputs)
            cotangents = [_cotangent(g, o) for g, o in zip(grads, leaves)]
            vjps = vjp(output_tree.unflatten(cotangents))
        return [
            torch.as_tensor(np.array(g), dtype=t.dtype, device=t.device)
            for g, t in zip(vjps, inputs)
        ]

    return backward


def _cotangent(grad, output):
    """The JAX cotangent of one output from torch's gradient (``float0`` zeros for integer
    outputs such as class indices, which have no derivative)."""
    jax = _jax()
    if not jax.numpy.issubdtype(output.dtype, jax.numpy.inexact):
        return np.zeros(output.shape, dtype=jax.dtypes.float0)
    return jax.numpy.asarray(_numpy(grad), dtype=output.dtype)


def _function(backward):
    """A :class:`torch.autograd.Function` whose backward is ``backward`` (the explanation's
    ``jax.vjp``); made per call, so its state is a closure, never stored on ``ctx``."""
    torch = _torch()

    class Explanation(torch.autograd.Function):  # pylint: disable=abstract-method
        """Outputs computed by JAX; ``backward`` applies the stored ``jax.vjp``."""

        @staticmethod
        def forward(ctx, values, *inputs):  # pylint: disable=arguments-differ,unused-argument
            return tuple(v.clone() for v in values)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, *grads):  # pylint: disable=arguments-differ,unused-argument
            return (None, *backward(grads))

    return Explanation


def detached(args, kwargs):
    """``(args, kwargs)`` with every torch tensor as a JAX array (a NumPy array when it is
    64-bit and JAX's 64-bit mode is off), detached: for the views of an explanation that run
    nothing differentiable (``explained.plan``, ``draw``, ``cost``...)."""
    jax = _jax()

    def convert(leaf):
        if not is_torch_value(leaf):
            return leaf
        array = _numpy(leaf)
        if precision_bits(array.dtype) == 64 and not jax.config.jax_enable_x64:
            return array
        return jax.numpy.asarray(array)

    return jax.tree_util.tree_map(convert, (args, kwargs))
