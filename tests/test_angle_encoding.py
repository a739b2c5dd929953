"""Angle encodings: parameter-shift input gradients with classical pre-processing."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml

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
    np.testing.assert_allclose(jnp.reshape(got, expected.shape), expected, atol=1e-8)


def test_iqp_embedding_parameter_shift(rng):
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.IQPEmbedding(x, wires=range(3))  # products x_i x_j feed MultiRZ gates
        qml.BasicEntanglerLayers(w, wires=range(3))
        return qml.expval(qml.PauliZ(1))

    x, w = jnp.array(rng.normal(size=3)), jnp.array(rng.normal(size=(2, 3)))
    got = xqml.saliency(model, abs=False, gradient="parameter-shift")(x, w)
    np.testing.assert_allclose(got, jax.grad(model)(x, w), atol=1e-8)


def test_integrated_gradients_complete_for_angles(inputs):
    model = _model(qml.device("default.qubit", wires=N))
    x, w = inputs
    for gradient in ("parameter-shift", "auto"):
        ig = xqml.integrated_gradients(
            model, gradient=gradient, n_steps=40, return_convergence_delta=True
        )
        attributions, delta = ig(x, w)
        assert attributions.shape == x.shape
        assert abs(delta) < 1e-8  # Gauss-Legendre on a smooth trigonometric path
        assert np.isclose(
            float(attributions.sum()), float(model(x, w) - model(jnp.zeros(4), w)), atol=1e-8
        )


def test_angle_ig_under_jit_vmap_and_grad(inputs, rng):
    model = _model(qml.device("default.qubit", wires=N))
    x, w = inputs
    ig = xqml.integrated_gradients(model, gradient="parameter-shift", n_steps=2)
    batch = jnp.stack([x, x + 0.3])
    plain = jnp.stack([ig(b, w) for b in batch])
    np.testing.assert_allclose(jax.jit(ig)(x, w), plain[0], atol=1e-10)
    np.testing.assert_allclose(jax.vmap(ig, in_axes=(0, None))(batch, w), plain, atol=1e-10)
    loss = lambda weights: jnp.sum(ig(x, weights))
    step = np.zeros(w.shape)
    step[0, 1, 2] = 1e-5
    fd = (loss(w + step) - loss(w - step)) / 2e-5
    assert np.isclose(float(jax.grad(loss)(w)[0, 1, 2]), float(fd), atol=1e-5)


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
    np.testing.assert_allclose(grad, fd, atol=1e-7)
