"""QLRP: conservation, entry relevances, an independent NumPy implementation of the rule,
probabilities, JAX, and refusal of devices without state access before any circuit runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from pennylane_xqml.methods.qlrp import QLRPEntries, qlrp, qlrp_entries
from pennylane_xqml.testing import assert_close


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
        relevance, delta = qlrp(model, epsilon=0.0, return_convergence_delta=True)(x, w)
        assert relevance.shape == x.shape
        assert_close(np.sum(relevance), model(x, w), rtol64=0, atol64=1e-8)
        assert_close(delta, 0.0, atol64=1e-8)
    # the default epsilon only perturbs the sum slightly, and the delta reports it exactly
    relevance, delta = qlrp(model, return_convergence_delta=True)(x, w)
    assert abs(delta) < 1e-5
    assert_close(model(x, w) - np.sum(relevance) + delta, 0.0, atol64=1e-12)


def test_alpha_beta_rule_is_conservative():
    rng = np.random.default_rng(5)
    model = random_model(3)
    x, w = _sample(rng, 3)
    for alpha, beta in ((1.0, 0.0), (2.0, 1.0)):
        relevance = qlrp(model, rule="alpha_beta", alpha=alpha, beta=beta)(x, w)
        assert_close(np.sum(relevance), model(x, w), rtol64=0, atol64=1e-8)
    # the alpha-beta rule differs from the epsilon rule
    assert not np.allclose(relevance, qlrp(model, epsilon=0.0)(x, w))


def test_entry_relevances_sum_to_f():
    rng = np.random.default_rng(11)
    for measurement in ("expval", "probs"):
        model = random_model(3, measurement)
        x, w = _sample(rng, 3)
        out = qlrp_entries(model, epsilon=0.0)(x, w)
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
    assert_close(qlrp(model, epsilon=eps)(x, w), expected, rtol64=1e-7, atol64=1e-6)


def test_probs_outputs():
    rng = np.random.default_rng(8)
    model = random_model(2, "probs")
    x, w = _sample(rng, 2)
    relevance = qlrp(model, epsilon=0.0)(x, w)
    assert relevance.shape == (4, 2)
    assert_close(relevance.sum(axis=1), model(x, w), rtol64=1e-7, atol64=1e-8)
    assert_close(qlrp(model, epsilon=0.0, target=2)(x, w), relevance[2], rtol64=1e-7, atol64=1e-12)


def test_unused_entry_relevance_is_reported():
    """An input of zeros contributes nothing: the relevance is reported, not spread."""
    model = random_model(2)
    x, w = np.zeros(2), np.random.default_rng(2).normal(size=(1, 2, 3))
    relevance, delta = qlrp(model, epsilon=0.0, return_convergence_delta=True)(x, w)
    np.testing.assert_array_equal(relevance, 0.0)
    assert_close(delta, -model(x, w), rtol64=0, atol64=1e-12)  # delta = Σ R - f(x) = -f(x)
    entries = qlrp_entries(model, epsilon=0.0)(x, w)
    assert np.all(entries.totals == 0)
    assert_close(entries.unpropagated[0], model(x, w), rtol64=0, atol64=1e-12)


def test_jit_and_jax_inputs():
    rng = np.random.default_rng(4)
    model = random_model(2)
    x, w = (jnp.array(a) for a in _sample(rng, 2))
    explain = qlrp(model, epsilon=0.0, return_convergence_delta=True)
    plain = explain(x, w)
    jitted = jax.jit(explain)(x, w)
    assert_close(jitted[0], plain[0], rtol64=1e-7, atol64=1e-12)
    assert_close(jitted[1], plain[1], rtol64=1e-7, atol64=1e-12)
    assert_close(jnp.sum(plain[0]), model(x, w), rtol64=0, atol64=1e-8)


def test_lightning_uses_the_state_twin():
    rng = np.random.default_rng(9)
    x, w = _sample(rng, 2)
    reference = qlrp(random_model(2), epsilon=0.0)(x, w)
    lightning = random_model(2, device=qml.device("lightning.qubit", wires=2))
    assert_close(qlrp(lightning, epsilon=0.0)(x, w), reference, rtol64=1e-7, atol64=1e-10)


def test_default_mixed_keeps_noise_channels():
    @qml.qnode(qml.device("default.mixed", wires=2))
    def noisy(x):
        qml.RY(x[0], wires=0)
        qml.RX(x[1], wires=1)
        qml.CNOT(wires=[0, 1])
        qml.DepolarizingChannel(0.2, wires=1)
        return qml.expval(qml.Z(1))

    x = np.array([0.4, 0.9])
    relevance = qlrp(noisy, epsilon=0.0)(x)
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
