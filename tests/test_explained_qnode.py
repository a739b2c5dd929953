"""What an explained QNode is: a ``qml.QNode`` for PennyLane's QNode-level operations, whose
calls run a plan (see CONTRIBUTING.md)."""

import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.engine.plan import Plan, execute_plan
from pennylane_xqml.testing import assert_close, no_circuit_runs

X = np.array([0.3, 0.4])


def _model(device):
    @qml.qnode(device)
    def model(x):
        qml.RY(x[0], 0)
        qml.RX(x[1], 1)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    return model


def _reference(x):
    # <Z1> = cos(x0) cos(x1) after RY(x0) ⊗ RX(x1) and a CNOT
    return np.array([-np.sin(x[0]) * np.cos(x[1]), -np.cos(x[0]) * np.sin(x[1])])


def test_set_shots_on_an_explanation_gives_the_explanation_with_shots():
    device = qml.device("default.qubit", wires=2, seed=7)
    explained = xqml.saliency(_model(device), abs=False, gradient="parameter-shift")
    noisy = qml.set_shots(explained, shots=20_000)
    assert isinstance(noisy, xqml.ExplainedQNode)
    assert noisy.shots.total_shots == 20_000 and explained.shots.total_shots is None
    values, stderr = xqml.saliency(
        noisy.qnode, abs=False, gradient="parameter-shift", return_stderr=True
    )(X)
    assert np.all(stderr > 0)
    assert np.all(np.abs(values - _reference(X)) < 5 * stderr)
    decorated = qml.set_shots(100)(explained)
    assert decorated.shots.total_shots == 100


def test_update_keeps_the_explanation():
    explained = xqml.saliency(_model(qml.device("default.qubit", wires=2)), abs=False)
    other = explained.update(device=qml.device("lightning.qubit", wires=2))
    assert isinstance(other, xqml.ExplainedQNode) and other.device.name == "lightning.qubit"
    assert_close(other(X), _reference(X))


def test_pennylane_transforms_act_on_the_explained_qnode():
    explained = xqml.saliency(_model(qml.device("default.qubit", wires=2)), abs=False)
    merged = qml.transforms.merge_rotations(explained)
    assert isinstance(merged, xqml.ExplainedQNode)
    assert_close(merged(X), _reference(X))


@pytest.mark.parametrize(
    "view",
    [
        lambda e: qml.draw(e)(X),
        lambda e: qml.specs(e)(X),
        lambda e: qml.workflow.construct_batch(e)(X),
    ],
    ids=["draw", "specs", "construct_batch"],
)
def test_circuit_views_refuse_an_explanation_with_what_to_use(view):
    device = qml.device("default.qubit", wires=2)
    explained = xqml.saliency(_model(device))
    with no_circuit_runs(device), pytest.raises(AttributeError, match=r"explained\.draw"):
        view(explained)


def test_an_explanation_cannot_be_explained_again():
    explained = xqml.saliency(_model(qml.device("default.qubit", wires=2)))
    with pytest.raises(TypeError, match="already an explanation"):
        xqml.integrated_gradients(explained)


def test_plan_is_what_a_call_runs():
    device = qml.device("default.qubit", wires=2)
    explained = xqml.saliency(_model(device), abs=False, gradient="parameter-shift")
    with no_circuit_runs(device):
        plan = explained.plan(X)
    assert isinstance(plan, Plan) and plan.embedding == "angle" and not plan.simulator_only
    # the four shifted circuits (two per input angle) are one parameter-broadcast tape
    assert len(plan.tapes) == 1 and plan.tapes[0].batch_size == 4
    assert [t.hash for t in plan.tapes] == [t.hash for t in explained.construct_batch(X)]
    with qml.Tracker(device) as tracker:
        values = execute_plan(plan)
    assert tracker.totals["executions"] == 4
    assert_close(values, _reference(X))
    assert_close(plan.processing_fn(qml.execute(plan.tapes, device), ()), values)


def test_simulator_rules_are_requests_in_the_plan():
    import jax.numpy as jnp

    @qml.qnode(qml.device("default.qubit", wires=2), interface="jax")
    def model(x):
        qml.RY(x[0], 0)
        qml.RX(x[1], 1)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    plan = xqml.saliency(model, abs=False, gradient="backprop").plan(jnp.asarray(X))
    assert plan.tapes == () and len(plan.simulator_requests) == 1 and plan.simulator_only
    assert_close(execute_plan(plan), _reference(X))
