"""qiskit.aer (optional extra `pennylane-xqml[qiskit]`): the generated circuits transpile and
run with shots; results lie within 4 reported standard errors of the analytic values."""

import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import random_weights

pytest.importorskip("pennylane_qiskit", reason="install the optional extra: pip install .[qiskit]")

N = 2


@pytest.mark.qiskit
@pytest.mark.parametrize("rule", ["hadamard_all", "hadamard"])
def test_amplitude_ig_on_qiskit_aer(rule, rng):
    x, w = rng.normal(size=4), random_weights(rng, N)

    def circuit(x, w):
        qml.AmplitudeEmbedding(x, wires=range(N), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(N))
        return qml.expval(qml.PauliZ(0) + 0.5 * qml.PauliX(1))

    exact = xqml.integrated_gradients(qml.QNode(circuit, qml.device("default.qubit", wires=N)))(
        x, w
    )
    aer = qml.set_shots(
        qml.QNode(circuit, qml.device("qiskit.aer", wires=N + 1, seed=17)), shots=20000
    )
    estimate, stderr = xqml.integrated_gradients(aer, gradient=rule, return_stderr=True)(x, w)
    assert np.all(stderr > 0)
    assert np.all(np.abs(estimate - exact) < 4 * stderr)


@pytest.mark.qiskit
def test_angle_parameter_shift_on_qiskit_aer():
    def circuit(x, w):
        qml.AngleEmbedding(x, wires=range(N), rotation="Y")
        qml.CNOT([0, 1])
        qml.RX(w, 1)
        return qml.expval(qml.PauliZ(1))

    x = np.array([0.4, -0.9])
    exact = xqml.saliency(qml.QNode(circuit, qml.device("default.qubit", wires=N)), abs=False)(
        x, 0.3
    )
    aer = qml.set_shots(qml.QNode(circuit, qml.device("qiskit.aer", wires=N, seed=3)), shots=20000)
    estimate, stderr = xqml.saliency(aer, abs=False, return_stderr=True)(x, 0.3)
    assert np.all(np.abs(estimate - exact) < 4 * stderr)


def test_shapley_values_with_jax_inputs_on_qiskit_aer():
    """Eager JAX calls in 64-bit mode run merged broadcast tapes with NumPy parameters; the
    template weights every coalition shares stay unbroadcast (they once reached qiskit as a
    list of angles)."""
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    def circuit(w, x):
        qml.AngleEmbedding(x, wires=range(N))
        qml.BasicEntanglerLayers(w, wires=range(N))
        return qml.expval(qml.PauliZ(0))

    w, x = jnp.array([[0.2, 0.5]]), jnp.array([0.3, -0.7])
    exact = xqml.shapley_values(qml.QNode(circuit, qml.device("default.qubit", wires=N)), argnums=1)
    aer = qml.set_shots(qml.QNode(circuit, qml.device("qiskit.aer", wires=N, seed=5)), shots=20000)
    estimate, stderr = xqml.shapley_values(aer, argnums=1, return_stderr=True)(w, x)
    assert np.all(np.abs(np.asarray(estimate) - np.asarray(exact(w, x))) < 4 * np.asarray(stderr))
