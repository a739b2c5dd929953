"""With shots, each attribution lies within 4 of its own reported standard errors (fixed seeds)."""

import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import amplitude_model, random_weights
from pennylane_xqml.testing import assert_close

N = 3
OBSERVABLE = qml.PauliZ(0) + 0.5 * qml.PauliX(2)


def _within(estimate, stderr, exact, n_se=4.0):
    assert np.all(np.asarray(stderr) > 0)
    z = np.abs(np.asarray(estimate) - np.asarray(exact)) / np.asarray(stderr)
    assert np.all(z < n_se), f"max deviation {z.max():.2f} standard errors"


@pytest.mark.parametrize("rule", ["hadamard_all", "hadamard"])
def test_amplitude_ig_with_shots(rule, rng):
    x, w = rng.normal(size=8), random_weights(rng, N)
    model = amplitude_model(
        qml.device("default.qubit", wires=N + 1, seed=5),
        N,
        observable=OBSERVABLE,
        interface="numpy",
    )
    exact = xqml.integrated_gradients(model)(x, w)
    noisy = xqml.integrated_gradients(
        qml.set_shots(model, shots=5000), gradient=rule, return_stderr=True
    )
    estimate, stderr = noisy(x, w)
    _within(estimate, stderr, exact)
    # the standard error shrinks like 1/sqrt(shots)
    _, stderr_more = xqml.integrated_gradients(
        qml.set_shots(model, shots=80000), gradient=rule, return_stderr=True
    )(x, w)
    ratio = np.median(np.asarray(stderr) / np.asarray(stderr_more))
    assert 3.0 < ratio < 5.3  # sqrt(16) = 4


def test_amplitude_saliency_with_shots_complex(rng):
    a = rng.normal(size=8) + 1j * rng.normal(size=8)
    a /= np.linalg.norm(a)
    dev = qml.device("default.qubit", wires=N + 1, seed=9)
    w = random_weights(rng, N)

    @qml.qnode(dev)
    def model(state, weights):
        qml.StatePrep(state, wires=range(N))
        qml.StronglyEntanglingLayers(weights, wires=range(N))
        return qml.expval(qml.PauliY(1))

    exact = xqml.saliency(model, abs=False)(a, w)
    estimate, stderr = xqml.saliency(
        qml.set_shots(model, shots=20000), abs=False, return_stderr=True
    )(a, w)
    _within(np.real(estimate), stderr, np.real(exact))
    _within(np.imag(estimate), stderr, np.imag(exact))


def test_angle_parameter_shift_with_shots(rng):
    dev = qml.device("default.qubit", wires=2, seed=3)

    @qml.qnode(dev)
    def model(x, w):
        qml.RY(np.pi * x[0], wires=0)
        qml.RX(x[1], wires=1)
        qml.CNOT([0, 1])
        qml.RY(w, wires=1)
        return qml.expval(qml.PauliZ(1) + 0.3 * qml.PauliX(0)), qml.probs(wires=[0])

    x = np.array([0.3, -0.7])
    for method in (xqml.saliency, xqml.integrated_gradients):
        options = {"abs": False} if method is xqml.saliency else {"n_steps": 4}
        exact = method(model, **options)(x, 0.5)
        estimate, stderr = method(qml.set_shots(model, shots=20000), return_stderr=True, **options)(
            x, 0.5
        )
        _within(estimate, stderr, exact)


def test_analytic_stderr_is_zero(rng):
    model = amplitude_model(qml.device("default.qubit", wires=N), N)
    x, w = jnp.array(rng.normal(size=8)), jnp.array(random_weights(rng, N))
    _, delta, stderr = xqml.integrated_gradients(
        model, return_convergence_delta=True, return_stderr=True
    )(x, w)
    assert np.all(np.asarray(stderr) == 0)
    assert_close(delta, 0.0, rtol64=0, atol64=1e-10)


def test_perturbation_methods_with_shots(rng):
    """Shapley values and feature ablation propagate the forward circuits' variances."""
    dev = qml.device("default.qubit", wires=2, seed=21)

    @qml.qnode(dev)
    def model(x, w):
        qml.RY(x[0], wires=0)
        qml.RY(x[1], wires=1)
        qml.CNOT([0, 1])
        qml.RX(w, wires=1)
        return qml.expval(qml.PauliZ(1) + 0.5 * qml.PauliX(0))

    x, background = np.array([0.7, -1.2]), rng.normal(size=(3, 2))
    for method, options in (
        (xqml.shapley_values, {"background": background}),
        (xqml.feature_ablation, {}),
    ):
        exact = method(model, **options)(x, 0.4)
        estimate, stderr = method(qml.set_shots(model, shots=20000), return_stderr=True, **options)(
            x, 0.4
        )
        _within(estimate, stderr, exact)
