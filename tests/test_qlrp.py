"""QLRP: conservation of every rule, hand-computed redistributions on a 1-qubit and a 2-qubit
circuit, an independent NumPy implementation of the paper's rule, the deep-Taylor rules against
Taylor-Fourier and autodiff, the plan (density-matrix tapes, processing that runs nothing),
probabilities, JAX, and refusal of bad options and devices before any circuit runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from pennylane_xqml.methods.qlrp import QLRPEntries, qlrp, qlrp_entries
from pennylane_xqml.methods.taylor_fourier import taylor_fourier
from pennylane_xqml.testing import assert_close, no_circuit_runs

PAPER = {"contributions": "gradient_x_input"}  # the paper's rule: gradient × input at x


def random_model(n_qubits, measurement="expval", device=None):
    """Angle encodings on every wire (alternating RX/RY, then RZ re-encoding x_0), and
    StronglyEntanglingLayers."""
    device = device or qml.device("default.qubit", wires=n_qubits)

    @qml.qnode(device)
    def model(x, w):
        for i in range(n_qubits):
            (qml.RX if i % 2 else qml.RY)(x[i], wires=i)
        qml.StronglyEntanglingLayers(w, wires=range(n_qubits))
        qml.RZ(x[0], wires=n_qubits - 1)
        qml.StronglyEntanglingLayers(w, wires=range(n_qubits))
        if measurement == "probs":
            return qml.probs(wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.Z(n_qubits - 1) + 0.4 * qml.X(1))

    return model


def _sample(rng, n_qubits):
    return rng.uniform(-2, 2, n_qubits), rng.normal(size=(1, n_qubits, 3))


@pytest.mark.slow
@pytest.mark.parametrize("n_qubits", [2, 3, 4])
def test_conservation_on_random_circuits(n_qubits):
    rng = np.random.default_rng(n_qubits)
    model = random_model(n_qubits)
    for _ in range(2):
        x, w = _sample(rng, n_qubits)
        relevance, delta = qlrp(model, **PAPER, epsilon=0.0, return_convergence_delta=True)(x, w)
        assert relevance.shape == x.shape
        assert_close(np.sum(relevance), model(x, w), rtol64=0, atol64=1e-8)
        assert_close(delta, 0.0, atol64=1e-8)
    # the default epsilon only perturbs the sum slightly, and the delta reports it exactly
    relevance, delta = qlrp(model, **PAPER, return_convergence_delta=True)(x, w)
    assert abs(delta) < 1e-5
    assert_close(model(x, w) - np.sum(relevance) + delta, 0.0, atol64=1e-12)


def test_alpha_beta_rule_is_conservative():
    rng = np.random.default_rng(5)
    model = random_model(3)
    x, w = _sample(rng, 3)
    for alpha, beta in ((1.0, 0.0), (2.0, 1.0)):
        relevance = qlrp(model, **PAPER, rule="alpha_beta", alpha=alpha, beta=beta)(x, w)
        assert_close(np.sum(relevance), model(x, w), rtol64=0, atol64=1e-8)
    # the alpha-beta rule differs from the epsilon rule
    assert not np.allclose(relevance, qlrp(model, **PAPER, epsilon=0.0)(x, w))


def test_entry_relevances_sum_to_f():
    rng = np.random.default_rng(11)
    for measurement in ("expval", "probs"):
        model = random_model(3, measurement)
        x, w = _sample(rng, 3)
        out = qlrp_entries(model, **PAPER, epsilon=0.0)(x, w)
        assert isinstance(out, QLRPEntries)
        f = np.atleast_1d(model(x, w))
        assert_close(out.entry_relevance.sum(axis=(1, 2)), f, rtol64=1e-7, atol64=1e-12)
        assert_close(np.trace(out.density_matrix), 1.0, rtol64=1e-7, atol64=1e-12)
        assert_close(out.relevance.sum(axis=1), f, rtol64=1e-7, atol64=1e-8)


def test_matches_an_independent_numpy_implementation():
    """ρ(x) = U(x)|0><0|U(x)†, ∂ρ by central differences, then the epsilon rule by hand."""
    rng = np.random.default_rng(3)
    n, eps = 2, 1e-3
    model = random_model(n)
    x, w = _sample(rng, n)
    observable = qml.Z(0) @ qml.Z(1) + 0.4 * qml.X(1)

    def rho(v):
        unitary = qml.matrix(model, wire_order=range(n))(v, w)
        psi = unitary[:, 0]
        return np.outer(psi, psi.conj())

    m = qml.matrix(observable, wire_order=range(n))
    h = 1e-6
    d_rho = np.stack([(rho(x + h * e) - rho(x - h * e)) / (2 * h) for e in np.eye(n)], axis=-1)
    r_entry = np.real(rho(x) * m.T)
    c = np.real(d_rho * m.T[..., None]) * x
    s = c.sum(-1)
    expected = np.einsum("jk,jki->i", r_entry / (s + eps * np.where(s >= 0, 1, -1)), c)
    assert_close(qlrp(model, **PAPER, epsilon=eps)(x, w), expected, rtol64=1e-7, atol64=1e-6)


def test_probs_outputs():
    rng = np.random.default_rng(8)
    model = random_model(2, "probs")
    x, w = _sample(rng, 2)
    relevance = qlrp(model, **PAPER, epsilon=0.0)(x, w)
    assert relevance.shape == (4, 2)
    assert_close(relevance.sum(axis=1), model(x, w), rtol64=1e-7, atol64=1e-8)
    assert_close(
        qlrp(model, **PAPER, epsilon=0.0, target=2)(x, w), relevance[2], rtol64=1e-7, atol64=1e-12
    )


def test_unused_entry_relevance_is_reported():
    """An input of zeros contributes nothing: the relevance is reported, not spread."""
    model = random_model(2)
    x, w = np.zeros(2), np.random.default_rng(2).normal(size=(1, 2, 3))
    relevance, delta = qlrp(model, **PAPER, epsilon=0.0, return_convergence_delta=True)(x, w)
    np.testing.assert_array_equal(relevance, 0.0)
    assert_close(delta, -model(x, w), rtol64=0, atol64=1e-12)  # delta = Σ R - f(x) = -f(x)
    entries = qlrp_entries(model, **PAPER, epsilon=0.0)(x, w)
    assert np.all(entries.totals == 0)
    assert_close(entries.unpropagated[0], model(x, w), rtol64=0, atol64=1e-12)


def test_jit_and_jax_inputs():
    rng = np.random.default_rng(4)
    model = random_model(2)
    x, w = (jnp.array(a) for a in _sample(rng, 2))
    explain = qlrp(model, **PAPER, epsilon=0.0, return_convergence_delta=True)
    plain = explain(x, w)
    jitted = jax.jit(explain)(x, w)
    assert_close(jitted[0], plain[0], rtol64=1e-7, atol64=1e-12)
    assert_close(jitted[1], plain[1], rtol64=1e-7, atol64=1e-12)
    assert_close(jnp.sum(plain[0]), model(x, w), rtol64=0, atol64=1e-8)


def test_lightning_runs_the_density_matrix_tapes():
    rng = np.random.default_rng(9)
    x, w = _sample(rng, 2)
    reference = qlrp(random_model(2), **PAPER, epsilon=0.0)(x, w)
    lightning = random_model(2, device=qml.device("lightning.qubit", wires=2))
    assert_close(qlrp(lightning, **PAPER, epsilon=0.0)(x, w), reference, rtol64=1e-7, atol64=1e-10)


def test_default_mixed_keeps_noise_channels():
    @qml.qnode(qml.device("default.mixed", wires=2))
    def noisy(x):
        qml.RY(x[0], wires=0)
        qml.RX(x[1], wires=1)
        qml.CNOT(wires=[0, 1])
        qml.DepolarizingChannel(0.2, wires=1)
        return qml.expval(qml.Z(1))

    x = np.array([0.4, 0.9])
    relevance = qlrp(noisy, **PAPER, epsilon=0.0)(x)
    assert_close(np.sum(relevance), noisy(x), rtol64=0, atol64=1e-10)
    assert_close(noisy(x), (1 - 4 * 0.2 / 3) * np.cos(0.4) * np.cos(0.9), rtol64=0, atol64=1e-12)


def test_devices_without_state_access_are_refused():
    rng = np.random.default_rng(1)
    device = qml.device("default.qubit", wires=2)
    x, w = _sample(rng, 2)
    shots = qml.set_shots(random_model(2, device=device), shots=100)
    with qml.Tracker(device) as tracker:
        with pytest.raises(ValueError, match="default.qubit, default.mixed, lightning.qubit"):
            qlrp(shots)(x, w)
        with pytest.raises(ValueError, match="shots=100"):
            qlrp_entries(shots)(x, w)
    assert tracker.totals.get("executions", 0) == 0


def test_qiskit_aer_is_refused():
    pytest.importorskip("pennylane_qiskit")
    rng = np.random.default_rng(1)
    device = qml.device("qiskit.aer", wires=2)
    x, w = _sample(rng, 2)
    with pytest.raises(ValueError, match="cannot provide"):
        qlrp(random_model(2, device=device))(x, w)


def test_amplitude_embeddings_and_bad_options_are_refused():
    device = qml.device("default.qubit", wires=2)

    @qml.qnode(device)
    def amplitude(x):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        return qml.expval(qml.Z(0))

    with qml.Tracker(device) as tracker, pytest.raises(ValueError, match="integrated_gradients"):
        qlrp(amplitude)(np.array([1.0, 2.0, 0.5, 0.1]))
    assert tracker.totals.get("executions", 0) == 0
    with pytest.raises(ValueError, match="Unknown rule"):
        qlrp(amplitude, rule="gamma")
    with pytest.raises(ValueError, match="epsilon"):
        qlrp(amplitude, epsilon=-1.0)
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        qlrp(amplitude, rule="alpha_beta", alpha=1.0, beta=1.0)


# ---------------------------------------------------------------------------------------------
# the deep-Taylor rules
# ---------------------------------------------------------------------------------------------

ROOTED = [
    ("epsilon", "all_orders", "change"),
    ("epsilon", "all_orders", "entry"),
    ("epsilon", "first_order", "change"),
    ("epsilon", "first_order", "entry"),
    ("alpha_beta", "all_orders", "change"),
    ("alpha_beta", "first_order", "entry"),
    ("raw", "all_orders", None),
    ("raw", "first_order", None),
]


def one_qubit_model():
    @qml.qnode(qml.device("default.qubit", wires=1))
    def model(x):
        qml.RY(x[0], wires=0)
        qml.RX(x[1], wires=0)
        return qml.expval(qml.Z(0) + 0.5 * qml.X(0))

    return model


def one_qubit_entries(v):
    """``R_jk = Re(ρ_jk M_kj)`` by hand: the Bloch vector of ``RX(b) RY(a)|0⟩`` is
    ``(sin a, -cos a sin b, cos a cos b)``, ``ρ = (I + r·σ)/2`` and ``M = Z + X/2``."""
    a, b = v
    rz, rx = np.cos(a) * np.cos(b), np.sin(a)
    return np.array([[(1 + rz) / 2, rx / 4], [rx / 4, -(1 - rz) / 2]])


def one_qubit_entry_gradient(v):
    """``∂_a R_jk`` and ``∂_b R_jk`` by hand, shape ``(2, 2, 2)`` (last axis: feature)."""
    a, b = v
    da = np.array(
        [[-np.sin(a) * np.cos(b) / 2, np.cos(a) / 4], [np.cos(a) / 4, -np.sin(a) * np.cos(b) / 2]]
    )
    db = np.array([[-np.cos(a) * np.sin(b) / 2, 0.0], [0.0, -np.cos(a) * np.sin(b) / 2]])
    return np.stack([da, db], axis=-1)


def redistribute_by_hand(shared, c, rule, alpha=1.0, beta=0.0):
    """The rules of the module docstring with ε = 0, written out entry by entry."""
    d = c.shape[-1]
    out = np.zeros(d)
    for j in range(c.shape[0]):
        for k in range(c.shape[1]):
            terms = c[j, k]
            if rule == "raw":
                out += terms
            elif rule == "epsilon":
                if terms.sum() != 0:
                    out += shared[j, k] * terms / terms.sum()
            else:
                pos, neg = np.maximum(terms, 0), np.minimum(terms, 0)
                if pos.sum() and neg.sum():
                    out += shared[j, k] * (alpha * pos / pos.sum() - beta * neg / neg.sum())
                elif pos.sum():
                    out += shared[j, k] * pos / pos.sum()
                elif neg.sum():
                    out += shared[j, k] * neg / neg.sum()
    return out


def expected_by_hand(entries, gradient, x, root, rule, contributions, shared):
    """QLRP from closed-form entry relevances: all-order terms by the single-feature moves,
    first-order terms from the closed-form gradient at the root."""
    d = len(x)
    delta = x - root
    if contributions == "all_orders":
        c = np.stack(
            [entries(root + delta[i] * np.eye(d)[i]) - entries(root) for i in range(d)], -1
        )
    else:
        c = gradient(root) * delta
    e = entries(x) - (entries(root) if shared == "change" else 0.0)
    return redistribute_by_hand(e, c, rule)


@pytest.mark.parametrize("rule, contributions, shared", ROOTED)
def test_one_qubit_by_hand(rule, contributions, shared):
    model = one_qubit_model()
    x, root = np.array([0.9, -1.3]), np.array([0.2, 0.5])
    relevance, delta = qlrp(
        model, rule=rule, contributions=contributions, shared=shared, epsilon=0.0, root=root,
        return_convergence_delta=True,
    )(x)  # fmt: skip
    expected = expected_by_hand(
        one_qubit_entries, one_qubit_entry_gradient, x, root, rule, contributions, shared
    )
    assert_close(relevance, expected, rtol64=1e-10, atol64=1e-10)
    f = lambda v: np.cos(v[0]) * np.cos(v[1]) + 0.5 * np.sin(v[0])
    reference = f(x) - (0.0 if shared == "entry" else f(root))
    assert_close(delta, relevance.sum() - reference, rtol64=0, atol64=1e-10)
    if rule != "raw":  # the shared rules conserve exactly (ε = 0, every entry has terms)
        assert_close(delta, 0.0, rtol64=0, atol64=1e-8)


def test_one_qubit_all_orders_is_the_closed_form():
    """``R_jk(x̃ + δ e_i) - R_jk(x̃) = sin δ ∂_i R_jk(x̃) + (1 - cos δ) ∂²_i R_jk(x̃)``: the
    contributions of the plan equal the closed form with hand derivatives."""
    x, root = np.array([2.1, -0.4]), np.array([-0.3, 0.8])
    out = qlrp_entries(one_qubit_model(), rule="raw", root=root)(x)
    a, b = root
    second = np.stack(
        [
            np.array(
                [
                    [-np.cos(a) * np.cos(b) / 2, -np.sin(a) / 4],
                    [-np.sin(a) / 4, -np.cos(a) * np.cos(b) / 2],
                ]
            ),
            np.array([[-np.cos(a) * np.cos(b) / 2, 0.0], [0.0, -np.cos(a) * np.cos(b) / 2]]),
        ],
        axis=-1,
    )
    delta = x - root
    closed = np.sin(delta) * one_qubit_entry_gradient(root) + (1 - np.cos(delta)) * second
    assert_close(out.contributions[0], closed, rtol64=1e-10, atol64=1e-10)
    assert_close(out.roots[0], root, rtol64=0, atol64=0)


def two_qubit_model():
    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x):
        qml.RY(x[0], wires=0)
        qml.RY(x[1], wires=1)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.Z(1) + 0.3 * qml.X(0) @ qml.X(1))

    return model


M2 = np.kron(np.eye(2), np.diag([1.0, -1.0])) + 0.3 * np.kron([[0, 1], [1, 0]], [[0, 1], [1, 0]])


def two_qubit_state(v):
    """``CNOT (RY(x0)|0⟩ ⊗ RY(x1)|0⟩)`` and its derivative, by hand (real amplitudes)."""
    c0, s0, c1, s1 = np.cos(v[0] / 2), np.sin(v[0] / 2), np.cos(v[1] / 2), np.sin(v[1] / 2)
    psi = np.array([c0 * c1, c0 * s1, s0 * s1, s0 * c1])
    d0 = np.array([-s0 * c1, -s0 * s1, c0 * s1, c0 * c1]) / 2
    d1 = np.array([-c0 * s1, c0 * c1, s0 * c1, -s0 * s1]) / 2
    return psi, (d0, d1)


def two_qubit_entries(v):
    psi, _ = two_qubit_state(v)
    return np.outer(psi, psi) * M2.T


def two_qubit_entry_gradient(v):
    psi, grads = two_qubit_state(v)
    return np.stack([(np.outer(g, psi) + np.outer(psi, g)) * M2.T for g in grads], axis=-1)


@pytest.mark.parametrize("rule, contributions, shared", ROOTED)
def test_two_qubit_by_hand(rule, contributions, shared):
    model = two_qubit_model()
    x, root = np.array([1.2, -0.7]), np.array([-0.4, 0.3])
    relevance = qlrp(
        model, rule=rule, contributions=contributions, shared=shared, epsilon=0.0, root=root
    )(x)
    expected = expected_by_hand(
        two_qubit_entries, two_qubit_entry_gradient, x, root, rule, contributions, shared
    )
    assert_close(relevance, expected, rtol64=1e-10, atol64=1e-10)
    # f = cos x0 cos x1 + 0.3 sin x0 sin x1... read off the closed form: Σ_jk R_jk
    assert_close(two_qubit_entries(x).sum(), model(x), rtol64=0, atol64=1e-12)


def test_two_qubit_alpha_beta_by_hand():
    model = two_qubit_model()
    x, root = np.array([0.5, 2.0]), np.array([1.1, -0.2])
    relevance = qlrp(model, rule="alpha_beta", alpha=2.0, beta=1.0, root=root)(x)
    delta = x - root
    c = np.stack(
        [
            two_qubit_entries(root + delta[i] * np.eye(2)[i]) - two_qubit_entries(root)
            for i in range(2)
        ],
        -1,
    )
    shared = two_qubit_entries(x) - two_qubit_entries(root)
    expected = redistribute_by_hand(shared, c, "alpha_beta", alpha=2.0, beta=1.0)
    assert_close(relevance, expected, rtol64=1e-10, atol64=1e-10)


@pytest.mark.parametrize("rule, contributions, shared", ROOTED)
def test_every_rule_declares_one_conservation_property(rule, contributions, shared):
    """On random circuits (x_0 re-encoded: spectrum {1, 2}), with a given root."""
    rng = np.random.default_rng(21)
    model = random_model(3)
    x, w = _sample(rng, 3)
    root = rng.uniform(-2, 2, 3)
    options = {"rule": rule, "contributions": contributions, "shared": shared, "root": root}
    options["spectrum"] = {0: [1.0, 2.0]}
    relevance, delta = qlrp(model, **options, epsilon=0.0, return_convergence_delta=True)(x, w)
    f_x, f_root = model(x, w), model(root, w)
    if rule == "raw":  # Σ R = f(x) - f(x̃) - cross terms; the delta is minus the cross terms
        assert_close(delta, np.sum(relevance) - (f_x - f_root), rtol64=0, atol64=1e-10)
        assert abs(delta) > 1e-3  # cross terms exist on this circuit
    elif shared == "entry":  # Σ R = f(x)
        assert_close(np.sum(relevance), f_x, rtol64=0, atol64=1e-8)
        assert_close(delta, 0.0, rtol64=0, atol64=1e-8)
    else:  # Σ R = f(x) - f(x̃)
        assert_close(np.sum(relevance), f_x - f_root, rtol64=0, atol64=1e-8)
        assert_close(delta, 0.0, rtol64=0, atol64=1e-8)


def test_raw_all_orders_is_taylor_fourier_and_raw_first_order_is_the_gradient():
    rng = np.random.default_rng(6)
    model = random_model(3)
    x, w = _sample(rng, 3)
    root = rng.uniform(-2, 2, 3)
    spectrum = {0: [1.0, 2.0]}
    tf, tf_delta = taylor_fourier(
        model, root=root, spectrum=spectrum, return_convergence_delta=True
    )(x, w)
    raw, raw_delta = qlrp(
        model, rule="raw", root=root, spectrum=spectrum, return_convergence_delta=True
    )(x, w)
    assert_close(raw, tf, rtol64=1e-9, atol64=1e-10)
    assert_close(raw_delta, tf_delta, rtol64=1e-9, atol64=1e-10)
    gradient = jax.grad(lambda v: model(v, jnp.asarray(w)))(jnp.asarray(root))
    first = qlrp(model, rule="raw", contributions="first_order", root=root, spectrum=spectrum)(x, w)
    expected = np.asarray(gradient) * (x - root)  # JAX's precision (float32 with XQML_X64=0)
    assert_close(first, expected, dtype=gradient.dtype, rtol64=1e-9, atol64=1e-10)
    # the shared rules are not Taylor-Fourier
    shared = qlrp(model, root=root, rule="epsilon", spectrum=spectrum)(x, w)
    assert not np.allclose(shared, tf, atol=1e-3)


def test_root_search_and_frequency_one_default():
    """The default root is Taylor-Fourier's Newton search; the relevances then sum to
    ``f(x) - f(x̃)`` with ``|f(x̃)| <= root_tol``."""
    model = two_qubit_model()
    x = np.array([0.3, 0.4])
    relevance, delta = qlrp(model, rule="epsilon", epsilon=0.0, return_convergence_delta=True)(x)
    entries = qlrp_entries(model, rule="epsilon", epsilon=0.0)(x)
    assert abs(entries.root_values[0]) <= 1e-8
    assert_close(model(entries.roots[0]), entries.root_values[0], rtol64=0, atol64=1e-12)
    assert_close(np.sum(relevance), model(x) - entries.root_values[0], rtol64=0, atol64=1e-8)
    assert_close(delta, 0.0, rtol64=0, atol64=1e-8)
    tf = taylor_fourier(model)(x)
    assert_close(qlrp(model)(x), tf, rtol64=1e-9, atol64=1e-10)  # the default rule


def test_plan_returns_density_matrices_and_processing_runs_nothing():
    rng = np.random.default_rng(2)
    device = qml.device("default.qubit", wires=2)
    model = random_model(2, device=device)
    x, w = _sample(rng, 2)
    root = rng.uniform(-1, 1, 2)
    for options in ({"root": root, "spectrum": {0: [1.0, 2.0]}}, PAPER):
        explained = qlrp(model, **options)
        with no_circuit_runs(device):
            plan = explained.plan(x, w)
        assert plan.returns_states and plan.simulator_only and not plan.simulator_requests
        assert all(
            isinstance(t.measurements[0], qml.measurements.DensityMatrixMP) for t in plan.tapes
        )
        results = qml.execute(plan.tapes, plan.device)
        with no_circuit_runs(device):
            values = plan.processing_fn(results, ())
        assert_close(values, explained(x, w), rtol64=1e-12, atol64=1e-12)
    # 1 + 1 + (2 shifts for x_1) + (4 for x_0's two frequencies) states
    assert len(qlrp(model, root=root, spectrum={0: [1.0, 2.0]}).plan(x, w).tapes) == 8


def test_bad_options_are_refused_before_any_circuit():
    device = qml.device("default.qubit", wires=2)
    model = random_model(2, device=device)
    x, w = _sample(np.random.default_rng(0), 2)
    for options, match in (
        ({"contributions": "second_order"}, "Unknown contributions"),
        ({"shared": "half"}, "Unknown shared"),
        ({"rule": "raw", **PAPER}, "needs an expansion around a root"),
        ({"shared": "change", **PAPER}, "needs an expansion around a root"),
        ({"root": np.zeros(2), **PAPER}, "needs an expansion around a root"),
        ({"root": "nearest"}, "Unknown root"),
        ({"epsilon": True}, "epsilon"),
        ({"root_steps": 0}, "root_steps"),
    ):
        with pytest.raises(ValueError, match=match):
            qlrp(model, **options)
    with no_circuit_runs(device):
        with pytest.raises(ValueError, match="The root has shape"):
            qlrp(model, root=np.zeros(3), spectrum=[1.0, 2.0])(x, w)
        # x_0 is encoded twice: frequency-1 rules need its spectrum
        with pytest.raises(ValueError, match="encoded 2 times"):
            qlrp(model, root=np.zeros(2))(x, w)


def test_jit_and_float_precision_of_the_deep_taylor_rules():
    """Under jax.jit (and in float32 with XQML_X64=0) the plan gives the eager values."""
    rng = np.random.default_rng(4)
    model = random_model(2)
    x, w = (jnp.array(a) for a in _sample(rng, 2))
    root = jnp.array(rng.uniform(-1, 1, 2))
    explain = qlrp(
        model,
        rule="epsilon",
        root=root,
        spectrum={0: [1.0, 2.0]},
        epsilon=0.0,
        return_convergence_delta=True,
    )
    plain = explain(x, w)
    jitted = jax.jit(explain)(x, w)
    assert_close(jitted[0], plain[0], rtol64=1e-7, atol64=1e-12)
    assert_close(jnp.sum(plain[0]), model(x, w) - model(root, w), rtol64=0, atol64=1e-8)
    assert_close(plain[1], 0.0, rtol64=0, atol64=1e-8)
    numpy_values = qlrp(
        model, rule="epsilon", root=np.asarray(root), spectrum={0: [1.0, 2.0]}, epsilon=0.0
    )(np.asarray(x), np.asarray(w))
    assert_close(plain[0], numpy_values, rtol64=1e-9, atol64=1e-10)


def test_lightning_and_probs_with_a_root():
    rng = np.random.default_rng(9)
    x, w = _sample(rng, 2)
    root = rng.uniform(-1, 1, 2)
    options = {"root": root, "spectrum": {0: [1.0, 2.0]}, "rule": "epsilon", "epsilon": 0.0}
    reference = qlrp(random_model(2), **options)(x, w)
    lightning = random_model(2, device=qml.device("lightning.qubit", wires=2))
    assert_close(qlrp(lightning, **options)(x, w), reference, rtol64=1e-9, atol64=1e-10)
    probs = random_model(2, "probs")
    relevance = qlrp(probs, **options)(x, w)
    assert relevance.shape == (4, 2)
    assert_close(relevance.sum(axis=1), probs(x, w) - probs(root, w), rtol64=0, atol64=1e-8)
