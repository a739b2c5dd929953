"""check_device, and the methods' right numbers on a device that misorders probabilities.

``MisorderedProbs`` is default.qubit with the defect Amazon Braket's local simulator showed:
``qml.probs`` over wires that are not in device order comes back in device order.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from pennylane.devices import DefaultQubit
from pennylane.measurements import ProbabilityMP

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close


class MisorderedProbs(DefaultQubit):
    """Returns probabilities in device order whatever order the tape asks for."""

    @property
    def name(self):
        return "test.misordered_probs"

    def execute(self, circuits, execution_config=None):
        fixed = []
        for tape in circuits:
            measurements = [
                qml.probs(wires=sorted(mp.wires, key=list(self.wires).index))
                if isinstance(mp, ProbabilityMP) and mp.obs is None and len(mp.wires)
                else mp
                for mp in tape.measurements
            ]
            fixed.append(tape.copy(measurements=measurements))
        return super().execute(fixed, execution_config)


def test_check_device_passes_on_default_qubit_and_lightning():
    for device in (
        qml.device("default.qubit", wires=3),
        qml.device("lightning.qubit", wires=["a", "b"]),
    ):
        report = xqml.check_device(device)
        assert all(check.ok for check in report.checks), str(report)
        assert all(report.safe.values())


def test_check_device_catches_misordered_probabilities():
    report = xqml.check_device(MisorderedProbs(wires=3))
    assert not report.passed("probs_order")
    assert report.passed("state_prep") and report.passed("controlled_pauli")
    assert report.safe["hadamard_all"]  # worked around: measured in device order
    assert "worked around" in str(report)


def _amplitude_model(device):
    @qml.qnode(device)
    def f(x, w):
        qml.AmplitudeEmbedding(x, wires=[2, 0], normalize=True)
        qml.RY(w, 0)
        qml.CNOT([0, 1])
        qml.CNOT([2, 1])
        qml.RX(0.3, 2)
        return qml.expval(qml.Z(1) @ qml.X(2) + 0.5 * qml.Y(0))

    return f


@pytest.mark.parametrize("gradient", ["hadamard_all", "hadamard"])
def test_methods_are_right_on_a_device_that_misorders_probabilities(gradient):
    x, w = np.array([0.3, -1.2, 0.8, 0.5]), 0.7
    reference = xqml.integrated_gradients(_amplitude_model(qml.device("default.qubit", wires=4)))(
        x, w
    )
    broken = _amplitude_model(MisorderedProbs(wires=[3, 0, 1, 2]))  # ancilla wire 3 comes first
    assert_close(xqml.integrated_gradients(broken, gradient=gradient)(x, w), reference)
    expected = jax.grad(lambda a: _amplitude_model(qml.device("default.qubit", wires=4))(a, w))(
        jnp.asarray(x / np.linalg.norm(x))
    )
    assert_close(xqml.saliency(broken, abs=False, gradient=gradient)(x, w), expected)


def test_probs_outputs_are_right_on_a_device_that_misorders_probabilities():
    device = MisorderedProbs(wires=[2, 1, 0], seed=5)

    @qml.qnode(device)
    def f(x):
        qml.RY(x[0], 0)
        qml.RX(x[1], 1)
        qml.CNOT([0, 2])
        return qml.probs(wires=[0, 2])

    x = np.array([0.4, 0.9])

    @qml.qnode(qml.device("default.qubit", wires=3))
    def plain(x):
        qml.RY(x[0], 0)
        qml.RX(x[1], 1)
        qml.CNOT([0, 2])
        return qml.probs(wires=[0, 2])

    expected = jax.jacobian(plain)(jnp.asarray(x))
    explain = xqml.saliency(f, abs=False, gradient="parameter-shift", return_stderr=True)
    values, stderr = explain.update_shots(20_000)(x)
    assert np.all(stderr[expected != 0] > 0)
    assert np.all(np.abs(values - expected) < 4 * stderr + 1e-12)
