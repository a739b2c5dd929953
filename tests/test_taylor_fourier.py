"""Taylor-Fourier relevance: shift derivatives, exactness, cross terms, spectra, root search,
JAX transforms and refusals before any circuit runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from pennylane_xqml.methods.taylor_fourier import taylor_fourier
from pennylane_xqml.testing import assert_close

N = 3
DEV = qml.device("default.qubit", wires=N)


@qml.qnode(DEV)
def entangled(x, w):
    """Three features, one RY each, with interactions through the entangling layers."""
    qml.AngleEmbedding(x, wires=range(N), rotation="Y")
    qml.StronglyEntanglingLayers(w, wires=range(N))
    return qml.expval(qml.Z(0) @ qml.Z(1))


@qml.qnode(qml.device("default.qubit", wires=2))
def small(x, w):
    """Two features (RX, PhaseShift between Hadamards), used for the JAX transforms."""
    qml.RX(x[0], wires=0)
    qml.Hadamard(wires=1)
    qml.PhaseShift(x[1], wires=1)
    qml.Hadamard(wires=1)
    qml.CNOT(wires=[0, 1])
    qml.RY(w[0], wires=1)
    return qml.expval(qml.Z(1))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return jnp.array(rng.uniform(0, 2, N)), jnp.array(rng.normal(size=(1, N, 3)))


def _single_feature_differences(model, x, root, *args):
    """``f(x̃ + δ_i e_i) - f(x̃)`` for each feature, from plain model calls."""
    f_root = model(root, *args)
    out = []
    for i in range(len(x)):
        point = root.at[i].set(x[i]) if isinstance(root, jax.Array) else _set(root, i, x[i])
        out.append(model(point, *args) - f_root)
    return np.array(out)


def _set(a, i, v):
    a = np.array(a, dtype=float)
    a[i] = v
    return a


def test_shift_derivatives_equal_autodiff(data):
    """At δ = ±π/2 the relevances are ±∂f + ∂²f: recover both and compare with JAX."""
    _, w = data
    root = jnp.array([0.3, -0.8, 1.4])
    explain = taylor_fourier(entangled, root=root)
    plus, minus = explain(root + np.pi / 2, w), explain(root - np.pi / 2, w)
    first, second = (plus - minus) / 2, (plus + minus) / 2
    grad = jax.jit(jax.grad(entangled))(root, w)
    hessian_diagonal = jnp.diag(jax.jit(jax.hessian(entangled))(root, w))
    assert_close(first, grad, rtol64=1e-7, atol64=1e-8)
    assert_close(second, hessian_diagonal, rtol64=1e-7, atol64=1e-8)


def test_one_feature_model_is_exact():
    @qml.qnode(qml.device("default.qubit", wires=1))
    def model(x, w):
        qml.RX(w, wires=0)
        qml.RY(x[0], wires=0)
        return qml.expval(qml.Z(0) + 0.5 * qml.X(0))

    x, w = np.array([1.3]), 0.4
    for root in (np.array([-0.2]), "search"):
        explain = taylor_fourier(model, root=root, root_tol=1e-13, return_convergence_delta=True)
        relevance, delta = explain(x, w)
        assert_close(delta, 0.0, rtol64=0, atol64=1e-10)
        if isinstance(root, str):  # at a root the relevance is the whole output
            assert_close(relevance[0], model(x, w), rtol64=0, atol64=1e-10)
        else:
            assert_close(relevance[0], model(x, w) - model(root, w), rtol64=0, atol64=1e-10)


def test_residual_is_the_cross_terms(data):
    x, w = data
    root = jnp.array([0.1, 0.2, -0.3])
    relevance, delta = taylor_fourier(entangled, root=root, return_convergence_delta=True)(x, w)
    singles = _single_feature_differences(entangled, x, root, w)
    assert_close(relevance, singles, rtol64=1e-7, atol64=1e-10)  # all-order single-feature sums
    cross = entangled(x, w) - entangled(root, w) - singles.sum()
    assert abs(cross) > 1e-3  # the model has interactions
    assert_close(delta, -cross, rtol64=0, atol64=1e-10)  # delta = Σ R - (f(x) - f(root))


@qml.qnode(qml.device("default.qubit", wires=2))
def reuploading(x):
    """Feature 0 enters as RY(2 x_0); feature 1 is encoded twice (frequencies 1 and 2)."""
    qml.RY(2 * x[0], wires=0)
    qml.RX(x[1], wires=1)
    qml.CNOT(wires=[0, 1])
    qml.RX(x[1], wires=1)
    qml.RY(0.7, wires=0)
    return qml.expval(qml.Z(0) @ qml.Z(1) + 0.3 * qml.Y(1))


def test_spectrum_generalisation_is_exact():
    x, root = np.array([0.9, -1.1]), np.array([0.2, 0.4])
    spectrum = {0: [2], 1: [1, 2]}
    explain = taylor_fourier(
        reuploading, root=root, spectrum=spectrum, return_convergence_delta=True
    )
    relevance, delta = explain(x)
    singles = _single_feature_differences(reuploading, x, root)
    assert_close(relevance, singles, rtol64=1e-7, atol64=1e-10)
    cross = reuploading(x) - reuploading(root) - singles.sum()
    assert_close(delta, -cross, rtol64=0, atol64=1e-10)  # delta = Σ R - (f(x) - f(root))
    # one list for every feature ([1, 2] also covers RY(2x)'s frequency 2)
    shared = taylor_fourier(reuploading, root=root, spectrum=[1, 2])(x)
    assert_close(shared, singles, rtol64=1e-7, atol64=1e-10)


def test_spectrum_one_equals_closed_form(data):
    x, w = data
    root = jnp.array([0.1, 0.2, -0.3])
    closed = taylor_fourier(entangled, root=root)(x, w)
    reconstructed = taylor_fourier(entangled, root=root, spectrum=[1.0])(x, w)
    assert_close(closed, reconstructed, rtol64=1e-7, atol64=1e-10)


def test_root_search_lands_on_a_root(data):
    x, w = data
    relevance, delta = taylor_fourier(entangled, return_convergence_delta=True)(x, w)
    f_root = entangled(x, w) - np.sum(relevance) + delta
    assert_close(f_root, 0.0, rtol64=0, atol64=1e-8)
    assert abs(np.sum(relevance)) > 0.01  # x itself was not a root


def test_root_search_per_output():
    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x):
        qml.RY(x[0], wires=0)
        qml.RX(x[1], wires=1)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.Z(0)), qml.expval(qml.Z(1))

    x = np.array([0.4, 0.6])
    relevance, delta = taylor_fourier(model, return_convergence_delta=True)(x)
    assert relevance.shape == (2, 2)
    outputs = np.array(model(x))
    f_roots = outputs - relevance.sum(axis=1) + delta
    assert_close(f_roots, 0.0, rtol64=1e-7, atol64=1e-8)
    # one output at a time
    first = taylor_fourier(model, target=0)(x)
    assert_close(first, relevance[0], rtol64=1e-7, atol64=1e-12)


def test_root_search_failure_is_reported():
    @qml.qnode(qml.device("default.qubit", wires=1))
    def positive(x):  # f = 0.75 + 0.25 cos(x) > 0 has no root
        qml.RY(x[0], wires=0)
        return qml.expval(0.25 * qml.Z(0) + 0.75 * qml.Identity(0))

    with pytest.raises(ValueError, match='root="search"'):
        taylor_fourier(positive, root_steps=5)(np.array([0.3]))


@pytest.mark.slow
@pytest.mark.parametrize("root", [jnp.array([0.5, -0.2]), "search"])
def test_jit_and_vmap_agree_with_plain_calls(root):
    xs, w = jnp.array([[0.3, 1.1], [1.4, -0.5]]), jnp.array([0.8])
    explain = taylor_fourier(small, root=root, return_convergence_delta=True)
    plain = [explain(x, w) for x in xs]
    jitted = jax.jit(explain)(xs[0], w)
    assert_close(jitted[0], plain[0][0], rtol64=1e-7, atol64=1e-10)
    assert_close(jitted[1], plain[0][1], rtol64=1e-7, atol64=1e-10)
    mapped, deltas = jax.vmap(explain, in_axes=(0, None))(xs, w)
    assert_close(mapped, np.stack([p[0] for p in plain]), rtol64=1e-7, atol64=1e-10)
    assert_close(deltas, [p[1] for p in plain], rtol64=1e-7, atol64=1e-10)


def test_traced_search_that_fails_gives_nan():
    @qml.qnode(qml.device("default.qubit", wires=1))
    def positive(x):
        qml.RY(x[0], wires=0)
        return qml.expval(0.25 * qml.Z(0) + 0.75 * qml.Identity(0))

    relevance = jax.jit(taylor_fourier(positive, root_steps=3))(jnp.array([0.3]))
    assert np.all(np.isnan(relevance))


def test_shots_give_standard_errors():
    dev = qml.device("default.qubit", wires=1, seed=11)

    @qml.qnode(dev)
    def model(x):
        qml.RY(x[0], wires=0)
        return qml.expval(qml.Z(0))

    x, root = np.array([1.0]), np.array([np.pi / 2])
    estimate, stderr = taylor_fourier(
        qml.set_shots(model, shots=4000), root=root, return_stderr=True
    )(x)
    assert stderr[0] > 0
    assert abs(estimate[0] - np.cos(1.0)) < 5 * stderr[0]


# ---------------------------------------------------------------------------------------------
# refusals: clear errors, no circuit executed
# ---------------------------------------------------------------------------------------------


def _twice(x):
    qml.RY(x[0], wires=0)
    qml.RY(x[0], wires=1)
    qml.RX(x[1], wires=1)
    return qml.expval(qml.Z(0) @ qml.Z(1))


def _pi_slope(x):
    qml.RY(np.pi * x[0], wires=0)
    qml.RX(x[1], wires=1)
    return qml.expval(qml.Z(0) @ qml.Z(1))


def _amplitude(x):
    qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
    return qml.expval(qml.Z(0))


def _controlled(x):  # CRX has the frequencies (0.5, 1)
    qml.Hadamard(wires=0)
    qml.CRX(x[0], wires=[0, 1])
    qml.RY(x[1], wires=1)
    return qml.expval(qml.Z(1))


def _iqp(x):  # products x_i x_j: not linear in a feature
    qml.IQPEmbedding(x, wires=range(2))
    return qml.expval(qml.X(0) @ qml.X(1))


@pytest.mark.parametrize(
    "circuit, x, match",
    [
        (_twice, np.array([0.3, 0.2]), "Feature 0 is encoded 2 times"),
        (_pi_slope, np.array([0.3, 0.2]), "slope 3.14159"),
        (_amplitude, np.array([0.3, 0.2, 0.1, 0.5]), "integrated_gradients"),
        (_controlled, np.array([0.3, 0.2]), "frequencies \\(0.5, 1.0\\)"),
        (_iqp, np.array([0.3, 0.2]), "nonlinearly"),
    ],
)
def test_unsupported_models_are_refused_before_running(circuit, x, match):
    dev = qml.device("default.qubit", wires=2)
    model = qml.QNode(circuit, dev)
    with qml.Tracker(dev) as tracker, pytest.raises(ValueError, match=match):
        taylor_fourier(model, root=np.zeros_like(x))(x)
    with qml.Tracker(dev) as tracker_search, pytest.raises(ValueError, match=match):
        taylor_fourier(model)(x)  # the search would run circuits: the check comes first
    assert tracker.totals.get("executions", 0) == 0
    assert tracker_search.totals.get("executions", 0) == 0


def test_spectrum_lifts_the_refusals():
    dev = qml.device("default.qubit", wires=2)
    x, root = np.array([0.3, 0.2]), np.array([0.1, -0.4])
    model = qml.QNode(_pi_slope, dev)
    relevance = taylor_fourier(model, root=root, spectrum={0: [np.pi]})(x)
    assert_close(relevance, _single_feature_differences(model, x, root), rtol64=1e-7, atol64=1e-10)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"root": "nearest"}, ValueError, "Unknown root"),
        ({"root": [0.0, np.nan]}, ValueError, "NaN"),
        ({"spectrum": "one"}, TypeError, "spectrum"),
        ({"spectrum": {"a": [1]}}, TypeError, "spectrum keys"),
        ({"root_steps": 0}, ValueError, "root_steps"),
        ({"root_tol": -1.0}, ValueError, "root_tol"),
    ],
)
def test_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        taylor_fourier(small, **options)


def test_bad_root_shape_and_spectrum_index():
    dev = small.device
    x, w = jnp.array([0.3, 0.2]), jnp.array([0.1])
    with qml.Tracker(dev) as tracker:
        with pytest.raises(ValueError, match="root has shape"):
            taylor_fourier(small, root=np.zeros(3))(x, w)
        with pytest.raises(ValueError, match="spectrum names features \\[5\\]"):
            taylor_fourier(small, root=np.zeros(2), spectrum={5: [1]})(x, w)
    assert tracker.totals.get("executions", 0) == 0


def test_the_root_search_is_an_explicit_step_and_plans_run_nothing():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def model(x):
        qml.RY(x[0], wires=0)
        qml.RY(x[1], wires=1)
        return qml.expval(qml.Z(0) @ qml.Z(1))

    x = np.array([0.4, 0.9])
    explained = taylor_fourier(model, return_convergence_delta=True)
    assert explained.needs_preparation
    with (
        qml.Tracker(dev) as tracker,
        pytest.raises(ValueError, match=r"explained.prepare\(\*args\)"),
    ):
        explained.plan(x)
    with pytest.raises(ValueError, match="prepare"):
        explained.construct_batch(x)
    assert tracker.totals.get("executions", 0) == 0
    with qml.Tracker(dev) as search:
        prepared = explained.prepare(x)
    assert search.totals["executions"] > 0 and not prepared.needs_preparation
    with qml.Tracker(dev) as building:
        plan = prepared.plan(x)
    assert building.totals.get("executions", 0) == 0 and len(plan.tapes) > 0
    (relevance, delta), (direct, direct_delta) = prepared(x), explained(x)
    assert_close(relevance, direct)
    assert_close(delta, direct_delta)
    # the root found is a root: the relevances sum to f(x) - f(root) = f(x), up to cross terms
    root = prepared.method.searched_roots[0]
    assert_close(model(root), 0.0, atol=1e-6)
    # explanations that need no preparation return themselves
    given = taylor_fourier(model, root=np.array([np.pi / 2, 0.0]))
    assert not given.needs_preparation and given.prepare(x) is given
