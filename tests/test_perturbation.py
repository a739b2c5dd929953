"""Perturbation attributions: exact/sampled/kernel Shapley values, ablation, LIME, random."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from conftest import amplitude_model, random_weights
from pennylane_xqml.methods.perturbation import (
    KernelShap,
    ShapleyValueSampling,
    all_coalitions,
    feature_ablation,
    kernel_shap,
    lime,
    random_attribution,
    shapley_matrix,
    shapley_value_sampling,
    shapley_values,
)
from pennylane_xqml.testing import assert_close

# ---------------------------------------------------------------------------------------------
# models and an independent brute-force Shapley value
# ---------------------------------------------------------------------------------------------


def angle_model(n_qubits=4, interface="numpy", features_per_qubit=1):
    """RY (and RX) encoding of each feature, a CNOT entangler, trainable rotations."""

    @qml.qnode(qml.device("default.qubit", wires=n_qubits), interface=interface)
    def model(x, w):
        for i in range(n_qubits):
            qml.RY(x[i], wires=i)
            if features_per_qubit == 2:
                qml.RX(x[i + n_qubits], wires=i)
        for i in range(n_qubits):
            qml.CNOT(wires=[i, (i + 1) % n_qubits])
        for i in range(n_qubits):
            qml.RY(w[i], wires=i)
        return qml.expval(qml.Z(0) @ qml.Z(1) + 0.5 * qml.Z(n_qubits - 1))

    return model


def additive_model(n_qubits=4, measure=None):
    """``f(x) = sum_i cos(x_i)`` (or the observable ``measure``): no entangler."""

    @qml.qnode(qml.device("default.qubit", wires=n_qubits))
    def model(x, w):  # pylint: disable=unused-argument
        for i in range(n_qubits):
            qml.RY(x[i], wires=i)
        return qml.expval(
            measure if measure is not None else qml.sum(*(qml.Z(i) for i in range(n_qubits)))
        )

    return model


def brute_force_shapley(value, n_players):
    """The textbook formula over subsets, with ``value(frozenset of players)``."""
    cache = {}
    v = lambda s: cache.setdefault(frozenset(s), value(frozenset(s)))
    phi = np.zeros(n_players)
    for i in range(n_players):
        others = [j for j in range(n_players) if j != i]
        for size in range(n_players):
            weight = (
                math.factorial(size)
                * math.factorial(n_players - size - 1)
                / math.factorial(n_players)
            )
            for subset in itertools.combinations(others, size):
                phi[i] += weight * (v(set(subset) | {i}) - v(subset))
    return phi


def coalition_value(model, x, w, background, kind, groups=None):
    """``v(S) = mean_b f(x_S, b)`` computed with plain QNode calls. For amplitude models the
    features are amplitudes and ``f(z) = ‖z‖² model(z)`` (the quadratic form; 0 at z = 0)."""
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)
    if kind == "amplitude":
        x = x / np.linalg.norm(x)
        background = [b / np.linalg.norm(b) for b in background]

    def f(z):
        if kind == "angle":
            return float(model(z, w))
        norm2 = float(np.sum(np.abs(z) ** 2))
        return 0.0 if norm2 == 0 else norm2 * float(model(z, w))

    def value(players):
        keep = np.isin(groups, list(players))
        return np.mean([f(np.where(keep, x, b)) for b in background])

    return value


@pytest.fixture(params=["angle", "amplitude"])
def case(request, rng):
    """A d = 4 model, an input, weights and a background of 3 rows."""
    if request.param == "angle":
        model, w = angle_model(), rng.normal(size=4)
    else:
        model = amplitude_model(qml.device("default.qubit", wires=2), 2, interface="numpy")
        w = random_weights(rng, 2)
    return request.param, model, rng.normal(size=4), w, rng.normal(size=(3, 4))


# ---------------------------------------------------------------------------------------------
# exact Shapley values
# ---------------------------------------------------------------------------------------------


def test_exact_shapley_efficiency(case):
    _, model, x, w, background = case
    phi, delta = shapley_values(model, background=background, return_convergence_delta=True)(x, w)
    expected = float(model(x, w)) - np.mean([float(model(b, w)) for b in background])
    assert phi.shape == (4,)
    assert_close(np.sum(phi), expected, rtol64=0, atol64=1e-10)
    assert_close(delta, 0.0, atol64=1e-10)


def test_exact_shapley_equals_brute_force_and_kernel_shap(case):
    kind, model, x, w, background = case
    phi = shapley_values(model, background=background)(x, w)
    expected = brute_force_shapley(coalition_value(model, x, w, background, kind), 4)
    assert_close(phi, expected, rtol64=1e-7, atol64=1e-10)
    # KernelSHAP enumerates all 14 proper coalitions by default: exact
    assert_close(
        kernel_shap(model, background=background)(x, w), expected, rtol64=1e-7, atol64=1e-8
    )


def test_single_baseline_and_scalar_background(rng):
    model, x, w = angle_model(), rng.normal(size=4), rng.normal(size=4)
    b = rng.normal(size=4)
    expected = brute_force_shapley(coalition_value(model, x, w, [b], "angle"), 4)
    for options in ({"background": b}, {"background": b[None]}, {"baselines": b}):
        assert_close(shapley_values(model, **options)(x, w), expected, rtol64=1e-7, atol64=1e-10)
    zero = brute_force_shapley(coalition_value(model, x, w, [np.zeros(4)], "angle"), 4)
    assert_close(shapley_values(model)(x, w), zero, rtol64=1e-7, atol64=1e-10)  # default 0


def test_grouped_shapley_is_the_game_of_the_groups(rng):
    model, x, w, background = (
        angle_model(),
        rng.normal(size=4),
        rng.normal(size=4),
        rng.normal(size=(2, 4)),
    )
    mask = np.array([2, 0, 2, 5])  # three groups, ids need not be contiguous
    phi, delta = shapley_values(model, background=background, feature_mask=mask,
                                return_convergence_delta=True)(x, w)  # fmt: skip
    groups = np.array([1, 0, 1, 2])  # the same groups, numbered by sorted id
    per_group = brute_force_shapley(coalition_value(model, x, w, background, "angle", groups), 3)
    assert_close(phi, per_group[groups], rtol64=1e-7, atol64=1e-10)  # shared within a group
    assert_close(delta, 0.0, atol64=1e-10)  # efficiency over groups


# ---------------------------------------------------------------------------------------------
# a model of one feature gives zero to the others
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, options",
    [
        (shapley_values, {}),
        (kernel_shap, {}),
        (kernel_shap, {"n_samples": 10}),
        (shapley_value_sampling, {"n_samples": 7}),
        (feature_ablation, {}),
    ],
)
def test_dummy_features_get_zero(method, options, rng):
    model = additive_model(measure=qml.Z(0))  # depends on x_0 only
    x = rng.normal(size=4)
    if method is feature_ablation:
        phi = method(model, baselines=rng.normal(size=4), **options)(x, None)
    else:
        phi = method(model, background=rng.normal(size=(2, 4)), **options)(x, None)
    assert abs(phi[0]) > 1e-3
    assert_close(phi[1:], 0.0, atol64=1e-12)


# ---------------------------------------------------------------------------------------------
# estimators converge to the exact values
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_kernel_shap_converges_to_exact(rng):
    """d = 8 (two features per qubit): 254 proper coalitions."""
    model = angle_model(features_per_qubit=2)
    x, w, background = 1.5 * rng.normal(size=8), rng.normal(size=4), rng.normal(size=(1, 8))
    exact = shapley_values(model, background=background)(x, w)

    def error(n_samples, seed):
        estimate = kernel_shap(model, background=background, n_samples=n_samples, seed=seed)(x, w)
        return np.abs(estimate - exact).max()

    errors = [np.mean([error(n, seed) for seed in range(2)]) for n in (16, 64, 240)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.05
    enumerated = kernel_shap(model, background=background, n_samples=254)(x, w)
    assert_close(enumerated, exact, rtol64=1e-7, atol64=1e-8)


def test_shapley_value_sampling_is_efficient_reproducible_and_converges(rng):
    model, x, w, background = (
        angle_model(),
        rng.normal(size=4),
        rng.normal(size=4),
        rng.normal(size=(2, 4)),
    )
    exact = shapley_values(model, background=background)(x, w)
    sampled = lambda **o: shapley_value_sampling(model, background=background, **o)(x, w)
    few, delta = shapley_value_sampling(model, background=background, n_samples=3,
                                        return_convergence_delta=True)(x, w)  # fmt: skip
    assert_close(delta, 0.0, atol64=1e-10)  # each ordering telescopes: efficient for any n_samples
    np.testing.assert_array_equal(sampled(n_samples=3), few)  # seeded
    assert not np.allclose(sampled(n_samples=3, seed=1), few)
    error_few = np.abs(few - exact).max()
    for antithetic in (False, True):
        many = sampled(n_samples=2000, antithetic=antithetic)
        assert np.abs(many - exact).max() < min(0.02, error_few)


def test_shapley_value_sampling_is_unbiased():
    """Averaged over seeds, the linear map of 4 random orderings tends to the exact Shapley map
    (checked on the maps themselves: no circuit runs)."""
    exact = shapley_matrix(4)
    column = {tuple(z): j for j, z in enumerate(all_coalitions(4))}

    def dense(seed):
        coalitions, weights = ShapleyValueSampling(n_samples=4, seed=seed).design(4)
        out = np.zeros_like(exact)
        for z, weight in zip(coalitions, weights.T):
            out[:, column[tuple(z)]] += weight
        return out

    errors = [
        np.abs(np.mean([dense(s) for s in range(n)], axis=0) - exact).max() for n in (10, 1000)
    ]
    assert errors[1] < 0.02 and errors[1] < errors[0] / 4


# ---------------------------------------------------------------------------------------------
# LIME and feature ablation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("distance_mode", ["cosine", "euclidean"])
def test_lime_recovers_an_additive_model(distance_mode, rng):
    """``f = sum_i cos(x_i)`` is exactly linear in the masks: coefficients cos(x_i) - cos(b_i)."""
    model, x = additive_model(), rng.normal(size=4)
    coef = lime(model, distance_mode=distance_mode)(x, None)
    assert_close(coef, np.cos(x) - 1.0, rtol64=1e-7, atol64=1e-10)  # baseline 0
    b = rng.normal(size=4)
    coef = lime(model, baselines=b, n_samples=30, kernel_width=0.5, distance_mode=distance_mode)(
        x, None
    )
    assert_close(coef, np.cos(x) - np.cos(b), rtol64=1e-7, atol64=1e-10)
    grouped = lime(model, feature_mask=np.array([0, 0, 1, 1]), distance_mode=distance_mode)(x, None)
    pairs = (np.cos(x) - 1.0).reshape(2, 2).sum(axis=1)
    assert_close(grouped, np.repeat(pairs, 2), rtol64=1e-7, atol64=1e-10)


def test_lime_is_seeded_and_ridge_shrinks(rng):
    model, x, w = angle_model(), rng.normal(size=4), rng.normal(size=4)
    first = lime(model, seed=5)(x, w)
    np.testing.assert_array_equal(lime(model, seed=5)(x, w), first)
    assert not np.allclose(lime(model, seed=6)(x, w), first)  # not exactly linear: seed matters
    shrunk = lime(model, seed=5, alpha=10.0)(x, w)
    assert np.linalg.norm(shrunk) < np.linalg.norm(first)


def test_feature_ablation_is_the_direct_difference(rng):
    model, x, w = angle_model(), rng.normal(size=4), rng.normal(size=4)
    b = rng.normal(size=4)
    f_x = float(model(x, w))
    direct = [f_x - float(model(np.where(np.arange(4) == i, b, x), w)) for i in range(4)]
    assert_close(feature_ablation(model, baselines=b)(x, w), direct, rtol64=1e-7, atol64=1e-12)
    # features with the same id are ablated together and share the attribution
    grouped = feature_ablation(model, baselines=b, feature_mask=np.array([1, 0, 1, 0]))(x, w)
    together = [f_x - float(model(np.where(np.arange(4) % 2 == i, x, b), w)) for i in (1, 0)]
    assert_close(grouped, [together[0], together[1]] * 2, rtol64=1e-7, atol64=1e-12)
    # Captum's "mean" baseline
    data = rng.normal(size=(5, 4))
    mean = feature_ablation(model, baselines="mean", baseline_data=data)(x, w)
    assert_close(
        mean,
        feature_ablation(model, baselines=data.mean(axis=0))(x, w),
        rtol64=1e-7,
        atol64=1e-12,
    )


def test_random_attribution_is_seeded_and_runs_no_circuit(rng):
    model, x, w = angle_model(), rng.normal(size=4), rng.normal(size=4)
    explained = random_attribution(model, seed=3)
    with qml.Tracker(model.device) as tracker:
        scores = explained(x, w)
    assert tracker.totals.get("executions", 0) == 0 and explained.construct_batch(x, w) == []
    np.testing.assert_array_equal(scores, np.random.default_rng(3).uniform(size=4))
    assert not np.allclose(random_attribution(model, seed=4)(x, w), scores)


# ---------------------------------------------------------------------------------------------
# batches, outputs, stderr, tapes
# ---------------------------------------------------------------------------------------------


def test_number_of_circuits(rng):
    model, x, w, background = (
        angle_model(),
        rng.normal(size=4),
        rng.normal(size=4),
        rng.normal(size=(3, 4)),
    )
    count = lambda explained: len(explained.construct_batch(x, w))
    assert count(feature_ablation(model)) == 1 + 4
    assert count(shapley_values(model, background=background)) == (2**4 - 1) * 3 + 1
    grouped = shapley_values(model, background=background, feature_mask=np.array([0, 0, 1, 1]))
    assert count(grouped) == (2**2 - 1) * 3 + 1
    assert count(kernel_shap(model, background=background)) == (14 + 1) * 3 + 1  # enumerated
    z, _ = KernelShap(n_samples=6, seed=2).coalitions(4)
    assert (
        count(kernel_shap(model, background=background, n_samples=6, seed=2))
        == (len(np.unique(z, axis=0)) + 1) * 3 + 1
    )
    # one ordering: the empty coalition, 3 intermediate ones per row, then x itself
    assert count(shapley_value_sampling(model, background=background, n_samples=1)) == 3 + 3 * 3 + 1
    masks = np.random.default_rng(0).integers(0, 2, size=(6, 4))
    assert count(lime(model, n_samples=6)) == len(np.unique(masks, axis=0))
    # the ablation tapes are x and x with one feature at the baseline
    tapes = feature_ablation(model, baselines=7.0).construct_batch(x, w)
    angles = sorted(tuple(float(op.data[0]) for op in tape.operations[:4]) for tape in tapes)
    expected = sorted(map(tuple, np.vstack([x, np.where(np.eye(4) == 1, 7.0, x)])))
    assert_close(angles, expected, rtol64=1e-7, atol64=0)


def test_several_outputs_target_and_stderr(rng):
    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x):
        qml.RY(x[0], wires=0)
        qml.RY(x[1], wires=1)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.Z(1)), qml.probs(wires=0)

    x, background = rng.normal(size=2), rng.normal(size=(2, 2))
    phi, stderr = shapley_values(model, background=background, return_stderr=True)(x)
    assert phi.shape == (3, 2) and np.all(stderr == 0)
    assert_close(phi[1:].sum(axis=0), 0.0, atol64=1e-12)  # probabilities sum to 1
    assert_close(
        shapley_values(model, background=background, target=2)(x),
        phi[2],
        rtol64=1e-7,
        atol64=1e-12,
    )
    _, stderr = shapley_values(
        qml.set_shots(model, shots=50), background=background, return_stderr=True
    )(x)
    assert np.all(np.isfinite(stderr)) and np.all(stderr > 0)  # estimated with shots


def test_amplitude_tape_transform_matches_qnode(rng):
    model = amplitude_model(qml.device("default.qubit", wires=2), 2, interface="numpy")
    x, w, b = rng.normal(size=4), random_weights(rng, 2), rng.normal(size=4)
    expected = kernel_shap(model, background=b)(x, w)
    tape = qml.workflow.construct_tape(model)(x, w)  # starts with the prepared amplitude vector
    tapes, fn = kernel_shap(tape, background=b / np.linalg.norm(b))
    assert_close(fn(qml.execute(tapes, model.device)), expected, rtol64=1e-7, atol64=1e-10)


# ---------------------------------------------------------------------------------------------
# JAX transforms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, options",
    [
        (shapley_values, {"background": np.array([[0.3, -0.2], [1.0, 0.5]])}),
        (kernel_shap, {"background": np.array([[0.3, -0.2], [1.0, 0.5]])}),
        (shapley_value_sampling, {"baselines": 0.2, "n_samples": 5}),
        (feature_ablation, {"baselines": np.array([0.1, 0.4])}),
        (lime, {"n_samples": 8}),
        (random_attribution, {}),
    ],
)
def test_jit_of_vmap_matches_plain_calls(method, options, rng):
    model = angle_model(2, interface="jax")
    explained = method(model, **options)
    xs, w = jnp.array(rng.normal(size=(2, 2))), jnp.array(rng.normal(size=2))
    plain = np.stack([explained(x, w) for x in xs])
    batched = jax.jit(jax.vmap(explained, in_axes=(0, None)))(xs, w)
    assert_close(batched, plain, rtol64=1e-7, atol64=1e-10)


def test_jit_and_vmap_amplitude(rng):
    model = amplitude_model(qml.device("default.qubit", wires=2), 2)
    w, background = jnp.array(random_weights(rng, 2)), rng.normal(size=(1, 4))
    explained = shapley_values(model, background=background, feature_mask=np.array([0, 1, 1, 0]))
    xs = jnp.array(rng.normal(size=(2, 4)))
    plain = np.stack([explained(x, w) for x in xs])
    assert_close(jax.jit(explained)(xs[0], w), plain[0], rtol64=1e-7, atol64=1e-10)
    assert_close(
        jax.jit(jax.vmap(explained, in_axes=(0, None)))(xs, w), plain, rtol64=1e-7, atol64=1e-10
    )


def test_vmap_without_jit(rng):
    explained = feature_ablation(angle_model(2, interface="jax"), baselines=0.5)
    xs, w = jnp.array(rng.normal(size=(2, 2))), jnp.array(rng.normal(size=2))
    plain = np.stack([explained(x, w) for x in xs])
    assert_close(jax.vmap(explained, in_axes=(0, None))(xs, w), plain, rtol64=1e-7, atol64=1e-10)


# ---------------------------------------------------------------------------------------------
# validation: clear errors before any circuit runs
# ---------------------------------------------------------------------------------------------


def _wide_model():
    """13 features on 2 qubits."""

    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x):
        for i in range(13):
            qml.RY(x[i], wires=i % 2)
        return qml.expval(qml.Z(0))

    return model


@pytest.mark.parametrize(
    "make, error, match",
    [
        (
            lambda m: shapley_values(m, background=np.ones((2, 3))),
            ValueError,
            "background has shape",
        ),
        (lambda m: kernel_shap(m, background=np.ones(5)), ValueError, "background has shape"),
        (lambda m: shapley_values(m, background=np.ones((0, 4))), ValueError, "empty"),
        (
            lambda m: shapley_values(m, background=np.array([[1.0, np.nan, 0, 0]])),
            ValueError,
            "NaN",
        ),
        (lambda m: shapley_values(m, background=np.array(["a"] * 4)), TypeError, "numeric"),
        (lambda m: shapley_values(m, background=0.0, baselines=0.0), TypeError, "not both"),
        (lambda m: kernel_shap(m, n_samples=0), ValueError, "n_samples"),
        (lambda m: shapley_value_sampling(m, n_samples=-2), ValueError, "n_samples"),
        (lambda m: lime(m, n_samples=1.5), ValueError, "n_samples"),
        (lambda m: lime(m, kernel_width=0.0), ValueError, "kernel_width"),
        (lambda m: lime(m, distance_mode="manhattan"), ValueError, "distance_mode"),
        (lambda m: lime(m, alpha=-1.0), ValueError, "alpha"),
        (lambda m: kernel_shap(m, seed=0.5), TypeError, "seed"),
        (lambda m: shapley_value_sampling(m, antithetic=1), TypeError, "antithetic"),
        (
            lambda m: feature_ablation(m, feature_mask=np.array([0, 1, 1])),
            ValueError,
            "feature_mask has shape",
        ),
        (
            lambda m: lime(m, feature_mask=np.zeros((2, 2), int)),
            ValueError,
            "feature_mask has shape",
        ),
        (lambda m: shapley_values(m, feature_mask=np.array([0.0, 1, 1, 2])), TypeError, "integer"),
        (lambda m: shapley_values(m, feature_mask=np.arange(13)), ValueError, "at most 12"),
        (lambda m: feature_ablation(m, baselines=np.ones(3)), ValueError, "baseline has shape"),
        (lambda m: feature_ablation(m, return_convergence_delta=True), ValueError, "not defined"),
        (lambda m: lime(m, return_convergence_delta=True), ValueError, "not defined"),
        (lambda m: random_attribution(m, return_convergence_delta=True), ValueError, "not defined"),
    ],
)
def test_validation_errors(make, error, match, rng):
    model, x, w = angle_model(), rng.normal(size=4), rng.normal(size=4)
    with qml.Tracker(model.device) as tracker, pytest.raises(error, match=match):
        make(model)(x, w)
    assert tracker.totals.get("executions", 0) == 0


def test_exact_shapley_refuses_13_features():
    model = _wide_model()
    with (
        qml.Tracker(model.device) as tracker,
        pytest.raises(ValueError, match="2\\*\\*13 coalitions"),
    ):
        shapley_values(model)(np.zeros(13))
    assert tracker.totals.get("executions", 0) == 0
    # grouped into 2 features the game is small again
    x = np.full(13, 0.1)
    phi = shapley_values(model, feature_mask=np.arange(13) % 2)(x)
    assert phi.shape == (13,)
    assert_close(phi[::2], phi[0], rtol64=1e-7, atol64=0)
    assert_close(phi[1::2], phi[1], rtol64=1e-7, atol64=0)
    assert_close(phi[0] + phi[1], model(x) - model(np.zeros(13)), rtol64=1e-5, atol64=1e-12)
