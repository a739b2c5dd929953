"""Integration rules for the path integral of integrated gradients (Captum's names)."""

from __future__ import annotations

import numpy as np

from .validation import check_positive_int

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def path_points(method: str, n_steps: int):
    """``(alphas, weights)`` in ``[0, 1]`` with ``Σ w_j g(α_j) ≈ ∫_0^1 g(α) dα``.

    >>> alphas, weights = path_points("gausslegendre", 3)
    >>> round(float(weights.sum()), 12)
    1.0
    """
    if method not in METHODS:
        raise ValueError(f"Unknown integration method {method!r}; expected one of {METHODS}.")
    check_positive_int(n_steps, "n_steps")
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError("riemann_trapezoid needs n_steps >= 2 (both end points).")
        alphas = np.linspace(0.0, 1.0, n_steps)
        weights = np.full(n_steps, 1.0 / (n_steps - 1))
        weights[[0, -1]] /= 2
        return alphas, weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(n_steps) + offset) / n_steps, np.full(n_steps, 1.0 / n_steps)
