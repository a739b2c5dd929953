"""The method CONTRIBUTING.md adds in one file works as written, against autodiff."""

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close

GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


@pytest.fixture(scope="module")
def method():
    text = GUIDE.read_text()
    block = re.search(r'```python\n("""Gradient × input, squared.*?)```', text, re.DOTALL).group(1)
    namespace = {}
    exec(compile(block, str(GUIDE), "exec"), namespace)  # noqa: S102 - the guide's own code
    return namespace["gradient_x_input_squared"]


def _angle_model(device):
    @qml.qnode(device)
    def model(x, w):
        qml.AngleEmbedding(x, wires=range(3))
        qml.BasicEntanglerLayers(w, wires=range(3))
        return qml.expval(qml.Z(0) @ qml.Z(2))

    return model


def test_angle_model_matches_autodiff(method):
    model = _angle_model(qml.device("default.qubit", wires=3))
    x = jnp.asarray([0.3, -0.7, 1.1])
    w = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3)))
    expected = (x * jax.grad(model)(x, w)) ** 2
    for gradient in ("auto", "parameter-shift"):
        assert_close(method(model, gradient=gradient)(x, w), expected)
    assert isinstance(method(model), xqml.ExplainedQNode)
    assert "gradient" in str(__import__("inspect").signature(method))


def test_amplitude_model_matches_autodiff_in_amplitude_space(method):
    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        qml.RY(w, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    x = np.array([0.2, -0.5, 0.7, 0.4])
    a = x / np.linalg.norm(x)
    # closed form: f(a) = a M a with M = U† Z_1 U, so ∂f/∂a = 2 M a
    u = qml.matrix(lambda: (qml.RY(0.3, 0), qml.CNOT([0, 1])), wire_order=[0, 1])()
    m = (u.conj().T @ qml.matrix(qml.Z(1), wire_order=[0, 1]) @ u).real
    expected = (a * (2 * m @ a)) ** 2
    assert_close(method(model, gradient="hadamard_all")(x, 0.3), expected)


def test_shots_agree_within_their_standard_errors(method):
    device = qml.device("default.qubit", wires=3, seed=11)
    model = qml.set_shots(_angle_model(device), shots=50_000)
    exact = _angle_model(qml.device("default.qubit", wires=3))
    x = np.array([0.3, -0.7, 1.1])
    w = np.random.default_rng(0).normal(size=(2, 3))
    values, stderr = method(model, gradient="parameter-shift", return_stderr=True)(x, w)
    expected = method(exact, gradient="parameter-shift")(x, w)
    assert np.all(stderr > 0)
    assert np.all(np.abs(values - expected) < 5 * stderr + 1e-4)
