"""xqml.attribution_penalty: values against closed forms and autodiff, gradients against
central finite differences, jit/vmap, and refusals before any circuit runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import amplitude_model, quadratic_form, random_weights
from pennylane_xqml.testing import assert_close, no_circuit_runs

N = 3
MASK = np.array([True, False, False, True, False, False, True, False])


@pytest.fixture
def amp(rng):
    dev = qml.device("default.qubit", wires=N)
    model = amplitude_model(dev, N)
    x, w = jnp.array(rng.normal(size=2**N)), jnp.array(random_weights(rng, N, layers=1))
    a = np.asarray(x, dtype=np.float64) / np.linalg.norm(np.asarray(x, dtype=np.float64))
    m = np.real(quadratic_form(np.asarray(w, dtype=np.float64), N, qml.PauliZ(0)))
    return dev, model, x, w, a, m


def test_saliency_penalty_equals_closed_form(amp):
    _, model, x, w, a, m = amp
    gradient = 2 * m @ a  # the amplitude-space gradient of f(a) = aᵀ M a
    for norm, expected in [
        ("l2", np.sum(MASK * gradient**2)),
        ("l1", np.sum(MASK * np.abs(gradient))),
    ]:
        penalty = xqml.attribution_penalty(xqml.saliency(model, abs=False), MASK, norm=norm)
        assert_close(penalty(x, w), expected, rtol64=1e-7, atol64=1e-10)
    # non-negative weights: Σ m_i A_i²
    weights = np.linspace(0.0, 2.0, 2**N)
    penalty = xqml.attribution_penalty(xqml.saliency(model), weights)
    assert_close(penalty(x, w), np.sum(weights * gradient**2), rtol64=1e-7, atol64=1e-10)


def test_integrated_gradients_penalty_equals_closed_form(amp):
    _, model, x, w, a, m = amp
    ig = a * (m @ a)  # exact IG from the zero baseline
    explained = xqml.integrated_gradients(model, return_convergence_delta=True)
    penalty = xqml.attribution_penalty(explained, MASK)
    assert_close(penalty(x, w), np.sum(MASK * ig**2), rtol64=1e-7, atol64=1e-10)


def test_angle_penalty_equals_autodiff_of_the_plain_qnode(rng):
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AngleEmbedding(x, wires=range(2))
        qml.StronglyEntanglingLayers(w, wires=range(2))
        return qml.expval(qml.PauliZ(0) @ qml.PauliZ(1))

    x, w = jnp.array(rng.normal(size=2)), jnp.array(random_weights(rng, 2, layers=1))
    mask = np.array([0.0, 1.0])
    penalty = xqml.attribution_penalty(xqml.saliency(model, abs=False), mask)
    expected = jnp.sum(mask * jax.grad(model)(x, w) ** 2)
    assert_close(penalty(x, w), expected, rtol64=1e-7, atol64=1e-10)


def _directional_check(penalty, x, w, seed):
    """``∇_w Ω · v`` against the central difference ``(Ω(w + hv) - Ω(w - hv)) / 2h``."""
    x64 = jax.config.jax_enable_x64
    h = 1e-5 if x64 else 2e-2  # float32: a looser step (rounding error ~ 1e-7 / h)
    value = jax.jit(penalty)
    grad = jax.grad(penalty, argnums=1)(x, w)
    directions = np.random.default_rng(seed).normal(size=(3, *np.shape(w)))
    for v in directions:
        v = jnp.asarray(v / np.linalg.norm(v), dtype=w.dtype)
        fd = (value(x, w + h * v) - value(x, w - h * v)) / (2 * h)
        analytic = jnp.sum(grad * v)
        if x64:
            assert_close(analytic, fd, rtol64=1e-6, atol64=1e-8)
        else:  # truncation error ~ h² f''' / 6 and rounding ~ 1e-7 / h
            assert_close(analytic, fd, rtol=1e-2, atol=1e-2)
        assert abs(float(analytic)) > 1e-3  # the direction actually changes the penalty


@pytest.mark.slow
@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_penalty_gradient_matches_finite_differences(amp, method):
    _, model, x, w, _, _ = amp
    explained = getattr(xqml, method)(model)
    _directional_check(xqml.attribution_penalty(explained, MASK), x, w, seed=5)


@pytest.mark.slow
def test_penalty_gradient_hadamard_rule_matches_finite_differences(amp):
    """The circuit rule (one Hadamard test per Pauli word, hardware-ready) is differentiable."""
    _, model, x, w, _, _ = amp
    explained = xqml.saliency(model, abs=False, gradient="hadamard_all")
    _directional_check(xqml.attribution_penalty(explained, MASK), x, w, seed=6)


@pytest.mark.slow
def test_penalty_under_jit_and_vmap(amp, rng):
    _, model, _, w, _, _ = amp
    X = jnp.array(rng.normal(size=(2, 2**N)))
    penalty = xqml.attribution_penalty(xqml.saliency(model), MASK)
    batched = jax.jit(jax.vmap(penalty, in_axes=(0, None)))(X, w)
    assert batched.shape == (2,)
    assert_close(batched, np.array([penalty(row, w) for row in X]))
    mean_grad = jax.grad(lambda v: jnp.mean(jax.vmap(penalty, in_axes=(0, None))(X, v)))(w)
    rows = np.mean([jax.grad(penalty, argnums=1)(row, w) for row in X], axis=0)
    assert_close(mean_grad, rows)


def test_padded_amplitudes_need_a_mask_of_the_padded_length(rng):
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True, pad_with=0.0)
        qml.RY(w, wires=0)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.PauliZ(1))

    x, w = jnp.array([0.3, 0.5, 0.8]), jnp.array(0.4)
    explained = xqml.saliency(model, abs=False)
    penalty = xqml.attribution_penalty(explained, [1, 0, 0, 1])
    saliency = explained(x, w)
    assert_close(penalty(x, w), saliency[0] ** 2 + saliency[3] ** 2)
    short = xqml.attribution_penalty(explained, [True, False, False])
    with no_circuit_runs(dev), pytest.raises(ValueError, match=r"shape \(4,\).*padded amplitude"):
        short(x, w)


def test_refusals_run_no_circuit(amp):
    dev, model, x, w, _, _ = amp
    explained = xqml.saliency(model)
    with no_circuit_runs(dev):
        with pytest.raises(ValueError, match=r"mask has shape \(4,\).*\(8,\)"):
            xqml.attribution_penalty(explained, MASK[:4])(x, w)
        with pytest.raises(ValueError, match="non-negative"):
            xqml.attribution_penalty(explained, -MASK.astype(float))
        with pytest.raises(ValueError, match="NaN or infinite"):
            xqml.attribution_penalty(explained, np.full(8, np.nan))
        with pytest.raises(ValueError, match="selects no feature"):
            xqml.attribution_penalty(explained, np.zeros(8, dtype=bool))
        with pytest.raises(TypeError, match="booleans"):
            xqml.attribution_penalty(explained, np.array(["a"] * 8))
        with pytest.raises(TypeError, match="booleans"):
            xqml.attribution_penalty(explained, MASK.astype(complex))
        with pytest.raises(ValueError, match="shaped like one attribution"):
            xqml.attribution_penalty(explained, True)
        with pytest.raises(ValueError, match="norm must be one of"):
            xqml.attribution_penalty(explained, MASK, norm="l3")
        with pytest.raises(TypeError, match="plain QNode: wrap it first"):
            xqml.attribution_penalty(model, MASK)
        with pytest.raises(TypeError, match="explained QNode"):
            xqml.attribution_penalty(lambda x, w: x, MASK)
        with pytest.raises(TypeError, match="concrete array"):
            jax.jit(lambda m: xqml.attribution_penalty(explained, m)(x, w))(MASK)
