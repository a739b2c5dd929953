"""The circuit cost report (pennylane_xqml.engine.cost): counts equal real executions, shot budgets hold."""

import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.engine.cost import CostReport, cost_report

X_ANGLE = np.array([0.4, -0.7])
W_ANGLE = np.array([0.3, 1.1])
X_AMP = np.array([0.5, -0.2, 0.7, 0.4])
W_AMP = np.random.default_rng(3).normal(size=qml.StronglyEntanglingLayers.shape(1, 2))


def angle_model(shots=None, probs=False, wires=2):
    dev = qml.device("default.qubit", wires=wires, seed=11)

    @qml.set_shots(shots)
    @qml.qnode(dev)
    def model(x, w):
        qml.RY(x[0], wires=0)
        qml.RX(x[1], wires=1)
        qml.CNOT(wires=[0, 1])
        qml.RY(w[0], wires=0)
        qml.RZ(w[1], wires=1)
        if probs:
            return qml.probs(wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.Z(1) + 0.5 * qml.X(0))

    return model


def amplitude_model(shots=None):
    """One spare wire, so that the Hadamard tests' ancilla lives on the tracked device."""
    dev = qml.device("default.qubit", wires=3, seed=5)

    @qml.set_shots(shots)
    @qml.qnode(dev)
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(2))
        return qml.expval(qml.Z(0))

    return model


ROOT = np.array([np.pi / 2, 0.3])

# (method, options, model kind, shots)
CASES = [
    ("integrated_gradients", {"n_steps": 3, "gradient": "parameter-shift"}, "angle", None),
    ("integrated_gradients", {"n_steps": 2, "return_convergence_delta": True}, "angle", 100),
    ("saliency", {"gradient": "parameter-shift"}, "angle", None),
    ("input_x_gradient", {}, "angle", 100),
    ("smoothgrad", {"nt_samples": 3, "gradient": "parameter-shift"}, "angle", None),
    ("feature_ablation", {}, "angle", 100),
    ("shapley_values", {"background": np.zeros((2, 2))}, "angle", None),
    ("shapley_value_sampling", {"n_samples": 3, "return_convergence_delta": True}, "angle", 100),
    ("kernel_shap", {"n_samples": 4}, "angle", None),
    ("lime", {"n_samples": 6}, "angle", 100),
    ("random_attribution", {}, "angle", None),
    ("taylor_fourier", {"root": ROOT, "gradient": "parameter-shift"}, "angle", None),
    (
        "taylor_fourier",
        {"spectrum": [1.0], "root": ROOT, "return_convergence_delta": True},
        "angle",
        100,
    ),
    ("taylor_fourier", {"gradient": "parameter-shift", "root_steps": 30}, "angle", None),
    ("qlrp", {}, "angle", None),
    ("qlrp", {"return_convergence_delta": True}, "angle", None),
    ("integrated_gradients", {"gradient": "hadamard_all"}, "amplitude", None),
    (
        "integrated_gradients",
        {"gradient": "hadamard", "return_convergence_delta": True},
        "amplitude",
        100,
    ),
    ("integrated_gradients", {"gradient": "adjoint"}, "amplitude", None),
    ("saliency", {}, "amplitude", 100),
    ("smoothgrad", {"nt_samples": 2, "gradient": "hadamard"}, "amplitude", None),
    ("kernel_shap", {"n_samples": 5}, "amplitude", 100),
]


def _explained(name, options, kind, shots):
    model = angle_model(shots) if kind == "angle" else amplitude_model(shots)
    args = (X_ANGLE, W_ANGLE) if kind == "angle" else (X_AMP, W_AMP)
    return getattr(xqml, name)(model, **options), args


@pytest.mark.parametrize("name, options, kind, shots", CASES)
def test_circuit_count_equals_executed_tapes(name, options, kind, shots):
    explained, args = _explained(name, options, kind, shots)
    report = explained.cost(*args)
    assert isinstance(report, CostReport) and report.method == name
    # prepare() runs the root search (taylor_fourier without a root), else it is explained
    # a broadcast tape of B parameter sets is B circuits
    tapes = explained.prepare(*args).construct_batch(*args)
    assert report.n_circuits == sum(tape.batch_size or 1 for tape in tapes)
    with qml.Tracker(explained.device) as tracker:
        explained(*args)
    # default.qubit's tracker: "simulations" are the tapes it ran (a broadcast tape of B
    # circuits is one), "executions" the measurement groups of every circuit (B per broadcast
    # tape), "shots" the shots of every circuit
    simulations = tracker.history.get("simulations", [])
    groups = tracker.history.get("executions", [])
    n_tapes = report.n_executed_tapes
    assert n_tapes <= report.n_circuits
    # the root search (taylor_fourier without a root) runs while building, then one batch
    assert sum(simulations[-n_tapes:] if n_tapes else []) == n_tapes
    if report.n_circuits:
        assert tracker.history["batches"][-1] == 1
        assert sum(groups[-n_tapes:]) == report.n_measurement_groups
    if shots is not None and report.n_circuits:
        assert sum(tracker.history["shots"][-n_tapes:]) == shots * report.n_measurement_groups
    if report.n_setup_circuits == 0:
        assert sum(groups) == report.n_measurement_groups
    assert report.n_simulator_requests == 0


def test_root_search_circuits_are_counted_and_reported():
    explained, args = _explained("taylor_fourier", {"gradient": "parameter-shift"}, "angle", None)
    report = explained.cost(*args)
    assert report.n_setup_circuits > 0 and "root search" in str(report)
    given = xqml.taylor_fourier(angle_model(), root=ROOT, gradient="parameter-shift").cost(*args)
    assert given.n_setup_circuits == 0 and given.n_circuits == report.n_circuits


def test_simulator_rules_are_requests_not_circuits():
    model = angle_model()
    report = xqml.saliency(model, gradient="backprop").cost(
        jnp.asarray(X_ANGLE), jnp.asarray(W_ANGLE)
    )
    assert (report.n_circuits, report.n_simulator_requests) == (0, 1)
    assert report.shot_variance is None and "simulator-only" in str(report)
    adjoint = xqml.integrated_gradients(amplitude_model(), gradient="adjoint").cost(X_AMP, W_AMP)
    assert adjoint.n_circuits == 1 and adjoint.shot_variance is None  # returns a state
    with pytest.raises(ValueError, match="do not apply"):
        adjoint.stderr_bound(100)


def test_circuit_counts_match_the_documented_formulas():
    """Independent counts: IG exact = one circuit per Pauli word; shift rules 2 per feature."""
    amp = xqml.integrated_gradients(amplitude_model(), gradient="hadamard_all").cost(X_AMP, W_AMP)
    assert amp.n_circuits == 1
    hattriq = xqml.integrated_gradients(amplitude_model(), gradient="hadamard").cost(X_AMP, W_AMP)
    assert hattriq.n_circuits == 4  # one per amplitude
    # the output Z0 Z1 + 0.5 X0: two words, measured in one tape -> 2 measurement groups
    sal = xqml.saliency(angle_model(), gradient="parameter-shift").cost(X_ANGLE, W_ANGLE)
    assert sal.n_circuits == 2 * 2 and sal.n_measurement_groups == 2 * sal.n_circuits
    ablation = xqml.feature_ablation(angle_model()).cost(X_ANGLE, W_ANGLE)
    assert ablation.n_circuits == 1 + 2


def test_gate_counts_from_pennylane_resources():
    sal = xqml.saliency(angle_model(), gradient="parameter-shift").cost(X_ANGLE, W_ANGLE)
    assert sal.gate_counts == {"RY": 8, "RX": 4, "CNOT": 4, "RZ": 4}
    assert (sal.n_gates, sal.two_qubit_gates, sal.multi_qubit_gates) == (20, 4, 0)
    assert sal.max_depth == 3 and sal.max_wires == 2
    # Hadamard test: the 3-qubit state preparation is one gate until decomposed to a gate set
    amp = xqml.integrated_gradients(amplitude_model(), gradient="hadamard_all").cost(X_AMP, W_AMP)
    assert amp.multi_qubit_gates == 1 and amp.gate_counts["StatePrep"] == 1
    assert amp.gate_counts["Rot"] == 2 and amp.gate_counts["CZ"] == 1  # templates decomposed
    native = xqml.integrated_gradients(amplitude_model(), gradient="hadamard_all").cost(
        X_AMP, W_AMP, gate_set={"RY", "RZ", "CNOT", "Hadamard"}
    )
    assert set(native.gate_counts) <= {"RY", "RZ", "CNOT", "Hadamard"}
    assert native.multi_qubit_gates == 0 and native.two_qubit_gates >= amp.two_qubit_gates
    assert native.max_depth > amp.max_depth


SHOT_CASES = [
    ("integrated_gradients", {"gradient": "hadamard_all"}, "amplitude", False),
    ("integrated_gradients", {"gradient": "hadamard"}, "amplitude", False),
    ("saliency", {"gradient": "hadamard_all"}, "amplitude", False),
    ("saliency", {}, "angle", False),
    ("integrated_gradients", {"n_steps": 3}, "angle", False),
    ("kernel_shap", {"n_samples": 4}, "angle", False),
    ("taylor_fourier", {"root": ROOT}, "angle", False),
    ("smoothgrad", {"nt_samples": 3, "nt_type": "smoothgrad_sq"}, "angle", True),
]


@pytest.mark.parametrize("name, options, kind, first_order", SHOT_CASES)
def test_shots_for_a_target_meet_the_reported_stderr(name, options, kind, first_order):
    """Run with the report's shots: the engine's own standard errors are at most the target
    (for linear post-processing the bound is a guarantee) and not far below it."""
    target = 0.05
    explained, args = _explained(name, options, kind, 1)
    report = explained.cost(*args, target_stderr=target)
    assert report.first_order == first_order
    assert report.total_shots == report.shots_per_circuit * report.n_measurement_groups
    assert report.stderr_bound(report.shots_per_circuit) <= target * (1 + 1e-9)  # round-off
    noisy = qml.set_shots(explained.qnode, report.shots_per_circuit)
    _, stderr = getattr(xqml, name)(noisy, return_stderr=True, **options)(*args)
    worst = float(np.max(stderr))
    if not first_order:
        assert worst <= target * (1 + 1e-9)
    assert worst > target / 6, f"bound too loose: stderr {worst:.4f} for target {target}"


def test_probability_outputs_bound():
    """With shots, probs outputs are measured as qml.probs of their wires: each probability is an
    indicator per shot, so its per-shot range is 1."""
    explained = xqml.feature_ablation(angle_model(1, probs=True))
    report = explained.cost(X_ANGLE, W_ANGLE, target_stderr=0.05)
    # phi_g = f(x) - f(x_g): two circuits, each contributing an indicator (half range 1/2)
    assert report.shot_variance == pytest.approx(2 * (1 / 2) ** 2, rel=1e-12)
    assert report.shots_per_circuit == 200 and report.total_shots == 3 * 200


def test_random_attribution_costs_nothing():
    report = xqml.random_attribution(angle_model()).cost(X_ANGLE, W_ANGLE, target_stderr=0.1)
    assert (report.n_circuits, report.shots_per_circuit, report.total_shots) == (0, 0, 0)


def test_str_is_a_readable_table():
    text = str(
        xqml.saliency(angle_model(), gradient="parameter-shift").cost(
            X_ANGLE, W_ANGLE, target_stderr=0.1
        )
    )
    for label in ("circuits (one batch)", "two-qubit gates", "shots per circuit", "total shots"):
        assert label in text


def test_the_callers_tracker_is_restored():
    explained, args = _explained("taylor_fourier", {"gradient": "parameter-shift"}, "angle", None)
    with qml.Tracker(explained.device) as outer:
        explained.cost(*args)
        explained(*args)
    assert explained.device.tracker is outer and outer.totals["executions"] > 0


def test_bad_input():
    explained, args = _explained("saliency", {}, "angle", None)
    for bad in (0, -0.1, np.inf, "0.1", True):
        with pytest.raises(ValueError, match="target_stderr must be a finite number > 0"):
            explained.cost(*args, target_stderr=bad)
    with pytest.raises(TypeError, match="gate_set must be a collection of gate names"):
        explained.cost(*args, gate_set="CNOT")
    with pytest.raises(TypeError, match="cost_report takes an explanation"):
        cost_report(angle_model(), *args)
    report = explained.cost(*args)
    with pytest.raises(ValueError, match="shots must be a finite number > 0"):
        report.stderr_bound(0)
    with pytest.raises(ValueError, match="target=5 is out of range"):
        xqml.saliency(angle_model(), target=5).cost(*args)


# ---------------------------------------------------------------------------------------------
# Grad-CAM and QPert
# ---------------------------------------------------------------------------------------------

from pennylane_xqml import QPertCost, grad_cam_cost, qpert_cost
from pennylane_xqml.experiments.hybrid import HybridCNNVQC

IMAGES = jnp.linspace(0, 1, 75).reshape(3, 5, 5) ** 2


def small_hybrid(shots=None, seed=7):
    model = HybridCNNVQC(n_classes=3, n_channels=3, n_qubits=3, n_layers=1, n_hidden=2,
                         image_shape=(5, 5), device=qml.device("default.qubit", wires=3, seed=seed))  # fmt: skip
    return model.with_shots(shots)


@pytest.fixture(scope="module")
def hybrid():
    return small_hybrid()


@pytest.mark.slow
@pytest.mark.parametrize(
    "target, layer", [(None, "conv2"), (1, "conv2"), (np.array([0, 2, 1]), "conv1")]
)
def test_grad_cam_circuit_count_equals_executed_tapes(hybrid, target, layer):
    cam = xqml.grad_cam(hybrid, target=target, layer=layer)
    report = cam.cost(hybrid.params, IMAGES)
    assert isinstance(report, CostReport) and report.method == "grad_cam"
    with qml.Tracker(hybrid.device) as tracker:
        cam(hybrid.params, IMAGES)
    assert tracker.totals["batches"] == 1
    # executions: every circuit; simulations: the tapes the executor sent after broadcasting
    assert report.n_circuits == tracker.totals["executions"] == report.n_measurement_groups
    # (predicted from the plan's tapes; the call may share more parameters between them)
    assert tracker.totals["simulations"] <= report.n_executed_tapes < report.n_circuits
    # independent formula: 2 shifts per encoding angle per image (+ 1 forward without a target)
    assert report.n_circuits == 3 * (2 * 3 + (target is None))
    assert (
        report.gate_counts["RY"] == report.n_circuits * 3
        and report.two_qubit_gates == report.n_circuits * 3
    )


def test_grad_cam_shots_for_a_target_meet_the_reported_stderr(hybrid):
    """The weights are linear in the word expectations: with the report's shots, Grad-CAM's own
    standard errors are at most the target (one word per score: the bound is the worst case at
    <P> = 0) and the errors against the exact (backprop) weights stay within a few targets."""
    target = 0.05
    report = xqml.grad_cam(hybrid).cost(hybrid.params, IMAGES, target_stderr=target)
    assert not report.first_order and report.stderr_bound(report.shots_per_circuit) <= target * (
        1 + 1e-9
    )
    exact = (
        xqml.grad_cam(hybrid, gradient="backprop")
        .weights(hybrid.params, IMAGES, all_classes=True)
        .values
    )
    noisy_model = small_hybrid(report.shots_per_circuit, seed=3)
    noisy = xqml.grad_cam(noisy_model).weights(hybrid.params, IMAGES, all_classes=True)
    assert float(np.max(noisy.stderr)) <= target * (1 + 1e-9)
    assert float(np.max(noisy.stderr)) > target / 6, "bound too loose"
    assert float(np.max(np.abs(noisy.values - exact))) < 5 * target
    assert report.total_shots == report.shots_per_circuit * report.n_circuits


def test_grad_cam_backprop_runs_no_circuits(hybrid):
    report = grad_cam_cost(
        xqml.grad_cam(hybrid, gradient="backprop"), hybrid.params, IMAGES, target_stderr=0.1
    )
    assert (report.n_circuits, report.n_simulator_requests, report.total_shots) == (0, 1, None)
    assert "simulator-only" in str(report)


def qpert_model(shots=None, diff_method="parameter-shift", embedding=False):
    dev = qml.device("default.qubit", wires=2, seed=4)

    @qml.set_shots(shots)
    @qml.qnode(dev, diff_method=diff_method)
    def model(x, w):
        if embedding:  # a template: PennyLane expands it before shifting
            qml.AngleEmbedding(np.pi * x, wires=[0, 1], rotation="X")
        qml.RY(np.pi * x[0], wires=0)
        qml.RY(np.pi * x[1] * x[0], wires=1)
        qml.CNOT(wires=[0, 1])
        qml.RX(w, wires=1)
        return qml.probs(wires=0)

    return model


QPERT_BACKGROUND = np.random.default_rng(0).uniform(0, 1, size=(4, 2))
QPERT_CASES = [
    ("circuit", None, False, False),
    ("js", 50, False, False),
    ("circuit", 50, True, False),
    ("circuit", None, False, True),
]


@pytest.mark.parametrize("fidelity, shots, embedding, batched", QPERT_CASES)
def test_qpert_circuit_count_equals_executed_circuits(fidelity, shots, embedding, batched):
    """parameter-shift runs through callbacks at run time: qml.Tracker sees every circuit."""
    model = qpert_model(shots, embedding=embedding)
    explainer = xqml.qpert_mask(
        model, background=QPERT_BACKGROUND, n_iter=2, n_masks=2, fidelity=fidelity
    )
    x = np.array([[0.9, 0.2], [0.3, 0.6]]) if batched else np.array([0.9, 0.2])
    cost = explainer.cost(x, 0.3)
    assert isinstance(cost, QPertCost) and cost.fidelity == fidelity
    run = explainer.explain_batch if batched else explainer.explain
    with qml.Tracker(model.device) as tracker:
        run(x, 0.3)
    # probs of one wire: one measurement group per circuit, so executions count circuits;
    # default.qubit simulates a batch's setup (vmapped over instances) as one broadcast tape
    assert cost.n_circuits == cost.n_measurement_groups == tracker.totals["executions"]
    assert tracker.totals["simulations"] == cost.n_circuits - (cost.n_instances - 1)
    if shots:
        assert cost.total_shots == tracker.totals["shots"]
    assert cost.n_circuits == cost.n_setup_circuits + 2 * cost.circuits_per_iteration
    if not embedding:  # independent formula: 2 input-fed gates, 2 shifts each, per circuit
        per_tape = 1 + 2 * 2
        assert cost.model_circuits_per_iteration == cost.n_instances * 2 * per_tape
        assert cost.fidelity_circuits_per_iteration == (
            cost.n_instances * 2 * per_tape if fidelity == "circuit" else 0
        )


def test_qpert_backprop_counts_forward_circuits_only():
    explainer = xqml.qpert_mask(
        qpert_model(diff_method="backprop"), background=QPERT_BACKGROUND, n_iter=10, n_masks=3
    )
    cost = qpert_cost(explainer, np.array([0.9, 0.2]), 0.3, target_stderr=0.1)
    assert (cost.model_circuits_per_iteration, cost.fidelity_circuits_per_iteration) == (3, 3)
    assert (
        cost.n_circuits == 1 + 10 * 6 and cost.total_shots is None and cost.shots_for_target is None
    )
    assert cost.model_gates.gate_counts == {"RY": 2, "CNOT": 1, "RX": 1}
    assert cost.fidelity_gates.two_qubit_gates == 2 and cost.fidelity_gates.max_depth == 6
    text = str(cost)
    assert "simulator-only" in text and "no shot count bounds the loss" in text
    assert cost.fidelity_gates.n_gates == 2 * cost.model_gates.n_gates  # U(x)† U(x̃)


def test_grad_cam_and_qpert_cost_bad_input(hybrid):
    cam = xqml.grad_cam(hybrid)
    with pytest.raises(ValueError, match="target_stderr must be a finite number > 0"):
        cam.cost(hybrid.params, IMAGES, target_stderr=-1)
    with pytest.raises(TypeError, match="gate_set must be a collection of gate names"):
        cam.cost(hybrid.params, IMAGES, gate_set="CNOT")
    with pytest.raises(ValueError, match="images must have shape"):
        cam.cost(hybrid.params, IMAGES[:, :4])
    with pytest.raises(ValueError, match="target has 2 entries for 3 images"):
        xqml.grad_cam(hybrid, target=np.array([0, 1])).cost(hybrid.params, IMAGES)
    with pytest.raises(TypeError, match="grad_cam_cost takes a GradCAM"):
        grad_cam_cost(hybrid, hybrid.params, IMAGES)
    explainer = xqml.qpert_mask(qpert_model(), background=QPERT_BACKGROUND, n_iter=2)
    with pytest.raises(TypeError, match="qpert_cost takes a QPertExplainer"):
        qpert_cost(qpert_model(), np.array([0.9, 0.2]), 0.3)
    with pytest.raises(ValueError, match="x must have shape"):
        explainer.cost(np.array([0.9, 0.2, 0.1]), 0.3)
    with pytest.raises(ValueError, match="target_stderr must be a finite number > 0"):
        explainer.cost(np.array([0.9, 0.2]), 0.3, target_stderr=0)
    with pytest.raises(ValueError, match="qpert_cost counts the circuits of diff_method"):
        xqml.qpert_mask(qpert_model(diff_method="finite-diff"), background=QPERT_BACKGROUND).cost(
            np.array([0.9, 0.2]), 0.3
        )
    js_function = xqml.qpert_mask(
        lambda x, w: jnp.stack([x[0], 1 - x[0]]), background=QPERT_BACKGROUND, fidelity="js"
    )
    with pytest.raises(TypeError, match="a JAX function runs no circuits"):
        js_function.cost(np.array([0.9, 0.2]), 0.3)
