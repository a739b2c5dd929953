"""Baselines (reference inputs) for attributions, as Captum accepts them."""

from __future__ import annotations

import numpy as np
import pennylane as qml


def resolve_baseline(x, baselines=None, baseline_data=None):
    """The baseline as an array shaped like ``x``.

    Args:
        x: the input.
        baselines: ``None`` or a scalar (filled), an array shaped like ``x``, or ``"mean"`` (the
            mean of ``baseline_data`` over its first axis).
        baseline_data: rows shaped like ``x``; needed for ``"mean"``.

    >>> resolve_baseline(np.ones(3), 0.5)
    array([0.5, 0.5, 0.5])
    """
    shape = tuple(qml.math.shape(x))
    if baselines is None:
        baselines = 0.0
    if isinstance(baselines, str):
        if baselines != "mean":
            raise ValueError(f'Unknown baselines={baselines!r}; use a scalar, an array or "mean".')
        if baseline_data is None:
            raise ValueError('baselines="mean" needs baseline_data=<rows shaped like the input>.')
        data = np.asarray(qml.math.unwrap(baseline_data), dtype=float)
        if data.ndim != len(shape) + 1 or data.shape[1:] != shape or data.shape[0] == 0:
            raise ValueError(
                f"baseline_data must have shape (n_rows >= 1, *{shape}), got {data.shape}."
            )
        baselines = data.mean(axis=0)
    if np.isscalar(baselines) or qml.math.ndim(baselines) == 0:
        value = np.full(shape, baselines)  # concrete even when x is traced
    else:
        if tuple(qml.math.shape(baselines)) != shape:
            raise ValueError(
                f"The baseline has shape {tuple(qml.math.shape(baselines))} but the input has "
                f"shape {shape}; give a scalar or an array shaped like the input."
            )
        value = baselines
    if not qml.math.is_abstract(value) and not np.all(np.isfinite(qml.math.unwrap(value))):
        raise ValueError("The baseline contains NaN or inf.")
    return value
