"""The optimisation of one instance's masks: a pure function, jit- and vmap-compatible."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from .losses import (
    entanglement_loss,
    l1_loss,
    perturb,
    schedule_weights,
    superposition_loss,
    target_loss,
    total_loss,
)

# ---------------------------------------------------------------------------------------------
# the optimisation of one instance: a pure function, jit- and vmap-compatible
# ---------------------------------------------------------------------------------------------


class QPertResult(NamedTuple):
    """One explanation: ``saliency`` (shape of ``x``, sums to 1), the ``K`` final ``masks``
    (shape ``(K, *x.shape)``) and ``history``, a dict of every loss term (unweighted) and of the
    scheduled ``"total"``, one value per iteration (evaluated before that iteration's update).
    :meth:`QPertExplainer.explain_batch` adds a leading instance axis to each."""

    saliency: object
    masks: object
    history: dict


class Problem(NamedTuple):
    """The static part of an explanation (everything closed over by the compiled function)."""

    probabilities: Callable  # (x, weights) -> class probabilities (N,)
    fidelity: Callable | None  # (x, x_tilde, weights, p_x, p_x_tilde) -> fidelity loss
    mode: str
    target: int | None
    alpha: float
    optimizer: optax.GradientTransformation
    n_iter: int
    schedule: dict


def saliency_from_masks(masks):
    """The mask averaged over its ``K`` copies (axis 0), normalised to sum 1 (entries are in
    ``(0, 1)``, so the sum is positive)."""
    mean = jnp.mean(masks, axis=0)
    return mean / jnp.sum(mean)


def perturbed_inputs(theta, x, backgrounds, mode):
    """The masks ``sigmoid(θ)`` and the ``K`` perturbed inputs ``x̃_k`` they make."""
    masks = jax.nn.sigmoid(theta)
    return masks, jax.vmap(perturb, in_axes=(0, None, 0, None))(masks, x, backgrounds, mode)


def terms_from(masks, p, fidelities, target, mode, alpha):
    """The unweighted loss terms from the masks ``(K, *row_shape)``, the class probabilities
    ``p`` at the ``K`` perturbed inputs ``(K, n_classes)`` and the per-mask fidelity losses
    ``(K,)`` (``None`` without a fidelity term): the part of one loss evaluation that runs no
    circuit (also the processing of :meth:`QPertExplainer.loss_plan`)."""
    if fidelities is None:
        fidelity = jnp.zeros((), dtype=p.dtype)
    else:
        fidelity = jnp.mean(fidelities)
    return {
        "target": jnp.mean(target_loss(p, target, mode)),
        "l1": l1_loss(masks),
        "fidelity": fidelity,
        "entanglement": entanglement_loss(masks),
        "superposition": jnp.mean(superposition_loss(p, alpha)),
    }


def _loss_terms(theta, x, backgrounds, weights, p_x, target, problem):
    masks, x_tilde = perturbed_inputs(theta, x, backgrounds, problem.mode)
    p = jax.vmap(problem.probabilities, in_axes=(0, None))(x_tilde, weights)
    fidelities = None
    if problem.fidelity is not None:
        per_mask = jax.vmap(problem.fidelity, in_axes=(None, 0, None, None, 0))
        fidelities = per_mask(x, x_tilde, weights, p_x, p)
    return terms_from(masks, p, fidelities, target, problem.mode, problem.alpha)


def explain_instance(theta0, x, backgrounds, weights, coefficients, problem):
    """Optimise the ``K`` masks of one instance: ``lax.scan`` over optax updates."""
    p_x = problem.probabilities(x, weights)
    target = jnp.argmax(p_x) if problem.target is None else problem.target

    def objective(theta, step):
        terms = _loss_terms(theta, x, backgrounds, weights, p_x, target, problem)
        total = total_loss(terms, schedule_weights(step, problem.schedule, coefficients))
        return total, {**terms, "total": total}

    value_and_grad = jax.value_and_grad(objective, has_aux=True)

    def update(carry, step):
        theta, opt_state = carry
        (_, record), grads = value_and_grad(theta, step)
        updates, opt_state = problem.optimizer.update(grads, opt_state, theta)
        return (optax.apply_updates(theta, updates), opt_state), record

    init = (theta0, problem.optimizer.init(theta0))
    (theta, _), history = jax.lax.scan(update, init, jnp.arange(problem.n_iter))
    masks = jax.nn.sigmoid(theta)
    return QPertResult(saliency_from_masks(masks), masks, history)
