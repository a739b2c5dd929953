"""QGrad-CAM (pennylane_xqml.methods.gradcam) on the hybrid CNN–VQC (pennylane_xqml.experiments.hybrid)."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

from pennylane_xqml.experiments.hybrid import HybridCNNVQC, load_digits_images
from pennylane_xqml.methods.gradcam import grad_cam
from pennylane_xqml.testing import assert_close


@pytest.fixture(scope="module")
def model():
    """Untrained, seeded: the weights' correctness does not depend on accuracy."""
    return HybridCNNVQC(n_classes=4, seed=1)


@pytest.fixture(scope="module")
def images():
    X, _, _, _ = load_digits_images(4)
    return jnp.asarray(X[:3])


@pytest.fixture(scope="module")
def trained():
    """The documented setting: digits 0-3, default model, fit(epochs=40)."""
    X_train, X_test, y_train, y_test = load_digits_images(4)
    model = HybridCNNVQC(n_classes=4, seed=0).fit(X_train, y_train, epochs=40)
    return model, X_test, y_test


def autodiff_mean_gradient(model, params, A, layer):
    """(1/WH) Σ_ij ∂f^ℓ/∂A^k_ij by jax.jacrev of the head, independently of grad_cam."""

    @jax.jit
    def mean_gradient(params, A):
        jac = jax.jacrev(lambda a: model.head(params, a, layer))(A)  # (N, C, N, K, H, W)
        return jnp.stack([jac[i, :, i].mean(axis=(-2, -1)) for i in range(A.shape[0])])

    return mean_gradient(params, A)  # (N, C, K)


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["conv2", "conv1"])
def test_weights_equal_autodiff_mean_gradient(model, images, layer):
    params = model.params
    A = model.activations(params, images, layer)
    exact = autodiff_mean_gradient(model, params, A, layer)
    shift = grad_cam(model, layer=layer).weights(params, images, all_classes=True)
    assert shift.values.shape == (3, 4, A.shape[1])
    assert_close(shift.values, exact, rtol64=0, atol64=1e-8)
    np.testing.assert_array_equal(shift.stderr, 0.0)
    backprop = grad_cam(model, layer=layer, gradient="backprop").weights(
        params, images, all_classes=True
    )
    assert_close(backprop.values, exact, rtol64=0, atol64=1e-10)


def test_one_batch_of_parameter_shift_circuits(model, images):
    """All images' shifted circuits (2 per encoding angle) and forward circuits: one execute."""
    with qml.Tracker(model.device) as tracker:
        grad_cam(model)(model.params, images)
    assert tracker.totals["batches"] == 1
    assert tracker.totals["executions"] == 3 * (2 * model.n_qubits + 1)


def test_shots_within_four_standard_errors(model, images):
    params = model.params
    exact = grad_cam(model, gradient="backprop").weights(params, images, all_classes=True).values
    noisy_model = HybridCNNVQC(
        n_classes=4, seed=1, device=qml.device("default.qubit", wires=4, seed=7)
    )
    noisy = grad_cam(noisy_model.with_shots(20000)).weights(params, images, all_classes=True)
    assert np.all(np.asarray(noisy.stderr) > 0)
    z = np.abs(np.asarray(noisy.values - exact)) / np.asarray(noisy.stderr)
    assert np.all(z < 4), f"max deviation {z.max():.2f} standard errors"
    # the CAM call returns the standard errors of the target's weights
    cams, stderr = grad_cam(noisy_model.with_shots(20000), target=2, return_stderr=True)(
        params, images
    )
    assert cams.shape == (3, 8, 8) and stderr.shape == (3, 4)
    np.testing.assert_allclose(stderr, noisy.stderr[:, 2], rtol=0.05)


def test_cam_shapes_and_formula(model, images):
    params = model.params
    assert grad_cam(model, target=0)(params, images).shape == (3, 8, 8)
    assert grad_cam(model, target=0)(params, images[0]).shape == (8, 8)
    assert grad_cam(model, layer="conv1", target=0)(params, images).shape == (3, 8, 8)
    raw = grad_cam(model, target=3, upsample=False)
    cams = raw(params, images)
    assert cams.shape == (3, 6, 6)
    w = raw.weights(params, images).values
    A = model.activations(params, images)
    expected = jnp.maximum(jnp.einsum("nk,nkhw->nhw", w, A), 0)
    assert_close(cams, expected, rtol64=1e-7, atol64=1e-14)
    assert np.all(np.asarray(grad_cam(model, target=3)(params, images)) >= 0)


@pytest.mark.slow
def test_trained_accuracy_and_class_discriminative_cams(trained):
    model, X_test, y_test = trained
    accuracy = model.score(X_test, y_test)
    assert accuracy >= 0.95, accuracy  # documented: 0.978 with seed 0
    image = jnp.asarray(X_test[0])
    logits = model.predict_logits(model.params, image[None])[0]
    predicted = int(jnp.argmax(logits))
    other = int(jnp.argmin(logits))
    assert abs(float(logits[predicted] - logits[other])) > 1e-3
    cam_pred = grad_cam(model, target=predicted)(model.params, image)
    cam_other = grad_cam(model, target=other)(model.params, image)
    assert float(jnp.max(jnp.abs(cam_pred - cam_other))) > 1e-3
    # target=None explains the predicted class
    assert_close(grad_cam(model)(model.params, image), cam_pred, rtol64=1e-7, atol64=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("gradient", ["parameter-shift", "backprop"])
def test_jit_and_vmap_agree(model, images, gradient):
    params = model.params
    cam = grad_cam(model, gradient=gradient)
    plain = cam(params, images)
    assert float(jnp.max(plain)) > 0
    assert_close(jax.jit(cam)(params, images), plain, rtol64=0, atol64=1e-10)
    if gradient == "parameter-shift":  # (backprop is plain JAX: one compile check suffices)
        vmapped = jax.vmap(cam, in_axes=(None, 0))(params, images)
        assert_close(vmapped, plain, rtol64=0, atol64=1e-10)
        weights = cam.weights(params, images, all_classes=True).values
        jitted = jax.jit(lambda p, x: cam.weights(p, x, all_classes=True).values)(params, images)
        assert_close(jitted, weights, rtol64=0, atol64=1e-10)


def test_validation_errors_before_any_circuit(model, images):
    params = model.params
    with qml.Tracker(model.device) as tracker:
        with pytest.raises(ValueError, match="Unknown layer"):
            grad_cam(model, layer="conv3")
        with pytest.raises(ValueError, match="out of range"):
            grad_cam(model, target=4)
        with pytest.raises(ValueError, match="out of range"):
            grad_cam(model, target=[0, -1, 2])
        with pytest.raises(ValueError, match="entries for 3 images"):
            grad_cam(model, target=[0, 1])(params, images)
        with pytest.raises(ValueError, match="images must have shape"):
            grad_cam(model)(params, jnp.ones((3, 7, 8)))
        with pytest.raises(ValueError, match="images must have shape"):
            grad_cam(model)(params, jnp.ones((2, 3, 8, 8)))
        with pytest.raises(ValueError, match="NaN"):
            grad_cam(model)(params, images.at[0, 0, 0].set(jnp.nan))
        with pytest.raises(ValueError, match="Unknown gradient"):
            grad_cam(model, gradient="finite-diff")
        with pytest.raises(ValueError, match="analytic"):
            grad_cam(model.with_shots(100), gradient="backprop")
        with pytest.raises(TypeError, match="hybrid model"):
            grad_cam(object())
    assert tracker.totals.get("executions", 0) == 0
    with pytest.raises(ValueError, match="must equal n_qubits"):
        HybridCNNVQC(n_channels=3, n_qubits=4)
    with pytest.raises(ValueError, match="labels"):
        model.fit(np.asarray(images), [0, 1, 7], epochs=1)
