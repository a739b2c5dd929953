"""Shared fixtures: JAX precision, random amplitude-embedded and angle-encoded models.

The suite runs in 64-bit JAX by default; ``XQML_X64=0`` runs it in JAX's default float32 (as
most users do), where tolerances come from :mod:`pennylane_xqml.testing` by dtype.
"""

import os

import jax
import numpy as np
import pennylane as qml
import pytest

X64 = os.environ.get("XQML_X64", "1") != "0"
jax.config.update("jax_enable_x64", X64)


@pytest.fixture(autouse=True)
def _restore_precision():
    """Give every test the suite's precision back: the reproductions' and demo's entry points
    switch JAX to 64-bit for their own runs."""
    yield
    if jax.config.jax_enable_x64 != X64:
        jax.config.update("jax_enable_x64", X64)
        jax.clear_caches()


def amplitude_model(
    device, n_qubits, observable=None, measurements=None, layers=2, interface="jax"
):
    """``f(x, w)``: AmplitudeEmbedding (normalised) + StronglyEntanglingLayers."""

    @qml.qnode(device, interface=interface)
    def model(x, weights):
        qml.AmplitudeEmbedding(x, wires=range(n_qubits), normalize=True)
        qml.StronglyEntanglingLayers(weights, wires=range(n_qubits))
        if measurements is not None:
            return measurements()
        return qml.expval(observable if observable is not None else qml.PauliZ(0))

    return model


def circuit_matrix(weights, n_qubits):
    """The unitary U of the StronglyEntanglingLayers body."""
    return qml.matrix(
        qml.StronglyEntanglingLayers(weights, wires=range(n_qubits)), wire_order=range(n_qubits)
    )


def quadratic_form(weights, n_qubits, observable):
    """``M = U† O U`` so that the model is ``a† M a``."""
    u = circuit_matrix(weights, n_qubits)
    o = qml.matrix(observable, wire_order=range(n_qubits))
    return u.conj().T @ o @ u


def random_weights(rng, n_qubits, layers=2):
    return rng.normal(size=qml.StronglyEntanglingLayers.shape(layers, n_qubits))


@pytest.fixture
def rng():
    return np.random.default_rng(2026)
