"""Attribution metrics against hand-computed values on tiny models (no QNode needed)."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from pennylane_xqml.metrics import (
    completeness_delta,
    evaluate_insertion_deletion,
    infidelity,
    insertion_deletion,
    make_baseline,
    method_agreement,
    opposite_class_mean_baseline,
    sensitivity_max,
    sparseness,
    spearman,
    stability,
)


class Counting:
    """``predict`` that depends on feature 0 only: P(class 1) = x_0; records its batch shapes."""

    def __init__(self, scalar=False):
        self.calls, self.scalar = [], scalar

    def __call__(self, X):
        X = np.asarray(X)
        self.calls.append(X.shape)
        p = X.reshape(len(X), -1)[:, 0]
        return p if self.scalar else np.stack([1 - p, p], axis=1)


D = 4
X_ONES, ZEROS = np.ones(D), np.zeros(D)
TRUE = np.array([1.0, 0.1, 0.2, 0.3])  # feature 0 ranked first
REVERSED = np.array([-1.0, 0.1, 0.2, 0.3])  # feature 0 ranked last


# ---------------------------------------------------------------------------------------------
# insertion / deletion
# ---------------------------------------------------------------------------------------------


def test_true_ranking_reaches_the_maximum():
    predict = Counting()
    r = insertion_deletion(predict, X_ONES, TRUE, ZEROS)
    assert predict.calls == [(2 * (D + 1), D)]  # one call, every point of both curves
    assert r["target"] == 1
    np.testing.assert_allclose(r["fractions"], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(r["deletion_curve"], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(r["insertion_curve"], [0, 1, 1, 1, 1])
    assert r["audc"] == pytest.approx(0.125)  # the first trapezoid only
    assert r["auci"] == pytest.approx(0.875)
    assert r["auc_difference"] == pytest.approx(1 - 1 / D)  # the maximum for d steps


def test_reversed_ranking_is_negative():
    r = insertion_deletion(Counting(), X_ONES, REVERSED, ZEROS)
    np.testing.assert_allclose(r["deletion_curve"], [1, 1, 1, 1, 0])
    np.testing.assert_allclose(r["insertion_curve"], [0, 0, 0, 0, 1])
    assert r["auc_difference"] == pytest.approx(-(1 - 1 / D))


def test_random_rankings_average_zero():
    # over all permutations exactly 0: position k of feature 0 gives 1.25 - 0.5 k
    diffs = [
        insertion_deletion(Counting(), X_ONES, -np.array(p, dtype=float), ZEROS)["auc_difference"]
        for p in itertools.permutations(range(D))
    ]
    assert np.mean(diffs) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    sampled = [
        insertion_deletion(Counting(), X_ONES, rng.normal(size=D), ZEROS)["auc_difference"]
        for _ in range(300)
    ]
    assert abs(np.mean(sampled)) < 0.1


def test_n_steps_target_scalar_and_shapes():
    r = insertion_deletion(Counting(), X_ONES, TRUE, 0.0, n_steps=2)  # scalar baseline
    np.testing.assert_allclose(r["fractions"], [0, 0.5, 1])
    np.testing.assert_allclose(r["deletion_curve"], [1, 0, 0])
    # an explicit target tracks the other class
    r0 = insertion_deletion(Counting(), X_ONES, TRUE, ZEROS, target=0)
    np.testing.assert_allclose(r0["deletion_curve"], [0, 1, 1, 1, 1])
    assert r0["auc_difference"] == pytest.approx(-0.75)
    # scalar-output model
    rs = insertion_deletion(Counting(scalar=True), X_ONES, TRUE, ZEROS)
    assert rs["auc_difference"] == pytest.approx(0.75)
    # inputs of any shape (2 x 2 "image"), JAX arrays
    predict = Counting()
    ri = insertion_deletion(
        predict, jnp.ones((2, 2)), jnp.asarray(TRUE.reshape(2, 2)), np.zeros((2, 2))
    )
    assert predict.calls == [(10, 2, 2)]
    assert ri["auc_difference"] == pytest.approx(0.75)
    # the baseline's values are used, not zeros
    b = np.full(D, 0.5)
    rb = insertion_deletion(Counting(), X_ONES, TRUE, b)
    np.testing.assert_allclose(rb["deletion_curve"], [1, 0.5, 0.5, 0.5, 0.5])


def test_trapezoid_on_a_nonlinear_curve():
    # P(class 1) = mean of the features: both curves linear in the fraction
    predict = lambda X: np.stack([1 - X.mean(1), X.mean(1)], axis=1)
    r = insertion_deletion(predict, X_ONES, TRUE, ZEROS)
    assert r["auci"] == pytest.approx(0.5) and r["audc"] == pytest.approx(0.5)
    assert r["auc_difference"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"attributions": np.ones(3)}, "shape"),
        ({"baseline": np.zeros(5)}, "shape"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 5}, "n_steps"),
        ({"target": 2}, "target"),
        ({"x": np.array([])}, "empty"),
        ({"x": np.array([1.0, np.nan, 0, 0])}, "NaN"),
    ],
)
def test_insertion_deletion_errors(kwargs, match):
    args = {"predict": Counting(), "x": X_ONES, "attributions": TRUE, "baseline": ZEROS} | kwargs
    with pytest.raises(ValueError, match=match):
        insertion_deletion(**args)


def test_bad_predict_outputs():
    with pytest.raises(ValueError, match="must return shape"):
        insertion_deletion(lambda X: np.zeros(3), X_ONES, TRUE, ZEROS)
    with pytest.raises(ValueError, match="target must be None"):
        insertion_deletion(Counting(scalar=True), X_ONES, TRUE, ZEROS, target=1)


# ---------------------------------------------------------------------------------------------
# baselines and the data-set average
# ---------------------------------------------------------------------------------------------

XS = np.array(
    [[0.9, 0.2, 0.1, 0.0], [0.8, 0.4, 0.3, 0.2], [0.1, 0.6, 0.5, 0.4], [0.2, 0.8, 0.7, 0.6]]
)
YS = np.array([1, 1, 0, 0])


def test_baselines():
    np.testing.assert_allclose(opposite_class_mean_baseline(XS, YS, 1), [0.15, 0.7, 0.6, 0.5])
    np.testing.assert_allclose(opposite_class_mean_baseline(XS, YS, 0), [0.85, 0.3, 0.2, 0.1])
    np.testing.assert_allclose(
        make_baseline("opposite_class_mean", XS, YS, 1), [0.15, 0.7, 0.6, 0.5]
    )
    np.testing.assert_allclose(make_baseline("mean", XS), [0.5, 0.5, 0.4, 0.3])
    np.testing.assert_allclose(make_baseline("zeros", XS), np.zeros(4))
    np.testing.assert_allclose(make_baseline([1.0, 2.0]), [1.0, 2.0])
    with pytest.raises(ValueError, match="Unknown baseline"):
        make_baseline("median", XS)
    with pytest.raises(ValueError, match="needs X"):
        make_baseline("mean")
    with pytest.raises(ValueError, match="needs the labels"):
        make_baseline("opposite_class_mean", XS)
    with pytest.raises(ValueError, match="other than"):
        opposite_class_mean_baseline(XS, np.ones(4), 1)
    with pytest.raises(ValueError, match="y must have shape"):
        opposite_class_mean_baseline(XS, [0, 1], 1)


def test_evaluate_matches_single_instances_in_one_call():
    attributions = np.tile(TRUE, (4, 1))
    predict = Counting()
    r = evaluate_insertion_deletion(predict, XS, attributions, y=YS)
    assert predict.calls == [(4 * 2 * (D + 1), D)]
    for i in range(4):
        single = insertion_deletion(
            Counting(), XS[i], attributions[i], opposite_class_mean_baseline(XS, YS, YS[i])
        )
        assert r["auci_per_instance"][i] == pytest.approx(single["auci"])
        assert r["audc_per_instance"][i] == pytest.approx(single["audc"])
        assert r["targets"][i] == single["target"]
    assert r["auc_difference"] == pytest.approx(
        np.mean(r["auci_per_instance"] - r["audc_per_instance"])
    )
    assert r["insertion_curve"].shape == r["deletion_curve"].shape == (D + 1,)
    np.testing.assert_allclose(r["baselines"][0], [0.15, 0.7, 0.6, 0.5])
    # feature 0 decides the class: the true ranking beats the reversed one
    reversed_ = evaluate_insertion_deletion(Counting(), XS, np.tile(REVERSED, (4, 1)), y=YS)
    assert r["auc_difference"] > 0.3 > -0.3 > reversed_["auc_difference"]


def test_evaluate_without_labels_and_other_baselines():
    attributions = np.tile(TRUE, (4, 1))
    predict = Counting()
    r = evaluate_insertion_deletion(predict, XS, attributions)  # labels = predictions (= YS here)
    assert len(predict.calls) == 2
    np.testing.assert_allclose(
        r["auci"], evaluate_insertion_deletion(Counting(), XS, attributions, y=YS)["auci"]
    )
    # background data with and without labels
    Xb, yb = XS[:2], np.array([0, 1])
    rb = evaluate_insertion_deletion(
        Counting(), XS, attributions, y=YS, X_background=Xb, y_background=yb
    )
    np.testing.assert_allclose(rb["baselines"][0], Xb[0])  # instance 0 has label 1
    rp = evaluate_insertion_deletion(Counting(), XS, attributions, y=YS, X_background=XS[1:3])
    np.testing.assert_allclose(rp["baselines"][0], XS[2])  # background labels predicted: 1, 0
    for kind, expected in [("zeros", np.zeros(4)), ("mean", XS.mean(0))]:
        rk = evaluate_insertion_deletion(Counting(), XS, attributions, baseline=kind)
        np.testing.assert_allclose(rk["baselines"], np.tile(expected, (4, 1)))
    per_instance = np.zeros_like(XS)
    ra = evaluate_insertion_deletion(Counting(), XS, attributions, baseline=per_instance, target=1)
    np.testing.assert_allclose(ra["targets"], 1)
    np.testing.assert_allclose(ra["auci_per_instance"], 0.75 * XS[:, 0] + 0.125 * XS[:, 0])
    rs = evaluate_insertion_deletion(Counting(scalar=True), XS, attributions, baseline=0.0)
    np.testing.assert_allclose(rs["auci"], ra["auci"])


def test_evaluate_errors():
    A = np.tile(TRUE, (4, 1))
    with pytest.raises(ValueError, match="shape"):
        evaluate_insertion_deletion(Counting(), XS, A[:3])
    with pytest.raises(ValueError, match="y must have shape"):
        evaluate_insertion_deletion(Counting(), XS, A, y=YS[:3])
    with pytest.raises(ValueError, match="Unknown baseline"):
        evaluate_insertion_deletion(Counting(), XS, A, baseline="nope")
    with pytest.raises(ValueError, match="baseline must be"):
        evaluate_insertion_deletion(Counting(), XS, A, baseline=np.zeros(3))
    with pytest.raises(ValueError, match="n_classes"):
        evaluate_insertion_deletion(Counting(scalar=True), XS, A)
    with pytest.raises(ValueError, match="target"):
        evaluate_insertion_deletion(Counting(), XS, A, y=YS, target=3)
    with pytest.raises(ValueError, match="X_background"):
        evaluate_insertion_deletion(Counting(), XS, A, X_background=np.zeros((2, 3)))


# ---------------------------------------------------------------------------------------------
# infidelity and sensitivity
# ---------------------------------------------------------------------------------------------

W = np.array([1.0, -2.0])
LINEAR = lambda X: np.asarray(X) @ W
UNIT = lambda rng, x, n: np.eye(2)


def test_infidelity_hand_values():
    x = np.array([0.5, 0.5])
    assert infidelity(LINEAR, x, W) == pytest.approx(0.0, abs=1e-20)  # exact for a linear model
    assert infidelity(
        LINEAR, x, np.zeros(2), perturbation=UNIT, n_perturb_samples=2
    ) == pytest.approx(2.5)
    # 3 w predicts 3 w_i for a true change of w_i: mean((2 w_i)^2) = 4 * 2.5
    assert infidelity(LINEAR, x, 3 * W, perturbation=UNIT, n_perturb_samples=2) == pytest.approx(
        10.0
    )
    assert infidelity(
        LINEAR, x, 3 * W, perturbation=UNIT, n_perturb_samples=2, normalize=True
    ) == pytest.approx(0.0)
    # the Gaussian perturbation as documented
    a = np.array([0.3, 0.1])
    I = np.random.default_rng(7).normal(0, 0.2, size=(5, 2))
    expected = np.mean((I @ a - I @ W) ** 2)
    got = infidelity(LINEAR, x, a, n_perturb_samples=5, noise_scale=0.2, seed=7)
    assert got == pytest.approx(expected)


def test_infidelity_classes_and_one_call():
    calls = []

    def predict(X):
        calls.append(np.shape(X))
        s = np.asarray(X) @ W
        return np.stack([-s, s], axis=1)

    x = np.array([0.5, 0.1])  # w . x = 0.3 > 0 -> class 1
    assert infidelity(predict, x, W, n_perturb_samples=8) == pytest.approx(0.0, abs=1e-20)
    assert infidelity(predict, x, -W, n_perturb_samples=8, target=0) == pytest.approx(
        0.0, abs=1e-20
    )
    assert calls == [(9, 2), (9, 2)]


def test_infidelity_errors():
    x = np.zeros(2)
    with pytest.raises(ValueError, match="n_perturb_samples"):
        infidelity(LINEAR, x, W, n_perturb_samples=0)
    with pytest.raises(ValueError, match="noise_scale"):
        infidelity(LINEAR, x, W, noise_scale=0)
    with pytest.raises(ValueError, match="perturbation"):
        infidelity(LINEAR, x, W, perturbation="square")
    with pytest.raises(ValueError, match="must return shape"):
        infidelity(LINEAR, x, W, perturbation=UNIT, n_perturb_samples=3)
    with pytest.raises(ValueError, match="shape"):
        infidelity(LINEAR, x, np.ones(3))


def test_sensitivity_max_hand_values():
    x = np.array([3.0, 4.0])  # norm 5
    deltas = np.random.default_rng(3).uniform(-0.1, 0.1, size=(6, 2))
    expected = np.max(np.linalg.norm(deltas, axis=1)) / 5
    assert sensitivity_max(lambda v: v, x, radius=0.1, n_samples=6, seed=3) == pytest.approx(
        expected
    )
    assert sensitivity_max(lambda v: 7 * v, x, radius=0.1, n_samples=6, seed=3) == pytest.approx(
        expected
    )
    assert sensitivity_max(lambda v: np.ones(2), x) == 0.0
    # a zero explanation at x divides by 1 (Captum)
    assert sensitivity_max(lambda v: v - x, x, radius=0.1, n_samples=6, seed=3) == pytest.approx(
        5 * expected
    )
    assert sensitivity_max(lambda v: v, x, radius=0.0) == 0.0


def test_sensitivity_errors():
    with pytest.raises(ValueError, match="n_samples"):
        sensitivity_max(lambda v: v, np.ones(2), n_samples=0)
    with pytest.raises(ValueError, match="radius"):
        sensitivity_max(lambda v: v, np.ones(2), radius=-1)
    with pytest.raises(ValueError, match="shape"):
        sensitivity_max(lambda v: v if v[0] == 1 else v[:1], np.ones(2))


# ---------------------------------------------------------------------------------------------
# completeness, sparseness
# ---------------------------------------------------------------------------------------------


def test_completeness_delta():
    assert completeness_delta(np.array([0.25, 0.5]), 1.0, 0.0) == pytest.approx(-0.25)
    assert completeness_delta(np.array([[0.5, 0.5], [0.25, 0.25]]), 1.5, 0.5) == pytest.approx(0.5)
    np.testing.assert_allclose(
        completeness_delta(
            np.array([[1.0, 1.0], [0.5, 0.0]]), np.array([2.0, 1.0]), np.array([0.0, 0.5])
        ),
        [0.0, 0.0],
    )
    with pytest.raises(ValueError, match="batch"):
        completeness_delta(np.ones(2), np.ones(2), 0.0)
    with pytest.raises(ValueError, match="batch"):
        completeness_delta(np.ones((3, 2)), np.ones(2), 0.0)
    with pytest.raises(ValueError, match="empty"):
        completeness_delta(np.array([]), 1.0, 0.0)


def _quantus_sparseness(a):
    """Quantus' implementation (it adds 1e-7 before sorting)."""
    a = np.abs(np.asarray(a, dtype=float).ravel()) + 1e-7
    a = np.sort(a)
    return np.sum((2 * np.arange(1, a.shape[0] + 1) - a.shape[0] - 1) * a) / (
        a.shape[0] * np.sum(a)
    )


def test_sparseness_hand_values():
    for d in range(2, 7):
        one_hot = np.zeros(d)
        one_hot[d // 2] = -3.0
        assert sparseness(one_hot) == pytest.approx(1 - 1 / d)
        assert sparseness(np.full(d, 0.7)) == pytest.approx(0.0, abs=1e-15)
    # sorted |a| = 1, 2, 3: (-2 * 1 + 0 * 2 + 2 * 3) / (3 * 6)
    assert sparseness(np.array([3.0, -1.0, 2.0])) == pytest.approx(4 / 18)
    assert sparseness(np.zeros(5)) == 0.0
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 3))
    assert sparseness(a) == pytest.approx(_quantus_sparseness(a), abs=1e-6)
    np.testing.assert_allclose(
        sparseness(np.array([[1.0, -1.0], [0.0, 2.0]]), batch=True), [0.0, 0.5]
    )
    with pytest.raises(ValueError, match="empty"):
        sparseness([])
    with pytest.raises(ValueError, match="dimension"):
        sparseness(np.ones(3), batch=True)


# ---------------------------------------------------------------------------------------------
# rank agreement
# ---------------------------------------------------------------------------------------------


def test_spearman_hand_values_and_scipy():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # ranks 1,2,3,4 vs 1,3,2,4: 1 - 6 * 2 / (4 * 15)
    assert spearman([0.1, 0.2, 0.3, 0.4], [0.1, 0.3, 0.2, 0.4]) == pytest.approx(0.8)
    assert spearman([1.0, 1.0], [2.0, 2.0]) == 1.0
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for _ in range(5):
        a, b = rng.integers(0, 4, size=9).astype(float), rng.normal(size=9)  # ties in a
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)


def test_stability():
    run = np.array([0.3, -0.2, 0.9, 0.1])
    assert stability(np.tile(run, (4, 1))) == 1.0
    assert stability(np.stack([run, 2 * run + 1])) == 1.0  # same ranking
    assert stability(np.stack([run, -run])) == -1.0
    runs = np.array([[0.1, 0.7, 0.2], [0.0, 0.9, 0.3], [0.2, 0.6, 0.1]])
    assert stability(runs) == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert stability(np.stack([run, -run]), absolute=True) == 1.0
    # batch: (runs, instances, features)
    batch = np.stack([np.stack([run, run]), np.stack([run, -run])])
    assert stability(batch, batch=True) == pytest.approx((1 + -1) / 2)
    with pytest.raises(ValueError, match="at least 2 runs"):
        stability(run[None])
    with pytest.raises(ValueError, match="dimension"):
        stability(run)


def test_method_agreement():
    a = np.array([0.9, -0.5, 0.1, 0.0])
    b = np.array([0.8, 0.1, -0.6, 0.0])
    r = method_agreement(a, b, k=2)  # |a| ranks 4 3 2 1, |b| ranks 4 2 3 1
    assert r == {"spearman": pytest.approx(0.8), "top_k_overlap": 0.5, "k": 2}
    assert method_agreement(a, b)["k"] == 1  # ceil(4 / 4)
    assert method_agreement(a, b)["top_k_overlap"] == 1.0
    signed = method_agreement(a, b, k=2, absolute=False)  # a: 0, 2 on top; b: 0, 1
    assert signed["top_k_overlap"] == 0.5
    assert method_agreement(a, a, k=4) == {"spearman": 1.0, "top_k_overlap": 1.0, "k": 4}
    rb = method_agreement(np.stack([a, a]), np.stack([a, b]), k=2, batch=True)
    assert rb["spearman"] == pytest.approx(0.9) and rb["top_k_overlap"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="k must be"):
        method_agreement(a, b, k=5)
    with pytest.raises(ValueError, match="positive integer"):
        method_agreement(a, b, k=0)
    with pytest.raises(ValueError, match="shape"):
        method_agreement(a, b[:3])
