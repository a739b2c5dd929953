"""Scaling: exact integrated gradients of amplitude-embedded models up to 20 qubits.

The package's exact IG (``method="auto"`` -> closed form, ``gradient="auto"`` -> the "adjoint"
state-vector rule) is compared with an independent computation of the same closed form,

    IG = (a - a') ⊙ Re(M (a + a')),   M = U† O U,

built here from three plain default.qubit simulations that share no code with the package:
``U|v>`` returned by ``qml.state()``, the observable ``Z_0`` applied with NumPy (a sign flip of
the half of the amplitudes with wire 0 in |1>), and ``qml.adjoint`` of the template applied to
that state. That reference is itself checked against the dense ``M`` from ``qml.matrix`` at
8 qubits (the dense matrix costs ~15 s at 10 qubits and is out of reach at 20).
"""

import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import amplitude_model, quadratic_form, random_weights

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves this module out

LAYERS = 2


def state_sweep_m_times(v, weights, n_qubits):
    """``Re(M v)`` for ``M = U† Z_0 U`` by forward simulation, NumPy ``Z_0``, adjoint simulation."""
    dev = qml.device("default.qubit", wires=n_qubits)
    wires = range(n_qubits)
    norm = np.linalg.norm(v)

    @qml.qnode(dev, interface="numpy")
    def forward(state):
        qml.StatePrep(state, wires=wires)
        qml.StronglyEntanglingLayers(weights, wires=wires)
        return qml.state()

    @qml.qnode(dev, interface="numpy")
    def backward(state):
        qml.StatePrep(state, wires=wires)
        qml.adjoint(qml.StronglyEntanglingLayers)(weights, wires=wires)
        return qml.state()

    psi = forward(v / norm)
    half = len(psi) // 2  # wire 0 is the most significant bit: Z_0 = diag(+1 x half, -1 x half)
    z0_psi = np.concatenate([psi[:half], -psi[half:]])
    return norm * np.real(backward(z0_psi))


def reference_ig(x, baseline, weights, n_qubits):
    """Closed-form IG in amplitude space (zero baseline = the zero amplitude vector)."""
    a = x / np.linalg.norm(x)
    a0 = np.zeros_like(a) if baseline is None else baseline / np.linalg.norm(baseline)
    return (a - a0) * state_sweep_m_times(a + a0, weights, n_qubits)


def _assert_agrees(attributions, reference):
    attributions = np.asarray(attributions)
    error = np.max(np.abs(attributions - reference))
    assert error < 1e-8
    # components are ~1/2**n in size, so also compare relative to the largest one
    assert error / np.max(np.abs(reference)) < 1e-8


def _input(rng, n_qubits):
    """Positive pixels plus a few bright ones, so that some attributions are large."""
    x = rng.random(2**n_qubits)
    x[rng.choice(len(x), size=4, replace=False)] += 0.05 * np.sqrt(len(x))
    return x


@pytest.mark.parametrize("nonzero_baseline", [False, True])
def test_exact_ig_at_20_qubits_matches_state_sweep_closed_form(nonzero_baseline):
    """The acceptance test, on lightning.qubit (~15x faster than default.qubit at 20 qubits,
    see benchmarks/bench_scaling.py; default.qubit is checked at 12 qubits below)."""
    n_qubits = 20
    rng = np.random.default_rng(20)
    weights = random_weights(rng, n_qubits, LAYERS)
    x = _input(rng, n_qubits)
    baseline = rng.random(2**n_qubits) if nonzero_baseline else None
    model = amplitude_model(
        qml.device("lightning.qubit", wires=n_qubits), n_qubits, interface="numpy"
    )
    explained = xqml.integrated_gradients(
        model, baselines=0.0 if baseline is None else baseline, return_convergence_delta=True
    )

    attributions, delta = explained(x, weights)

    assert attributions.shape == (2**n_qubits,)
    _assert_agrees(attributions, reference_ig(x, baseline, weights, n_qubits))
    assert abs(float(delta)) < 1e-8


def test_exact_ig_at_20_qubits_is_one_two_sweep_circuit():
    """The cost structure behind "about 2-3 forward simulations": without the delta, one
    circuit per Pauli word, holding the template twice (U and U†) around the word."""
    n_qubits = 20
    rng = np.random.default_rng(1)
    weights = random_weights(rng, n_qubits, LAYERS)
    model = amplitude_model(
        qml.device("lightning.qubit", wires=n_qubits), n_qubits, interface="numpy"
    )
    explained = xqml.integrated_gradients(model)

    tapes = explained.construct_batch(rng.random(2**n_qubits), weights)

    assert len(tapes) == 1
    names = [op.name for op in tapes[0].operations]
    assert names == [
        "StatePrep",
        "StronglyEntanglingLayers",
        "PauliZ",
        "Adjoint(StronglyEntanglingLayers)",
    ]
    assert [type(m).__name__ for m in tapes[0].measurements] == ["StateMP"]


def test_state_sweep_reference_matches_dense_matrix():
    """The reference used above agrees with ``M`` from ``qml.matrix`` (8 qubits, fast)."""
    n_qubits = 8
    rng = np.random.default_rng(8)
    weights = random_weights(rng, n_qubits, LAYERS)
    v = rng.normal(size=2**n_qubits)

    m = quadratic_form(weights, n_qubits, qml.PauliZ(0))

    np.testing.assert_allclose(
        state_sweep_m_times(v, weights, n_qubits), np.real(m @ v), atol=1e-12
    )


@pytest.mark.parametrize("device_name", ["lightning.qubit", "default.qubit"])
@pytest.mark.parametrize("nonzero_baseline", [False, True])
def test_exact_ig_at_12_qubits_on_both_simulators(device_name, nonzero_baseline):
    n_qubits = 12
    rng = np.random.default_rng(12)
    weights = random_weights(rng, n_qubits, LAYERS)
    x = _input(rng, n_qubits)
    baseline = rng.random(2**n_qubits) if nonzero_baseline else None
    model = amplitude_model(qml.device(device_name, wires=n_qubits), n_qubits, interface="numpy")
    explained = xqml.integrated_gradients(
        model, baselines=0.0 if baseline is None else baseline, return_convergence_delta=True
    )

    attributions, delta = explained(x, weights)

    reference = reference_ig(x, baseline, weights, n_qubits)
    _assert_agrees(attributions, reference)
    assert abs(float(delta)) < 1e-8
    f_baseline = 0.0 if baseline is None else model(baseline, weights)
    assert np.isclose(np.sum(attributions), model(x, weights) - f_baseline, atol=1e-10)
