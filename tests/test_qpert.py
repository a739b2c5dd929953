"""QPert (pennylane_xqml.methods.qpert): loss terms, schedule, fidelity circuits, the optimisation loop
under jit/vmap, devices, shots, the hyper-parameter search and validation."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml
import pytest

from pennylane_xqml.engine.plan import execute_plan
from pennylane_xqml.methods.qpert import (
    DEFAULT_COEFFICIENTS,
    PAPER_GRID,
    QPertExplainer,
    circuit_fidelity,
    compute_uncompute_tape,
    default_schedule,
    entanglement_loss,
    fidelity_loss,
    hyperparameter_search,
    js_divergence,
    l1_loss,
    perturb,
    qpert_mask,
    resolve_schedule,
    schedule_weights,
    shannon_entropy,
    state_fidelity,
    superposition_loss,
    target_loss,
    total_loss,
)
from pennylane_xqml.testing import assert_close

BACKGROUND = np.random.default_rng(7).uniform(0, 1, size=(10, 2))
X = np.array([[0.9, 0.8], [0.2, 0.7], [0.6, 0.1]])
W = np.array([0.4, -0.3])


def body(x, w):
    qml.RY(np.pi * x[0], wires=0)
    qml.RZ(np.pi * x[0], wires=0)
    qml.RY(np.pi * x[1], wires=1)
    qml.CNOT(wires=[0, 1])
    qml.RX(w[0], wires=0)
    qml.RY(w[1], wires=1)


def circuit(x, w):
    body(x, w)
    return qml.probs(wires=0)


def expval_circuit(x, w):
    qml.RY(np.pi * x[0], wires=0)
    qml.RY(np.pi * x[1], wires=1)
    qml.CNOT(wires=[0, 1])
    qml.RX(w[0], wires=0)
    qml.RY(w[1], wires=1)
    return qml.expval(qml.Z(0))


def z_to_probs(z):
    return jnp.stack([(1 + z) / 2, (1 - z) / 2])


@pytest.fixture(scope="module")
def model():
    return qml.QNode(circuit, qml.device("default.qubit", wires=2))


@pytest.fixture(scope="module")
def explainer(model):
    """One explainer shared by several tests (it caches its compiled optimisation)."""
    return qpert_mask(model, background=BACKGROUND, n_iter=12, n_masks=3, learning_rate=0.1)


def numpy_entropy(p):
    p = np.asarray(p)
    return -sum(v * np.log(v) for v in p if v > 0)


# ---------------------------------------------------------------------------------------------
# loss terms against hand computations
# ---------------------------------------------------------------------------------------------


def test_perturb_modes():
    m, x, b = jnp.array([0.2, 1.0]), jnp.array([1.0, 2.0]), jnp.array([3.0, 5.0])
    assert_close(perturb(m, x, b), [0.2 * 1 + 0.8 * 3, 2.0], rtol64=1e-5, atol64=1e-8)
    assert_close(perturb(m, x, b, "delete"), [0.8 * 1 + 0.2 * 3, 5.0], rtol64=1e-5, atol64=1e-8)


def test_target_loss():
    p = jnp.array([0.1, 0.6, 0.3])
    assert_close(target_loss(p, 1), -np.log(0.6), rtol64=0, atol64=1e-14)
    assert_close(target_loss(p, 1, "delete"), -np.log(0.4), rtol64=0, atol64=1e-14)
    batch = jnp.array([[0.5, 0.5], [0.25, 0.75]])
    assert_close(target_loss(batch, 1), [np.log(2), -np.log(0.75)], rtol64=1e-5, atol64=1e-8)
    assert np.isfinite(target_loss(jnp.array([0.0, 1.0]), 0))  # floored, not inf


def test_l1_and_entropy():
    assert_close(l1_loss(jnp.array([[0.1, 0.5], [0.3, 0.3]])), 0.3, rtol64=0, atol64=1e-14)
    p = jnp.array([0.2, 0.3, 0.5, 0.0])
    assert_close(shannon_entropy(p), numpy_entropy(p), rtol64=0, atol64=1e-14)
    grad = jax.grad(lambda q: shannon_entropy(q))(p)
    assert np.all(np.isfinite(grad))


def test_fidelity_loss():
    psi = jnp.array([1.0, 1j]) / np.sqrt(2)
    phi = jnp.array([np.cos(0.3), np.sin(0.3)])
    overlap = (np.cos(0.3) - 1j * np.sin(0.3)) / np.sqrt(2)  # <psi|phi>
    assert_close(fidelity_loss(psi, phi), 1 - abs(overlap) ** 2, rtol64=0, atol64=1e-14)
    assert_close(fidelity_loss(psi, psi), 0.0, rtol64=0, atol64=1e-14)


def test_js_divergence():
    P, Q = np.array([0.1, 0.4, 0.5]), np.array([0.3, 0.3, 0.4])
    M = (P + Q) / 2

    def kl(a, b):
        return np.sum(a * np.log(a / b))

    expected = 0.5 * kl(P, M) + 0.5 * kl(Q, M)
    assert_close(js_divergence(P, Q), expected, rtol64=0, atol64=1e-14)
    assert_close(js_divergence(P, P), 0.0, rtol64=0, atol64=1e-14)
    disjoint = js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert_close(disjoint, np.log(2), rtol64=1e-6, atol64=1e-12)


def test_entanglement_loss_hand_value():
    masks = np.array([[0.1, 0.9, 0.3], [0.4, 0.2, 0.3], [0.8, 0.6, 0.9], [0.2, 0.1, 0.5]])
    R = np.corrcoef(masks, rowvar=False)
    expected = np.mean(np.abs(R[~np.eye(3, dtype=bool)]))
    assert_close(entanglement_loss(jnp.array(masks)), expected, rtol64=0, atol64=1e-12)


def test_entanglement_loss_k1_and_constant_masks():
    assert float(entanglement_loss(jnp.array([[0.3, 0.7, 0.1]]))) == 0.0
    assert float(entanglement_loss(jnp.array([[0.3], [0.5]]))) == 0.0  # d = 1
    constant = jnp.array([[0.1, 0.5, 0.2], [0.3, 0.5, 0.6], [0.5, 0.5, 0.1]])
    value = entanglement_loss(constant)
    R02 = np.corrcoef(np.asarray(constant)[:, [0, 2]], rowvar=False)[0, 1]
    assert_close(value, 2 * abs(R02) / 6, rtol64=0, atol64=1e-12)  # the constant column counts 0
    grad = jax.jit(jax.grad(entanglement_loss))
    assert np.all(np.isfinite(grad(constant)))
    same = jnp.tile(jnp.array([[0.2, 0.4, 0.1]]), (3, 1))  # identical masks: no NaN
    assert float(entanglement_loss(same)) == 0.0
    assert np.all(np.isfinite(grad(same)))


def test_superposition_loss():
    p = np.array([0.7, 0.2, 0.1])
    participation = (np.sum(p**2) - 1 / 3) / (1 - 1 / 3)
    entropy_term = 1 - numpy_entropy(p) / np.log(3)
    assert_close(
        superposition_loss(p, alpha=0.5), participation + 0.5 * entropy_term, rtol64=0, atol64=1e-14
    )
    assert_close(superposition_loss(np.ones(4) / 4), 0.0, rtol64=0, atol64=1e-14)
    one_hot = superposition_loss(np.array([0.0, 1.0, 0.0]), alpha=1.0)
    assert_close(one_hot, 2.0, rtol64=1e-6, atol64=1e-12)


# ---------------------------------------------------------------------------------------------
# the schedule
# ---------------------------------------------------------------------------------------------


def test_default_schedule_and_weights():
    assert default_schedule(1000) == {
        "target": 0, "l1": 250, "fidelity": 500, "entanglement": 750, "superposition": 750,
    }  # fmt: skip
    assert default_schedule(100) == {
        "target": 0, "l1": 25, "fidelity": 50, "entanglement": 75, "superposition": 75,
    }  # fmt: skip
    on = {
        0: {"target"},
        249: {"target"},
        250: {"target", "l1"},
        499: {"target", "l1"},
        500: {"target", "l1", "fidelity"},
        749: {"target", "l1", "fidelity"},
        750: set(DEFAULT_COEFFICIENTS),
        999: set(DEFAULT_COEFFICIENTS),
    }
    for step, active in on.items():
        weights = schedule_weights(step, default_schedule(1000), DEFAULT_COEFFICIENTS)
        for name, weight in weights.items():
            expected = DEFAULT_COEFFICIENTS[name] if name in active else 0.0
            assert float(weight) == pytest.approx(expected), (step, name)
    traced = jax.jit(lambda s: total_loss(dict.fromkeys(DEFAULT_COEFFICIENTS, 1.0),
                                          schedule_weights(s)))  # fmt: skip
    assert_close(traced(600), 1.0 + 0.05 + 0.3, rtol64=1e-6, atol64=1e-12)


def test_schedule_switches_terms_on_in_the_loop(explainer):
    assert explainer.schedule == {
        "target": 0, "l1": 3, "fidelity": 6, "entanglement": 9, "superposition": 9,
    }  # fmt: skip
    history = {k: np.asarray(v) for k, v in explainer.explain(X[0], W).history.items()}
    for step in range(12):
        weights = schedule_weights(step, explainer.schedule, explainer.coefficients)
        expected = sum(float(weights[k]) * history[k][step] for k in weights)
        assert_close(history["total"][step], expected, rtol64=0, atol64=1e-12)
    assert_close(history["total"][2], history["target"][2], rtol64=0, atol64=1e-12)
    l1_on = history["target"][3] + 0.05 * history["l1"][3]
    assert_close(history["total"][3], l1_on, rtol64=1e-6, atol64=1e-12)
    assert history["total"][6] > history["target"][6] + 0.05 * history["l1"][6]  # fidelity on


def test_custom_schedule_scaling_and_off_terms():
    assert resolve_schedule({"superposition": 10**6}, n_iter=40)["superposition"] == 10**6
    assert resolve_schedule(None, n_iter=40)["fidelity"] == 20


# ---------------------------------------------------------------------------------------------
# fidelity circuits
# ---------------------------------------------------------------------------------------------


def test_compute_uncompute_equals_state_overlap(model):
    rng = np.random.default_rng(1)

    def state_circuit(x, w):
        body(x, w)
        return qml.state()

    state = qml.QNode(state_circuit, model.device)
    for _ in range(3):
        x, x_tilde = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2)
        measured = circuit_fidelity(model, jnp.array(x), jnp.array(x_tilde), W)
        reference = state_fidelity(model, jnp.array(x), jnp.array(x_tilde), W)
        direct = abs(np.vdot(state(x, W), state(x_tilde, W))) ** 2
        assert_close(measured, direct, rtol64=0, atol64=1e-10)
        assert_close(reference, direct, rtol64=0, atol64=1e-10)
    jitted = jax.jit(lambda a, b: circuit_fidelity(model, a, b, W))
    assert_close(jitted(jnp.array(x), jnp.array(x_tilde)), direct, rtol64=0, atol64=1e-10)


def test_compute_uncompute_tape_structure(model):
    tape_x = qml.workflow.construct_tape(model)(np.array([0.1, 0.2]), W)
    tape = compute_uncompute_tape(tape_x, tape_x)
    n = len(tape_x.operations)
    assert len(tape.operations) == 2 * n
    assert tape.operations[n].name == f"Adjoint({tape_x.operations[-1].name})"
    assert tape.measurements[0].wires.tolist() == [0, 1]
    projector = compute_uncompute_tape(tape_x, tape_x, measurement="projector")
    assert isinstance(projector.measurements[0].obs, qml.Projector)


def test_fidelity_term_in_history_matches_state_vectors(model, explainer):
    result = explainer.explain(X[1], W)
    theta0, backgrounds = explainer.initial_state()
    masks = jax.nn.sigmoid(theta0)
    expected = np.mean(
        [1 - state_fidelity(model, jnp.array(X[1]), perturb(m, X[1], b), W)
         for m, b in zip(masks, backgrounds)]
    )  # fmt: skip
    assert explainer.fidelity_method == "circuit"
    assert_close(result.history["fidelity"][0], expected, rtol64=0, atol64=1e-10)


def test_js_fallback_matches_hand_computation(model):
    explainer = qpert_mask(model, background=BACKGROUND, n_iter=3, n_masks=3, fidelity="js")
    history = explainer.explain(X[0], W).history
    theta0, backgrounds = explainer.initial_state()
    masks = 1 / (1 + np.exp(-np.asarray(theta0)))
    P = np.asarray(model(X[0], W))
    values, targets = [], []
    for m, b in zip(masks, np.asarray(backgrounds)):
        Q = np.asarray(model(m * X[0] + (1 - m) * b, W))
        M = (P + Q) / 2
        values.append(numpy_entropy(M) - numpy_entropy(P) / 2 - numpy_entropy(Q) / 2)
        targets.append(-np.log(Q[np.argmax(P)]))
    assert explainer.fidelity_method == "js"
    assert_close(history["fidelity"][0], np.mean(values), rtol64=0, atol64=1e-12)
    assert_close(history["target"][0], np.mean(targets), rtol64=0, atol64=1e-12)


def test_fidelity_auto_resolution(explainer):
    auto = explainer.replace(fidelity="auto")
    assert auto._fidelity_kind(jnp.asarray(X[0]), (W,))[0] == "circuit"  # analytic QNode
    assert explainer.replace(fidelity=None)._fidelity_kind(X[0], (W,))[0] is None


# ---------------------------------------------------------------------------------------------
# the optimisation: jit, vmap, devices, shots
# ---------------------------------------------------------------------------------------------


def test_n_masks_1_zero_entanglement_fidelity_none_and_custom_optimizer(model):
    later = {"l1": 1, "fidelity": 1, "entanglement": 1, "superposition": 1}  # target only
    explainer = qpert_mask(model, background=BACKGROUND, n_iter=1, n_masks=1, fidelity=None,
                           optimizer=optax.sgd(0.5), schedule=later)  # fmt: skip
    result = explainer.explain(X[0], W)
    assert result.masks.shape == (1, 2)
    assert float(result.history["entanglement"][0]) == 0.0
    assert float(result.history["fidelity"][0]) == 0.0
    theta0, backgrounds = explainer.initial_state()
    target = int(np.argmax(model(X[0], W)))

    theta0, b = np.asarray(theta0[0]), np.asarray(backgrounds[0])

    def loss(theta):  # iteration 0: the target term only, -log p_c(x̃)
        m = 1 / (1 + np.exp(-theta))
        return -np.log(np.asarray(model(m * X[0] + (1 - m) * b, W))[target])

    h = 1e-5
    grad = [(loss(theta0 + h * e) - loss(theta0 - h * e)) / (2 * h) for e in np.eye(2)]
    theta1 = theta0 - 0.5 * np.array(grad)  # one SGD step of rate 0.5
    assert_close(result.masks[0], 1 / (1 + np.exp(-theta1)), rtol64=1e-5, atol64=1e-9)


def test_result_shapes_and_saliency(explainer):
    result = explainer.explain(X[0], W)
    assert result.saliency.shape == (2,) and result.masks.shape == (3, 2)
    assert_close(result.saliency.sum(), 1.0, rtol64=0, atol64=1e-12)
    normalised = result.masks.mean(0) / result.masks.mean(0).sum()
    assert_close(result.saliency, normalised, rtol64=1e-5, atol64=1e-8)
    assert set(result.history) == {*DEFAULT_COEFFICIENTS, "total"}
    assert all(v.shape == (12,) for v in result.history.values())
    assert_close(explainer(X[0], W), result.saliency, rtol64=1e-5, atol64=1e-14)


@pytest.mark.slow
def test_explain_batch_equals_instances_and_runs_under_jit(explainer):
    batch = explainer.explain_batch(X, W)
    assert batch.saliency.shape == (3, 2) and batch.masks.shape == (3, 3, 2)
    assert batch.history["total"].shape == (3, 12)
    for i, x in enumerate(X):
        single = explainer.explain(x, W)
        assert_close(batch.saliency[i], single.saliency, rtol64=1e-5, atol64=1e-10)
        assert_close(batch.masks[i], single.masks, rtol64=1e-5, atol64=1e-10)
        for name, series in single.history.items():
            assert_close(batch.history[name][i], series, rtol64=1e-5, atol64=1e-10)
    jitted = jax.jit(explainer)(jnp.asarray(X[0]), jnp.asarray(W))
    assert_close(jitted, batch.saliency[0], rtol64=1e-5, atol64=1e-10)


@pytest.mark.slow
def test_lightning_adjoint_matches_default_qubit():
    kwargs = {"background": BACKGROUND, "n_iter": 6, "n_masks": 2, "head": z_to_probs,
              "schedule": {"fidelity": 0, "l1": 0}}  # fmt: skip
    lightning = qml.QNode(expval_circuit, qml.device("lightning.qubit", wires=2),
                          diff_method="adjoint")  # fmt: skip
    reference = qml.QNode(expval_circuit, qml.device("default.qubit", wires=2))
    explainer = qpert_mask(lightning, **kwargs)
    got = explainer.explain(X[0], W)
    assert explainer.fidelity_method == "circuit"  # adjoint: measured as a projector
    expected = qpert_mask(reference, **kwargs).explain(X[0], W)
    assert_close(got.masks, expected.masks, rtol64=1e-5, atol64=1e-8)
    for name in expected.history:
        assert_close(got.history[name], expected.history[name], rtol64=1e-5, atol64=1e-8)


def test_shots_parameter_shift_runs_and_loss_decreases():
    dev = qml.device("default.qubit", wires=2, seed=11)
    noisy = qml.QNode(circuit, dev, diff_method="parameter-shift", shots=4000)
    background = np.array([[0.1, 0.1], [0.15, 0.05]])
    explainer = qpert_mask(noisy, background=background, n_iter=15, n_masks=2,
                           learning_rate=0.4, fidelity="auto")  # fmt: skip
    result = explainer.explain(np.array([0.9, 0.2]), W)
    assert explainer.fidelity_method == "js"  # auto: shots -> Jensen-Shannon
    target = np.asarray(result.history["target"])
    assert np.all(np.isfinite(target))
    assert target[-3:].mean() < target[:3].mean() - 0.05
    circuit_explainer = qpert_mask(noisy, background=background, n_iter=2, n_masks=2)
    assert np.all(np.isfinite(circuit_explainer.explain(np.array([0.9, 0.2]), W).saliency))


def test_saliency_ranks_the_only_relevant_feature_first():
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def model(x, w):
        qml.RY(np.pi * x[1], wires=0)
        qml.RY(np.pi * x[0], wires=1)
        qml.RY(np.pi * x[2], wires=2)
        qml.CNOT(wires=[1, 2])
        qml.RX(w[0], wires=0)
        return qml.probs(wires=0)  # depends on x[1] only

    background = np.random.default_rng(3).uniform(0, 0.3, size=(8, 3))
    x = np.array([0.8, 0.9, 0.7])
    preserve = qpert_mask(model, background=background, n_iter=60, learning_rate=0.2)
    delete = qpert_mask(model, background=background, n_iter=60, learning_rate=0.2,
                        mode="delete", fidelity=None, n_masks=2)  # fmt: skip
    for explainer in (preserve, delete):
        saliency = np.asarray(explainer(x, W))
        assert int(np.argmax(saliency)) == 1, (explainer.mode, saliency)


def test_argnums(model, explainer):
    @qml.qnode(model.device)
    def weights_first(w, x):
        return circuit(x, w)

    swapped = explainer.replace(argnums=1)
    swapped.model = weights_first  # the same options on the swapped signature
    x, x_tilde = jnp.asarray(X[0]), jnp.asarray(X[1])
    assert_close(
        swapped.probabilities(x, W), explainer.probabilities(x, W), rtol64=1e-5, atol64=1e-14
    )
    assert_close(
        circuit_fidelity(weights_first, x, x_tilde, W, argnums=1),
        circuit_fidelity(model, x, x_tilde, W),
        rtol64=0,
        atol64=1e-12,
    )
    assert swapped._fidelity_kind(x, (W,))[0] == "circuit"


def test_iris_model_validation():
    from pennylane_xqml.experiments.iris import IrisQCL, class_probabilities, load_iris_split

    split = load_iris_split()
    iris = IrisQCL(n_layers=1)
    explainer = qpert_mask(iris.qnode, background=split.X_train, head=class_probabilities,
                           target=3)  # fmt: skip
    with pytest.raises(ValueError, match="out of range for 3 classes"):
        explainer(split.X_test[0], iris.weights)
    with pytest.raises(ValueError, match="background rows have shape"):
        qpert_mask(iris.qnode, background=split.X_train[:, :3])(split.X_test[0], iris.weights)


# ---------------------------------------------------------------------------------------------
# hyper-parameter search
# ---------------------------------------------------------------------------------------------


def test_hyperparameter_search(explainer):
    grid = {"l1": [0.05, 0.3], "fidelity": [0.25, 1.0], "target": [1.0, 2.5]}
    search = {"grid": grid, "n_trials": 5, "seed": 3, "progress": False}
    best, table = hyperparameter_search(explainer, X, W, **search)
    assert len(table) == 5
    configs = {tuple(row[k] for k in grid) for row in table}
    assert len(configs) == 5 and configs <= set(itertools.product(*grid.values()))
    lowest = min(table, key=lambda row: row["total_loss"])
    assert best == {k: lowest[k] for k in DEFAULT_COEFFICIENTS}
    assert all(row["superposition"] == explainer.coefficients["superposition"] for row in table)
    again, table2 = hyperparameter_search(explainer, X, W, **search)
    assert again == best and [r["total_loss"] for r in table2] == [r["total_loss"] for r in table]
    # a trial is the explanation with those coefficients
    row = table[0]
    coefficients = {k: row[k] for k in DEFAULT_COEFFICIENTS}
    history = explainer._run(X, (W,), batched=True, coefficients=coefficients).history
    assert_close(row["total_loss"], np.mean(history["total"][:, -1]), rtol64=0, atol64=1e-12)
    assert_close(row["final_l1"], np.mean(history["l1"][:, -1]), rtol64=0, atol64=1e-12)


def test_hyperparameter_search_with_a_qnode_and_the_paper_grid(model):
    assert np.prod([len(v) for v in PAPER_GRID.values()]) == 243
    best, table = hyperparameter_search(model, X[:1], W, background=BACKGROUND, n_trials=3,
                                        n_iter=3, progress=False, fidelity=None)  # fmt: skip
    assert len(table) == 3 and set(best) == set(DEFAULT_COEFFICIENTS)
    for row in table:
        assert all(row[k] in PAPER_GRID[k] for k in PAPER_GRID)


# ---------------------------------------------------------------------------------------------
# validation: clear errors before anything runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"background": np.zeros((0, 2))}, ValueError, "empty"),
        ({"background": np.zeros(2)}, ValueError, "rows"),
        ({"background": np.array([[0.0, np.nan]])}, ValueError, "NaN"),
        ({"background": None}, ValueError, "background"),
        ({"mode": "remove"}, ValueError, "mode"),
        ({"schedule": {"sparsity": 10}}, ValueError, "Unknown schedule"),
        ({"schedule": {"l1": -1}}, ValueError, ">= 0"),
        ({"schedule": {"l1": 2.5}}, TypeError, "int"),
        ({"schedule": {"l1": 600, "fidelity": 500}}, ValueError, "phase order"),
        ({"schedule": {"superposition": 100}}, ValueError, "phase order"),
        ({"coefficients": {"l1": -0.1}}, ValueError, ">= 0"),
        ({"coefficients": {"l2": 0.1}}, ValueError, "Unknown coefficient"),
        ({"coefficients": {"l1": float("inf")}}, ValueError, "finite"),
        ({"coefficients": {"l1": "big"}}, TypeError, "real number"),
        ({"coefficients": [0.1]}, TypeError, "dict"),
        ({"n_masks": 0}, ValueError, "n_masks"),
        ({"n_iter": 0}, ValueError, "n_iter"),
        ({"n_iter": 10.0}, ValueError, "n_iter"),  # a non-integer count: ValueError
        ({"target": 1.5}, TypeError, "target"),
        ({"fidelity": "trace"}, ValueError, "fidelity"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"optimizer": "adam"}, TypeError, "optax"),
        ({"head": 3}, TypeError, "head"),
        ({"argnums": -1}, TypeError, "argnums"),
        ({"seed": 1.0}, TypeError, "seed"),
    ],
)
def test_validation_at_construction(model, options, error, match):
    kwargs = {"background": BACKGROUND, **options}
    with pytest.raises(error, match=match):
        qpert_mask(model, **kwargs)
    with pytest.raises(error, match=match):
        qpert_mask(**kwargs)  # the decorator form validates at once too


def test_validation_at_call_time(model):
    explainer = qpert_mask(model, background=BACKGROUND, n_iter=2)
    with pytest.raises(ValueError, match="background rows have shape"):
        explainer(np.array([0.1, 0.2, 0.3]), W)
    with pytest.raises(ValueError, match="background rows have shape"):
        explainer.explain_batch(np.zeros((0, 2)), W)
    with pytest.raises(ValueError, match="NaN"):
        explainer(np.array([0.1, np.nan]), W)
    with pytest.raises(ValueError, match="argnums"):
        qpert_mask(model, background=BACKGROUND, argnums=3)(X[0], W)
    with pytest.raises(ValueError, match="out of range"):
        qpert_mask(model, background=BACKGROUND, target=2)(X[0], W)
    with pytest.raises(TypeError, match="QNode"):
        qpert_mask(lambda x, w: jnp.ones(2) / 2, background=BACKGROUND)

    def channel_circuit(x, w):
        body(x, w)
        qml.DepolarizingChannel(0.1, wires=0)
        return qml.probs(wires=0)

    noisy_channel = qml.QNode(channel_circuit, qml.device("default.mixed", wires=2))
    with pytest.raises(ValueError, match='fidelity="js"'):
        qpert_mask(noisy_channel, background=BACKGROUND, n_iter=2)(X[0], W)
    assert explainer._compiled is None  # nothing was compiled or run


def test_jax_function_model_with_js():
    def softmax_model(x, w):
        return jax.nn.softmax(jnp.array([w[0] * x[0], -w[0] * x[0]]))

    explainer = qpert_mask(softmax_model, background=BACKGROUND, n_iter=30, fidelity="auto",
                           learning_rate=0.2)  # fmt: skip
    assert isinstance(explainer, QPertExplainer)
    saliency = explainer(np.array([0.9, 0.9]), np.array([3.0]))
    assert explainer.fidelity_method == "js" and int(np.argmax(saliency)) == 0


def test_hyperparameter_search_validation(model, explainer):
    with pytest.raises(ValueError, match="Unknown grid"):
        hyperparameter_search(explainer, X, W, grid={"gamma": [1.0]}, progress=False)
    with pytest.raises(ValueError, match="empty"):
        hyperparameter_search(explainer, X, W, grid={"l1": []}, progress=False)
    with pytest.raises(ValueError, match=">= 0"):
        hyperparameter_search(explainer, X, W, grid={"l1": [-1.0]}, progress=False)
    with pytest.raises(ValueError, match="n_trials"):
        hyperparameter_search(explainer, X, W, n_trials=0, progress=False)
    with pytest.raises(ValueError, match="background"):
        hyperparameter_search(model, X, W, progress=False)


# ---------------------------------------------------------------------------------------------
# the plan of one loss evaluation
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fidelity", ["circuit", "js", None])
def test_loss_plan_gives_the_terms_the_optimisation_records(model, fidelity):
    explainer = qpert_mask(model, background=BACKGROUND, n_iter=4, n_masks=3, fidelity=fidelity)
    history = explainer.explain(X[1], W).history
    plan = explainer.loss_plan(X[1], W, step=0)
    n_fidelity = 3 if fidelity == "circuit" else 0
    assert len(plan.tapes) == 1 + 3 + n_fidelity and plan.simulator_requests == ()
    with qml.Tracker(model.device) as tracker:
        terms = execute_plan(plan)
    # every circuit runs (executions); same-structure ones may share a broadcast simulation
    assert tracker.totals["executions"] == len(plan.tapes)
    assert tracker.totals["simulations"] <= len(plan.tapes)
    for name in ("target", "l1", "fidelity", "entanglement", "superposition", "total"):
        assert_close(terms[name], history[name][0], rtol64=0, atol64=1e-12)


def test_loss_plan_at_other_masks_and_the_cost_report_agree(model):
    explainer = qpert_mask(model, background=BACKGROUND, n_iter=5, n_masks=2)
    theta = jnp.array([[3.0, -3.0], [0.5, 0.2]])
    terms = execute_plan(explainer.loss_plan(X[0], W, theta=theta))
    masks = jax.nn.sigmoid(theta)
    _, backgrounds = explainer.initial_state()
    p_x = model(X[0], W)
    q = [model(perturb(m, X[0], b), W) for m, b in zip(masks, backgrounds)]
    expected_target = np.mean([-np.log(q_k[np.argmax(p_x)]) for q_k in q])
    assert_close(terms["target"], expected_target, rtol64=0, atol64=1e-12)
    assert "total" not in terms
    # backprop: no gradient circuits, so an iteration runs the plan's tapes but the one at x
    cost = explainer.cost(X[0], W)
    plan = explainer.loss_plan(X[0], W)
    assert cost.circuits_per_iteration == len(plan.tapes) - 1
    with pytest.raises(ValueError, match="theta must have shape"):
        explainer.loss_plan(X[0], W, theta=jnp.zeros(2))
    with pytest.raises(ValueError, match="step must be None or an int"):
        explainer.loss_plan(X[0], W, step=-1)
