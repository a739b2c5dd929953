"""Explanation penalties for training: "right for the right reasons" (Ross et al., 2017).

Ross, Hughes and Doshi-Velez, "Right for the Right Reasons: Training Differentiable Models by
Constraining their Explanations" (IJCAI 2017), add to the training loss the squared input
gradient on the features an annotation marks as irrelevant. Every explanation of this package
is differentiable with respect to the model's weights, so the penalty can use any of them
(integrated gradients, saliency, input × gradient, ...), measured by the same circuits.

:func:`attribution_penalty` turns an explained QNode and a mask into that penalty.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pennylane as qml

from .engine.core import ModelCall
from .engine.plan import execute_plan
from .engine.torch_bridge import call_with_torch, constant_options, has_torch
from .engine.transform import ExplainedQNode, prepared_plan

__all__ = ["NORMS", "attribution_penalty"]

#: ``norm -> p``: the penalty is ``Σ m_i |A_i|**p``.
NORMS = {"l2": 2, "l1": 1}


def _check_explainer(explainer):
    if isinstance(explainer, ExplainedQNode):
        return
    hint = (
        " It is a plain QNode: wrap it first, e.g. xqml.saliency(qnode) or "
        "xqml.integrated_gradients(qnode)."
        if isinstance(explainer, qml.QNode)
        else ""
    )
    raise TypeError(
        "explainer must be an explained QNode (the result of an attribution decorator such as "
        f"xqml.saliency(qnode) or xqml.integrated_gradients(qnode)); got "
        f"{type(explainer).__name__}.{hint}"
    )


def _check_mask(mask) -> np.ndarray:
    """The mask as a float64 NumPy array of non-negative finite weights (bool -> 0/1)."""
    if qml.math.is_abstract(mask):
        raise TypeError(
            "mask must be a concrete array (an annotation fixed before training), not a traced "
            "value: build the penalty outside jax.jit/jax.vmap."
        )
    try:
        values = np.asarray(qml.math.unwrap(mask))
    except Exception as err:  # pylint: disable=broad-except  (any array library's failure)
        raise TypeError(f"mask must be an array of booleans or weights; got {mask!r}.") from err
    if values.dtype.kind not in "biuf":
        raise TypeError(
            "mask must hold booleans (True marks a feature whose attribution is penalised) or "
            f"real non-negative weights; got dtype {values.dtype}."
        )
    if values.ndim == 0 or values.size == 0:
        raise ValueError(
            f"mask must be an array shaped like one attribution; got shape {values.shape}."
        )
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("mask contains NaN or infinite values.")
    if np.any(values < 0):
        raise ValueError(
            f"mask weights must be non-negative (a penalty cannot reward attribution); got the "
            f"minimum {values.min()}."
        )
    if not np.any(values > 0):
        raise ValueError("mask selects no feature (every entry is 0 or False): the penalty is 0.")
    return values


def attribution_penalty(explainer: ExplainedQNode, mask, *, norm: str = "l2") -> Callable:
    r"""The attribution mass of an explained QNode on masked features, as a differentiable penalty.

    Ross et al. (2017) train a model to be "right for the right reasons" by adding to its loss
    the squared input gradient on the features an annotation marks as irrelevant. This is that
    penalty for any attribution method of this package:

    .. math::

        \Omega(x, w) = \sum_k \sum_i m_i \, |A_{k i}(x; w)|^p

    where ``A(x; w)`` is the explainer's attribution of the model at input ``x`` and weights
    ``w`` (``k`` runs over the model's outputs when it has several and no ``target``),
    ``m`` is the mask and ``p = 2`` (``norm="l2"``, the squared L2 mass, Ross et al.'s choice)
    or ``p = 1`` (``norm="l1"``, the absolute mass).

    Args:
        explainer (ExplainedQNode): an explained QNode, such as ``xqml.saliency(qnode)`` or
            ``xqml.integrated_gradients(qnode)``, with all its options (``gradient=``,
            ``target=``, ...). When it returns a tuple (``return_convergence_delta=True``,
            ``return_stderr=True``) only the attributions are used.
        mask (array): shaped like one attribution of one output, in the attribution's space:
            the (padded) amplitude vector for a straight amplitude embedding, else the QNode's
            input. Booleans (``True``: penalised) or non-negative real weights ``m_i``.
        norm (str): ``"l2"`` (default: ``Σ m_i A_i²``) or ``"l1"`` (``Σ m_i |A_i|``).

    Returns:
        callable: ``penalty(*args, **kwargs) -> scalar`` with the QNode's signature (for
        example ``penalty(x, weights)``), differentiable with respect to every argument the
        explanation is (the weights, with ``jax.grad``), and usable under ``jax.jit`` and
        ``jax.vmap`` (batch over rows with ``jax.vmap(penalty, in_axes=(0, None))``).
        Called with torch tensors (a torch QNode, a ``qml.qnn.TorchLayer``'s ``qnode_weights``)
        it returns a torch scalar of the input's dtype, differentiable with ``torch.autograd``
        with respect to every tensor that requires grad (:mod:`.engine.torch_bridge`).

    Raises:
        TypeError: ``explainer`` is not an explained QNode, or ``mask`` is not an array of
            booleans or real numbers (or is traced).
        ValueError: ``norm`` is unknown, or ``mask`` is negative, not finite or all zero
            (at once); or its shape is not the attribution's (at the call, before any circuit
            runs).

    **Example**

    One qubit, ``f(a) = <Z>`` after ``RY(w)`` on the amplitude vector ``a``: the signed
    saliency is ``2 M a`` with ``M = RY(w)† Z RY(w)``, so at ``a = (1, 0)`` the penalty on the
    second amplitude is ``(2 sin w)² = 4 sin² w``, whose derivative is ``4 sin 2w``.

    >>> import jax, jax.numpy as jnp, pennylane as qml
    >>> import pennylane_xqml as xqml
    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev, interface="jax")
    ... def model(x, w):
    ...     qml.AmplitudeEmbedding(x, wires=0, normalize=True)
    ...     qml.RY(w, wires=0)
    ...     return qml.expval(qml.Z(0))
    >>> penalty = xqml.attribution_penalty(xqml.saliency(model, abs=False), [False, True])
    >>> x, w = jnp.array([1.0, 0.0]), jnp.array(0.5)
    >>> round(float(penalty(x, w)), 4), round(4 * float(jnp.sin(w) ** 2), 4)
    (0.9194, 0.9194)
    >>> round(float(jax.grad(penalty, argnums=1)(x, w)), 4), round(4 * float(jnp.sin(2 * w)), 4)
    (3.3659, 3.3659)

    .. details::
        :title: What the mask means for an amplitude classifier

        With ``qml.AmplitudeEmbedding(x, normalize=True)`` straight from the input, attributions
        are per entry of the normalised (and padded) amplitude vector, one per pixel of an
        image: the mask is a pixel mask, padded with zeros to ``2**n_qubits`` entries.
        Saliency penalises the model's sensitivity to the masked pixels (Ross et al.'s input
        gradient, measured in one Hadamard test per Pauli word on hardware); integrated
        gradients from the zero baseline (``a_i Re(M a)_i``, exact in closed form) penalise
        the share of the output the masked pixels carry, which is 0 wherever they are dark.
    """
    _check_explainer(explainer)
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {tuple(NORMS)}; got {norm!r}.")
    weights = _check_mask(constant_options({"mask": mask}, "attribution_penalty")["mask"])
    power = NORMS[norm]

    def penalty(*args, **kwargs):
        if has_torch(args, kwargs):  # the same penalty of the call with JAX arrays
            return call_with_torch(jax_penalty, args, kwargs, x=explainer.input_of(*args, **kwargs))
        return jax_penalty(*args, **kwargs)

    def jax_penalty(*args, **kwargs):
        call = ModelCall(explainer.qnode, args, kwargs, explainer.options.argnums)
        shape = tuple(call.feature_shape)
        if weights.shape != shape:
            raise ValueError(
                f"mask has shape {weights.shape}, but one attribution of this call has shape "
                f"{shape} (the attribution's space: "
                + (
                    "the padded amplitude vector)."
                    if call.straight
                    else "the shape of the QNode's input)."
                )
            )
        out = execute_plan(prepared_plan(call, explainer.options, explainer.method))
        attributions = out[0] if isinstance(out, tuple) else out
        magnitude = qml.math.abs(attributions)
        if power == 2:
            magnitude = magnitude**2
        m = qml.math.cast_like(qml.math.convert_like(weights, magnitude), magnitude)
        return qml.math.sum(m * magnitude)

    penalty.__doc__ = (
        f"``Σ m_i |A_i|^{power}``: the {norm} attribution penalty of {explainer!r} on the mask."
    )
    return penalty
