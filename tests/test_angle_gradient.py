"""Angle encodings: parameter-shift input gradients with classical pre-processing."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close

N = 3


def _model(device, measurements="expval"):
    @qml.qnode(device, interface="jax")
    def model(x, w):
        qml.AngleEmbedding(x[:3], wires=range(N), rotation="Y")
        qml.RY(jnp.pi * x[3], wires=0)  # classical pre-processing inside the QNode
        qml.RX(jnp.sin(x[1]) * x[0], wires=1)  # non-linear, and x[0], x[1] enter twice
        qml.StronglyEntanglingLayers(w, wires=range(N))
        if measurements == "expval":
            return qml.expval(qml.PauliZ(0) + 0.5 * qml.PauliX(1) @ qml.PauliY(2))
        return qml.expval(qml.PauliZ(0)), qml.probs(wires=[2])

    return model


def _flat(model):
    return lambda x, w: jnp.concatenate(
        [jnp.atleast_1d(r) for r in jax.tree_util.tree_leaves(model(x, w))]
    )


@pytest.fixture
def inputs(rng):
    return jnp.array(rng.normal(size=4)), jnp.array(rng.normal(size=(2, N, 3)))


@pytest.mark.parametrize("measurements", ["expval", "mixed"])
@pytest.mark.parametrize(
    "device_name, gradient",
    [
        ("default.qubit", "parameter-shift"),
        ("default.qubit", "backprop"),
        ("default.qubit", "auto"),
        ("lightning.qubit", "parameter-shift"),
        ("lightning.qubit", "auto"),
    ],
)
def test_input_gradient_equals_autodiff(device_name, gradient, measurements, inputs):
    model = _model(qml.device(device_name, wires=N), measurements)
    x, w = inputs
    expected = jax.jacobian(_flat(_model(qml.device("default.qubit", wires=N), measurements)))(x, w)
    got = xqml.saliency(model, abs=False, gradient=gradient)(x, w)
    assert_close(jnp.reshape(got, expected.shape), expected, rtol64=1e-7, atol64=1e-8)


@pytest.mark.slow
def test_iqp_embedding_parameter_shift(rng):
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.IQPEmbedding(x, wires=range(3))  # products x_i x_j feed MultiRZ gates
        qml.BasicEntanglerLayers(w, wires=range(3))
        return qml.expval(qml.PauliZ(1))

    x, w = jnp.array(rng.normal(size=3)), jnp.array(rng.normal(size=(2, 3)))
    got = xqml.saliency(model, abs=False, gradient="parameter-shift")(x, w)
    assert_close(got, jax.grad(model)(x, w), rtol64=1e-7, atol64=1e-8)


@pytest.mark.slow
def test_integrated_gradients_complete_for_angles(inputs):
    model = _model(qml.device("default.qubit", wires=N))
    x, w = inputs
    for gradient in ("parameter-shift", "auto"):
        ig = xqml.integrated_gradients(
            model, gradient=gradient, n_steps=40, return_convergence_delta=True
        )
        attributions, delta = ig(x, w)
        assert attributions.shape == x.shape
        assert_close(delta, 0.0, rtol64=0, atol64=1e-8)  # Gauss-Legendre, smooth path
        assert_close(
            attributions.sum(), model(x, w) - model(jnp.zeros(4), w), rtol64=1e-5, atol64=1e-8
        )


@pytest.mark.slow
def test_angle_ig_under_jit_vmap_and_grad(inputs, rng):
    model = _model(qml.device("default.qubit", wires=N))
    x, w = inputs
    ig = xqml.integrated_gradients(model, gradient="parameter-shift", n_steps=2)
    batch = jnp.stack([x, x + 0.3])
    plain = jnp.stack([ig(b, w) for b in batch])
    assert_close(jax.jit(ig)(x, w), plain[0], rtol64=1e-7, atol64=1e-10)
    assert_close(jax.vmap(ig, in_axes=(0, None))(batch, w), plain, rtol64=1e-7, atol64=1e-10)
    loss = lambda weights: jnp.sum(ig(x, weights))
    h = 1e-5 if w.dtype == np.float64 else 5e-3  # central differences: h ~ eps^(1/3)
    step = np.zeros(w.shape)
    step[0, 1, 2] = h
    fd = (loss(w + step) - loss(w - step)) / (2 * h)
    assert_close(jax.grad(loss)(w)[0, 1, 2], fd, rtol64=1e-5, atol64=1e-5)


def test_numpy_interface_angle(rng):
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def model(x, w):
        qml.RY(np.pi * x[0], wires=0)
        qml.RX(x[1] ** 2, wires=1)
        qml.CNOT([0, 1])
        qml.RY(w, wires=1)
        return qml.expval(qml.PauliZ(1))

    x = np.array([0.3, -0.8])
    # f = cos(pi x0) cos(x1^2 ... ) -> compare with central finite differences
    grad = xqml.saliency(model, abs=False)(x, 0.2)
    eps = 1e-6
    fd = [(model(x + eps * e, 0.2) - model(x - eps * e, 0.2)) / (2 * eps) for e in np.eye(2)]
    assert_close(grad, fd, rtol64=1e-7, atol64=1e-7)
