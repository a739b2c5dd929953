"""Integrated gradients: closed form, quadratures, completeness, baselines, targets, JAX."""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import amplitude_model, quadratic_form, random_weights
from pennylane_xqml.testing import assert_close

N_QUBITS = 3


@pytest.fixture
def setup(rng):
    model = amplitude_model(qml.device("default.qubit", wires=N_QUBITS), N_QUBITS)
    x = jnp.array(rng.normal(size=2**N_QUBITS))
    w = jnp.array(random_weights(rng, N_QUBITS))
    return model, x, w


def _analytic_ig(x, baseline_amplitudes, w, observable=None):
    observable = qml.PauliZ(0) if observable is None else observable
    a = np.asarray(x) / np.linalg.norm(x)
    m = quadratic_form(np.asarray(w), N_QUBITS, observable)
    return np.real((a - baseline_amplitudes) * (m @ (a + baseline_amplitudes)))


def test_exact_matches_closed_form_and_is_complete(setup):
    model, x, w = setup
    attributions, delta = xqml.integrated_gradients(model, return_convergence_delta=True)(x, w)
    assert_close(attributions, _analytic_ig(x, 0.0, w), rtol64=1e-7, atol64=1e-10)
    assert_close(delta, 0.0, atol64=1e-8)
    a = x / jnp.linalg.norm(x)
    assert_close(attributions.sum(), model(x, w), rtol64=1e-5, atol64=1e-10)
    assert attributions.shape == x.shape and a.shape == x.shape


@pytest.mark.slow
def test_exact_equals_2000_step_riemann(rng):
    """NumPy inputs keep the 2000 circuits of the Riemann sum cheap to simulate."""
    model = amplitude_model(
        qml.device("default.qubit", wires=N_QUBITS), N_QUBITS, interface="numpy"
    )
    x, w = rng.normal(size=2**N_QUBITS), random_weights(rng, N_QUBITS)
    exact = xqml.integrated_gradients(model, method="exact")(x, w)
    trapezoid = xqml.integrated_gradients(model, method="riemann_trapezoid", n_steps=2000)(x, w)
    assert_close(exact, trapezoid, rtol64=1e-7, atol64=1e-6)
    # one-sided sums converge as O(1/n): the error halves when the steps double
    errors = [
        np.abs(
            xqml.integrated_gradients(model, method="riemann_right", n_steps=n)(x, w) - exact
        ).max()
        for n in (500, 1000)
    ]
    assert errors[1] < 1e-3 and 0.4 < errors[1] / errors[0] < 0.6


@pytest.mark.parametrize(
    "method",
    ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"],
)
def test_quadratures_report_their_delta(method, setup):
    """Every method reports Σ attr - (f(x) - f(x')); it shrinks like the rule's error."""
    model, x, w = setup
    ig = xqml.integrated_gradients(model, method=method, n_steps=8, return_convergence_delta=True)
    attributions, delta = ig(x, w)
    analytic = _analytic_ig(x, 0.0, w)
    gap = float(np.sum(attributions) - np.sum(analytic))
    assert_close(delta, gap, rtol64=1e-5, atol64=1e-10)  # the delta is the real completeness gap
    if method in ("riemann_middle", "riemann_trapezoid", "gausslegendre"):
        # the integrand is linear in alpha: these rules are exact
        assert_close(attributions, analytic, rtol64=1e-7, atol64=1e-10)
    else:
        assert abs(float(delta)) > 1e-4  # left/right rules carry an O(1/n) error


def test_array_and_mean_baselines(setup, rng):
    model, x, w = setup
    data = rng.normal(size=(5, 2**N_QUBITS))
    for kwargs, raw in (
        ({"baselines": data[0]}, data[0]),
        ({"baselines": "mean", "baseline_data": data}, data.mean(axis=0)),
        ({"baselines": 0.25}, np.full(2**N_QUBITS, 0.25)),
    ):
        ig = xqml.integrated_gradients(model, return_convergence_delta=True, **kwargs)
        attributions, delta = ig(x, w)
        baseline = raw / np.linalg.norm(raw)  # embedded like the input
        assert_close(attributions, _analytic_ig(x, baseline, w), rtol64=1e-7, atol64=1e-10)
        assert_close(attributions.sum(), model(x, w) - model(raw, w), rtol64=1e-5, atol64=1e-10)
        assert_close(delta, 0.0, atol64=1e-8)


def test_several_outputs_and_targets(rng):
    dev = qml.device("default.qubit", wires=N_QUBITS)
    model = amplitude_model(
        dev, N_QUBITS, measurements=lambda: (qml.expval(qml.PauliX(1)), qml.probs(wires=[0, 2]))
    )
    x, w = jnp.array(rng.normal(size=8)), jnp.array(random_weights(rng, N_QUBITS))
    all_outputs = xqml.integrated_gradients(model)(x, w)
    assert all_outputs.shape == (5, 8)  # 1 expval + 4 probabilities on a leading axis
    observables = [qml.PauliX(1)] + [
        qml.Projector([b0, b1], wires=[0, 2]) for b0 in (0, 1) for b1 in (0, 1)
    ]
    for k, obs in enumerate(observables):
        assert_close(all_outputs[k], _analytic_ig(x, 0.0, w, obs), rtol64=1e-7, atol64=1e-10)
        assert_close(
            xqml.integrated_gradients(model, target=k)(x, w),
            all_outputs[k],
            rtol64=1e-7,
            atol64=1e-12,
        )
    # probabilities sum to one: their attributions sum to the attribution of a constant
    assert_close(
        all_outputs[1:].sum(axis=0),
        np.abs(x / jnp.linalg.norm(x)) ** 2,
        rtol64=1e-7,
        atol64=1e-10,
    )


def test_padding_gives_amplitude_space_attributions(rng):
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True, pad_with=0.5)
        qml.RY(w, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.PauliZ(1))

    x = jnp.array([0.3, -1.2, 0.7])
    attributions, delta = xqml.integrated_gradients(model, return_convergence_delta=True)(x, 0.3)
    assert attributions.shape == (4,)  # the padded amplitude vector
    assert_close(delta, 0.0, atol64=1e-10)


@pytest.mark.slow
def test_jit_vmap_plain_agree(setup, rng):
    model, _, w = setup
    ig = xqml.integrated_gradients(model)
    batch = jnp.array(rng.normal(size=(3, 2**N_QUBITS)))
    plain = jnp.stack([ig(b, w) for b in batch])
    assert_close(jax.jit(ig)(batch[0], w), plain[0], rtol64=1e-7, atol64=1e-10)
    assert_close(jax.vmap(ig, in_axes=(0, None))(batch, w), plain, rtol64=1e-7, atol64=1e-10)
    assert_close(
        jax.jit(jax.vmap(ig, in_axes=(0, None)))(batch, w), plain, rtol64=1e-7, atol64=1e-10
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "device_name, gradient",
    [
        ("default.qubit", "auto"),
        ("default.qubit", "hadamard_all"),
        ("lightning.qubit", "hadamard_all"),
    ],
)
def test_grad_wrt_weights_matches_finite_differences(device_name, gradient, rng):
    model = amplitude_model(qml.device(device_name, wires=N_QUBITS), N_QUBITS)
    x, w = jnp.array(rng.normal(size=8)), jnp.array(random_weights(rng, N_QUBITS))
    ig = xqml.integrated_gradients(model, gradient=gradient)
    loss = lambda weights: jnp.sum(ig(x, weights) ** 2)
    grad = jax.grad(loss)(w)
    # central differences; in float32 rounding in the loss swamps a small step, so take a larger
    # one (its O(eps²) truncation error stays ~1e-6 here)
    eps = 1e-5 if w.dtype == np.float64 else 1e-2
    for index in [(0, 0, 0), (1, 2, 1), (0, 1, 2)]:
        step = np.zeros(w.shape)
        step[index] = eps
        fd = (loss(w + step) - loss(w - step)) / (2 * eps)
        assert_close(grad[index], fd, rtol64=1e-5, atol64=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("gradient", ["auto", "hadamard_all", "hadamard"])
def test_lightning_qubit_jit_vmap(gradient, rng):
    model = amplitude_model(qml.device("lightning.qubit", wires=N_QUBITS), N_QUBITS)
    x, w = jnp.array(rng.normal(size=(2, 8))), jnp.array(random_weights(rng, N_QUBITS))
    ig = xqml.integrated_gradients(model, gradient=gradient)
    expected = np.stack([_analytic_ig(xi, 0.0, w) for xi in x])
    assert_close(ig(x[0], w), expected[0], rtol64=1e-7, atol64=1e-10)
    assert_close(jax.jit(ig)(x[0], w), expected[0], rtol64=1e-7, atol64=1e-10)
    assert_close(jax.vmap(ig, in_axes=(0, None))(x, w), expected, rtol64=1e-7, atol64=1e-10)


def test_lightning_adjoint_refuses_weight_gradients_clearly(rng):
    """An explicit gradient="adjoint" (state vectors) on lightning is refused under jax.grad;
    "auto" picks the Hadamard tests there while the weights are differentiated."""
    model = amplitude_model(qml.device("lightning.qubit", wires=N_QUBITS), N_QUBITS)
    x, w = jnp.array(rng.normal(size=8)), jnp.array(random_weights(rng, N_QUBITS))
    ig = xqml.integrated_gradients(model, gradient="adjoint")
    with pytest.raises(ValueError, match="hadamard_all"):
        jax.grad(lambda weights: ig(x, weights).sum())(w)
    auto = xqml.integrated_gradients(model)
    expected = jax.grad(
        lambda weights: xqml.integrated_gradients(model, gradient="hadamard_all")(x, weights).sum()
    )(w)
    assert_close(jax.grad(lambda weights: auto(x, weights).sum())(w), expected)


def test_numpy_and_autograd_interface(rng):
    dev = qml.device("default.qubit", wires=N_QUBITS)
    model = amplitude_model(dev, N_QUBITS, interface="autograd")
    x, w = rng.normal(size=8), random_weights(rng, N_QUBITS)
    for gradient in ("auto", "hadamard_all"):
        attributions = xqml.integrated_gradients(model, gradient=gradient)(x, w)
        assert_close(attributions, _analytic_ig(x, 0.0, w), rtol64=1e-7, atol64=1e-10)


def test_composes_with_pennylane_transforms(rng):
    """A compilation transform applied to the QNode is honoured: the explained circuit is the
    compiled one, and the attribution is unchanged because the transform preserves the model."""
    dev = qml.device("default.qubit", wires=2)

    def body(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        qml.RY(w, 0)
        qml.RY(0.4, 0)
        qml.CNOT([0, 1])
        qml.Hadamard(1)
        qml.Hadamard(1)
        return qml.expval(qml.PauliZ(1))

    plain = qml.QNode(body, dev, interface="jax")
    compiled = qml.transforms.cancel_inverses(qml.transforms.merge_rotations(plain))
    x = jnp.array(rng.normal(size=4))
    ig_plain = xqml.integrated_gradients(plain, gradient="hadamard_all")
    ig_compiled = xqml.integrated_gradients(compiled, gradient="hadamard_all")
    assert_close(ig_compiled(x, 0.3), ig_plain(x, 0.3), rtol64=1e-7, atol64=1e-10)
    tape_plain = ig_plain.construct_batch(x, 0.3)[0]
    tape_compiled = ig_compiled.construct_batch(x, 0.3)[0]
    assert len(tape_compiled.operations) < len(tape_plain.operations)
    assert not any(
        op.name == "Hadamard" and op.wires == qml.wires.Wires(1) for op in tape_compiled.operations
    )


def test_pennylane_transform_applied_to_an_explanation(rng):
    """qml.transforms.* applied on top of an explanation act on the explained QNode."""
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        qml.RY(w, 0)
        qml.RY(0.4, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.PauliZ(1))

    x = jnp.array(rng.normal(size=4))
    explained = xqml.integrated_gradients(model, gradient="hadamard_all")
    compiled = qml.transforms.merge_rotations(explained)
    assert isinstance(compiled, xqml.ExplainedQNode)
    assert_close(compiled(x, 0.3), explained(x, 0.3), rtol64=1e-7, atol64=1e-10)
    n_ops = lambda e: len(e.construct_batch(x, 0.3)[0].operations)
    assert n_ops(compiled) == n_ops(explained) - 2  # one RY fewer in U and in U†
    assert compiled.device is dev  # QNode attributes are reachable


def test_tape_level_transform(rng):
    """On a tape the transform returns (tapes, postprocessing) in amplitude space."""
    w = random_weights(rng, N_QUBITS)
    a = rng.normal(size=8)
    a /= np.linalg.norm(a)
    tape = qml.tape.QuantumScript(
        [
            qml.StatePrep(a, wires=range(N_QUBITS)),
            qml.StronglyEntanglingLayers(w, wires=range(N_QUBITS)),
        ],
        [qml.expval(qml.PauliZ(0))],
    )
    tapes, postprocessing = xqml.integrated_gradients(tape, return_convergence_delta=True)
    assert len(tapes) == 1 + 2  # one Hadamard test per Pauli word, plus f(x) and f(0) for delta
    attributions, delta = postprocessing(qml.execute(tapes, qml.device("default.qubit")))
    assert_close(
        attributions,
        np.real(a * (quadratic_form(w, N_QUBITS, qml.PauliZ(0)) @ a)),
        rtol64=1e-7,
        atol64=1e-10,
    )
    assert_close(delta, 0.0, atol64=1e-10)
    angle_tape = qml.tape.QuantumScript([qml.RY(0.3, 0)], [qml.expval(qml.PauliZ(0))])
    with pytest.raises(ValueError, match="apply them to the QNode"):
        xqml.saliency(angle_tape)


def test_generated_circuits_can_be_inspected(setup):
    model, x, w = setup
    explained = xqml.integrated_gradients(model, gradient="hadamard_all")
    (tape,) = explained.construct_batch(x, w)
    assert len(tape.wires) == N_QUBITS + 1  # the data wires and one ancilla
    drawing = explained.draw(x, w)
    assert "|Ψ⟩" in drawing and "xqml_ancilla" in drawing and "Probs" in drawing
