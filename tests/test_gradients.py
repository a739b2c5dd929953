"""Saliency, input × gradient and SmoothGrad against autodiff and their own definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import amplitude_model, quadratic_form, random_weights
from pennylane_xqml.testing import assert_close

N = 3


@pytest.fixture
def amp(rng):
    model = amplitude_model(qml.device("default.qubit", wires=N), N)
    x, w = jnp.array(rng.normal(size=8)), jnp.array(random_weights(rng, N))
    a = np.asarray(x) / np.linalg.norm(x)
    m = quadratic_form(np.asarray(w), N, qml.PauliZ(0))
    return model, x, w, a, m


def test_saliency_and_input_x_gradient_amplitude(amp):
    model, x, w, a, m = amp
    gradient = 2 * np.real(m @ a)
    assert_close(xqml.saliency(model, abs=False)(x, w), gradient, rtol64=1e-7, atol64=1e-10)
    assert_close(xqml.saliency(model)(x, w), np.abs(gradient), rtol64=1e-7, atol64=1e-10)
    ixg = xqml.input_x_gradient(model)(x, w)
    assert_close(ixg, a * gradient, rtol64=1e-7, atol64=1e-10)
    # degree-2 homogeneity
    assert_close(ixg.sum(), 2 * model(x, w), rtol64=1e-5, atol64=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_matches_its_definition(nt_type, amp):
    model, x, w, a, m = amp
    noise = 0.2 * np.random.default_rng(7).normal(size=(5, 8))
    grads = np.stack([2 * np.real(m @ (a + eps)) for eps in noise])
    expected = {
        "smoothgrad": grads.mean(0),
        "smoothgrad_sq": (grads**2).mean(0),
        "vargrad": grads.var(0),
    }[nt_type]
    sg = xqml.smoothgrad(model, nt_type=nt_type, nt_samples=5, stdevs=0.2, seed=7)
    assert_close(sg(x, w), expected, rtol64=1e-7, atol64=1e-10)
    assert_close(jax.jit(sg)(x, w), expected, rtol64=1e-7, atol64=1e-10)


def test_smoothgrad_is_seeded(amp):
    model, x, w, _, _ = amp
    first = xqml.smoothgrad(model, seed=3)(x, w)
    np.testing.assert_array_equal(first, xqml.smoothgrad(model, seed=3)(x, w))
    assert not np.allclose(first, xqml.smoothgrad(model, seed=4)(x, w))


def test_gradient_family_angle_matches_autodiff(rng):
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AngleEmbedding(x, wires=range(2))
        qml.CNOT([0, 1])
        qml.RY(w, 1)
        return qml.expval(qml.PauliZ(1))

    x = jnp.array([0.4, -1.1])
    grad = jax.grad(model)(x, 0.3)
    for gradient in ("parameter-shift", "backprop"):
        assert_close(
            xqml.input_x_gradient(model, gradient=gradient)(x, 0.3),
            x * grad,
            rtol64=1e-7,
            atol64=1e-10,
        )
        sg = xqml.smoothgrad(model, gradient=gradient, stdevs=0.1, nt_samples=3, seed=1)(x, 0.3)
        noise = 0.1 * np.random.default_rng(1).normal(size=(3, 2))
        expected = np.mean([jax.grad(model)(x + e, 0.3) for e in noise], axis=0)
        assert_close(sg, expected, rtol64=1e-7, atol64=1e-10)
