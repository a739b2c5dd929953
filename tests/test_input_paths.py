"""Every way an input enters a circuit (issue #25): state preparations of the input, the input in
an observable's coefficients, bits, complex baselines, matrices, control flow on weights.

Each case is either computed exactly (checked against the plain QNode: ``jax.grad``, brute-force
coalitions, closed forms) or refused before any circuit runs. Runs in x64 and with XQML_X64=0.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close, no_circuit_runs

W = 0.37


@pytest.fixture
def dev():
    return qml.device("default.qubit", wires=3)


def _body(w):
    qml.RY(w, 0)
    qml.CNOT([0, 1])
    qml.RX(2 * w, 1)


OBSERVABLE = qml.Z(1) + 0.5 * qml.X(0)


def _quadratic_form(w):
    """``M = U† O U`` of :func:`_body` on wires 0, 1 (the model is ``a† M a``)."""
    u = qml.matrix(qml.tape.make_qscript(_body)(w), wire_order=[0, 1])
    o = qml.matrix(OBSERVABLE, wire_order=[0, 1])
    return u.conj().T @ o @ u


def _shapley(value, d):
    """Brute-force Shapley values of the set function ``value(keep)`` (keep: tuple of 0/1)."""
    phi = np.zeros(d)
    for i in range(d):
        for z in itertools.product((0, 1), repeat=d):
            if z[i]:
                continue
            s = sum(z)
            weight = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
            with_i = tuple(1 if j == i else z[j] for j in range(d))
            phi[i] += weight * (value(with_i) - value(z))
    return phi


# ---------------------------------------------------------------------------------------------
# 1. state preparations of the input: the amplitude convention, never Mottonen's angles
# ---------------------------------------------------------------------------------------------

PREPARATIONS = {
    "mottonen": lambda x: qml.MottonenStatePreparation(x, wires=[0, 1]),
    "multiplexer": lambda x: qml.MultiplexerStatePreparation(x, wires=[0, 1]),
    "stateprep_after_other_wires": lambda x: (qml.RY(0.4, 2), qml.StatePrep(x, wires=[0, 1])),
    "embedding_after_other_wires": lambda x: (
        qml.Hadamard(2),
        qml.AmplitudeEmbedding(x, wires=[0, 1], normalize=True),
    ),
}


def _prepared_model(dev, prepare):
    @qml.qnode(dev)
    def model(x, w):
        prepare(x)
        _body(w)
        return qml.expval(OBSERVABLE)

    return model


@pytest.mark.parametrize("name", list(PREPARATIONS))
@pytest.mark.parametrize("x", [[0.5, 0.5, 0.5, 0.5], [0.6, 0.0, -0.8, 0.0]])
def test_state_preparation_is_an_amplitude_embedding(dev, name, x):
    """Was: Mottonen's angle formulas (IG completeness off by 1.25, NaN at zero amplitudes)."""
    model = _prepared_model(dev, PREPARATIONS[name])
    x = jnp.array(x)
    m = _quadratic_form(W)
    a = np.asarray(x, dtype=float)
    ig, delta = xqml.integrated_gradients(model, return_convergence_delta=True)(x, W)
    assert_close(ig, a * np.real(m @ a))  # closed form from the zero amplitude vector
    assert_close(jnp.sum(ig), model(x, W))  # completeness against the plain QNode (f(0) = 0)
    assert_close(delta, 0.0, atol64=1e-12)
    grad = xqml.saliency(model, abs=False)(x, W)
    assert_close(grad, jax.grad(lambda v: v @ jnp.real(jnp.asarray(m)) @ v)(jnp.asarray(a)))
    ablation = xqml.feature_ablation(model)(x, W)
    f = lambda v: np.real(v @ m @ v)
    expected = [f(a) - f(a * (np.arange(4) != i)) for i in range(4)]
    assert_close(ablation, expected)


def test_state_preparation_after_operations_on_its_wires_is_refused(dev):
    @qml.qnode(dev)
    def model(x, w):
        qml.RY(w, 1)
        qml.MottonenStatePreparation(x, wires=[0, 1])
        return qml.expval(qml.Z(1))

    with no_circuit_runs(dev), pytest.raises(ValueError, match="after operations that act on"):
        xqml.saliency(model)(jnp.array([0.5, 0.5, 0.5, 0.5]), W)


def test_approximate_state_preparation_of_the_input_is_refused(dev):
    @qml.qnode(dev)
    def model(x, w):
        qml.Superposition(x, bases=[[0, 0], [1, 1]], wires=[0, 1], work_wire=[2])
        return qml.expval(qml.Z(1))

    with no_circuit_runs(dev), pytest.raises(TypeError, match="not an exact StatePrep"):
        xqml.feature_ablation(model)(np.array([0.6, 0.8]), W)


def _sqrt_model(dev):
    @qml.qnode(dev)
    def model(x, w):
        qml.RY(qml.math.sqrt(x[0]), 0)
        qml.RY(x[1] + w, 1)
        return qml.expval(qml.Z(0) @ qml.Z(1))

    return model


@pytest.mark.parametrize("gradient", ["backprop", "parameter-shift"])
def test_non_finite_map_at_a_path_point_is_refused(dev, gradient):
    """The map sqrt(x) has an infinite derivative at the baseline 0, a riemann_left node."""
    explained = xqml.integrated_gradients(
        _sqrt_model(dev), method="riemann_left", gradient=gradient
    )
    with no_circuit_runs(dev), pytest.raises(ValueError, match=r"NaN or inf at the input \[0"):
        explained(jnp.array([0.3, 0.5]), W)
    # the same map away from 0 is fine: Gauss-Legendre nodes are interior
    ig = xqml.integrated_gradients(_sqrt_model(dev), gradient=gradient)(jnp.array([0.3, 0.5]), W)
    assert np.all(np.isfinite(ig))


def test_non_finite_map_at_a_coalition_is_refused(dev):
    @qml.qnode(dev)
    def model(x, w):
        a = x / jnp.linalg.norm(x)
        qml.RY(a[0], 0)
        qml.RY(a[1] + w, 1)
        return qml.expval(qml.Z(0) @ qml.Z(1))

    with no_circuit_runs(dev), pytest.raises(ValueError, match=r"NaN or inf at the input \[0"):
        xqml.shapley_values(model)(jnp.array([0.3, 0.5]), W)


# ---------------------------------------------------------------------------------------------
# 2. the input in an observable's coefficients
# ---------------------------------------------------------------------------------------------


def _observable_model(dev):
    @qml.qnode(dev)
    def model(x, w):
        qml.RY(x[1], 0)
        qml.RX(w, 1)
        qml.CNOT([0, 1])
        return qml.expval(x[0] * qml.Z(1) + 0.5 * qml.X(0) + x[2] * qml.Y(0))

    return model


X_OBS = jnp.array([0.7, 0.4, -0.3])


def test_observable_coefficients_in_perturbation_methods(dev):
    """Was: Shapley values and ablation saw the gate path only (a feature only in the
    observable got 0)."""
    model = _observable_model(dev)
    x = np.asarray(X_OBS)
    f = lambda v: float(model(jnp.asarray(v, dtype=X_OBS.dtype), W))
    shapley, gap = xqml.shapley_values(model, return_convergence_delta=True)(X_OBS, W)
    assert_close(shapley, _shapley(lambda z: f(np.array(z) * x), 3))
    assert_close(gap, 0.0, atol64=1e-12)
    ablation = xqml.feature_ablation(model)(X_OBS, W)
    assert_close(ablation, [f(x) - f(x * (np.arange(3) != i)) for i in range(3)])
    assert abs(float(ablation[0])) > 0.1  # the feature that only enters the observable


def test_observable_coefficients_in_integrated_gradients(dev):
    """IG by backprop differentiates the whole QNode; its delta compares with the QNode's
    outputs (was 0.40)."""
    model = _observable_model(dev)
    ig, delta = xqml.integrated_gradients(model, n_steps=20, return_convergence_delta=True)(
        X_OBS, W
    )
    nodes, weights = np.polynomial.legendre.leggauss(20)
    alphas, weights = (nodes + 1) / 2, weights / 2
    grads = jax.vmap(jax.grad(model), in_axes=(0, None))(jnp.outer(alphas, X_OBS), W)
    expected = np.asarray(X_OBS) * np.asarray(weights @ np.asarray(grads))
    assert_close(ig, expected)
    assert_close(jnp.sum(ig), model(X_OBS, W) - model(0 * X_OBS, W))
    assert abs(float(delta)) < 1e-6  # the 20-node rule is exact to ~1e-10 here


@pytest.mark.parametrize(
    "explain, x",
    [
        (lambda m: xqml.saliency(m, gradient="parameter-shift"), X_OBS),
        (lambda m: xqml.saliency(m), np.asarray(X_OBS)),  # NumPy: "auto" is parameter shift
        (lambda m: xqml.taylor_fourier(m, root=np.zeros(3)), X_OBS),
    ],
)
def test_observable_coefficients_with_gate_rules_are_refused(dev, explain, x):
    """Was: 'Sum' object has no attribute 'parameter_frequencies'."""
    with no_circuit_runs(dev), pytest.raises(ValueError, match="coefficients of a measured"):
        explain(_observable_model(dev))(x, W)


# ---------------------------------------------------------------------------------------------
# 3. bits
# ---------------------------------------------------------------------------------------------

BIT_PREPARATIONS = {
    "basis_state": lambda x: qml.BasisState(x, wires=[0, 1, 2]),
    "basis_embedding": lambda x: qml.BasisEmbedding(x, wires=[0, 1, 2]),
}


def _bit_model(dev, name):
    @qml.qnode(dev)
    def model(x, w):
        BIT_PREPARATIONS[name](x)
        qml.RY(w, 0)
        qml.CRX(2 * w, wires=[1, 2])
        qml.CNOT([0, 2])
        return qml.expval(qml.Z(2) + 0.3 * qml.Z(0) @ qml.X(1))

    return model


@pytest.mark.parametrize("name", list(BIT_PREPARATIONS))
def test_bits_are_flipped_by_perturbation_methods(dev, name):
    model = _bit_model(dev, name)
    x = np.array([1, 0, 1])
    f = lambda bits: float(model(np.array(bits), W))
    shapley = xqml.shapley_values(model)(x, W)  # default baseline: all zeros
    assert_close(shapley, _shapley(lambda z: f(np.array(z) * x), 3))
    reference = np.array([0, 1, 1])
    ablation = xqml.feature_ablation(model, baselines=reference)(x, W)
    flipped = [np.where(np.arange(3) == i, reference, x) for i in range(3)]
    assert_close(ablation, [f(x) - f(b) for b in flipped])


@pytest.mark.parametrize("name", list(BIT_PREPARATIONS))
@pytest.mark.parametrize("method", [xqml.saliency, xqml.integrated_gradients, xqml.smoothgrad])
def test_bits_refuse_gradient_methods(dev, name, method):
    """Was: all-zero gradients, without a warning."""
    with no_circuit_runs(dev), pytest.raises(ValueError, match="feature_ablation, shapley"):
        method(_bit_model(dev, name))(np.array([1, 0, 1]), W)


def test_bits_refuse_a_baseline_that_is_not_a_bit_string(dev):
    with no_circuit_runs(dev), pytest.raises(ValueError, match="bit-string baseline"):
        xqml.feature_ablation(_bit_model(dev, "basis_state"), baselines=0.5)(np.array([1, 0, 1]), W)


# ---------------------------------------------------------------------------------------------
# 4. complex baselines of a real input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "explain",
    [
        lambda m: xqml.integrated_gradients(m, baselines=np.array([1j, 0.0])),
        lambda m: xqml.feature_ablation(m, baselines=np.array([1j, 0.0])),
        lambda m: xqml.shapley_values(m, background=np.array([[1j, 0.0], [0.0, 0.0]])),
    ],
)
def test_complex_baseline_of_an_angle_model_is_refused(dev, explain):
    """Was: silently treated as 0."""
    with no_circuit_runs(dev), pytest.raises(TypeError, match="complex reference input"):
        explain(_sqrt_model(dev))(jnp.array([0.3, 0.5]), W)


# ---------------------------------------------------------------------------------------------
# 5. matrices and global phases of the input
# ---------------------------------------------------------------------------------------------


def _unitary_model(dev):
    @qml.qnode(dev)
    def model(x, w):
        c, s = qml.math.cos(x[0]), qml.math.sin(x[0])
        qml.QubitUnitary(qml.math.stack([qml.math.stack([c, -s]), qml.math.stack([s, c])]), 0)
        qml.RX(x[1] * w, 1)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    return model


def test_input_in_a_matrix(dev):
    """Was: 'need at least one array to stack' from parameter shift."""
    model, x = _unitary_model(dev), jnp.array([0.3, 0.8])
    with no_circuit_runs(dev), pytest.raises(ValueError, match="matrix of QubitUnitary"):
        xqml.saliency(model, gradient="parameter-shift")(x, W)
    assert_close(xqml.saliency(model, abs=False)(x, W), jax.grad(model)(x, W))  # backprop
    f = lambda v: model(v, W)
    expected = [f(x) - f(x.at[i].set(0.0)) for i in range(2)]
    assert_close(xqml.feature_ablation(model)(x, W), expected)


@pytest.mark.parametrize("broadcast", [True, False])
def test_input_in_a_global_phase_by_parameter_shift(dev, broadcast):
    @qml.qnode(dev)
    def model(x, w):
        qml.RY(x[0] * w, 0)
        qml.GlobalPhase(x[1], wires=0)
        return qml.expval(qml.Z(0))

    x = jnp.array([0.3, 0.8])
    grad = xqml.saliency(model, abs=False, gradient="parameter-shift", broadcast=broadcast)(x, W)
    assert_close(grad, jax.grad(model)(x, W))


# ---------------------------------------------------------------------------------------------
# 6. Python control flow on a weight (only the input is traced)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["if", "cond"])
@pytest.mark.parametrize("w", [W, -W])
def test_control_flow_on_a_weight(dev, style, w):
    """Was: TracerBoolConversionError from the backprop rule."""

    @qml.qnode(dev)
    def model(x, weight):
        qml.RY(x[0], 0)
        if style == "if":
            if weight > 0:
                qml.RX(x[1] * weight, 0)
        else:
            qml.cond(weight > 0, qml.RX)(x[1] * weight, 0)
        return qml.expval(qml.Z(0))

    x, weight = jnp.array([0.3, 0.8]), jnp.array(w)
    for _ in range(2):  # the second call reuses the cached (eager) Jacobian
        assert_close(xqml.saliency(model, abs=False)(x, weight), jax.grad(model)(x, weight))
