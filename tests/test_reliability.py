"""Regression tests for the cases that used to give silent wrong numbers or misleading errors.

Every expected value comes from an independent computation: ``jax.grad``/``jax.jacobian`` of the
plain QNode (no explanation code involved), or a closed form built from ``qml.matrix``.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close, jax_precision, no_circuit_runs


def _amplitude_model(device, wires=(1, 2)):
    @qml.qnode(device)
    def f(x):
        qml.AmplitudeEmbedding(x, wires=list(wires), normalize=True)
        qml.RY(0.9, wires[0])
        qml.CNOT([wires[0], wires[1]])
        qml.CNOT([wires[1], 0])
        qml.RX(0.4, 0)
        return qml.expval(qml.Z(0))

    return f


def _closed_form_ig(qnode_device_wires, x):
    """IG from 0 in amplitude space, ``a ⊙ Re(M a)``, with ``M`` from ``qml.matrix``."""
    a = x / np.linalg.norm(x)
    ops = [qml.RY(0.9, 1), qml.CNOT([1, 2]), qml.CNOT([2, 0]), qml.RX(0.4, 0)]
    order = [1, 2, 0]  # the embedding's wires first, so a ⊗ |0> indexes the state
    u = qml.matrix(qml.prod(*reversed(ops)), wire_order=order)
    o = qml.matrix(qml.Z(0), wire_order=order)
    m = (u.conj().T @ o @ u)[::2, ::2]  # wire 0 starts in |0>
    return a * np.real(m @ a)


# -- item 1: JAX's default float32 ------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["integrated_gradients", "shapley_values", "kernel_shap", "lime"]
)
def test_float32_gives_finite_attributions_that_match_float64(method, rng):
    x64 = rng.normal(size=8)
    w64 = rng.normal(size=(2, 3, 3))
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev, interface="jax")
    def model(x, weights):
        qml.AmplitudeEmbedding(x, wires=range(3), normalize=True)
        qml.StronglyEntanglingLayers(weights, wires=range(3))
        return qml.expval(qml.PauliZ(0))

    options = {"kernel_shap": {"n_samples": 20}, "lime": {"n_samples": 20}}.get(method, {})
    if method == "shapley_values":
        options = {"feature_mask": np.array([0, 0, 1, 1, 2, 2, 3, 3])}
    explain = getattr(xqml, method)(model, **options)
    reference = explain(jnp.asarray(x64), jnp.asarray(w64))
    with jax_precision(x64=False):
        x32, w32 = jnp.asarray(x64, dtype=jnp.float32), jnp.asarray(w64, dtype=jnp.float32)
        assert x32.dtype == jnp.float32
        values = explain(x32, w32)
    assert values.dtype == jnp.float32
    assert np.all(np.isfinite(values))
    assert_close(values, reference, dtype=jnp.float32)


@pytest.mark.slow
def test_readme_example_float32_delta_is_finite_and_small(rng):
    dev = qml.device("default.qubit", wires=6)

    @xqml.integrated_gradients(return_convergence_delta=True)
    @qml.qnode(dev, interface="jax")
    def model(x, weights):
        qml.AmplitudeEmbedding(x, wires=range(6), normalize=True)
        qml.StronglyEntanglingLayers(weights, wires=range(6))
        return qml.expval(qml.PauliZ(0))

    with jax_precision(x64=False):
        x = jnp.asarray(rng.normal(size=64), dtype=jnp.float32)
        weights = jnp.asarray(rng.normal(size=(2, 6, 3)), dtype=jnp.float32)
        attributions, delta = model(x, weights)
        batch = jax.vmap(model, in_axes=(0, None))(jnp.stack([x, 2 * x]), weights)
    assert np.isfinite(delta) and abs(delta) < 1e-5
    assert_close(batch[0][0], attributions, dtype=jnp.float32)
    assert_close(batch[0][1], attributions, dtype=jnp.float32)  # scale invariant


# -- item 2: a device without wires ----------------------------------------------------------


@pytest.mark.parametrize("gradient", ["auto", "adjoint", "hadamard_all", "hadamard"])
@pytest.mark.parametrize("device_wires", [None, 3, 4])
def test_device_without_wires_gives_the_closed_form(gradient, device_wires):
    dev = (
        qml.device("default.qubit", wires=device_wires)
        if device_wires
        else qml.device("default.qubit")
    )
    x = np.array([0.3, -1.2, 0.8, 0.5])
    values = xqml.integrated_gradients(_amplitude_model(dev), gradient=gradient)(x)
    assert_close(values, _closed_form_ig(None, x))


def test_lightning_without_wires_gives_the_closed_form():
    x = np.array([0.3, -1.2, 0.8, 0.5])
    dev = qml.device("lightning.qubit", wires=[2, 0, 1])  # permuted labels
    values = xqml.integrated_gradients(_amplitude_model(dev))(x)
    assert_close(values, _closed_form_ig(None, x))


@pytest.mark.parametrize("labels", [("a", "b", "c"), (2, 0, 1), ("q", 7, "anc")])
def test_string_and_permuted_wire_labels(labels):
    a, b, c = labels

    def build(dev):
        @qml.qnode(dev)
        def f(x):
            qml.AngleEmbedding(x, wires=[b, c])
            qml.CNOT([b, a])
            qml.RY(0.3, a)
            return qml.probs(wires=[a, c])

        return f

    x = np.array([0.4, -0.7])
    for dev in (qml.device("default.qubit", wires=list(labels)), qml.device("default.qubit")):
        f = build(dev)
        expected = jax.jacobian(f)(jnp.asarray(x))
        assert_close(xqml.saliency(f, abs=False, gradient="parameter-shift")(x), expected)
        assert_close(xqml.saliency(f, abs=False)(jnp.asarray(x)), expected)


# -- item 3: probs() without wires -------------------------------------------------------------


@pytest.mark.parametrize("interface", ["numpy", "jax"])
def test_probs_without_wires_on_a_wider_device(interface):
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def f(x):
        qml.RY(x[0], 0)
        qml.RX(x[1], 1)
        qml.CNOT([0, 1])
        return qml.probs()

    x = np.array([0.3, 0.7])
    x = jnp.asarray(x) if interface == "jax" else x
    expected = jax.jacobian(f)(jnp.asarray(x))  # (8, 2)
    all_outputs = xqml.saliency(f, abs=False)(x)
    assert all_outputs.shape == (8, 2)
    assert_close(all_outputs, expected)
    assert_close(xqml.saliency(f, abs=False, target=2)(x), expected[2])


# -- item 4: transforms that change the structure at the actual input ---------------------------


def _merge_model(transform):
    dev = qml.device("default.qubit", wires=2)

    def circuit(x):
        qml.RY(0.7, 0)
        qml.RX(x[0], 0)
        qml.RX(x[1], 0)
        qml.RY(x[2], 1)
        qml.CNOT([1, 0])
        return qml.expval(qml.Y(0))

    plain = qml.QNode(circuit, dev)
    return plain, transform(qml.QNode(circuit, dev))


@pytest.mark.slow
@pytest.mark.parametrize("transform", [qml.transforms.merge_rotations, qml.compile])
@pytest.mark.parametrize("gradient", ["parameter-shift", "auto"])
def test_structure_changing_transforms_are_right_at_every_input(transform, gradient):
    plain, compiled = _merge_model(transform)
    x = np.array([0.35, -0.35, 0.8])  # the merged angle is exactly 0
    expected = jax.grad(plain)(jnp.asarray(x))
    assert np.abs(expected[0]) > 0.05  # the removed gate matters
    inputs = jnp.asarray(x) if gradient == "auto" else x
    assert_close(xqml.saliency(compiled, abs=False, gradient=gradient)(inputs), expected)
    ig = xqml.integrated_gradients(compiled, baselines=np.array([0.35, -0.35, 0.0]))(x)
    reference = xqml.integrated_gradients(plain, baselines=np.array([0.35, -0.35, 0.0]))(x)
    assert_close(ig, reference)


# -- item 5: the amplitude input used twice ----------------------------------------------------


def test_reused_amplitude_input_is_refused_before_any_circuit():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def f(x):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        qml.RY(3 * x[0], 0)
        return qml.expval(qml.Z(0))

    with no_circuit_runs(dev), pytest.raises(ValueError, match="reaches the circuit twice"):
        xqml.saliency(f)(jnp.array([0.3, 0.5, 0.2, 0.9]))


# -- item 6: the input transformed before the embedding ----------------------------------------


def _reordering_models():
    dev = qml.device("default.qubit", wires=2)

    def body():
        qml.RY(0.3, 0)
        qml.CNOT([0, 1])
        qml.RX(-0.6, 1)
        return qml.expval(qml.Z(1) + 0.5 * qml.X(0))

    @qml.qnode(dev)
    def reversed_input(x):
        qml.AmplitudeEmbedding(x[::-1], wires=range(2), normalize=True)
        return body()

    @qml.qnode(dev)
    def scaled_slice(x):
        qml.AmplitudeEmbedding(
            jnp.array([2.0, 1.0, -1.0, 0.5]) * x[1:], wires=range(2), normalize=True
        )
        return body()

    return {"reversed": reversed_input, "scaled_slice": scaled_slice}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reversed", "scaled_slice"])
def test_transformed_input_is_attributed_like_the_qnode_input(name):
    model = _reordering_models()[name]
    size = 4 if name == "reversed" else 5
    x = np.linspace(0.3, 1.4, size) * np.array([1, -1, 1, 1, -1])[:size]
    expected = jax.grad(model)(jnp.asarray(x))
    for gradient in ("auto", "hadamard_all"):
        values = xqml.saliency(model, abs=False, gradient=gradient)(x)
        assert values.shape == x.shape
        assert_close(values, expected)
    baseline = np.full(size, 0.2)
    ig, delta = xqml.integrated_gradients(
        model, baselines=baseline, n_steps=64, return_convergence_delta=True
    )(x)
    assert ig.shape == x.shape
    assert abs(delta) < 1e-8
    alphas = (np.arange(4000) + 0.5) / 4000
    path = jnp.asarray(baseline + alphas[:, None] * (x - baseline))
    riemann = np.mean(jax.vmap(jax.grad(model))(path), axis=0) * (x - baseline)
    assert_close(ig, riemann, atol=1e-6)


def test_transformed_input_perturbation_methods_perturb_the_qnode_input():
    model = _reordering_models()["reversed"]
    x = np.array([0.3, -1.2, 0.8, 0.5])
    baseline = np.array([0.1, 0.1, 0.1, 0.1])
    values = xqml.shapley_values(model, baselines=baseline)(x)
    # brute force over the QNode itself: features of x, absent ones at the baseline
    import itertools
    import math

    f = lambda keep: float(model(np.where(keep, x, baseline)))
    d = len(x)
    expected = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for r in range(d):
            for subset in itertools.combinations(others, r):
                keep = np.isin(np.arange(d), subset)
                weight = math.factorial(r) * math.factorial(d - r - 1) / math.factorial(d)
                expected[i] += weight * (f(keep | (np.arange(d) == i)) - f(keep))
    assert_close(values, expected)


@pytest.mark.parametrize(
    "options",
    [{}, {"return_convergence_delta": True}, {"n_steps": 200}, {"method": "riemann_left"}],
)
def test_transformed_input_with_a_zero_baseline_is_refused(options):
    """F(x) = f(x/‖x‖) has ∂F/∂x ~ 1/‖x‖: the path integral from 0 diverges."""
    model = _reordering_models()["reversed"]
    dev = model.device
    with no_circuit_runs(dev), pytest.raises(ValueError, match="non-zero baseline"):
        xqml.integrated_gradients(model, **options)(np.array([0.3, -1.2, 0.8, 0.5]))


# -- item 7: integer arguments, BasisState, qml.evolve, NumPy ufuncs ----------------------------


def test_integer_argument_and_basis_state_bits():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def f(x, n_layers, bits):
        qml.BasisState(bits, wires=[0, 1])
        for _ in range(n_layers):
            qml.RY(x[0], 0)
            qml.RX(x[1], 1)
            qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    x, bits = np.array([0.3, 0.5]), np.array([1, 0])
    expected = jax.grad(f)(jnp.asarray(x), 2, bits)
    for inputs in (x, jnp.asarray(x)):
        for gradient in ("auto", "parameter-shift"):
            assert_close(xqml.saliency(f, abs=False, gradient=gradient)(inputs, 2, bits), expected)


def test_evolve_under_parameter_shift():
    hamiltonian = qml.X(0) @ qml.X(1) + qml.Z(0)
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def f(x):
        qml.RY(x[1], 0)
        qml.evolve(hamiltonian, x[0])
        return qml.expval(qml.Z(0))

    x = np.array([0.3, 0.5])
    expected = jax.grad(f)(jnp.asarray(x))
    for inputs in (x, jnp.asarray(x)):
        assert_close(xqml.saliency(f, abs=False, gradient="parameter-shift")(inputs), expected)


def test_pennylane_numpy_preprocessing_works_and_plain_numpy_ufuncs_are_refused():
    dev = qml.device("default.qubit", wires=1)

    @qml.qnode(dev)
    def autograd_model(x):
        qml.RY(pnp.tanh(x[0]) * pnp.pi, 0)
        return qml.expval(qml.Z(0))

    @qml.qnode(dev)
    def numpy_model(x):
        qml.RY(np.tanh(x[0]), 0)
        return qml.expval(qml.Z(0))

    x = np.array([0.3])
    expected = -np.sin(np.tanh(0.3) * np.pi) * np.pi * (1 - np.tanh(0.3) ** 2)
    assert_close(xqml.saliency(autograd_model, abs=False)(x), [expected])
    with no_circuit_runs(dev), pytest.raises(ValueError, match="qml.math"):
        xqml.saliency(numpy_model)(x)


# -- item 8: PennyLane habits -------------------------------------------------------------------


def test_keyword_inputs_and_argnums_by_name():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def f(w, x):
        qml.RY(x[0], 0)
        qml.RX(w * x[1], 1)
        qml.CNOT([1, 0])
        return qml.expval(qml.Z(0))

    x, w = np.array([0.3, 0.8]), 0.4
    expected = jax.grad(f, argnums=1)(w, jnp.asarray(x))
    assert_close(xqml.saliency(f, abs=False, argnums=1)(x=x, w=w), expected)
    assert_close(xqml.saliency(f, abs=False, argnums="x")(w, x), expected)
    assert_close(xqml.saliency(f, abs=False, argnums="x")(w=w, x=x), expected)
    with pytest.raises(ValueError, match="does not name"):
        xqml.saliency(f, argnums="y")(w, x)


def test_shots_on_an_explanation():
    dev = qml.device("default.qubit", wires=1, seed=3)

    @qml.qnode(dev)
    def f(x):
        qml.RY(x[0], 0)
        return qml.expval(qml.Z(0))

    explained = xqml.saliency(f, abs=False, gradient="parameter-shift", return_stderr=True)
    with_shots = explained.update_shots(20_000)
    values, stderr = with_shots(np.array([0.5]))
    assert stderr[0] > 0
    assert abs(values[0] + np.sin(0.5)) < 4 * stderr[0]
    values, stderr = xqml.saliency(qml.set_shots(f, shots=20_000), abs=False, return_stderr=True)(
        np.array([0.5])
    )
    assert stderr[0] > 0 and abs(values[0] + np.sin(0.5)) < 4 * stderr[0]


def test_positional_options_get_a_clear_error():
    @qml.qnode(qml.device("default.qubit", wires=1))
    def f(x):
        qml.RY(x[0], 0)
        return qml.expval(qml.Z(0))

    with pytest.raises(TypeError, match="keyword-only"):
        xqml.saliency(f, False)


def test_complex_input_to_an_angle_model_is_refused_before_any_circuit():
    dev = qml.device("default.qubit", wires=1)

    @qml.qnode(dev)
    def f(x):
        qml.RY(x[0], 0)
        return qml.expval(qml.Z(0))

    with no_circuit_runs(dev), pytest.raises(TypeError, match="real"):
        xqml.saliency(f)(np.array([0.3 + 0.1j]))


# -- item 9: a model that ignores its input ------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["integrated_gradients", "saliency", "input_x_gradient", "feature_ablation",
               "shapley_values", "kernel_shap", "lime"],
)  # fmt: skip
def test_a_model_that_ignores_its_input_gets_zeros_and_a_warning(method):
    @qml.qnode(qml.device("default.qubit", wires=1))
    def f(x):
        qml.RY(0.3, 0)
        return qml.expval(qml.Z(0))

    options = {"kernel_shap": {"n_samples": 6}, "lime": {"n_samples": 6}}.get(method, {})
    with pytest.warns(UserWarning, match="ignores it"):
        values = getattr(xqml, method)(f, **options)(np.array([0.3, 0.2]))
    assert_close(values, np.zeros(2))


# -- item 11: tiny inputs -------------------------------------------------------------------------


def test_tiny_nonzero_amplitude_input_is_explained():
    dev = qml.device("default.qubit", wires=3)
    x = np.array([0.3, -1.2, 0.8, 0.5])
    model = _amplitude_model(dev)
    assert_close(xqml.integrated_gradients(model)(1e-9 * x), _closed_form_ig(None, x))
    with no_circuit_runs(dev), pytest.raises(ValueError, match="all-zero"):
        xqml.integrated_gradients(model)(0 * x)


def test_no_warning_for_ordinary_models():
    @qml.qnode(qml.device("default.qubit", wires=1))
    def f(x):
        qml.RY(x[0], 0)
        return qml.expval(qml.Z(0))

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        xqml.saliency(f)(np.array([0.3]))


# -- item 10: standard errors of jointly measured outputs ----------------------------------------


def test_grouped_estimates_have_the_exact_multinomial_variance():
    from pennylane_xqml.engine.encodings import output_sentences
    from pennylane_xqml.engine.estimation import estimate_outputs

    ops = [qml.RY(0.8, 0), qml.RX(-1.1, 1), qml.CNOT([0, 1])]
    hamiltonian = qml.Z(0) + 0.5 * qml.Z(0) @ qml.Z(1) - 0.3 * qml.X(1)
    tape = qml.tape.QuantumScript(
        ops, [qml.probs(wires=[0, 1]), qml.expval(hamiltonian)], shots=1000
    )
    tapes, estimate = estimate_outputs(tape, output_sentences(tape), 1000)
    exact = qml.execute([t.copy(shots=None) for t in tapes], qml.device("default.qubit", wires=2))
    values, variances = estimate(exact)
    state = qml.execute(
        [tape.copy(measurements=[qml.state()], shots=None)], qml.device("default.qubit", wires=2)
    )[0]
    probs = np.abs(state) ** 2
    assert_close(values[:4], probs)
    assert_close(variances[:4], probs * (1 - probs) / 1000)  # one multinomial, not 3 words
    # the Z words share shots: Var(z0 + 0.5 z0 z1) per shot from the outcome distribution
    z0 = np.array([1, 1, -1, -1])
    z0z1 = np.array([1, -1, -1, 1])
    g = z0 + 0.5 * z0z1
    x1 = float(np.real(np.conj(state) @ qml.matrix(qml.X(1), wire_order=[0, 1]) @ state))
    expected = (probs @ g**2 - (probs @ g) ** 2) / 1000 + 0.09 * (1 - x1**2) / 1000
    assert_close(variances[4], expected)


@pytest.mark.slow
def test_parameter_shift_stderr_of_probs_matches_the_spread_of_repeats():
    dev = qml.device("default.qubit", wires=2, seed=17)

    @qml.qnode(dev)
    def f(x):
        qml.RY(x[0], 0)
        qml.RX(x[1], 1)
        qml.CNOT([0, 1])
        return qml.probs(wires=[0, 1])

    explain = xqml.saliency(
        qml.set_shots(f, shots=2000), abs=False, gradient="parameter-shift", return_stderr=True
    )
    x = np.array([0.7, 1.9])
    runs = [explain(x) for _ in range(150)]
    values = np.array([r[0] for r in runs])
    stderr = np.mean([r[1] for r in runs], axis=0)
    ratio = values.std(axis=0, ddof=1) / stderr
    # 150 repeats: the sample spread is within ±25% of the true one with overwhelming odds
    assert np.all((ratio > 0.75) & (ratio < 1.3)), ratio
    expected = jax.jacobian(f)(jnp.asarray(x))
    assert np.all(np.abs(values.mean(axis=0) - expected) < 4 * stderr / np.sqrt(150) + 1e-12)


# -- found by a new-user review ---------------------------------------------------------------


def test_evolve_of_a_multi_term_hamiltonian():
    hamiltonian = qml.Hamiltonian([0.5, 0.3], [qml.Z(0) @ qml.Z(1), qml.X(1)])
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def f(x):
        qml.Hadamard(0)
        qml.evolve(hamiltonian, x[0])
        return qml.expval(qml.Y(0) + qml.Z(1))

    x = jnp.array([0.7])
    assert_close(xqml.saliency(f, abs=False)(x), jax.grad(f)(x))
    with no_circuit_runs(dev), pytest.raises(ValueError, match="cannot rebind"):
        xqml.saliency(f, gradient="parameter-shift")(x)


def test_jax_integer_basis_state_bits_under_parameter_shift():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def f(x, bits):
        qml.BasisState(bits, wires=range(2))
        qml.RY(x[0], 0)
        qml.CNOT([0, 1])
        qml.RX(x[1], 1)
        return qml.expval(qml.Z(1))

    x = jnp.array([0.4, -0.9])
    expected = jax.grad(f)(x, np.array([1, 0]))
    assert_close(
        xqml.saliency(f, abs=False, gradient="parameter-shift")(x, jnp.array([1, 0])), expected
    )


def test_pennylane_numpy_preprocessing_with_jax_inputs_says_what_to_pass():
    dev = qml.device("default.qubit", wires=1)

    @qml.qnode(dev)
    def f(x):
        qml.RX(pnp.sin(x[0]), 0)
        return qml.expval(qml.Z(0))

    with (
        no_circuit_runs(dev),
        pytest.raises(ValueError, match="pass NumPy or pennylane.numpy arrays"),
    ):
        xqml.saliency(f)(jnp.array([0.3]))
    assert_close(xqml.saliency(f, abs=False)(np.array([0.3])), [-np.sin(np.sin(0.3)) * np.cos(0.3)])
