"""PyTorch tensors in explanations (:mod:`pennylane_xqml.engine.torch_bridge`).

Every number is checked against an independent computation:

* each method on torch tensors against the same method on JAX arrays (the engine's own path,
  tested elsewhere against autodiff of the plain QNode), on default.qubit and lightning.qubit;
* ``torch.autograd`` gradients of explanations with respect to a ``qml.qnn.TorchLayer``'s
  weights against central finite differences of the explanation (float64);
* Captum's ``Saliency``, ``IntegratedGradients`` and ``ShapleyValues`` on the same TorchLayer
  (Captum differentiates the layer with torch's backprop, independently of this package).
"""

import re
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
