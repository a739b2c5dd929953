"""Function models: every method on functions of QNodes, against the plain model.

References are independent of the package: ``jax.grad``/``jax.jacobian`` of the plain model (and
a 64-point Gauss-Legendre quadrature of it for integrated gradients), brute force over
coalitions for Shapley values and ablation, closed-form quadratic forms for amplitude models,
and ``torch.autograd``/central differences for weight gradients.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from pennylane import numpy as pnp

import pennylane_xqml as xqml
from pennylane_xqml.engine.functions import FunctionModelError
from pennylane_xqml.testing import assert_close, no_circuit_runs

DEV = qml.device("default.qubit", wires=2)
LIGHTNING = qml.device("lightning.qubit", wires=2)


def _angle_circuit(weights, x):
    qml.AngleEmbedding(x, wires=range(2))
    qml.BasicEntanglerLayers(weights, wires=range(2))
    qml.RY(0.3 * x[0], wires=1)
    return qml.expval(qml.Z(0) @ qml.Z(1) + 0.4 * qml.X(1))


circuit = qml.QNode(_angle_circuit, DEV)  # the variational classifier's QNode
circuit_lightning = qml.QNode(_angle_circuit, LIGHTNING)


@qml.qnode(DEV)
def probs_circuit(weights, x):
    qml.AngleEmbedding(x, wires=range(2), rotation="Y")
    qml.CNOT(wires=[0, 1])
    qml.RX(weights[0, 0], wires=0)
    return qml.probs(wires=[0, 1])


@qml.qnode(LIGHTNING)
def kernel_circuit(x1, x2):
    qml.AngleEmbedding(x1, wires=range(2))
    qml.adjoint(qml.AngleEmbedding)(x2, wires=range(2))
    return qml.probs(wires=range(2))


SUPPORT = np.array([[0.1, 0.2], [0.5, -0.3], [1.0, 0.4]])
ALPHA = np.array([0.5, -1.2, 0.8])


def tanh_classifier(x, weights, bias):
    return jnp.tanh(circuit(weights, x) + bias)


def softmax_head(x, weights, bias):  # two QNodes on two devices, a non-linear head
    logits = jnp.stack([circuit(weights, x), circuit_lightning(weights, x[::-1])]) + bias
    return jax.nn.softmax(logits)


def kernel_svm(x, weights, bias):  # one QNode called once per support vector
    del weights
    return sum(a * kernel_circuit(x, s)[0] for a, s in zip(ALPHA, SUPPORT)) + bias


def ensemble(x, weights, bias):
    return (
        circuit(weights, x) + probs_circuit(weights, x)[3] + circuit_lightning(weights, x)
    ) / 3 + bias


MODELS = {
    "tanh": tanh_classifier,
    "softmax": softmax_head,
    "kernel_svm": kernel_svm,
    "ensemble": ensemble,
}


def _models(fast):
    """The model names, those not in ``fast`` in the slow tier."""
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in MODELS]


X = np.array([0.3, -0.7])
WEIGHTS = np.array([[0.2, 0.5]])
BIAS = 0.1


def _args():
    return jnp.asarray(X), jnp.asarray(WEIGHTS), BIAS


def _jacobian(model, x):
    w, b = jnp.asarray(WEIGHTS), BIAS
    return jnp.reshape(jax.jacobian(model)(jnp.asarray(x), w, b), (-1, x.size))


def _outputs(model, x):
    return jnp.reshape(model(jnp.asarray(x), jnp.asarray(WEIGHTS), BIAS), (-1,))


def _squeeze(values, model):
    return values[0] if jnp.ndim(model(*_args())) == 0 else values


def _shapley_brute_force(model, x, baseline):
    d = x.size
    phi = np.zeros((_outputs(model, x).size, d))
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for size in range(d):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
                with_i = np.where(np.isin(np.arange(d), subset + (i,)), x, baseline)
                without = np.where(np.isin(np.arange(d), subset), x, baseline)
                phi[:, i] += weight * (_outputs(model, with_i) - _outputs(model, without))
    return phi


@pytest.mark.parametrize("name", _models(fast=("tanh", "kernel_svm")))
def test_gradient_methods_equal_jax_grad(name):
    model = MODELS[name]
    jac = _jacobian(model, X)
    saliency = xqml.saliency(model, abs=False)(*_args())
    assert_close(saliency, _squeeze(jac, model))
    ixg = xqml.input_x_gradient(model)(*_args())
    assert_close(ixg, _squeeze(jac * X, model))


@pytest.mark.parametrize("name", _models(fast=("tanh",)))
def test_integrated_gradients_equal_quadrature(name):
    model = MODELS[name]
    nodes, weights = np.polynomial.legendre.leggauss(64)
    alphas, weights = (nodes + 1) / 2, weights / 2
    reference = sum(w * _jacobian(model, a * X) for a, w in zip(alphas, weights)) * X
    attr, delta = xqml.integrated_gradients(model, return_convergence_delta=True)(*_args())
    assert_close(attr, _squeeze(reference, model), atol64=1e-9)
    gap = _outputs(model, X) - _outputs(model, np.zeros(2))
    assert_close(jnp.sum(jnp.reshape(attr, (-1, 2)), axis=-1), gap, atol64=1e-9)
    assert_close(jnp.abs(delta), jnp.zeros_like(delta), atol64=1e-9)


@pytest.mark.parametrize("name", _models(fast=("tanh", "kernel_svm")))
def test_perturbation_methods_equal_brute_force(name):
    model = MODELS[name]
    baseline = np.array([0.2, 0.1])
    shapley = xqml.shapley_values(model, baselines=baseline)(*_args())
    assert_close(shapley, _squeeze(_shapley_brute_force(model, X, baseline), model))
    ablation = xqml.feature_ablation(model, baselines=baseline)(*_args())
    reference = np.stack(
        [
            _outputs(model, X) - _outputs(model, np.where(np.arange(2) == i, baseline, X))
            for i in range(2)
        ],
        axis=-1,
    )
    assert_close(ablation, _squeeze(reference, model))
    # KernelSHAP enforces efficiency: its values add up to f(x) - f(baseline)
    kernel = xqml.kernel_shap(model, baselines=baseline, n_samples=64, seed=1)(*_args())
    gap = _outputs(model, X) - _outputs(model, baseline)
    assert_close(jnp.sum(jnp.reshape(kernel, (-1, 2)), axis=-1), gap)


def test_smoothgrad_equals_mean_of_jax_grads():
    model = tanh_classifier
    noise = 0.1 * np.random.default_rng(3).normal(size=(6, 2))
    grads = np.stack([_jacobian(model, X + eps)[0] for eps in noise])
    values = xqml.smoothgrad(model, nt_samples=6, seed=3)(*_args())
    assert_close(values, grads.mean(axis=0))
    squared = xqml.smoothgrad(model, nt_type="smoothgrad_sq", nt_samples=6, seed=3)(*_args())
    assert_close(squared, (grads**2).mean(axis=0))


def _generic_identity(x, weights, bias):
    """The QNode itself, through the general route (the head uses the input, so nothing folds)."""
    return circuit(weights, x) + 0.0 * x[0] + bias


@pytest.mark.parametrize(
    "method, options",
    [
        (xqml.lime, {"n_samples": 20, "seed": 2}),
        (xqml.kernel_shap, {"n_samples": 20, "seed": 2}),
        (xqml.shapley_value_sampling, {"n_samples": 5, "seed": 2}),
    ],
)
def test_sampled_methods_equal_the_qnode_path(method, options):
    """Fixed linear maps of the model's values: through the general route they equal the same
    method on the bare QNode (same seeds, so the same coalitions)."""
    through_function = method(_generic_identity, **options)(*_args())
    plain = method(circuit, argnums=1, **options)(jnp.asarray(WEIGHTS), jnp.asarray(X))
    assert xqml.saliency(_generic_identity).plan(*_args()).embedding == "function"
    assert_close(through_function, plain)


# -- affine heads: the model is a QNode -------------------------------------------------------------


@qml.qnode(DEV)
def amplitude_circuit(x, w):
    qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
    qml.RY(w[0], wires=0)
    qml.CNOT(wires=[0, 1])
    qml.RX(w[1], wires=1)
    return qml.expval(qml.Z(0)), qml.expval(qml.X(1))


@qml.qnode(DEV)
def amplitude_combined(x, w):  # the same model written by hand as one observable
    qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
    qml.RY(w[0], wires=0)
    qml.CNOT(wires=[0, 1])
    qml.RX(w[1], wires=1)
    return qml.expval(2.0 * qml.Z(0) - qml.X(1) + 0.5 * qml.Identity(0))


def affine_amplitude(x, w):
    first, second = amplitude_circuit(x, w)
    return 2 * first - second + 0.5


XA = np.array([0.3, -0.7, 0.5, 0.2])
WA = np.array([0.2, 0.5])


def _quadratic_form_matrix(w, observable):
    ops = [qml.RY(w[0], 0), qml.CNOT([0, 1]), qml.RX(w[1], 1)]
    unitary = qml.matrix(qml.prod(*reversed(ops)), wire_order=[0, 1])
    return np.real(unitary.conj().T @ qml.matrix(observable, wire_order=[0, 1]) @ unitary)


def test_affine_amplitude_head_is_exact_ig_in_amplitude_space():
    attr, delta = xqml.integrated_gradients(affine_amplitude, return_convergence_delta=True)(
        jnp.asarray(XA), jnp.asarray(WA)
    )
    a = XA / np.linalg.norm(XA)
    # the bias is the observable's identity term, part of the quadratic form as in a QNode
    m = _quadratic_form_matrix(WA, 2.0 * qml.Z(0) - qml.X(1) + 0.5 * qml.Identity(0))
    assert_close(attr, a * (m @ a), atol64=1e-12)  # IG_i = a_i (M a)_i from a zero baseline
    assert_close(attr, xqml.integrated_gradients(amplitude_combined)(XA, WA), atol64=1e-12)
    assert abs(float(delta)) < (1e-12 if jax.config.jax_enable_x64 else 1e-5)
    plan = xqml.integrated_gradients(affine_amplitude).plan(jnp.asarray(XA), jnp.asarray(WA))
    assert plan.embedding == "amplitude"


ALL_METHODS = [
    (xqml.taylor_fourier, {"root": np.zeros(2)}),
    (xqml.qlrp, {"root": np.zeros(2)}),
    (xqml.saliency, {}),
    (xqml.integrated_gradients, {"return_convergence_delta": True}),
    (xqml.input_x_gradient, {}),
    (xqml.smoothgrad, {"nt_samples": 4}),
    (xqml.feature_ablation, {}),
    (xqml.shapley_values, {"return_convergence_delta": True}),
    (xqml.shapley_value_sampling, {"n_samples": 4}),
    (xqml.kernel_shap, {"n_samples": 16}),
    (xqml.lime, {"n_samples": 16}),
]


@pytest.mark.parametrize("method, options", ALL_METHODS)
def test_affine_head_equals_the_hand_written_qnode(method, options):
    @qml.qnode(DEV)
    def once(weights, x):  # each feature in one gate (Taylor-Fourier's closed form)
        qml.AngleEmbedding(x, wires=range(2))
        qml.BasicEntanglerLayers(weights, wires=range(2))
        return qml.expval(qml.Z(0) @ qml.Z(1) + 0.4 * qml.X(1))

    def affine_angle(x, weights):
        return 2.0 * once(weights, x) - 0.3

    @qml.qnode(DEV)
    def by_hand(x, weights):
        qml.AngleEmbedding(x, wires=range(2))
        qml.BasicEntanglerLayers(weights, wires=range(2))
        return qml.expval(2.0 * (qml.Z(0) @ qml.Z(1) + 0.4 * qml.X(1)) - 0.3 * qml.Identity(0))

    x, w = jnp.asarray(X), jnp.asarray(WEIGHTS)
    got, expected = method(affine_angle, **options)(x, w), method(by_hand, **options)(x, w)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        assert_close(a, b)
    assert xqml.saliency(affine_angle).plan(x, w).embedding == "angle"  # folded: a QNode


def test_nonlinear_amplitude_head_chains_the_quadratic_forms():
    def head(x, w):
        first, second = amplitude_circuit(x, w)
        return jnp.tanh(first) * second

    a = XA / np.linalg.norm(XA)
    m1, m2 = (_quadratic_form_matrix(WA, o) for o in (qml.Z(0), qml.X(1)))
    q1, q2 = a @ m1 @ a, a @ m2 @ a
    reference = (1 - np.tanh(q1) ** 2) * q2 * 2 * m1 @ a + np.tanh(q1) * 2 * m2 @ a
    values = xqml.saliency(head, abs=False)(jnp.asarray(XA), jnp.asarray(WA))
    assert_close(values, reference)


# -- interfaces, transforms of JAX, weights ------------------------------------------------------


def test_numpy_and_autograd_models_equal_jax():
    def classifier_np(x, weights, bias):  # written with pennylane.numpy, as in PennyLane's demos
        return pnp.tanh(circuit(weights, x) + bias)

    for method in (xqml.saliency, xqml.integrated_gradients, xqml.shapley_values):
        options = {"abs": False} if method is xqml.saliency else {}
        expected = method(tanh_classifier, **options)(*_args())
        got = method(classifier_np, **options)(X, WEIGHTS, BIAS)
        assert isinstance(got, np.ndarray)
        assert_close(got, expected)
        got = method(classifier_np, **options)(
            pnp.array(X, requires_grad=False), pnp.array(WEIGHTS), BIAS
        )
        assert_close(got, expected)


@pytest.mark.slow
def test_torch_model_equals_jax_and_differentiates_weights():
    torch = pytest.importorskip("torch")

    def classifier_torch(x, weights, bias):  # qml.math dispatches on torch tensors
        return qml.math.tanh(circuit(weights, x) + bias)

    x = torch.tensor(X, requires_grad=True)
    w = torch.tensor(WEIGHTS, requires_grad=True)
    explained = xqml.integrated_gradients(classifier_torch)
    values = explained(x, w, BIAS)
    assert isinstance(values, torch.Tensor)
    assert_close(values.detach().numpy(), xqml.integrated_gradients(tanh_classifier)(*_args()))
    values.sum().backward()
    eps = 1e-6
    step = torch.tensor([[eps, 0.0]], dtype=w.dtype)
    with torch.no_grad():
        fd = (explained(x, w + step, BIAS).sum() - explained(x, w - step, BIAS).sum()) / (2 * eps)
    assert_close(w.grad[0, 0].item(), fd.item(), rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_jit_and_vmap():
    explained = xqml.integrated_gradients(softmax_head, target=0, n_steps=8)
    x, w, b = _args()
    eager = explained(x, w, b)
    assert_close(jax.jit(explained)(x, w, b), eager)
    rows = jnp.stack([x, x[::-1] * 0.5])
    batched = jax.vmap(explained, in_axes=(0, None, None))(rows, w, b)
    assert_close(batched[1], explained(rows[1], w, b))


@pytest.mark.slow
def test_weight_gradients_equal_central_differences():
    explained = xqml.integrated_gradients(tanh_classifier, n_steps=8)
    x, w, b = _args()

    def loss(w, b):
        return jnp.sum(explained(x, w, b) ** 2)

    grad_w, grad_b = jax.grad(loss, argnums=(0, 1))(w, b)
    x64 = jax.config.jax_enable_x64
    eps, rtol = (1e-5, 1e-5) if x64 else (1e-2, 2e-2)  # float32: a step above round-off
    for index in np.ndindex(WEIGHTS.shape):
        step = jnp.zeros_like(w).at[index].set(eps)
        fd = (loss(w + step, b) - loss(w - step, b)) / (2 * eps)
        assert_close(grad_w[index], fd, rtol=rtol, atol=1e-8 if x64 else 1e-4)
    fd_b = (loss(w, b + eps) - loss(w, b - eps)) / (2 * eps)
    assert_close(grad_b, fd_b, rtol=rtol, atol=1e-8 if x64 else 1e-4)


def test_explain_batch_and_cost_cover_every_qnode():
    explained = xqml.saliency(softmax_head, abs=False, target=1)
    rows = np.array([[0.3, -0.7], [0.1, 0.4], [-0.5, 0.9]])
    batch = xqml.explain_batch(explained, rows, WEIGHTS, BIAS)
    for row, values in zip(rows, batch):
        assert_close(values, _jacobian(softmax_head, row)[1])
    plan = explained.plan(*_args())
    devices = [device.name for _, device, _ in plan.parts]
    assert devices == ["default.qubit", "lightning.qubit"]
    report = explained.cost(*_args())
    assert report.n_circuits == sum(
        len(t) if t else 0 for t, _, _ in plan.parts
    ) or report.n_circuits >= len(plan.tapes)


@pytest.mark.slow
@pytest.mark.parametrize("device_name", ["default.qubit", "qiskit.aer"])
def test_shots_within_reported_standard_errors(device_name):
    pytest.importorskip("qiskit") if device_name == "qiskit.aer" else None
    device = qml.device(device_name, wires=2, seed=11)
    noisy = qml.set_shots(qml.QNode(_angle_circuit, device), shots=20000)

    def model(x, weights, bias):
        return jnp.tanh(noisy(weights, x) + bias)

    x, w, b = _args()
    values, stderr = xqml.saliency(model, abs=False, return_stderr=True)(x, w, b)
    reference = _jacobian(tanh_classifier, X)[0]
    assert np.all(np.asarray(stderr) > 0)
    assert np.all(np.abs(np.asarray(values) - reference) < 4 * np.asarray(stderr))
    values, stderr = xqml.shapley_values(model, return_stderr=True)(x, w, b)
    reference = _shapley_brute_force(tanh_classifier, X, np.zeros(2))[0]
    assert np.all(np.abs(np.asarray(values) - reference) < 4 * np.asarray(stderr))


# -- refusals, before any circuit runs ----------------------------------------------------------


def test_refusals_run_no_circuit():
    def no_qnode(x, weights, bias):
        return jnp.sum(x) * bias

    def ignores_input(x, weights, bias):
        return circuit(weights, jnp.zeros(2)) + bias

    with no_circuit_runs(DEV, LIGHTNING):
        with pytest.raises(FunctionModelError, match="calls no QNode"):
            xqml.saliency(no_qnode)(*_args())
        with pytest.raises(FunctionModelError, match="reaches none of its QNodes"):
            xqml.saliency(ignores_input)(*_args())
        with pytest.raises(FunctionModelError, match="needs the circuit of one QNode"):
            xqml.taylor_fourier(tanh_classifier, root=np.zeros(2))(*_args())
        with pytest.raises(ValueError, match="closed form"):
            xqml.integrated_gradients(tanh_classifier, method="exact")(*_args())

    def chained(x, weights, bias):
        return circuit(weights, jnp.stack([circuit(weights, x), x[1]])) + bias

    with no_circuit_runs(DEV), pytest.raises(FunctionModelError, match="depends on another QNode"):
        xqml.saliency(chained)(*_args())


def test_gate_shapley_of_a_function_model_equals_the_qnode_with_its_head():
    x, w, b = _args()
    result = xqml.gate_shapley(tanh_classifier)(x, w, b)
    reference = xqml.gate_shapley(circuit, argnums=1, value=lambda q: jnp.tanh(q + b))(w, x)
    assert_close(result.values, reference.values)
    assert_close(result.v_all, tanh_classifier(x, w, b))
    assert len(xqml.gate_shapley(tanh_classifier).plan(x, w, b).tapes) == len(
        xqml.gate_shapley(circuit, argnums=1).plan(w, x).tapes
    )
    # an ensemble calls several QNodes: gate Shapley values are per member QNode
    with no_circuit_runs(DEV, LIGHTNING), pytest.raises(FunctionModelError, match="each member"):
        xqml.gate_shapley(ensemble)(x, w, b)


def test_torch_model_saliency_equals_torch_autograd():
    torch = pytest.importorskip("torch")
    torch_circuit = qml.QNode(_angle_circuit, DEV, interface="torch", diff_method="backprop")

    def classifier(x, weights, bias):
        return qml.math.tanh(torch_circuit(weights, x) + bias)

    x = torch.tensor(X, requires_grad=True)
    w = torch.tensor(WEIGHTS)
    (reference,) = torch.autograd.grad(classifier(x, w, BIAS), x)
    values = xqml.saliency(classifier, abs=False)(x.detach(), w, BIAS)
    assert isinstance(values, torch.Tensor) and values.dtype == x.dtype
    assert_close(values.numpy(), reference.numpy())


def test_construct_batch_and_draw_show_every_qnode():
    explained = xqml.saliency(ensemble)
    tapes = explained.construct_batch(*_args())
    assert len(tapes) == len(explained.plan(*_args()).tapes) > 0
    assert isinstance(explained.draw(*_args()), str)
    assert repr(explained).startswith("<ExplainedFunction: saliency")


@pytest.mark.slow
def test_amplitude_model_whose_head_uses_the_input_is_explained_per_input_entry():
    def model(x, w):  # the head uses x itself: attributions per entry of x, through the norm
        return jnp.tanh(amplitude_circuit(x, w)[0]) + 0.1 * x[0]

    x, w = jnp.asarray(XA), jnp.asarray(WA)
    assert_close(xqml.saliency(model, abs=False)(x, w), jax.grad(model)(x, w))
    with no_circuit_runs(DEV), pytest.raises(ValueError, match="baseline"):
        xqml.integrated_gradients(model)(x, w)  # F(x/|x|) from x' = 0: the integral diverges
    baseline = jnp.full(4, 0.5)
    nodes, weights = np.polynomial.legendre.leggauss(64)
    grads = [jax.grad(model)(baseline + (n + 1) / 2 * (x - baseline), w) for n in nodes]
    reference = (x - baseline) * sum(wt / 2 * g for wt, g in zip(weights, grads))
    assert_close(xqml.integrated_gradients(model, baselines=baseline)(x, w), reference)


def test_numpy_amplitude_model_is_explained_in_amplitude_space_like_jax():
    def model_np(x, w):
        return pnp.tanh(amplitude_circuit(x, w)[0]) * amplitude_circuit(x, w)[1]

    def model_jax(x, w):
        return jnp.tanh(amplitude_circuit(x, w)[0]) * amplitude_circuit(x, w)[1]

    got = xqml.saliency(model_np, abs=False)(XA, WA)
    assert got.shape == (4,)
    assert_close(got, xqml.saliency(model_jax, abs=False)(jnp.asarray(XA), jnp.asarray(WA)))


def test_torch_functions_in_the_head_are_refused_with_the_way_out():
    torch = pytest.importorskip("torch")

    def classifier(x, weights, bias):
        return torch.tanh(circuit(weights, x) + bias)

    with no_circuit_runs(DEV), pytest.raises(FunctionModelError, match="qml.math"):
        xqml.saliency(classifier)(torch.tensor(X), torch.tensor(WEIGHTS), BIAS)


def test_head_with_python_control_flow_on_a_qnode_output():
    def model(x, weights, bias):  # a ReLU written with Python's max, as users do
        q = circuit(weights, x)
        return max(q, 0.0) + 0.5 * q + bias

    x, w, b = _args()
    assert_close(xqml.saliency(model, abs=False)(x, w, b), jax.grad(model)(x, w, b))
    baseline = np.array([0.2, 0.1])
    assert_close(
        xqml.shapley_values(model, baselines=baseline)(x, w, b),
        _shapley_brute_force(model, X, baseline)[0],
    )
