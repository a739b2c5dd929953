r"""Perturbation attributions: feature ablation, Shapley values (exact, permutation sampling,
KernelSHAP), LIME and the random baseline, with Captum's names and conventions.

Every method here evaluates the model at *perturbed* inputs: features (or groups of features
sharing an id in ``feature_mask``) are kept at the input ``x`` or replaced by a reference
``b`` (a baseline, or each row of a background set). Writing a coalition of kept groups as a
binary vector ``z``, the coalition value is

.. math:: v(z) = \frac{1}{n_b} \sum_{b} f\big(z \odot x + (1 - z) \odot b\big),

and each method is a *fixed linear map* ``A`` from the values of its coalitions to the group
attributions, ``phi = A v``: ``A`` depends only on the number of groups, the seed and the
hyper-parameters, so it is built once with NumPy, while ``v`` may be traced by ``jax.jit`` or
``jax.vmap``. All ``f`` evaluations of one explanation (identical coalitions merged, and the
full coalition ``x`` evaluated once) run as one batch. Each feature of a group receives the
group's attribution (Captum's ``feature_mask`` semantics).

For amplitude embeddings the features are the entries of the prepared amplitude vector (as for
integrated gradients) and ``f`` is the quadratic form ``a† M a`` at the perturbed, unnormalised
vector (so a zero vector gives 0); references are embedded like the input (a zero reference is
the zero amplitude vector).

With shots, ``return_stderr=True`` gives standard errors: every circuit measures the Pauli words
of the outputs (variance ``(1 - <P>²)/shots`` each, words treated as independent), and since
``phi = A v`` with independent circuits, ``Var(phi) = A² Var(v)``. The random baseline has none.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pennylane as qml

from ..engine.baselines import resolve_baseline
from ..engine.core import Attribution
from ..engine.transform import attribution_transform
from ..engine.validation import check_bool, check_finite, check_positive_int, check_seed

MAX_EXACT_GROUPS = 12
DISTANCE_MODES = ("cosine", "euclidean")


# ---------------------------------------------------------------------------------------------
# validation (everything here raises before any circuit runs)
# ---------------------------------------------------------------------------------------------


def _check_feature_mask(feature_mask):
    """The mask as an integer array (its shape is checked against the model in :func:`_groups`)."""
    if feature_mask is None:
        return None
    mask = np.asarray(qml.math.unwrap(feature_mask))
    if not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"feature_mask must hold integer group ids, got dtype {mask.dtype}.")
    return mask


def _groups(feature_mask, feature_shape):
    """Membership matrix ``(n_groups, d)``: row ``g`` marks the features with the g-th id."""
    d = int(np.prod(feature_shape))
    if feature_mask is None:
        return np.eye(d)
    if feature_mask.shape != tuple(feature_shape):
        raise ValueError(
            f"feature_mask has shape {feature_mask.shape} but the attributions have shape "
            f"{tuple(feature_shape)}; give one integer group id per feature."
        )
    _, inverse = np.unique(feature_mask, return_inverse=True)
    inverse = inverse.reshape(-1)
    return (inverse[None, :] == np.arange(inverse.max() + 1)[:, None]).astype(float)


def _check_exact_size(n_groups):
    if n_groups > MAX_EXACT_GROUPS:
        raise ValueError(
            f"Exact Shapley values need 2**{n_groups} coalitions; at most {MAX_EXACT_GROUPS} "
            "feature groups are allowed. Group features with feature_mask, or use "
            "shapley_value_sampling or kernel_shap."
        )


def _background_array(background, baselines):
    """The reference data as a concrete array (a scalar, one input-shaped row, or rows)."""
    if background is not None and baselines is not None:
        raise TypeError("Give background (rows) or baselines (Captum's name), not both.")
    data = baselines if background is None else background
    data = np.asarray(qml.math.unwrap(0.0 if data is None else data))
    if data.size == 0:
        raise ValueError("The background is empty; give at least one row shaped like the input.")
    check_finite(data, "The background")
    return data


def _background_rows(data, shape):
    """Rows shaped like the input: a scalar fills one row; an input-shaped array is one row."""
    if data.ndim == 0:
        return [np.full(shape, data)]
    if data.shape == shape:
        return [data]
    if data.shape[1:] == shape:
        return list(data)
    raise ValueError(
        f"The background has shape {data.shape} but the input has shape {shape}; give a "
        f"scalar, one row of shape {shape}, or rows of shape (n_rows, *{shape})."
    )


# ---------------------------------------------------------------------------------------------
# the shared machinery: coalitions -> one batch of forward circuits -> phi = A v
# ---------------------------------------------------------------------------------------------


def _coalition_values(engine, membership, coalitions, references):
    """Queue ``f(z ⊙ x + (1 - z) ⊙ b)`` for each coalition and reference; the full coalition is
    ``x`` whatever the reference and runs once. Returns ``get(lookup) -> (v, var_v)`` of shape
    ``(n_coalitions, K)``, each row averaged over the references (its variance with shots:
    independent circuits, so variances add)."""
    x = engine.point
    requests = []
    for z in coalitions:
        keep = z @ membership  # (d,) constant 0/1 mask
        if np.all(keep == 1):
            requests.append([engine.forward_at(x)])
        else:
            requests.append([engine.forward_at(keep * x + (1 - keep) * b) for b in references])

    def get(lookup):
        values, variances = [], []
        for gets in requests:
            estimates = [get_f(lookup) for get_f in gets]
            values.append(sum(e[0] for e in estimates) / len(gets))
            variances.append(sum(e[1] for e in estimates) / len(gets) ** 2)
        return qml.math.stack(values), qml.math.stack(variances)

    return get


def _merge(coalitions, weights):
    """Merge repeated coalitions: unique coalitions and the summed columns of ``weights``."""
    unique, inverse = np.unique(np.asarray(coalitions, dtype=int), axis=0, return_inverse=True)
    merged = np.zeros((weights.shape[0], len(unique)))
    np.add.at(merged.T, inverse.reshape(-1), weights.T)
    return unique, merged


class _Perturbation:
    """A method given by coalitions and a linear map ``A`` from their values to attributions.

    Subclasses define :meth:`references` (flat reference points) and :meth:`design`
    (``coalitions (n, M)``, ``A (M, n)``) for ``M`` feature groups.
    """

    public_name = "this method"
    efficient = False  # the Shapley family reports the efficiency gap as its delta
    has_convergence_delta = False

    def __init__(self, feature_mask=None):
        self.feature_mask = _check_feature_mask(feature_mask)

    def references(self, engine):
        raise NotImplementedError

    def design(self, n_groups):
        raise NotImplementedError

    def build(self, engine, delta=False):
        if delta and not self.efficient:
            raise ValueError(f"return_convergence_delta is not defined for {self.public_name}.")
        membership = _groups(self.feature_mask, engine.call.feature_shape)
        n_groups = membership.shape[0]
        coalitions, weights = _merge(*self.design(n_groups))
        references = self.references(engine)
        get = _coalition_values(engine, membership, coalitions, references)
        if delta:  # the Shapley designs all contain the empty and the full coalition
            empty = int(np.flatnonzero(coalitions.sum(axis=1) == 0)[0])
            full = int(np.flatnonzero(coalitions.sum(axis=1) == n_groups)[0])

        def finish(lookup):
            v, var_v = get(lookup)  # (n_coalitions, K)
            phi = qml.math.tensordot(weights, v, axes=1)  # (M, K)
            var_phi = qml.math.tensordot(weights**2, var_v, axes=1)
            values = qml.math.tensordot(qml.math.transpose(phi), membership, axes=1)  # (K, d)
            variance = qml.math.tensordot(qml.math.transpose(var_phi), membership, axes=1)
            gap = qml.math.sum(phi, axis=0) - (v[full] - v[empty]) if delta else None
            return Attribution(values, variance, gap)

        return finish


class _Shapley(_Perturbation):
    """Shapley-family methods: references are background rows; efficiency gap as delta."""

    efficient = True
    has_convergence_delta = True

    def __init__(self, background=None, baselines=None, feature_mask=None):
        super().__init__(feature_mask)
        self.background = _background_array(background, baselines)

    def references(self, engine):
        rows = _background_rows(self.background, engine.call.shape)
        return [engine.to_point(row) for row in rows]


# ---------------------------------------------------------------------------------------------
# the methods
# ---------------------------------------------------------------------------------------------


class FeatureAblation(_Perturbation):
    """``phi_g = f(x) - f(x with group g replaced by the baseline)``."""

    public_name = "feature_ablation"

    def __init__(self, baselines=0.0, baseline_data=None, feature_mask=None):
        super().__init__(feature_mask)
        self.baselines, self.baseline_data = baselines, baseline_data

    def references(self, engine):
        baseline = resolve_baseline(engine.call.x, self.baselines, self.baseline_data)
        return [engine.to_point(baseline)]

    def design(self, n_groups):
        coalitions = np.vstack([np.ones(n_groups, int), 1 - np.eye(n_groups, dtype=int)])
        weights = np.hstack([np.ones((n_groups, 1)), -np.eye(n_groups)])
        return coalitions, weights


def all_coalitions(n_groups):
    """Every coalition of ``n_groups`` groups as rows of a ``(2**n_groups, n_groups)`` 0/1 array.

    >>> all_coalitions(2)
    array([[0, 0],
           [1, 0],
           [0, 1],
           [1, 1]])
    """
    return (np.arange(2**n_groups)[:, None] >> np.arange(n_groups)) & 1


def shapley_matrix(n_groups):
    r"""The map from the values of :func:`all_coalitions` to the Shapley values:
    ``phi_i = sum_{S not containing i} |S|! (M - |S| - 1)! / M! [v(S + i) - v(S)]``.

    >>> shapley_matrix(2) @ np.array([0.0, 1.0, 2.0, 4.0])  # v(∅), v({0}), v({1}), v({0, 1})
    array([1.5, 2.5])
    """
    coalitions = all_coalitions(n_groups)
    size = coalitions.sum(axis=1)
    weight = lambda s: 1.0 / (n_groups * math.comb(n_groups - 1, s))
    matrix = np.zeros((n_groups, len(coalitions)))
    for i in range(n_groups):
        with_i = coalitions[:, i] == 1
        matrix[i, with_i] = [weight(s - 1) for s in size[with_i]]
        matrix[i, ~with_i] = [-weight(s) for s in size[~with_i]]
    return matrix


class ShapleyValues(_Shapley):
    """Exact interventional Shapley values over all ``2**M`` coalitions."""

    public_name = "shapley_values"

    def __init__(self, background=None, baselines=None, feature_mask=None):
        super().__init__(background, baselines, feature_mask)
        if self.feature_mask is not None:
            _check_exact_size(len(np.unique(self.feature_mask)))

    def design(self, n_groups):
        _check_exact_size(n_groups)
        return all_coalitions(n_groups), shapley_matrix(n_groups)


def random_orderings(n_players, n_orderings, seed=0, antithetic=False):
    """``n_orderings`` seeded random orderings of ``n_players`` players, as rows of an int array;
    with ``antithetic=True`` every second ordering is the reverse of the one before it.

    >>> random_orderings(3, 2, seed=0, antithetic=True)[1].tolist()[::-1] == (
    ...     random_orderings(3, 1, seed=0)[0].tolist())
    True
    """
    rng = np.random.default_rng(seed)
    orders = []
    for s in range(n_orderings):
        reverse = antithetic and s % 2 == 1
        orders.append(orders[-1][::-1] if reverse else rng.permutation(n_players))
    return np.array(orders, dtype=int).reshape(n_orderings, n_players)


class ShapleyValueSampling(_Shapley):
    """Captum's permutation sampling: marginal contributions along random orderings."""

    public_name = "shapley_value_sampling"

    def __init__(self, background=None, baselines=None, n_samples=25, seed=0, antithetic=False,
                 feature_mask=None):  # fmt: skip
        super().__init__(background, baselines, feature_mask)
        check_positive_int(n_samples, "n_samples")
        check_seed(seed)
        check_bool(antithetic, "antithetic")
        self.n_samples, self.seed, self.antithetic = n_samples, seed, antithetic

    def permutations(self, n_groups):
        return random_orderings(n_groups, self.n_samples, self.seed, self.antithetic)

    def design(self, n_groups):
        coalitions, columns = [], []
        for order in self.permutations(n_groups):
            z = np.zeros(n_groups, int)
            coalitions.append(z.copy())
            for group in order:
                z[group] = 1
                coalitions.append(z.copy())
                columns.append((group, len(coalitions) - 1))
        weights = np.zeros((n_groups, len(coalitions)))
        for group, after in columns:  # phi_g += [v(before + g) - v(before)] / n_samples
            weights[group, after] += 1.0 / self.n_samples
            weights[group, after - 1] -= 1.0 / self.n_samples
        return np.array(coalitions), weights


def kernel_shap_matrix(coalitions, kernel_weights, n_groups):
    """The map from ``[v(∅), v(full), v(coalitions)...]`` to KernelSHAP values: the
    ``kernel_weights``-weighted least-squares fit ``v(z) - v(∅) ≈ z · phi`` under the efficiency
    constraint ``sum(phi) = v(full) - v(∅)``, solved by eliminating the last group (as the shap
    package). The minimum-norm solution is taken when the design is rank deficient.

    With all proper coalitions and the Shapley kernel it gives the exact Shapley values:

    >>> z = all_coalitions(2)[1:-1]
    >>> kernel_shap_matrix(z, np.ones(2), 2) @ np.array([0.0, 4.0, 1.0, 2.0])
    array([1.5, 2.5])
    """
    basis = np.eye(len(coalitions) + 2)  # apply the linear estimator to each unit value vector
    v_empty, v_full, v_z = basis[0], basis[1], basis[2:]
    total = v_full - v_empty
    if n_groups == 1:
        return total[None, :]
    coalitions = np.asarray(coalitions, dtype=float)
    last = coalitions[:, -1:]
    design = coalitions[:, :-1] - last  # (n, M - 1)
    target = v_z - v_empty - last * total  # (n, n + 2)
    weighted = design.T * kernel_weights
    head = np.linalg.pinv(weighted @ design) @ weighted @ target
    return np.vstack([head, total - head.sum(axis=0)])


class KernelShap(_Shapley):
    """KernelSHAP (Lundberg & Lee, 2017) with efficiency enforced as a constraint."""

    public_name = "kernel_shap"

    def __init__(self, background=None, baselines=None, n_samples=128, seed=0, feature_mask=None):
        super().__init__(background, baselines, feature_mask)
        check_positive_int(n_samples, "n_samples")
        check_seed(seed)
        self.n_samples, self.seed = n_samples, seed

    def coalitions(self, n_groups):
        """Proper coalitions and their regression weights, as the shap package: the size
        classes ``{s, M - s}`` (extreme sizes first) are enumerated with the Shapley kernel
        weights while ``n_samples`` covers their expected share of draws; the remaining classes
        get the rest of the budget as seeded draws from the kernel, in complementary pairs, with
        equal weights that together carry those classes' kernel mass. With
        ``n_samples >= 2**M - 2`` every class is enumerated (exact Shapley values)."""
        m = n_groups
        classes = [sorted({k, m - k}) for k in range(1, m // 2 + 1)]
        mass = np.array([sum(1.0 / (s * (m - s)) for s in sizes) for sizes in classes])
        count = np.array([sum(math.comb(m, s) for s in sizes) for sizes in classes])
        rows, weights = [], []
        budget, full = self.n_samples, 0
        while full < len(classes) and budget * mass[full] / mass[full:].sum() >= count[full] - 1e-8:
            for size in classes[full]:
                for subset in itertools.combinations(range(m), size):
                    rows.append(np.isin(np.arange(m), subset).astype(int))
                    weights.append(1.0 / (math.comb(m, size) * size * (m - size)))
            budget, full = budget - count[full], full + 1
        if full < len(classes) and budget > 0:
            rng = np.random.default_rng(self.seed)
            left = mass[full:] / mass[full:].sum()
            drawn = []
            while len(drawn) < budget:
                size = rng.choice(classes[full + rng.choice(len(left), p=left)])
                z = np.isin(np.arange(m), rng.choice(m, size, replace=False)).astype(int)
                drawn += [z, 1 - z]
            rows += drawn[:budget]
            weights += [mass[full:].sum() / budget] * budget
        return np.reshape(np.array(rows, dtype=int), (-1, m)), np.array(weights)

    def design(self, n_groups):
        z, kernel_weights = self.coalitions(n_groups)
        ends = np.array([np.zeros(n_groups, int), np.ones(n_groups, int)])
        coalitions = np.concatenate([ends, np.reshape(z, (-1, n_groups))])
        return coalitions, kernel_shap_matrix(z, kernel_weights, n_groups)


class Lime(_Perturbation):
    """LIME with binary interpretable features and a weighted linear (ridge) surrogate."""

    public_name = "lime"

    def __init__(self, n_samples=50, kernel_width=1.0, distance_mode="cosine", alpha=0.0,
                 baselines=0.0, baseline_data=None, seed=0, feature_mask=None):  # fmt: skip
        super().__init__(feature_mask)
        check_positive_int(n_samples, "n_samples")
        check_seed(seed)
        if not np.isscalar(kernel_width) or not np.isfinite(kernel_width) or kernel_width <= 0:
            raise ValueError(f"kernel_width must be a finite number > 0, got {kernel_width!r}.")
        if distance_mode not in DISTANCE_MODES:
            raise ValueError(
                f"Unknown distance_mode={distance_mode!r}; expected one of {DISTANCE_MODES}."
            )
        if not np.isscalar(alpha) or not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}.")
        self.n_samples, self.kernel_width, self.distance_mode = (
            n_samples,
            kernel_width,
            distance_mode,
        )
        self.alpha, self.seed = alpha, seed
        self.baselines, self.baseline_data = baselines, baseline_data

    references = FeatureAblation.references

    def similarity(self, masks):
        """``exp(-distance² / (2 kernel_width²))`` of each mask to the all-ones mask."""
        kept, n_groups = masks.sum(axis=1), masks.shape[1]
        if self.distance_mode == "cosine":
            distance = 1.0 - np.sqrt(kept / n_groups)
        else:
            distance = np.sqrt(n_groups - kept)
        return np.exp(-(distance**2) / (2 * self.kernel_width**2))

    def design(self, n_groups):
        masks = np.random.default_rng(self.seed).integers(0, 2, size=(self.n_samples, n_groups))
        features = np.hstack([np.ones((self.n_samples, 1)), masks])  # intercept first
        weighted = features.T * self.similarity(masks)
        penalty = self.alpha * np.diag([0.0] + [1.0] * n_groups)  # the intercept is not penalised
        fit = np.linalg.pinv(weighted @ features + penalty) @ weighted
        return masks, fit[1:]


class RandomAttribution:
    """Seeded uniform scores in ``[0, 1)``: the random baseline of evaluation metrics."""

    public_name = "random_attribution"
    has_convergence_delta = False

    def __init__(self, seed=0):
        check_seed(seed)
        self.seed = seed

    def build(self, engine, delta=False):
        if delta:
            raise ValueError("return_convergence_delta is not defined for random_attribution.")
        call = engine.call
        size = (call.n_outputs, int(np.prod(call.feature_shape)))
        values = np.random.default_rng(self.seed).uniform(size=size)
        values = qml.math.convert_like(values, engine.point)

        def finish(lookup):  # pylint: disable=unused-argument
            return Attribution(values, qml.math.zeros_like(values))

        return finish


# ---------------------------------------------------------------------------------------------
# public transforms
# ---------------------------------------------------------------------------------------------

_FEATURE_ABLATION_DOC = r"""Feature ablation (Captum's ``FeatureAblation``): the drop of the output when a
feature, or a group of features, is replaced by the baseline,
``phi_g = f(x) - f(x with group g set to the baseline)``.

A ``qml.transform``: use it as a decorator (``@feature_ablation(baselines=0.0)`` above
``@qml.qnode``) or call ``feature_ablation(qnode, ...)``; options are keyword-only.

Args:
    qnode (QNode): the model (omit to get a decorator); or a tape that starts with an amplitude
        embedding (see :mod:`.transform`).
    baselines: the replacement values: a scalar, an array shaped like the input, or ``"mean"``
        with ``baseline_data`` (default 0). For amplitude embeddings a non-zero baseline is
        embedded like the input; 0 is the zero amplitude vector.
    baseline_data (array): rows shaped like the input, for ``baselines="mean"``.
    feature_mask (array[int]): group ids shaped like the attributions; features with the same
        id are ablated together and all receive the group's attribution. Default: each feature
        alone.
    target, argnums: as in :func:`~pennylane_xqml.methods.integrated_gradients`.
    return_stderr (bool): also return standard errors (shots; zeros when analytic).

Returns:
    callable: ``explained(*args, **kwargs)`` giving attributions shaped like the input. One
    explanation runs ``1 + n_groups`` circuits in one batch.

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.perturbation import feature_ablation
>>> dev = qml.device("default.qubit", wires=2)
>>> @feature_ablation(baselines=0.0)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RY(x[1], wires=1)
...     return qml.expval(qml.Z(0) + qml.Z(1))
>>> np.round(model(np.array([0.5, 1.0])), 6)  # cos(x_i) - cos(0)
array([-0.122417, -0.459698])
"""

_SHAPLEY_VALUES_DOC = r"""Exact interventional Shapley values (Captum's ``ShapleyValues``; the ``shap``
package's interventional values with a background set).

.. math:: \phi_i = \sum_{S \subseteq N \setminus \{i\}} \frac{|S|!\,(M-|S|-1)!}{M!}
    \big[v(S \cup \{i\}) - v(S)\big], \qquad
    v(S) = \frac{1}{n_b}\sum_b f(x_S, b_{\bar S}),

over all ``2**M`` coalitions of the ``M`` feature groups (at most 12). Efficiency holds exactly:
the attributions of the groups sum to ``f(x) - mean_b f(b)``.

Args:
    qnode (QNode): the model (omit to get a decorator); or an amplitude-embedded tape.
    background: the reference rows ``b``: rows of shape ``(n_rows, *input_shape)``, a single
        input-shaped baseline, or a scalar (default 0). For amplitude embeddings each row is
        embedded like the input (a zero row is the zero amplitude vector).
    baselines: Captum's name for a single reference (give it or ``background``, not both).
    feature_mask (array[int]): group ids shaped like the attributions (as in
        :func:`feature_ablation`); the Shapley game is played by the groups.
    target, argnums: as in :func:`~pennylane_xqml.methods.integrated_gradients`.
    return_convergence_delta (bool): also return the efficiency gap
        ``sum_g phi_g - (f(x) - mean_b f(b))``, summed over groups (zero up to rounding).
    return_stderr (bool): also return standard errors (shots; zeros when analytic).

Returns:
    callable: ``explained(*args, **kwargs)`` giving attributions shaped like the input. One
    explanation runs ``(2**M - 1) * n_rows + 1`` circuits in one batch (``x`` itself once).

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.perturbation import shapley_values
>>> dev = qml.device("default.qubit", wires=2)
>>> @shapley_values(background=np.zeros((1, 2)), return_convergence_delta=True)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RY(x[1], wires=1)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.Z(1))
>>> phi, delta = model(np.array([0.5, 1.0]))
>>> phi.shape, bool(abs(delta) < 1e-12)
((2,), True)
"""

_SHAPLEY_VALUE_SAMPLING_DOC = r"""Shapley values by permutation sampling (Captum's
``ShapleyValueSampling``).

For each of ``n_samples`` random orderings of the feature groups, the groups are switched from
the reference to the input one by one, and each group is credited with the change of ``v`` it
causes; the attributions are the averages. Every ordering telescopes to ``v(all) - v(none)``, so
efficiency holds exactly for any ``n_samples``; the estimate is unbiased and converges to
:func:`shapley_values`. With a background of several rows every ordering is evaluated against
every row (``v`` is the background mean), so keep the background small.

Args:
    qnode (QNode): the model (omit to get a decorator); or an amplitude-embedded tape.
    background, baselines: the references, as in :func:`shapley_values` (default 0).
    n_samples (int): number of orderings (default 25, as Captum).
    seed (int): seed of the orderings (default 0).
    antithetic (bool): pair each ordering with its reverse (a variance reduction).
    feature_mask (array[int]): group ids shaped like the attributions.
    target, argnums, return_convergence_delta, return_stderr: as in :func:`shapley_values`.

Returns:
    callable: ``explained(*args, **kwargs)`` giving attributions shaped like the input.
    Identical coalitions are evaluated once: at most ``n_samples * (M - 1) * n_rows + n_rows + 1``
    circuits, in one batch.

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.perturbation import shapley_value_sampling
>>> dev = qml.device("default.qubit", wires=2)
>>> @shapley_value_sampling(baselines=0.0, n_samples=10, seed=1)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RY(x[1], wires=1)
...     return qml.expval(qml.Z(0) + qml.Z(1))
>>> np.round(model(np.array([0.5, 1.0])), 6)  # additive model: exact for any ordering
array([-0.122417, -0.459698])
"""

_KERNEL_SHAP_DOC = r"""KernelSHAP (Lundberg & Lee, 2017): Shapley values as a weighted linear regression.

Fits ``v(z) - v(∅) ≈ z · phi`` over coalitions ``z`` weighted by the Shapley kernel
``(M - 1) / (C(M, |z|) |z| (M - |z|))``, with efficiency ``sum(phi) = v(all) - v(∅)`` imposed
as a constraint. Coalitions are chosen as in the ``shap`` package: the coalitions of sizes
``{1, M - 1}``, then ``{2, M - 2}``, ... are enumerated with their kernel weights while
``n_samples`` covers them, and the remaining sizes are sampled from the kernel (seeded, in
complementary pairs). When ``2**M - 2 <= n_samples`` every coalition is enumerated and the
result *is* the exact Shapley value; below that it is a consistent estimate that approaches the
Shapley values as ``n_samples`` grows.

Args:
    qnode (QNode): the model (omit to get a decorator); or an amplitude-embedded tape.
    background, baselines: the references, as in :func:`shapley_values` (default 0).
    n_samples (int): coalitions to evaluate (default 128: exact up to 7 groups).
    seed (int): seed of the sampled coalitions (default 0).
    feature_mask (array[int]): group ids shaped like the attributions.
    target, argnums, return_convergence_delta, return_stderr: as in :func:`shapley_values`.

Returns:
    callable: ``explained(*args, **kwargs)`` giving attributions shaped like the input. One
    explanation runs ``(n_coalitions + 1) * n_rows + 1`` circuits in one batch, where
    ``n_coalitions <= min(n_samples, 2**M - 2)`` counts the distinct coalitions.

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.perturbation import kernel_shap, shapley_values
>>> dev = qml.device("default.qubit", wires=2)
>>> @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RY(x[1], wires=1)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.Z(1))
>>> x, background = np.array([0.5, 1.0]), np.array([[0.1, 0.2], [0.3, -0.4]])
>>> bool(np.allclose(kernel_shap(model, background=background)(x),
...                  shapley_values(model, background=background)(x)))
True
"""

_LIME_DOC = r"""LIME (Ribeiro et al., 2016) as Captum's ``Lime``, with binary interpretable features.

Draws ``n_samples`` random binary masks ``z`` over the feature groups (each group kept with
probability 1/2, seeded), evaluates ``f`` at ``z ⊙ x + (1 - z) ⊙ baseline``, weights each sample
by ``exp(-dist(z, 1)² / (2 kernel_width²))`` and fits a weighted linear surrogate
``f ≈ c + z · phi`` (ridge penalty ``alpha`` on ``phi``, not on ``c``; the minimum-norm solution
when the fit is underdetermined). Returns the coefficients ``phi``.

Captum's default surrogate is a Lasso, whose solution is not linear in the outputs; the (ridge)
least-squares surrogate used here is, which keeps explanations jit-compatible. The distance is
measured between the masks (interpretable space, as the ``lime`` package), not the inputs, so
the weights do not depend on the input.

Args:
    qnode (QNode): the model (omit to get a decorator); or an amplitude-embedded tape.
    n_samples (int): random masks (default 50, as Captum).
    kernel_width (float): width of the exponential kernel (default 1.0, as Captum).
    distance_mode (str): ``"cosine"`` (default, as Captum) or ``"euclidean"`` distance of a mask
        to the all-ones mask.
    alpha (float): ridge penalty (default 0: weighted least squares).
    baselines, baseline_data: the replacement values, as in :func:`feature_ablation`.
    seed (int): seed of the masks (default 0).
    feature_mask (array[int]): group ids shaped like the attributions.
    target, argnums, return_stderr: as in :func:`feature_ablation`.

Returns:
    callable: ``explained(*args, **kwargs)`` giving attributions shaped like the input. One
    explanation runs one circuit per distinct mask (at most ``n_samples``).

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.perturbation import lime
>>> dev = qml.device("default.qubit", wires=2)
>>> @lime(n_samples=20, seed=3)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RY(x[1], wires=1)
...     return qml.expval(qml.Z(0) + qml.Z(1))
>>> np.round(model(np.array([0.5, 1.0])), 6)  # linear in the masks: cos(x_i) - 1
array([-0.122417, -0.459698])
"""

_RANDOM_ATTRIBUTION_DOC = r"""Random attributions: seeded uniform scores in ``[0, 1)``, the baseline that
evaluation metrics (insertion/deletion, faithfulness) compare the other methods against.

The call is validated like any explanation (input, ``target``) but no circuit runs. The scores
depend only on ``seed`` and the attribution shape: every input gets the same draw.

Args:
    qnode (QNode): the model (omit to get a decorator); or an amplitude-embedded tape.
    seed (int): seed of the scores (default 0).
    target, argnums, return_stderr: as in :func:`feature_ablation` (standard errors are zeros).

Returns:
    callable: ``explained(*args, **kwargs)`` giving scores shaped like the input.

**Example**

>>> import pennylane as qml, numpy as np
>>> from pennylane_xqml.methods.perturbation import random_attribution
>>> dev = qml.device("default.qubit", wires=2)
>>> @random_attribution(seed=7)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     return qml.expval(qml.Z(0))
>>> scores = model(np.array([0.5, 1.0]))
>>> scores.shape, bool(np.all((0 <= scores) & (scores < 1)))
((2,), True)
>>> bool(np.all(scores == np.random.default_rng(7).uniform(size=2)))
True
"""

feature_ablation = attribution_transform(FeatureAblation, _FEATURE_ABLATION_DOC)
shapley_values = attribution_transform(ShapleyValues, _SHAPLEY_VALUES_DOC)
shapley_value_sampling = attribution_transform(ShapleyValueSampling, _SHAPLEY_VALUE_SAMPLING_DOC)
kernel_shap = attribution_transform(KernelShap, _KERNEL_SHAP_DOC)
lime = attribution_transform(Lime, _LIME_DOC)
random_attribution = attribution_transform(RandomAttribution, _RANDOM_ATTRIBUTION_DOC)

__test__ = {
    "feature_ablation": _FEATURE_ABLATION_DOC,
    "shapley_values": _SHAPLEY_VALUES_DOC,
    "shapley_value_sampling": _SHAPLEY_VALUE_SAMPLING_DOC,
    "kernel_shap": _KERNEL_SHAP_DOC,
    "lime": _LIME_DOC,
    "random_attribution": _RANDOM_ATTRIBUTION_DOC,
}
