"""Evaluation of attributions, independent of how they were computed (METHODS.md sections 3, 6).

Every function works on plain NumPy (or JAX) arrays and, where a model is needed, on a plain
callable -- no QNode required:

* ``predict(X) -> (n, n_classes)`` class probabilities for a batch ``X`` of ``n`` inputs (rows
  shaped like one input ``x``); where stated a scalar-output ``f(X) -> (n,)`` is accepted too.
* ``explain(x) -> attributions`` shaped like ``x``.

Faithfulness: :func:`insertion_deletion` (RISE / QPert's AUCI, AUDC, AUC-Difference),
:func:`evaluate_insertion_deletion` (averaged over a data set, with the paper's opposite-class
mean baseline, :func:`opposite_class_mean_baseline` / :func:`make_baseline`) and Captum's
:func:`infidelity`. Robustness: Captum's :func:`sensitivity_max`, :func:`stability` across seeds.
Axiomatic: :func:`completeness_delta`. Complexity: Quantus' :func:`sparseness`. Comparison:
:func:`method_agreement`. Each docstring says whether higher or lower is better.
"""

from __future__ import annotations

import itertools

import numpy as np

from .engine.validation import check_positive_int

__all__ = [
    "completeness_delta",
    "evaluate_insertion_deletion",
    "infidelity",
    "insertion_deletion",
    "make_baseline",
    "method_agreement",
    "opposite_class_mean_baseline",
    "sensitivity_max",
    "sparseness",
    "spearman",
    "stability",
]

BASELINE_KINDS = ("opposite_class_mean", "zeros", "mean")


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _array(value, name, min_ndim=0):
    """``value`` as a finite, non-empty float64 NumPy array."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array; {error}") from error
    if arr.size == 0:
        raise ValueError(f"{name} is empty; got shape {arr.shape}.")
    if arr.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s); got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf.")
    return arr


def _same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; they must match."
        )


def _call(predict, batch, name="predict"):
    """``predict(batch)`` as a float array of shape ``(n,)`` or ``(n, n_outputs)``."""
    out = np.asarray(predict(batch), dtype=np.float64)
    if out.ndim not in (1, 2) or out.shape[0] != len(batch):
        raise ValueError(
            f"{name} must return shape (n,) or (n, n_classes) for a batch of n = {len(batch)} "
            f"inputs; got {out.shape}."
        )
    return out


def _select(out, target, name="predict"):
    """The column ``target`` of ``out`` (``(n,)`` outputs need ``target=None`` or 0)."""
    if out.ndim == 1:
        if target not in (None, 0):
            raise ValueError(
                f"{name} returns one value per input, so target must be None; got {target!r}."
            )
        return out
    if isinstance(target, bool) or int(target) != target or not 0 <= target < out.shape[1]:
        raise ValueError(f"target must be a class index in [0, {out.shape[1]}); got {target!r}.")
    return out[:, int(target)]


def _trapezoid(y, x):
    y, x = np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


# ---------------------------------------------------------------------------------------------
# insertion / deletion
# ---------------------------------------------------------------------------------------------


def _baseline_like(baseline, x, name="baseline"):
    b = _array(baseline, name)
    if b.ndim == 0:
        return np.full(x.shape, float(b))
    _same_shape(b, x, name, "x")
    return b


def _steps(d, n_steps):
    n_steps = d if n_steps is None else check_positive_int(n_steps, "n_steps")
    if n_steps > d:
        raise ValueError(f"n_steps must be at most the number of features ({d}); got {n_steps}.")
    counts = np.round(np.linspace(0, d, n_steps + 1)).astype(np.int64)
    return counts, counts / d


def _curve_rows(x, attributions, baseline, counts):
    """Deletion rows then insertion rows, each ``(len(counts), *x.shape)``."""
    d = x.size
    order = np.argsort(-attributions.ravel(), kind="stable")  # descending; ties by feature index
    top = np.zeros((len(counts), d), dtype=bool)
    for j, k in enumerate(counts):
        top[j, order[:k]] = True
    xf, bf = x.ravel(), baseline.ravel()
    deletion = np.where(top, bf, xf).reshape(len(counts), *x.shape)
    insertion = np.where(top, xf, bf).reshape(len(counts), *x.shape)
    return deletion, insertion


def insertion_deletion(predict, x, attributions, baseline, target=None, n_steps=None):
    """Insertion and deletion curves of one explanation, and the areas under them.

    Features are ranked by ``attributions`` in descending order (ties keep the feature order).
    *Deletion* replaces the top features of ``x``, one more at each step, by the baseline's
    values; *insertion* starts from ``baseline`` and restores the top features of ``x`` one by
    one. Both curves track the probability of ``target`` (default: the class ``predict`` assigns
    to ``x``) over the fraction ``k/d`` of features moved, ``k = 0 .. d``; with ``n_steps`` the
    counts ``round(j d / n_steps)``, ``j = 0 .. n_steps`` are used instead. All points of both
    curves are evaluated in **one** call of ``predict`` on a batch of ``2 (n_steps + 1)`` rows
    shaped like ``x``.

    Args:
        predict: ``X -> (n, n_classes)`` probabilities, or ``X -> (n,)`` scores (then ``target``
            must be None).
        x: one input (any shape); ``attributions`` and ``baseline`` share its shape (a scalar
            baseline is broadcast).
        target: class index to track; default the class predicted for ``x``.
        n_steps: number of steps (``1 .. d``); default ``d``, one feature per step.

    Returns:
        dict with ``insertion_curve``, ``deletion_curve``, ``fractions`` (arrays of
        ``n_steps + 1`` points), ``auci``, ``audc`` (trapezoid rule over [0, 1]),
        ``auc_difference = auci - audc`` and ``target``.

    Direction: AUCI higher is better, AUDC lower is better, AUC-Difference higher is better
    (at most ``1 - 1/d`` for a model that is a step in one feature, 1.0 in the limit; a
    reversed ranking makes it negative; a random ranking scores about 0 on average).

    >>> w = np.array([2.0, 0.0, -1.0])
    >>> def predict(X):  # two classes, logistic in w . x
    ...     p = 1 / (1 + np.exp(-X @ w))
    ...     return np.stack([1 - p, p], axis=1)
    >>> x = np.array([1.0, 1.0, 1.0])
    >>> r = insertion_deletion(predict, x, attributions=w * x, baseline=np.zeros(3))
    >>> r["target"], r["fractions"].round(2).tolist()
    (1, [0.0, 0.33, 0.67, 1.0])
    >>> round(r["auci"], 3), round(r["audc"], 3), round(r["auc_difference"], 3)
    (0.792, 0.384, 0.408)
    """
    x = _array(x, "x")
    attributions = _array(attributions, "attributions")
    _same_shape(attributions, x, "attributions", "x")
    b = _baseline_like(baseline, x)
    counts, fractions = _steps(x.size, n_steps)
    deletion, insertion = _curve_rows(x, attributions, b, counts)
    out = _call(predict, np.concatenate([deletion, insertion]))
    if target is None and out.ndim == 2:
        target = int(np.argmax(out[0]))  # the first deletion row is x itself
    values = _select(out, target)
    m = len(counts)
    deletion_curve, insertion_curve = values[:m], values[m:]
    auci, audc = _trapezoid(insertion_curve, fractions), _trapezoid(deletion_curve, fractions)
    return {
        "insertion_curve": insertion_curve,
        "deletion_curve": deletion_curve,
        "fractions": fractions,
        "auci": auci,
        "audc": audc,
        "auc_difference": auci - audc,
        "target": target,
    }


def opposite_class_mean_baseline(X, y, label):
    """The mean feature vector of the rows of ``X`` whose class differs from ``label``.

    This is the QPert paper's baseline for insertion/deletion (METHODS.md section 3).

    >>> X = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    >>> opposite_class_mean_baseline(X, [0, 1, 1], label=0)
    array([3., 4.])
    """
    X = _array(X, "X", min_ndim=1)
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ValueError(f"y must have shape ({len(X)},) to match X; got {y.shape}.")
    others = y != label
    if not others.any():
        raise ValueError(
            f"No row of X has a class other than {label!r}; the baseline is undefined."
        )
    return X[others].mean(axis=0)


def make_baseline(kind, X=None, y=None, label=None):
    """A baseline (one row shaped like the inputs) by name, or an array passed through.

    ``kind``:

    * ``"opposite_class_mean"`` -- :func:`opposite_class_mean_baseline` of ``(X, y, label)``;
    * ``"mean"`` -- the mean row of ``X``;
    * ``"zeros"`` -- zeros shaped like a row of ``X``;
    * an array (or scalar) -- returned as a float array.

    >>> X = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> make_baseline("mean", X), make_baseline("zeros", X)
    (array([1., 2.]), array([0., 0.]))
    """
    if not isinstance(kind, str):
        return _array(kind, "baseline")
    if kind not in BASELINE_KINDS:
        raise ValueError(f"Unknown baseline {kind!r}; use one of {BASELINE_KINDS} or an array.")
    if X is None:
        raise ValueError(f'baseline="{kind}" needs X (rows shaped like the inputs).')
    X = _array(X, "X", min_ndim=1)
    if kind == "zeros":
        return np.zeros(X.shape[1:])
    if kind == "mean":
        return X.mean(axis=0)
    if y is None or label is None:
        raise ValueError(
            'baseline="opposite_class_mean" needs the labels y of X and the label of the instance.'
        )
    return opposite_class_mean_baseline(X, y, label)


def evaluate_insertion_deletion(
    predict,
    X,
    attributions,
    y=None,
    X_background=None,
    y_background=None,
    baseline="opposite_class_mean",
    target=None,
    n_steps=None,
):
    """:func:`insertion_deletion` for every row of ``X``, averaged (METHODS.md section 3).

    Args:
        predict: ``X -> (n, n_classes)`` probabilities (``(n,)`` scores work with a baseline
            that needs no class).
        X: instances ``(n, *shape)``; ``attributions`` has the same shape.
        y: labels of ``X``. The opposite-class baseline of instance ``i`` averages the
            background rows whose class differs from ``y[i]`` (from the predicted class when
            ``y`` is None).
        X_background, y_background: rows the baseline is computed from; default ``X`` and ``y``.
            Missing background labels are the model's predictions.
        baseline: ``"opposite_class_mean"`` (the paper's, default), ``"mean"``, ``"zeros"``, one
            array shaped like a row, or an array shaped like ``X`` (one baseline per instance).
        target: class to track: None (the predicted class of each instance), an int, or one per
            instance.
        n_steps: as in :func:`insertion_deletion`.

    All curve points of all instances are evaluated in one call of ``predict`` (plus one call
    for the predicted classes when labels are needed and not given).

    Returns:
        dict with the means ``auci`` (higher is better), ``audc`` (lower is better),
        ``auc_difference`` (higher is better), their ``*_std`` and ``*_per_instance`` arrays, the
        mean ``insertion_curve`` and ``deletion_curve``, ``fractions``, ``targets`` and the
        ``baselines`` used.

    >>> w = np.array([3.0, 0.0])
    >>> def predict(X):
    ...     p = 1 / (1 + np.exp(-(X @ w - 1.5)))
    ...     return np.stack([1 - p, p], axis=1)
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]])
    >>> y = np.array([0, 1, 0, 1])
    >>> good = evaluate_insertion_deletion(predict, X, np.tile(w, (4, 1)), y=y)  # feature 0 first
    >>> bad = evaluate_insertion_deletion(predict, X, -np.tile(w, (4, 1)), y=y)  # feature 0 last
    >>> round(good["auc_difference"], 3), round(bad["auc_difference"], 3)
    (0.294, -0.294)
    """
    X = _array(X, "X", min_ndim=1)
    attributions = _array(attributions, "attributions")
    _same_shape(attributions, X, "attributions", "X")
    n, row_shape = len(X), X.shape[1:]
    if y is not None:
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match X; got {y.shape}.")

    def predicted(rows):
        out = _call(predict, rows)
        if out.ndim != 2:
            raise ValueError(
                "Class labels are needed (opposite-class baseline), so predict must return "
                "(n, n_classes)."
            )
        return np.argmax(out, axis=1)

    # the baseline of every instance
    if isinstance(baseline, str):
        if baseline not in BASELINE_KINDS:
            raise ValueError(
                f"Unknown baseline {baseline!r}; use one of {BASELINE_KINDS} or an array."
            )
        if X_background is None:
            X_bg, y_bg = X, y
        else:
            X_bg = _array(X_background, "X_background", min_ndim=1)
            if X_bg.shape[1:] != row_shape:
                raise ValueError(
                    f"X_background rows have shape {X_bg.shape[1:]} but X rows have shape "
                    f"{row_shape}."
                )
            y_bg = y_background
        if baseline == "opposite_class_mean":
            labels = y if y is not None else predicted(X)
            if y_bg is None:
                y_bg = labels if X_background is None else predicted(X_bg)
            baselines = np.stack([make_baseline(baseline, X_bg, y_bg, label) for label in labels])
        else:
            baselines = np.broadcast_to(make_baseline(baseline, X_bg), X.shape)
    else:
        b = _array(baseline, "baseline")
        if b.shape == X.shape:
            baselines = b
        elif b.ndim == 0 or b.shape == row_shape:
            baselines = np.broadcast_to(b, X.shape)
        else:
            raise ValueError(
                f"baseline must be a scalar, shaped like a row {row_shape} or like X {X.shape}; "
                f"got {b.shape}."
            )

    counts, fractions = _steps(int(np.prod(row_shape, dtype=np.int64)), n_steps)
    m = len(counts)
    rows = []
    for i in range(n):
        deletion, insertion = _curve_rows(X[i], attributions[i], baselines[i], counts)
        rows += [deletion, insertion]
    out = _call(predict, np.concatenate(rows))
    if out.ndim == 1:  # scalar scores
        if target is not None:
            raise ValueError(
                f"predict returns one value per input, so target must be None; got {target!r}."
            )
        targets, curves = None, out.reshape(n, 2 * m)
    else:
        out = out.reshape(n, 2 * m, out.shape[1])
        if target is None:
            targets = np.argmax(out[:, 0], axis=1)  # the first deletion row is the instance itself
        else:
            targets = np.broadcast_to(np.asarray(target), (n,)).astype(np.int64)
            if np.any(targets < 0) or np.any(targets >= out.shape[2]):
                raise ValueError(
                    f"target must be class indices in [0, {out.shape[2]}); got {target!r}."
                )
        curves = out[np.arange(n), :, targets]
    deletion_curves, insertion_curves = curves[:, :m], curves[:, m:]
    auci = np.array([_trapezoid(c, fractions) for c in insertion_curves])
    audc = np.array([_trapezoid(c, fractions) for c in deletion_curves])
    diff = auci - audc
    return {
        "auci": float(auci.mean()),
        "audc": float(audc.mean()),
        "auc_difference": float(diff.mean()),
        "auci_std": float(auci.std()),
        "audc_std": float(audc.std()),
        "auc_difference_std": float(diff.std()),
        "auci_per_instance": auci,
        "audc_per_instance": audc,
        "auc_difference_per_instance": diff,
        "insertion_curve": insertion_curves.mean(axis=0),
        "deletion_curve": deletion_curves.mean(axis=0),
        "fractions": fractions,
        "targets": targets,
        "baselines": np.asarray(baselines),
    }


# ---------------------------------------------------------------------------------------------
# Captum's infidelity and sensitivity_max
# ---------------------------------------------------------------------------------------------


def infidelity(
    f,
    x,
    attributions,
    perturbation="gaussian",
    n_perturb_samples=10,
    noise_scale=0.1,
    seed=0,
    normalize=False,
    target=None,
):
    """Captum's infidelity: ``E_I[(I . attributions - (f(x) - f(x - I)))^2]``.

    Lower is better (0: the attributions predict every perturbation's effect exactly).

    Args:
        f: ``X -> (n,)`` scalar outputs, or ``X -> (n, n_classes)`` with ``target`` (default the
            class of largest output at ``x``).
        x, attributions: one input and its attributions (same shape).
        perturbation: ``"gaussian"`` -- ``I ~ N(0, noise_scale^2)`` per feature, drawn as
            ``np.random.default_rng(seed).normal(0, noise_scale, (n_perturb_samples, *x.shape))``;
            or a callable ``(rng, x, n_perturb_samples) -> I`` of shape
            ``(n_perturb_samples, *x.shape)``.
        n_perturb_samples: Monte-Carlo samples (Captum's default 10).
        noise_scale: standard deviation of the Gaussian perturbation; the default 0.1 suits
            features scaled to [0, 1] (Captum's examples use 0.003 on images).
        normalize: scale the attributions by the least-squares factor
            ``beta = E[(I . a) Δf] / E[(I . a)^2]`` first, as Captum's ``normalize=True`` does, so
            the score ignores a constant rescaling of the attributions.

    ``f`` is called once, on ``x`` and all perturbed inputs stacked.

    >>> w = np.array([1.0, -2.0])
    >>> f = lambda X: X @ w                      # linear: the gradient is exact
    >>> x = np.array([0.5, 0.5])
    >>> round(infidelity(f, x, attributions=w), 12)
    0.0
    >>> unit = lambda rng, x, n: np.eye(2)       # perturb one feature at a time by 1
    >>> float(infidelity(f, x, np.zeros(2), perturbation=unit, n_perturb_samples=2))  # (1 + 4) / 2
    2.5
    """
    x = _array(x, "x")
    attributions = _array(attributions, "attributions")
    _same_shape(attributions, x, "attributions", "x")
    n = check_positive_int(n_perturb_samples, "n_perturb_samples")
    rng = np.random.default_rng(seed)
    if callable(perturbation):
        I = _array(perturbation(rng, x, n), "perturbation(rng, x, n_perturb_samples)")
        if I.shape != (n, *x.shape):
            raise ValueError(f"The perturbation must return shape {(n, *x.shape)}; got {I.shape}.")
    elif perturbation == "gaussian":
        if not noise_scale > 0:
            raise ValueError(f"noise_scale must be positive; got {noise_scale}.")
        I = rng.normal(0.0, noise_scale, size=(n, *x.shape))
    else:
        raise ValueError(f'perturbation must be "gaussian" or a callable; got {perturbation!r}.')
    out = _call(f, np.concatenate([x[None], x[None] - I]), name="f")
    if target is None and out.ndim == 2:
        target = int(np.argmax(out[0]))
    values = _select(out, target, name="f")
    delta_f = values[0] - values[1:]
    dot = np.sum((I * attributions).reshape(n, -1), axis=1)
    if normalize:
        denominator = np.mean(dot**2)
        beta = np.mean(dot * delta_f) / denominator if denominator > 0 else 0.0
        dot = beta * dot
    return float(np.mean((dot - delta_f) ** 2))


def sensitivity_max(explain, x, radius=0.02, n_samples=10, seed=0):
    """Captum's max-sensitivity: ``max_δ ‖explain(x + δ) - explain(x)‖ / ‖explain(x)‖``.

    ``δ`` is uniform in the L∞ ball of ``radius``, drawn as
    ``np.random.default_rng(seed).uniform(-radius, radius, (n_samples, *x.shape))``; norms are
    Frobenius (L2 of the flattened attributions), and a zero ``explain(x)`` divides by 1, as in
    Captum. ``explain`` (``x -> attributions``) is called ``n_samples + 1`` times.

    Lower is better (0: the explanation does not move under small input changes).

    >>> explain = lambda x: 2 * x                # the attributions of a linear model, x * w
    >>> x = np.array([3.0, 4.0])
    >>> s = sensitivity_max(explain, x, radius=0.1, n_samples=5)
    >>> bool(0 < s <= 0.1 * np.sqrt(2) / 5)      # at most ‖δ‖ / ‖x‖
    True
    """
    x = _array(x, "x")
    n = check_positive_int(n_samples, "n_samples")
    if not radius >= 0:
        raise ValueError(f"radius must be non-negative; got {radius}.")
    reference = _array(explain(x), "explain(x)")
    norm = np.linalg.norm(reference.ravel())
    norm = norm if norm > 0 else 1.0
    deltas = np.random.default_rng(seed).uniform(-radius, radius, size=(n, *x.shape))
    worst = 0.0
    for delta in deltas:
        attribution = _array(explain(x + delta), "explain(x + delta)")
        _same_shape(attribution, reference, "explain(x + delta)", "explain(x)")
        worst = max(worst, float(np.linalg.norm((attribution - reference).ravel()) / norm))
    return worst


# ---------------------------------------------------------------------------------------------
# completeness, sparseness
# ---------------------------------------------------------------------------------------------


def completeness_delta(attributions, f_x, f_baseline):
    """Captum's convergence delta ``Σ attributions - (f(x) - f(baseline))``.

    Closer to 0 is better (0: the attributions account for the whole change of the output).
    A scalar ``f_x`` sums over all of ``attributions``; with ``f_x`` of shape ``(n,)`` (a batch)
    each row of ``attributions`` is summed over its remaining axes.

    >>> completeness_delta(np.array([0.25, 0.5]), f_x=1.0, f_baseline=0.0)
    -0.25
    >>> completeness_delta(np.array([[1.0, 1.0], [0.5, 0.0]]), np.array([2.0, 1.0]), 0.0)
    array([ 0. , -0.5])
    """
    a = _array(attributions, "attributions")
    diff = _array(f_x, "f_x") - _array(f_baseline, "f_baseline")
    if diff.ndim >= a.ndim or a.shape[: diff.ndim] != diff.shape:
        raise ValueError(
            f"f_x - f_baseline has shape {diff.shape}; attributions (shape {a.shape}) must start "
            "with that (batch) shape and have feature axes after it."
        )
    delta = a.reshape(*diff.shape, -1).sum(axis=-1) - diff
    return float(delta) if delta.ndim == 0 else delta


def _gini(a):
    a = np.sort(np.abs(a.ravel()))
    total = a.sum()
    if total == 0:
        return 0.0
    d = a.size
    return float(np.sum((2 * np.arange(1, d + 1) - d - 1) * a) / (d * total))


def sparseness(attributions, batch=False):
    """Quantus' Sparseness: the Gini index of ``|attributions|`` (Chalasani et al., 2020).

    ``G = Σ_i (2 i - d - 1) a_(i) / (d Σ_i a_(i))`` over the ``d`` magnitudes sorted ascending
    (``i = 1 .. d``): 0 for a uniform attribution, ``1 - 1/d`` for a one-hot one. An all-zero
    attribution scores 0 (Quantus adds 1e-7 to avoid 0/0; this function does not, so its values
    are exact). With ``batch=True`` axis 0 indexes instances and one score per instance is
    returned.

    Higher is better (sparser, more concentrated explanations).

    >>> sparseness(np.array([0.0, 0.0, 0.0, 5.0]))  # one-hot, d = 4: 1 - 1/4
    0.75
    >>> sparseness(np.array([[1.0, -1.0], [0.0, 2.0]]), batch=True)
    array([0. , 0.5])
    """
    a = _array(attributions, "attributions", min_ndim=2 if batch else 1)
    if batch:
        return np.array([_gini(row) for row in a])
    return _gini(a)


# ---------------------------------------------------------------------------------------------
# rank agreement: stability across seeds, agreement between methods
# ---------------------------------------------------------------------------------------------


def _ranks(v):
    """1-based ranks, ties sharing their average rank (scipy's ``rankdata``)."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2)[inverse.ravel()]


def spearman(a, b):
    """Spearman rank correlation of two attributions (flattened; ties get average ranks).

    If a vector is constant its ranking carries no information: two constant vectors count as
    identical rankings (1.0), a constant against a non-constant one as uncorrelated (0.0).
    Higher is more similar (1: same ranking, -1: reversed).

    >>> spearman([0.1, 0.5, 0.3], [1.0, 9.0, 2.0]), spearman([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    """
    a, b = _array(a, "a"), _array(b, "b")
    _same_shape(a, b, "a", "b")
    ra, rb = _ranks(a.ravel()), _ranks(b.ravel())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    ssa, ssb = ra @ ra, rb @ rb  # exact for (half-)integer ranks, so identical rankings give 1.0
    if ssa == 0 or ssb == 0:
        return 1.0 if ssa == ssb else 0.0
    return float(np.clip(ra @ rb / np.sqrt(ssa * ssb), -1.0, 1.0))


def stability(attributions_across_seeds, absolute=False, batch=False):
    """Mean pairwise Spearman rank correlation of one explanation repeated with different seeds.

    ``attributions_across_seeds`` has shape ``(n_runs, *feature_shape)``, or with ``batch=True``
    ``(n_runs, n_instances, *feature_shape)`` (then the pairwise correlations of every instance
    are averaged). ``absolute=True`` ranks ``|a|`` instead of the signed values.

    Higher is better (1: every run ranks the features identically).

    >>> runs = np.array([[0.1, 0.7, 0.2], [0.0, 0.9, 0.3], [0.2, 0.6, 0.1]])
    >>> round(stability(runs), 4)   # pairs (1, 2), (1, 3), (2, 3): 1, 0.5, 0.5
    0.6667
    """
    a = _array(attributions_across_seeds, "attributions_across_seeds", min_ndim=3 if batch else 2)
    if len(a) < 2:
        raise ValueError(f"stability needs at least 2 runs on axis 0; got {len(a)}.")
    if absolute:
        a = np.abs(a)
    if not batch:
        a = a[:, None]
    scores = [
        spearman(a[i, k], a[j, k])
        for i, j in itertools.combinations(range(len(a)), 2)
        for k in range(a.shape[1])
    ]
    return float(np.mean(scores))


def _top_k(v, k):
    return set(np.argsort(-v.ravel(), kind="stable")[:k].tolist())


def method_agreement(a, b, k=None, absolute=True, batch=False):
    """How far two attribution methods agree: Spearman correlation and top-k feature overlap.

    ``top_k_overlap = |top_k(a) ∩ top_k(b)| / k`` (Krishna et al.'s feature agreement), the top
    ``k`` features taken by magnitude when ``absolute`` (default: methods differ in sign
    conventions) and by signed value otherwise; ties keep the feature order. ``k`` defaults to
    ``ceil(d / 4)``. With ``batch=True`` axis 0 indexes instances and the scores are averaged.

    Returns a dict ``{"spearman", "top_k_overlap", "k"}``; higher is better for both scores.

    >>> r = method_agreement(np.array([0.9, -0.5, 0.1, 0.0]), np.array([0.8, 0.1, -0.6, 0.0]), k=2)
    >>> r["spearman"], r["top_k_overlap"], r["k"]
    (0.8, 0.5, 2)
    """
    a = _array(a, "a", min_ndim=2 if batch else 1)
    b = _array(b, "b", min_ndim=2 if batch else 1)
    _same_shape(a, b, "a", "b")
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if not batch:
        a, b = a[None], b[None]
    d = int(np.prod(a.shape[1:]))
    k = -(-d // 4) if k is None else check_positive_int(k, "k")
    if k > d:
        raise ValueError(f"k must be at most the number of features ({d}); got {k}.")
    rho = np.mean([spearman(u, v) for u, v in zip(a, b)])
    overlap = np.mean([len(_top_k(u, k) & _top_k(v, k)) / k for u, v in zip(a, b)])
    return {"spearman": float(rho), "top_k_overlap": float(overlap), "k": k}
