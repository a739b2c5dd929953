"""PyTorch tensors in explanations (:mod:`pennylane_xqml.engine.torch_bridge`).

Every number is checked against an independent computation:

* each method on torch tensors against the same method on JAX arrays (the engine's own path,
  tested elsewhere against autodiff of the plain QNode), on default.qubit and lightning.qubit;
* ``torch.autograd`` gradients of explanations with respect to a ``qml.qnn.TorchLayer``'s
  weights against central finite differences of the explanation (float64);
* Captum's ``Saliency``, ``IntegratedGradients`` and ``ShapleyValues`` on the same TorchLayer
  (Captum differentiates the layer with torch's backprop, independently of this package).
"""

import contextlib
import re
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from pennylane.transforms.core import Transform

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close, no_circuit_runs

torch = pytest.importorskip("torch")

N_WIRES = 2

# Every attribution transform of the public API, with small options (cheap plans).
METHODS = {
    "integrated_gradients": {"method": "gausslegendre", "n_steps": 4},
    "saliency": {"abs": False},
    "input_x_gradient": {},
    "smoothgrad": {"nt_samples": 2, "stdevs": 0.1, "seed": 3},
    "feature_ablation": {},
    "shapley_values": {"baselines": 0.1},
    "shapley_value_sampling": {"n_samples": 2, "seed": 1},
    "kernel_shap": {"n_samples": 6, "seed": 2},
    "lime": {"n_samples": 6, "seed": 2},
    "taylor_fourier": {},
    "qlrp": {},
    "random_attribution": {},
}


def _angle_circuit(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(N_WIRES))
    qml.BasicEntanglerLayers(weights, wires=range(N_WIRES), rotation=qml.RY)
    return qml.expval(qml.Z(0) @ qml.Z(1))


def _amplitude_circuit(inputs, weights):
    qml.AmplitudeEmbedding(inputs, wires=range(N_WIRES), normalize=True)
    qml.BasicEntanglerLayers(weights, wires=range(N_WIRES), rotation=qml.RY)
    return qml.expval(qml.Z(0) @ qml.Z(1))


def _layer(circuit, device="default.qubit", diff_method="best", dtype=torch.float64):
    qnode = qml.QNode(
        circuit, qml.device(device, wires=N_WIRES), interface="torch", diff_method=diff_method
    )
    torch.manual_seed(0)
    layer = qml.qnn.TorchLayer(qnode, {"weights": (2, N_WIRES)})
    return layer.to(dtype)


@pytest.fixture(scope="module")
def angle_layer():
    """One layer for the module: the engine's compiled Jacobians are cached per QNode."""
    return _layer(_angle_circuit)


@pytest.fixture(scope="module")
def amplitude_layer():
    return _layer(_amplitude_circuit)


X_ANGLE = [0.4, -0.7]
X_AMPLITUDE = [0.4, -0.7, 0.2, 0.5]


def _jax_reference(explained, x, weights):
    """The explanation of the same call with JAX arrays (the engine's own path)."""
    as_jax = lambda t: jnp.asarray(t.detach().numpy())
    return explained(as_jax(x), as_jax(weights))


def test_every_attribution_transform_is_covered():
    """METHODS lists every attribution transform of the public API (a new one must be added)."""
    transforms = {name for name in xqml.__all__ if isinstance(getattr(xqml, name), Transform)}
    assert transforms == set(METHODS)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_methods_on_torch_equal_jax(name, angle_layer):
    """torch in, torch out (float64, the input's device) equal to the JAX call, 1e-10.
    Parameter shift keeps this fast (no compilation); the "auto" rules are tested below."""
    layer = angle_layer
    explained = getattr(xqml, name)(layer.qnode, gradient="parameter-shift", **METHODS[name])
    x = torch.tensor(X_ANGLE, dtype=torch.float64)
    weights = layer.qnode_weights["weights"]
    with torch.no_grad():
        got = explained(x, weights)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    assert got.device == x.device and got.shape == x.shape
    assert_close(got, _jax_reference(explained, x, weights), rtol64=1e-10, atol64=1e-10)


@pytest.mark.parametrize(
    "name",
    [
        "saliency",
        pytest.param("integrated_gradients", marks=pytest.mark.slow),
        pytest.param("shapley_values", marks=pytest.mark.slow),
    ],
)
def test_amplitude_methods_on_torch_equal_jax(name, amplitude_layer):
    """The "auto" rule (the state-vector sweep) on an amplitude model."""
    layer = amplitude_layer
    explained = getattr(xqml, name)(layer.qnode, **METHODS[name])
    x = torch.tensor(X_AMPLITUDE, dtype=torch.float64)
    weights = layer.qnode_weights["weights"]
    got = explained(x, weights)
    assert got.dtype == torch.float64
    assert_close(got.detach(), _jax_reference(explained, x, weights), rtol64=1e-10, atol64=1e-10)


@pytest.mark.parametrize(
    "circuit, x, name",
    [
        pytest.param(_angle_circuit, X_ANGLE, "saliency", marks=pytest.mark.slow),
        pytest.param(_amplitude_circuit, X_AMPLITUDE, "saliency", marks=pytest.mark.slow),
        pytest.param(_angle_circuit, X_ANGLE, "integrated_gradients", marks=pytest.mark.slow),
        pytest.param(
            _amplitude_circuit, X_AMPLITUDE, "integrated_gradients", marks=pytest.mark.slow
        ),
        pytest.param(_angle_circuit, X_ANGLE, "feature_ablation", marks=pytest.mark.slow),
        pytest.param(_amplitude_circuit, X_AMPLITUDE, "feature_ablation", marks=pytest.mark.slow),
    ],
)
def test_lightning_equals_default_qubit_with_gradients(circuit, x, name, gradient="auto"):
    """On lightning.qubit, with the weights requiring grad (so "auto" picks a circuit rule),
    values and weight gradients equal default.qubit's."""
    x = torch.tensor(x, dtype=torch.float64)
    results = []
    for device in ("default.qubit", "lightning.qubit"):
        layer = _layer(circuit, device)
        weights = layer.qnode_weights["weights"]
        explained = getattr(xqml, name)(layer.qnode, gradient=gradient, **METHODS[name])
        explanation = explained(x, weights)
        (grad,) = torch.autograd.grad(explanation.sum(), weights)
        results.append((explanation.detach(), grad))
    (value_dq, grad_dq), (value_lq, grad_lq) = results
    assert_close(value_lq, value_dq, rtol64=1e-10, atol64=1e-10)
    assert_close(grad_lq, grad_dq, rtol64=1e-10, atol64=1e-10)


def test_lightning_parameter_shift_with_gradients():
    """The fast case: parameter shift on both devices (nothing compiled)."""
    test_lightning_equals_default_qubit_with_gradients(
        _angle_circuit, X_ANGLE, "saliency", gradient="parameter-shift"
    )


def _central_differences(fn, weights, h=1e-5):
    flat = weights.detach().clone().reshape(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        up, down = flat.clone(), flat.clone()
        up[i] += h
        down[i] -= h
        grad[i] = (fn(up.reshape(weights.shape)) - fn(down.reshape(weights.shape))) / (2 * h)
    return grad.reshape(weights.shape)


@pytest.mark.parametrize(
    "circuit, x, name, gradient",
    [
        (_angle_circuit, X_ANGLE, "saliency", "parameter-shift"),
        pytest.param(_angle_circuit, X_ANGLE, "saliency", "auto", marks=pytest.mark.slow),
        pytest.param(
            _angle_circuit, X_ANGLE, "integrated_gradients", "auto", marks=pytest.mark.slow
        ),
        pytest.param(
            _amplitude_circuit, X_AMPLITUDE, "integrated_gradients", "auto", marks=pytest.mark.slow
        ),
    ],
)
def test_weight_gradients_match_finite_differences(circuit, x, name, gradient):
    """``torch.autograd`` of the summed explanation w.r.t. the TorchLayer's weights equals
    central differences to 1e-6 (float64: truncation ~h², rounding ~1e-16/h) and ``jax.grad``
    of the same explanation to 1e-10. With JAX in float32 (``XQML_X64=0``) the float64 tensors
    still run in JAX's 64-bit mode, so the finite-difference check holds; the ``jax.grad``
    reference is then float32."""
    layer = _layer(circuit)
    explained = getattr(xqml, name)(layer.qnode, gradient=gradient, **METHODS[name])
    x = torch.tensor(x, dtype=torch.float64)
    weights = layer.qnode_weights["weights"]
    (grad,) = torch.autograd.grad(explained(x, weights).sum(), weights)
    with torch.no_grad():
        fd = _central_differences(lambda w: explained(x, w).sum(), weights)
    assert_close(grad, fd, rtol=1e-6, atol=1e-6)
    x_jax = jnp.asarray(x.numpy())
    expected = jax.grad(lambda w: jnp.sum(explained(x_jax, w)))(jnp.asarray(weights.detach()))
    assert_close(grad, expected, rtol64=1e-10, atol64=1e-10)  # dtype: expected's precision


@pytest.mark.slow
def test_weights_as_keyword_and_input_gradient():
    """TorchLayer's call convention (``qnode(inputs=x, **qnode_weights)``) and gradients with
    respect to the input itself, against ``jax.grad`` of the JAX call."""
    layer = _layer(_angle_circuit)
    explained = xqml.saliency(layer.qnode, abs=False)
    x = torch.tensor(X_ANGLE, dtype=torch.float64, requires_grad=True)
    got = explained(inputs=x, **layer.qnode_weights)
    (grad_x,) = torch.autograd.grad(got.sum(), x)
    w = jnp.asarray(layer.qnode_weights["weights"].detach().numpy())
    expected = jax.grad(lambda v: jnp.sum(explained(v, w)))(jnp.asarray(X_ANGLE))
    assert_close(grad_x, expected, rtol64=1e-10, atol64=1e-10)


# -- Captum on the same TorchLayer -------------------------------------------------------------


def test_captum_saliency_and_integrated_gradients_angle():
    """Captum differentiates the TorchLayer with torch's backprop. Saliency is exact in both.
    IG: both with the same 16-node Gauss-Legendre rule, so they agree to rounding (1e-10)."""
    captum_attr = pytest.importorskip("captum.attr")
    layer = _layer(_angle_circuit)
    x = torch.tensor([X_ANGLE], dtype=torch.float64)
    weights = layer.qnode_weights["weights"]
    expected = captum_attr.Saliency(layer).attribute(x.clone().requires_grad_())[0]
    ours = xqml.saliency(layer.qnode, gradient="parameter-shift")
    assert_close(ours(x[0], weights).detach(), expected, rtol64=1e-10)
    ig = captum_attr.IntegratedGradients(layer)
    expected = ig.attribute(x, method="gausslegendre", n_steps=16)[0]
    ours = xqml.integrated_gradients(
        layer.qnode, method="gausslegendre", n_steps=16, gradient="parameter-shift"
    )
    assert_close(ours(x[0], weights).detach(), expected, rtol64=1e-10, atol64=1e-10)


def test_captum_shapley_values_angle():
    """Captum's ShapleyValues (every permutation) with a non-zero baseline."""
    captum_attr = pytest.importorskip("captum.attr")
    layer = _layer(_angle_circuit)
    x = torch.tensor([X_ANGLE], dtype=torch.float64)
    expected = captum_attr.ShapleyValues(layer).attribute(x, baselines=0.1)[0]
    ours = xqml.shapley_values(layer.qnode, baselines=0.1)
    assert_close(ours(x[0], **layer.qnode_weights).detach(), expected, rtol64=1e-10)


def test_captum_integrated_gradients_amplitude_convention():
    """Amplitude IG with a zero baseline attributes ``g(a) = ‖a‖² f(a/‖a‖)`` (a quadratic form
    ``a†Ma``) at the amplitudes ``a = x/‖x‖`` the embedding prepares (the attribution space):
    Captum's IG of ``g`` on the same TorchLayer at ``a``, zero baseline. The integrand
    ``∂g/∂a(αa) = 2αMa`` is linear in α, so 2 Gauss-Legendre nodes are exact in Captum too."""
    captum_attr = pytest.importorskip("captum.attr")
    layer = _layer(_amplitude_circuit)

    def g(a):
        return torch.sum(a**2, dim=-1) * layer(a / torch.linalg.norm(a, dim=-1, keepdim=True))

    x = torch.tensor([X_AMPLITUDE], dtype=torch.float64)
    amplitudes = x / torch.linalg.norm(x)  # the attribution space: the prepared vector
    expected = captum_attr.IntegratedGradients(g).attribute(
        amplitudes, baselines=0.0, method="gausslegendre", n_steps=2
    )[0]
    ours = xqml.integrated_gradients(layer.qnode, baselines=0.0)(x[0], **layer.qnode_weights)
    assert_close(ours.detach(), expected, rtol64=1e-10, atol64=1e-10)


# -- float32 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, gradient",
    [
        ("saliency", "parameter-shift"),
        pytest.param("saliency", "auto", marks=pytest.mark.slow),
        pytest.param("integrated_gradients", "auto", marks=pytest.mark.slow),
        pytest.param("shapley_values", "auto", marks=pytest.mark.slow),
    ],
)
def test_float32_inputs_give_float32(name, gradient):
    """torch float32 (TorchLayer's default dtype) in, float32 out; values and weight gradients
    within float32's tolerance (1e-4 relative: ~10 operations of eps 1.2e-7 per circuit, and
    float32 angles) of the float64 call."""
    layer64 = _layer(_angle_circuit)
    layer32 = _layer(_angle_circuit, dtype=torch.float32)
    explained = getattr(xqml, name)(layer32.qnode, gradient=gradient, **METHODS[name])
    results = []
    for layer, dtype in ((layer32, torch.float32), (layer64, torch.float64)):
        weights = layer.qnode_weights["weights"]
        value = explained(torch.tensor(X_ANGLE, dtype=dtype), weights)
        (grad,) = torch.autograd.grad(value.sum(), weights)
        assert value.dtype == dtype and grad.dtype == dtype
        results.append((value.detach(), grad))
    (value32, grad32), (value64, grad64) = results
    assert_close(value32, value64, dtype=np.float32)
    assert_close(grad32, grad64, dtype=np.float32)


# -- bad input ----------------------------------------------------------------------------------


def test_bad_torch_input_is_refused_before_any_circuit():
    layer = _layer(_angle_circuit)
    device = layer.qnode.device
    weights = layer.qnode_weights["weights"]
    explained = xqml.integrated_gradients(layer.qnode)
    with no_circuit_runs(device):
        with pytest.raises(ValueError, match="NaN or inf"):
            explained(torch.tensor([0.1, float("nan")], dtype=torch.float64), weights)
        with pytest.raises(ValueError, match="NaN or inf"):
            explained(torch.tensor([0.1, float("inf")], requires_grad=True), weights)
        with pytest.raises(ValueError):
            explained(torch.zeros((3, 3), dtype=torch.float64), weights)
        with pytest.raises(ValueError, match="several devices"):
            explained(torch.tensor(X_ANGLE, device="meta"), weights)
        with pytest.raises(TypeError, match="Complex inputs"), torch.no_grad():
            explained(torch.tensor(X_ANGLE, dtype=torch.complex128), weights)
        with pytest.raises(RuntimeError, match="floating point"):  # torch itself refuses
            torch.tensor([1, 2], requires_grad=True)


def test_complex_attributions_are_not_differentiated_silently():
    """Complex amplitude inputs give complex attributions; differentiating them is refused
    (no detached value); under torch.no_grad() they equal the JAX call."""
    layer = _layer(_amplitude_circuit)
    weights = layer.qnode_weights["weights"]
    explained = xqml.saliency(layer.qnode, abs=False)
    x = torch.tensor([0.4, -0.7j, 0.2, 0.5 + 0.1j], dtype=torch.complex128)
    with pytest.raises(NotImplementedError, match="Complex attributions"):
        explained(x, weights)
    with torch.no_grad():
        got = explained(x, weights)
    assert got.dtype == torch.complex128
    expected = explained(jnp.asarray(x.numpy()), jnp.asarray(weights.detach().numpy()))
    assert_close(got, expected, rtol64=1e-10, atol64=1e-10)


def test_a_rule_that_cannot_be_differentiated_raises_at_backward():
    """State vectors of lightning.qubit (gradient="adjoint") cannot be differentiated with
    respect to the weights: the values are returned (the forward run needs no gradient), and
    ``backward`` raises the engine's clear error instead of giving a detached value."""
    layer = _layer(_amplitude_circuit, "lightning.qubit")
    weights = layer.qnode_weights["weights"]
    explained = xqml.saliency(layer.qnode, gradient="adjoint")
    value = explained(torch.tensor(X_AMPLITUDE, dtype=torch.float64), weights)
    assert value.requires_grad
    with pytest.raises(ValueError, match="hadamard_all"):
        value.sum().backward()


def test_integer_input_tensor_is_explained_as_float(angle_layer):
    """An integer tensor (no grad: torch refuses grad on integers) is explained as its float
    values; the result has torch's default float dtype."""
    explained = xqml.saliency(angle_layer.qnode, gradient="parameter-shift")
    weights = angle_layer.qnode_weights["weights"]
    got = explained(torch.tensor([1, -2]), weights)
    assert got.dtype == torch.get_default_dtype()
    expected = explained(torch.tensor([1.0, -2.0], dtype=torch.float64), weights)
    assert_close(got.detach(), expected.detach(), dtype=np.float32)


def test_a_torch_layer_itself_is_refused_with_a_hint(angle_layer):
    with pytest.raises(TypeError, match=r"saliency\(layer.qnode\)"):
        xqml.saliency(angle_layer)


def test_plan_and_entry_points_without_torch_support():
    """``explained.plan`` of a torch call is the plan of its detached copy (nothing runs);
    the engine's other entry points refuse torch with a message naming the supported call."""
    layer = _layer(_angle_circuit)
    weights = layer.qnode_weights["weights"]
    explained = xqml.saliency(layer.qnode)
    with no_circuit_runs(layer.qnode.device):
        plan = explained.plan(torch.tensor(X_ANGLE, dtype=torch.float64), weights)
    assert plan.method == "saliency"
    with pytest.raises(TypeError, match="explained\\(x, weights\\)"):
        xqml.ModelCall(layer.qnode, (torch.tensor(X_ANGLE), weights), {}, 0)


@pytest.mark.slow
def test_readme_pytorch_example():
    """The README's PyTorch example runs as written; its float32 attributions equal Captum's IG
    with the same 8-node Gauss-Legendre rule on the same TorchLayer (float32 tolerance)."""
    captum_attr = pytest.importorskip("captum.attr")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"<!-- torch-example -->\n```python\n(.*?)```", readme, re.DOTALL).group(1)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    layer, attributions = namespace["layer"], namespace["attributions"]
    assert attributions.dtype == torch.float32
    grad = layer.qnode_weights["weights"].grad
    assert grad is not None and bool(torch.all(torch.isfinite(grad)))
    expected = captum_attr.IntegratedGradients(layer).attribute(
        torch.tensor([[0.4, -0.7]]), method="gausslegendre", n_steps=8
    )[0]
    assert_close(attributions.detach(), expected.detach(), dtype=np.float32)


# -- torch in every API (issue 22) -----------------------------------------------------------

# the suite's precision: float64 tensors in JAX's 64-bit mode, float32 ones otherwise
DTYPE = torch.float64 if jax.config.jax_enable_x64 else torch.float32
NP_DTYPE = np.float64 if DTYPE == torch.float64 else np.float32


def _t(values, requires_grad=False):
    return torch.tensor(np.asarray(values), dtype=DTYPE, requires_grad=requires_grad)


def _j(values):
    return jnp.asarray(np.asarray(values, dtype=NP_DTYPE))


def _close(got, expected):
    """1e-10 in float64, float32's tolerance otherwise."""
    assert_close(got, expected, dtype=NP_DTYPE, rtol64=1e-10, atol64=1e-10)


@contextlib.contextmanager
def _recorded():
    """Every warning raised inside the block (none may be a ``UserWarning``: the package warns
    about nothing in these cases)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield record


def _no_user_warnings(record):
    # JAX's "complex128 ... truncated to complex64" in float32 runs is issue 26's (the x64
    # handling of the torch path), not checked here
    messages = [
        str(w.message)
        for w in record
        if issubclass(w.category, UserWarning) and "truncated to dtype" not in str(w.message)
    ]
    assert not messages, messages


def _angle_qnodes():
    """The angle model as a torch QNode and as a JAX QNode (the reference call)."""
    dev = qml.device("default.qubit", wires=N_WIRES)
    return (
        qml.QNode(_angle_circuit, dev, interface="torch"),
        qml.QNode(_angle_circuit, dev, interface="jax"),
        dev,
    )


WEIGHTS = np.array([[0.3, -0.8], [1.1, 0.4]])
BACKGROUND = np.array([[0.0, 0.1], [0.5, -0.3], [-0.2, 0.9]])

OPTION_CASES = {
    "integrated_gradients-baselines": (
        "integrated_gradients",
        {"method": "gausslegendre", "n_steps": 4},
        {"baselines": [0.1, -0.2]},
    ),
    "integrated_gradients-baseline_data": (
        "integrated_gradients",
        {"method": "gausslegendre", "n_steps": 4, "baselines": "mean"},
        {"baseline_data": BACKGROUND},
    ),
    "taylor_fourier-root": ("taylor_fourier", {}, {"root": [0.0, 0.1]}),
    "qlrp-root": ("qlrp", {}, {"root": [0.0, 0.1]}),
    "feature_ablation-feature_mask": (
        "feature_ablation",
        {},
        {"feature_mask": np.array([0, 0]), "baselines": [0.2, 0.3]},
    ),
    "shapley_values-background": ("shapley_values", {}, {"background": BACKGROUND}),
    "kernel_shap-background": (
        "kernel_shap",
        {"n_samples": 6, "seed": 2},
        {"background": BACKGROUND},
    ),
    "lime-baselines": ("lime", {"n_samples": 6, "seed": 2}, {"baselines": [0.2, 0.3]}),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_array_options_take_torch_tensors(case):
    """Every option that takes an array takes a torch tensor: the torch call with tensor
    options equals the JAX call with NumPy options (1e-10; float32's tolerance in float32)."""
    name, fixed, arrays = OPTION_CASES[case]
    torch_qnode, jax_qnode, _ = _angle_qnodes()

    def as_tensor(value):
        value = np.asarray(value)
        return torch.tensor(value, dtype=DTYPE) if value.dtype.kind == "f" else torch.tensor(value)

    torch_options = {k: as_tensor(v) for k, v in arrays.items()}
    numpy_options = {k: np.asarray(v, dtype=NP_DTYPE) if np.asarray(v).dtype.kind == "f"
                     else np.asarray(v) for k, v in arrays.items()}  # fmt: skip
    method = getattr(xqml, name)
    with _recorded() as record:
        got = method(torch_qnode, gradient="parameter-shift", **fixed, **torch_options)(
            _t(X_ANGLE), _t(WEIGHTS, requires_grad=True)
        )
    _no_user_warnings(record)
    expected = method(jax_qnode, gradient="parameter-shift", **fixed, **numpy_options)(
        _j(X_ANGLE), _j(WEIGHTS)
    )
    assert isinstance(got, torch.Tensor) and got.dtype == DTYPE
    _close(got.detach(), expected)


def test_option_tensor_that_requires_grad_is_refused_before_any_circuit():
    torch_qnode, _, dev = _angle_qnodes()
    with no_circuit_runs(dev):
        with pytest.raises(ValueError, match="requires grad"):
            xqml.integrated_gradients(torch_qnode, baselines=_t([0.1, 0.2], requires_grad=True))
        with pytest.raises(ValueError, match="requires grad"):
            xqml.qpert_mask(torch_qnode, background=_t(BACKGROUND, requires_grad=True))
        with pytest.raises(ValueError, match="requires grad"):
            xqml.attribution_penalty(xqml.saliency(torch_qnode), _t([1.0, 0.0], True))


def test_explain_batch_takes_and_returns_torch():
    """Rows of torch tensors give torch tensors (not differentiable: explain_batch returns
    host arrays) equal to the JAX call; refusals run no circuit."""
    torch_qnode, jax_qnode, dev = _angle_qnodes()
    X = np.array([[0.1, 0.2], [0.5, -0.4], [1.2, 0.3]])
    options = {"abs": False, "return_convergence_delta": False}
    with _recorded() as record:
        got = xqml.explain_batch(
            xqml.saliency(torch_qnode, **options), _t(X), _t(WEIGHTS, True), internal_batch_size=2
        )
    _no_user_warnings(record)
    expected = xqml.explain_batch(
        xqml.saliency(jax_qnode, **options), _j(X), _j(WEIGHTS), internal_batch_size=2
    )
    assert isinstance(got, torch.Tensor) and got.dtype == DTYPE and not got.requires_grad
    _close(got, expected)
    bad = X.copy()
    bad[1, 0] = np.nan
    with no_circuit_runs(dev), pytest.raises(ValueError, match="NaN"):
        xqml.explain_batch(xqml.saliency(torch_qnode), _t(bad), _t(WEIGHTS))


def test_attribution_penalty_against_torch_double_backprop():
    """The penalty ``Σ m_i (∂f/∂x_i)²`` of signed saliency on torch tensors equals the JAX
    call, and its torch.autograd weight gradient equals torch's own double backprop through a
    backprop QNode (the reference: ``torch.autograd.grad(..., create_graph=True)``)."""
    torch_qnode, jax_qnode, dev = _angle_qnodes()
    mask = torch.tensor([True, False])
    weights = _t(WEIGHTS, requires_grad=True)
    penalty = xqml.attribution_penalty(xqml.saliency(torch_qnode, abs=False), mask)
    with _recorded() as record:
        value = penalty(_t(X_ANGLE), weights)
        value.backward()
    _no_user_warnings(record)
    jax_penalty = xqml.attribution_penalty(xqml.saliency(jax_qnode, abs=False), np.array(mask))
    assert value.dtype == DTYPE and value.shape == ()
    _close(value.detach(), jax_penalty(_j(X_ANGLE), _j(WEIGHTS)))

    reference = qml.QNode(_angle_circuit, dev, interface="torch", diff_method="backprop")
    ref_weights = _t(WEIGHTS, requires_grad=True)
    x = _t(X_ANGLE, requires_grad=True)
    (gx,) = torch.autograd.grad(reference(x, ref_weights), x, create_graph=True)
    ref_value = gx[0] ** 2
    ref_value.backward()
    _close(value.detach(), ref_value.detach())
    _close(weights.grad, ref_weights.grad)
    with no_circuit_runs(dev), pytest.raises(ValueError, match="shape"):
        xqml.attribution_penalty(xqml.saliency(torch_qnode), [True, False, True])(
            _t(X_ANGLE), weights
        )


def _gate_circuit(x, w, keep=(True, True, True)):
    """Input gates, then three players: RX(w0), CNOT, RY(w1)."""
    qml.RY(x[0], wires=0)
    qml.RY(x[1], wires=1)
    if keep[0]:
        qml.RX(w[0], wires=0)
    if keep[1]:
        qml.CNOT(wires=[0, 1])
    if keep[2]:
        qml.RY(w[1], wires=1)
    return qml.expval(qml.Z(1))


def test_gate_shapley_against_torch_autograd():
    """Gate Shapley values of a torch call equal the JAX call's, and their torch.autograd
    weight gradients equal those of the exact Shapley formula over coalition circuits
    evaluated by a backprop torch QNode."""
    import itertools  # pylint: disable=import-outside-toplevel
    from math import factorial  # pylint: disable=import-outside-toplevel

    dev = qml.device("default.qubit", wires=2)
    x, w = np.array([0.3, 0.5]), np.array([0.2, 0.7])
    weights = _t(w, requires_grad=True)
    with _recorded() as record:
        result = xqml.gate_shapley(qml.QNode(_gate_circuit, dev, interface="torch"))(_t(x), weights)
        result.values.sum().backward()
    _no_user_warnings(record)
    expected = xqml.gate_shapley(qml.QNode(_gate_circuit, dev, interface="jax"))(_j(x), _j(w))
    assert isinstance(result.values, torch.Tensor) and result.values.dtype == DTYPE
    assert result.labels == expected.labels
    for name in ("values", "stderr", "v_all", "v_none"):
        _close(getattr(result, name).detach(), getattr(expected, name))

    reference = qml.QNode(_gate_circuit, dev, interface="torch", diff_method="backprop")
    ref_weights = _t(w, requires_grad=True)
    n = 3

    def v(coalition):
        return reference(_t(x), ref_weights, keep=tuple(i in coalition for i in range(n)))

    phi = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        terms = [
            factorial(len(s)) * factorial(n - len(s) - 1) / factorial(n) * (v({*s, i}) - v(set(s)))
            for size in range(n)
            for s in itertools.combinations(others, size)
        ]
        phi.append(sum(terms))
    phi = torch.stack(phi)
    phi.sum().backward()
    _close(result.values.detach(), phi.detach())
    _close(weights.grad, ref_weights.grad)
    with no_circuit_runs(dev), pytest.raises(ValueError, match="NaN"):
        xqml.gate_shapley(qml.QNode(_gate_circuit, dev, interface="torch"))(
            _t([np.nan, 0.1]), weights
        )


def _probs_circuit(x, w):
    qml.RY(np.pi * x[0], wires=0)
    qml.RY(np.pi * x[1], wires=1)
    qml.RX(w, wires=1)
    qml.CNOT(wires=[1, 0])
    return qml.probs(wires=0)


QPERT_OPTIONS = {"n_iter": 6, "n_masks": 2, "learning_rate": 0.2}
QPERT_BACKGROUND = np.array([[0.1, 0.2], [0.7, 0.4], [0.3, 0.9]])


def _qpert_explainers(background):
    """QPert of a torch QNode (torch background) and of the same circuit as a JAX QNode."""
    dev = qml.device("default.qubit", wires=2)
    torch_explainer = xqml.qpert_mask(
        qml.QNode(_probs_circuit, dev, interface="torch"), background=background, **QPERT_OPTIONS
    )
    jax_explainer = xqml.qpert_mask(
        qml.QNode(_probs_circuit, dev, interface="jax"),
        background=QPERT_BACKGROUND,
        **QPERT_OPTIONS,
    )
    return torch_explainer, jax_explainer, dev


def _same_qpert_result(got, expected):
    assert isinstance(got.saliency, torch.Tensor) and got.saliency.dtype == DTYPE
    _close(got.saliency.detach(), expected.saliency)
    _close(got.masks.detach(), expected.masks)
    assert sorted(got.history) == sorted(expected.history)
    for key in expected.history:
        _close(got.history[key].detach(), expected.history[key])


def test_qpert_takes_and_returns_torch():
    """QPert of a torch QNode with torch tensors (input, weight, background) equals the JAX
    explainer of the same circuit."""
    torch_explainer, jax_explainer, dev = _qpert_explainers(_t(QPERT_BACKGROUND))
    x, w = np.array([0.9, 0.2]), np.array(0.4)
    with _recorded() as record:
        got = torch_explainer.explain(_t(x), _t(w, requires_grad=True))
    _no_user_warnings(record)
    _same_qpert_result(got, jax_explainer.explain(_j(x), _j(w)))
    with no_circuit_runs(dev), pytest.raises(ValueError, match="shape"):
        torch_explainer(_t([0.1, 0.2, 0.3]), _t(w))


@pytest.mark.slow
def test_qpert_batch_and_torch_gradient():
    """explain_batch on torch rows equals the JAX call; the saliency's torch.autograd weight
    gradient (through the optimisation) equals jax.grad of the JAX explainer's."""
    torch_explainer, jax_explainer, _ = _qpert_explainers(_t(QPERT_BACKGROUND))
    x, X, w = np.array([0.9, 0.2]), np.array([[0.9, 0.2], [0.3, 0.6]]), np.array(0.4)
    weight = _t(w, requires_grad=True)
    with _recorded() as record:
        batch = torch_explainer.explain_batch(_t(X), _t(w))
        torch_explainer.explain(_t(x), weight).saliency[0].backward()
    _no_user_warnings(record)
    _same_qpert_result(batch, jax_explainer.explain_batch(_j(X), _j(w)))
    jax_grad = jax.grad(lambda w: jax_explainer.explain(_j(x), w).saliency[0])(_j(w))
    _close(weight.grad, jax_grad)


def test_grad_cam_takes_and_returns_torch():
    """Grad-CAM of torch images equals the JAX call (CAMs, weights, integer targets kept)."""
    from pennylane_xqml.experiments.hybrid import HybridCNNVQC  # pylint: disable=C0415

    model = HybridCNNVQC(n_classes=2, n_channels=2, n_qubits=2, n_layers=1, n_hidden=2,
                         image_shape=(5, 5))  # fmt: skip
    images = np.linspace(0, 1, 50).reshape(2, 5, 5)
    cam = xqml.grad_cam(model, return_stderr=True)
    with _recorded() as record:
        got, stderr = cam(model.params, _t(images))
        weights = cam.weights(model.params, _t(images))
    _no_user_warnings(record)
    expected, expected_stderr = cam(model.params, _j(images))
    expected_weights = cam.weights(model.params, _j(images))
    assert isinstance(got, torch.Tensor) and got.dtype == DTYPE and got.shape == (2, 5, 5)
    _close(got, expected)
    _close(stderr, expected_stderr)
    _close(weights.values, expected_weights.values)
    assert weights.target.dtype in (torch.int32, torch.int64)
    assert weights.target.tolist() == np.asarray(expected_weights.target).tolist()
    with no_circuit_runs(model.qnode.device), pytest.raises(ValueError):
        cam(model.params, _t(np.zeros((0, 5, 5))))


def test_readme_pytorch_recipes():
    """The README's two recipes run as written. The whole-model attributions (Hadamard tests,
    4000 shots) agree with Captum on the same model with an analytic backprop layer within a
    loose shot bound; the layer's attributions are per amplitude of the layer's input and
    sum to the layer's output (completeness, within the same bound)."""
    captum_attr = pytest.importorskip("captum.attr")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("<!-- torch-recipes -->", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[:2]
    namespace = {}
    with _recorded() as record:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    _no_user_warnings(record)
    model, quantum, inputs = namespace["model"], namespace["quantum"], namespace["inputs"]
    whole, per_amplitude = namespace["whole"], namespace["per_amplitude"]
    assert whole.shape == (1, 3) and per_amplitude.shape == (4,)

    analytic = qml.QNode(
        quantum.qnode.func, qml.device("default.qubit", wires=2), interface="torch"
    )
    exact_layer = qml.qnn.TorchLayer(
        analytic, {"weights": (1, 2, 3)}, init_method={"weights": quantum.qnode_weights["weights"]}
    )
    exact_model = torch.nn.Sequential(model[0], exact_layer, model[2]).double()
    expected = captum_attr.IntegratedGradients(exact_model).attribute(inputs, target=1, n_steps=8)
    # attributions of order 0.03; measured differences with this seed 6e-4 (4000 shots: a
    # standard error of order 0.016 per amplitude-gradient entry, scaled down by the path
    # average and the Linear layers' weights)
    assert float(expected.abs().max()) > 0.01
    assert float((whole - expected).abs().max()) < 0.005
    with torch.no_grad():
        layer_out = exact_layer(namespace["layer_input"])[1]
    # the sum is a shot estimate of a probability near 0.7: 4 binomial standard errors at
    # 4000 shots are 4 * sqrt(0.21 / 4000) = 0.029
    assert abs(float(per_amplitude.sum()) - float(layer_out)) < 0.03
