"""QPert's loss terms and their phased schedule: small pure JAX functions."""

from __future__ import annotations

import math

import jax.numpy as jnp

MODES = ("preserve", "delete")
LOSS_TERMS = ("target", "l1", "fidelity", "entanglement", "superposition")
DEFAULT_COEFFICIENTS = {
    "target": 1.0,
    "l1": 0.05,
    "superposition": 0.1,
    "fidelity": 0.3,
    "entanglement": 0.2,
}
#: start of each term as a fraction of ``n_iter`` (the paper's 0/250/500/750 of 1000)
SCHEDULE_FRACTIONS = {
    "target": 0.0,
    "l1": 0.25,
    "fidelity": 0.5,
    "entanglement": 0.75,
    "superposition": 0.75,
}
_PROB_FLOOR = 1e-10  # probabilities are floored here before a logarithm

# ---------------------------------------------------------------------------------------------
# loss terms: small pure JAX functions
# ---------------------------------------------------------------------------------------------


def perturb(mask, x, background, mode="preserve"):
    """The perturbed input ``x̃``.

    ``preserve``: ``x̃ = m ⊙ x + (1 - m) ⊙ b``; ``delete``: ``x̃ = (1 - m) ⊙ x + m ⊙ b``.

    >>> float(perturb(0.25, 1.0, 0.0)), float(perturb(0.25, 1.0, 0.0, mode="delete"))
    (0.25, 0.75)
    """
    if mode == "preserve":
        return mask * x + (1 - mask) * background
    if mode == "delete":
        return (1 - mask) * x + mask * background
    raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")


def shannon_entropy(p):
    """``H(p) = -Σ_i p_i log p_i`` over the last axis (natural log, ``0 log 0 = 0``).

    Safe to differentiate at ``p_i = 0``.

    >>> import jax.numpy as jnp
    >>> round(float(shannon_entropy(jnp.array([0.5, 0.5, 0.0]))), 6)  # log 2
    0.693147
    """
    p = jnp.asarray(p)
    positive = p > 0
    logs = jnp.log(jnp.where(positive, p, 1.0))
    return -jnp.sum(jnp.where(positive, p * logs, 0.0), axis=-1)


def target_loss(p, target, mode="preserve"):
    """The target term on predicted class probabilities ``p`` (last axis) of ``x̃``.

    * ``preserve``: the negative log-likelihood of the class, ``-log p_c`` (keep the prediction);
    * ``delete``: the suppression loss ``-log(1 - p_c)`` (destroy the prediction): it vanishes
      when ``p_c → 0`` and grows without bound when ``p_c → 1``, the mirror image of the NLL.

    Probabilities are floored at ``1e-10`` before the logarithm. ``target`` may be traced.

    >>> import jax.numpy as jnp
    >>> p = jnp.array([0.2, 0.8])
    >>> round(float(target_loss(p, 1)), 6), round(float(target_loss(p, 1, "delete")), 6)
    (0.223144, 1.609438)
    """
    p_c = jnp.take(jnp.asarray(p), target, axis=-1)
    if mode == "preserve":
        return -jnp.log(jnp.maximum(p_c, _PROB_FLOOR))
    if mode == "delete":
        return -jnp.log(jnp.maximum(1 - p_c, _PROB_FLOOR))
    raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")


def l1_loss(masks):
    """The sparsity term ``mean_i |m_i|`` over all mask entries (all masks of an instance).

    The mean (not the sum) keeps the coefficient independent of ``d`` and ``K``.

    >>> import jax.numpy as jnp
    >>> round(float(l1_loss(jnp.array([[0.2, 0.4], [0.6, 0.0]]))), 6)
    0.3
    """
    return jnp.mean(jnp.abs(masks))


def fidelity_loss(psi, phi):
    """``1 - |<ψ|φ>|²`` of two normalised state vectors.

    (QPert itself measures ``|<ψ(x)|ψ(x̃)>|²`` with the compute-uncompute circuit, see
    :func:`circuit_fidelity`; this is the same formula from state vectors.)

    >>> import jax.numpy as jnp
    >>> psi = jnp.array([1.0, 0.0]); phi = jnp.array([1.0, 1.0]) / jnp.sqrt(2.0)
    >>> round(float(fidelity_loss(psi, phi)), 6)
    0.5
    """
    return 1 - jnp.abs(jnp.vdot(psi, phi)) ** 2


def js_divergence(P, Q):
    """Jensen-Shannon divergence ``JS(P, Q) = H((P+Q)/2) - H(P)/2 - H(Q)/2`` (natural log, last
    axis): the fidelity fallback on output distributions; 0 for equal distributions, at most
    ``log 2``.

    >>> import jax.numpy as jnp
    >>> round(float(js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))), 6)  # log 2
    0.693147
    """
    P, Q = jnp.asarray(P), jnp.asarray(Q)
    return shannon_entropy((P + Q) / 2) - shannon_entropy(P) / 2 - shannon_entropy(Q) / 2


def entanglement_loss(masks):
    r"""Mean absolute off-diagonal Pearson correlation of the mask elements across ``K`` masks.

    ``masks`` has shape ``(K, *shape)`` (flattened to ``(K, d)``); with ``c = m - mean_k m``,
    ``R_pq = Σ_k c_kp c_kq / sqrt(Σ_k c_kp² Σ_k c_kq²)`` and the loss is
    ``mean_{p≠q} |R_pq|``. It is exactly 0 when ``K = 1`` or ``d = 1`` (no correlation to
    measure). A mask element that is constant over the ``K`` masks has no defined correlation:
    its row and column of ``R`` count as 0 (no NaN, finite gradients).

    >>> import jax.numpy as jnp
    >>> masks = jnp.array([[0.1, 0.2, 0.5], [0.3, 0.4, 0.5], [0.5, 0.0, 0.5]])
    >>> round(float(entanglement_loss(masks)), 6)  # |R_01| = 0.5, the constant column counts 0
    0.166667
    """
    masks = jnp.asarray(masks)
    k = masks.shape[0]
    flat = jnp.reshape(masks, (k, -1))
    d = flat.shape[1]
    if k == 1 or d == 1:
        return jnp.zeros((), dtype=flat.dtype)
    centred = flat - jnp.mean(flat, axis=0)
    cov = centred.T @ centred / k
    var = jnp.diag(cov)
    varies = var > jnp.finfo(flat.dtype).eps ** 2
    std = jnp.sqrt(jnp.where(varies, var, 1.0))
    defined = varies[:, None] & varies[None, :]
    corr = jnp.where(defined, cov / (std[:, None] * std[None, :]), 0.0)
    off_diagonal = 1.0 - jnp.eye(d, dtype=flat.dtype)
    return jnp.sum(jnp.abs(corr) * off_diagonal) / (d * (d - 1))


def superposition_loss(p, alpha=1.0):
    """``L_participation + α L_entropy`` of class probabilities ``p`` over ``N`` classes (last
    axis), with ``L_participation = (Σ p_i² - 1/N)/(1 - 1/N)`` and
    ``L_entropy = 1 - H(p)/log N``.

    Both parts are 0 for the uniform distribution and 1 for a one-hot one.

    >>> import jax.numpy as jnp
    >>> round(float(superposition_loss(jnp.array([0.5, 0.5, 0.0]), alpha=1.0)), 5)  # 0.25 + (1 - log 2 / log 3)
    0.61907
    """
    p = jnp.asarray(p)
    n = p.shape[-1]
    participation = (jnp.sum(p**2, axis=-1) - 1 / n) / (1 - 1 / n)
    entropy_term = 1 - shannon_entropy(p) / math.log(n)
    return participation + alpha * entropy_term


# ---------------------------------------------------------------------------------------------
# the phased schedule
# ---------------------------------------------------------------------------------------------


def default_schedule(n_iter=1000):
    """The paper's phases scaled to ``n_iter``: term ``j`` starts at
    ``floor(fraction_j × n_iter)`` with fractions target 0, L1 1/4, fidelity 1/2,
    entanglement and superposition 3/4 (0/250/500/750 for 1000 iterations).

    >>> default_schedule(1000)
    {'target': 0, 'l1': 250, 'fidelity': 500, 'entanglement': 750, 'superposition': 750}
    >>> default_schedule(10)
    {'target': 0, 'l1': 2, 'fidelity': 5, 'entanglement': 7, 'superposition': 7}
    """
    return {name: math.floor(SCHEDULE_FRACTIONS[name] * n_iter) for name in LOSS_TERMS}


def schedule_weights(step, schedule=None, coefficients=None):
    """The weight of every loss term at iteration ``step``: ``c_j`` once ``step >= start_j``,
    else 0.

    Pure and traceable (``step`` and the coefficients may be JAX tracers). ``schedule`` and
    ``coefficients`` map every name of :data:`LOSS_TERMS` to a start iteration and a
    coefficient; ``None`` means :func:`default_schedule` (for 1000 iterations) and
    :data:`DEFAULT_COEFFICIENTS`. (:func:`qpert_mask` validates and completes partial dicts.)

    >>> import jax.numpy as jnp
    >>> w = schedule_weights(500)
    >>> {k: round(float(v), 6) for k, v in w.items()}
    {'target': 1.0, 'l1': 0.05, 'fidelity': 0.3, 'entanglement': 0.0, 'superposition': 0.0}
    """
    schedule = default_schedule() if schedule is None else schedule
    coefficients = DEFAULT_COEFFICIENTS if coefficients is None else coefficients
    return {name: jnp.where(step >= schedule[name], coefficients[name], 0.0) for name in LOSS_TERMS}


def total_loss(terms, weights):
    """``Σ_j w_j L_j`` over the loss terms (dicts keyed by :data:`LOSS_TERMS`)."""
    return sum(weights[name] * terms[name] for name in LOSS_TERMS)
