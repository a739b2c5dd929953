"""The amplitude-input engine: every rule against the matrix formula and against autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import amplitude_model, quadratic_form, random_weights
from pennylane_xqml.engine.amplitude_kernel import backprop_kernel, kernel_tapes
from pennylane_xqml.engine.encodings import find_amplitude_encoding, output_sentences
from pennylane_xqml.engine.execution import execute_batch
from pennylane_xqml.testing import assert_close

OBSERVABLE = 0.3 * qml.PauliZ(0) @ qml.PauliX(1) + 0.7 * qml.PauliY(1) + 0.2 * qml.Identity(0)


def _unit(rng, n, complex_=False):
    v = rng.normal(size=n) + (1j * rng.normal(size=n) if complex_ else 0)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("rule", ["hadamard_all", "hadamard", "adjoint", "backprop"])
@pytest.mark.parametrize("complex_", [False, True])
def test_kernel_matches_matrix_formula(rule, complex_, rng):
    """K(u, v)_i = conj(u_i) (M v)_i for a Hamiltonian and a probs output, real and complex."""
    n = 3
    w = random_weights(rng, n)
    a, u = _unit(rng, 2**n, complex_), _unit(rng, 2**n, complex_)

    def circuit(state):
        qml.StatePrep(state, wires=range(n))
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(OBSERVABLE), qml.probs(wires=[2])

    tape = qml.tape.make_qscript(circuit)(jnp.array(a))
    enc, sentences = find_amplitude_encoding(tape), output_sentences(tape)
    observables = [OBSERVABLE] + [qml.Projector([b], wires=[2]) for b in (0, 1)]
    expected = np.stack([np.conj(u) * (quadratic_form(w, n, o) @ a) for o in observables])
    pairs = [(jnp.array(u), jnp.array(a))]
    if rule == "backprop":
        values = backprop_kernel(tape, enc, pairs, qml.device("default.qubit", wires=n), imag=True)
    else:
        dev = qml.device("default.qubit", wires=n + 1)
        tapes, fn = kernel_tapes(
            tape, enc, sentences, pairs, rule, ancilla=n, imag=True, state_wires=list(dev.wires)
        )
        values = fn(execute_batch(tapes, dev))
    assert_close(values.real[0], expected.real, rtol64=1e-7, atol64=1e-10)
    assert_close(values.imag[0], expected.imag, rtol64=1e-7, atol64=1e-10)


def test_circuit_counts_per_rule(rng):
    """hadamard_all: one circuit per Pauli word; hadamard: one per word and feature."""
    n = 3
    model = amplitude_model(qml.device("default.qubit", wires=n), n, observable=OBSERVABLE)
    x, w = rng.normal(size=2**n), random_weights(rng, n)
    words = 2  # Z0 X1 and Y1; the identity term is classical
    counts = {
        rule: len(xqml.integrated_gradients(model, gradient=rule).construct_batch(x, w))
        for rule in ("hadamard_all", "hadamard", "adjoint")
    }
    assert counts == {"hadamard_all": words, "hadamard": words * 2**n, "adjoint": words}


CASES = [(n, r) for n in (2, 3, 4, 5, 6) for r in ("hadamard_all", "adjoint")]
CASES += [(n, "hadamard") for n in (2, 3, 4)]  # per-feature: 2^n circuits per word


@pytest.mark.slow
@pytest.mark.parametrize("n, rule", CASES)
def test_gradient_equals_jax_grad_real(n, rule, rng):
    """Hadamard-test gradients (amplitude space) equal jax.grad of the StatePrep QNode."""
    dev = qml.device("default.qubit", wires=n + 1)
    w = random_weights(rng, n)
    a = _unit(rng, 2**n)

    @qml.qnode(dev, interface="jax")
    def quadratic(state, weights):
        qml.StatePrep(state, wires=range(n))
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return qml.expval(qml.PauliZ(0) @ qml.PauliY(n - 1) + 0.4 * qml.PauliX(0))

    expected = jax.grad(quadratic)(jnp.array(a), w)
    got = xqml.saliency(quadratic, abs=False, gradient=rule)(jnp.array(a), w)
    assert_close(got, expected, rtol64=1e-7, atol64=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 4, 6])
@pytest.mark.parametrize("rule", ["hadamard_all", "adjoint", "backprop"])
def test_gradient_equals_jax_grad_complex(n, rule, rng):
    """Complex amplitudes: our gradient is ∂/∂Re + i ∂/∂Im, JAX's grad is its conjugate."""
    dev = qml.device("default.qubit", wires=n + 1)
    w = random_weights(rng, n)
    a = _unit(rng, 2**n, complex_=True)

    @qml.qnode(dev, interface="jax")
    def quadratic(state, weights):
        qml.StatePrep(state, wires=range(n))
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return qml.expval(qml.PauliZ(0))

    expected = jnp.conj(jax.grad(quadratic)(jnp.array(a), w))
    got = xqml.saliency(quadratic, abs=False, gradient=rule)(jnp.array(a), w)
    assert_close(got, expected, rtol64=1e-7, atol64=1e-8)
