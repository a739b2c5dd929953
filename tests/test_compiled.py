"""``qml.qjit(explained)`` in the main environment, where Catalyst is not installed.

What compiles, and agrees with the uncompiled explanation and independent references, is checked
in Catalyst's own environment (``scripts/catalyst/run_catalyst_checks.py``, run by ``.ci/run``).
Here: the Catalyst branch of ``ExplainedQNode.__call__`` costs nothing and imports nothing
without Catalyst, and its refusals (simulated by making the branch think Catalyst is tracing)
are raised with their message before any circuit runs."""

import sys

import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.engine import transform
from pennylane_xqml.engine.compiled import (
    COMPILED_METHODS,
    catalyst_tracing,
    check_compilable,
)
from pennylane_xqml.testing import assert_close, no_circuit_runs

X = np.array([0.3, -0.4])


def _angle_model(device, map_input=lambda x: x):
    @qml.qnode(device)
    def model(x):
        x = map_input(x)
        qml.RY(x[0], 0)
        qml.RX(x[1], 1)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    return model


def test_without_catalyst_the_branch_is_inactive_and_imports_nothing():
    device = qml.device("default.qubit", wires=2)
    explained = xqml.saliency(_angle_model(device), abs=False, gradient="parameter-shift")
    assert not catalyst_tracing()
    values = explained(X)  # <Z1> = cos(x0) cos(x1)
    assert_close(values, [-np.sin(X[0]) * np.cos(X[1]), -np.cos(X[0]) * np.sin(X[1])])
    assert "catalyst" not in sys.modules


@pytest.fixture(name="under_qjit")
def fixture_under_qjit(monkeypatch):
    """Calls of explained QNodes take the Catalyst branch, as while ``qml.qjit`` traces."""
    monkeypatch.setattr(transform, "catalyst_tracing", lambda: True)


@pytest.mark.parametrize(
    "method, options",
    [
        (xqml.lime, {"n_samples": 4}),
        (xqml.shapley_value_sampling, {"n_samples": 2}),
        (xqml.smoothgrad, {"gradient": "parameter-shift"}),
        (xqml.input_x_gradient, {"gradient": "parameter-shift"}),
    ],
)
def test_methods_outside_the_compiled_set_are_refused(under_qjit, method, options):
    device = qml.device("lightning.qubit", wires=2)
    explained = method(_angle_model(device), **options)
    assert explained.method.public_name not in COMPILED_METHODS
    with no_circuit_runs(device), pytest.raises(ValueError, match="is not one of them"):
        explained(jnp.asarray(X))


def test_a_device_catalyst_does_not_compile_for_is_refused(under_qjit):
    device = qml.device("default.qubit", wires=2)
    explained = xqml.feature_ablation(_angle_model(device))
    with no_circuit_runs(device), pytest.raises(ValueError, match="needs a Catalyst device"):
        explained(jnp.asarray(X))


def test_autodiff_rules_are_refused_naming_the_circuit_rules(under_qjit):
    device = qml.device("lightning.qubit", wires=2)
    explained = xqml.saliency(_angle_model(device))  # "auto" is "adjoint" on lightning
    with no_circuit_runs(device), pytest.raises(ValueError, match='gradient="adjoint"') as info:
        explained(jnp.asarray(X))
    assert '"parameter-shift" for angle inputs' in str(info.value)


def test_shots_are_refused(under_qjit):
    device = qml.device("lightning.qubit", wires=2)
    explained = xqml.shapley_values(qml.set_shots(_angle_model(device), shots=50))
    with no_circuit_runs(device), pytest.raises(ValueError, match="shots=50"):
        explained(jnp.asarray(X))


def test_an_input_map_jax_cannot_trace_is_refused(under_qjit):
    device = qml.device("lightning.qubit", wires=2)
    explained = xqml.feature_ablation(_angle_model(device, map_input=np.tanh))
    with no_circuit_runs(device), pytest.raises(ValueError, match="must be written with jax"):
        explained(jnp.asarray(X))


@pytest.mark.parametrize("name", COMPILED_METHODS)
def test_the_compiled_methods_on_lightning_pass_the_early_check(name):
    check_compilable(name, qml.device("lightning.qubit", wires=1))  # raises nothing


def test_autograph_is_told_to_compile_an_explanation_without_it():
    # qml.qjit(..., autograph=True) converts a QNode's func; an explanation has none.
    explained = xqml.feature_ablation(_angle_model(qml.device("default.qubit", wires=2)))
    with pytest.raises(AttributeError, match="without autograph"):
        _ = explained.func
