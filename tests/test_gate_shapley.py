"""Gate Shapley values against an independent brute force: the Shapley formula over subsets,
every coalition circuit written out as its own QNode and run separately."""

import inspect
import itertools
import math
import os

import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close, no_circuit_runs

# The players of the test circuit, in circuit order (weights w); the input x enters through
# RY(x[0]) on wire 0, 2 x[1] on wire 1, and a re-uploaded RZ(x[0]) in the middle.
PLAYERS = [
    lambda w: qml.RY(w[0], wires=1),
    lambda w: qml.CNOT(wires=[0, 1]),
    lambda w: qml.RX(w[1], wires=2),
    lambda w: qml.CZ(wires=[1, 2]),
    lambda w: qml.RY(w[2], wires=0),
    lambda w: qml.CNOT(wires=[2, 0]),
]
NAMES = ["RY", "CNOT", "RX", "CZ", "RY", "CNOT"]


def body(x, w, keep):
    qml.RY(x[0], wires=0)
    qml.RX(2 * x[1], wires=1)
    for i in (0, 1, 2):
        if i in keep:
            PLAYERS[i](w)
    qml.RZ(x[0], wires=2)  # takes the input: never a player, whatever its position
    for i in (3, 4, 5):
        if i in keep:
            PLAYERS[i](w)


def make_model(measure="expval"):
    @qml.qnode(qml.device("default.qubit", wires=3))
    def model(x, w):
        body(x, w, range(len(PLAYERS)))
        if measure == "probs":
            return qml.probs(wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.Z(1) + 0.5 * qml.X(2))

    return model


def brute_force_values(measure, x, w, groups, value=np.asarray, rows=False):
    """``phi_g = sum_S |S|! (M-|S|-1)!/M! [v(S+g) - v(S)]``, each ``v(S)`` its own circuit(s)."""
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def subset_circuit(x, w, keep):
        body(x, w, keep)
        if measure == "probs":
            return qml.probs(wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.Z(1) + 0.5 * qml.X(2))

    cache = {}

    def v(subset):
        if subset not in cache:
            keep = {p for g in subset for p in groups[g]}
            if rows:
                out = np.stack([np.asarray(subset_circuit(r, w, keep)) for r in x])
            else:
                out = np.asarray(subset_circuit(x, w, keep))
            cache[subset] = np.asarray(value(out))
        return cache[subset]

    m = len(groups)
    phi = []
    for g in range(m):
        others = [h for h in range(m) if h != g]
        total = 0.0
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for s in itertools.combinations(others, size):
                total = total + weight * (v(tuple(sorted(s + (g,)))) - v(s))
        phi.append(total)
    return np.array(phi), v(tuple(range(m))), v(())


@pytest.fixture
def args(rng):
    return jnp.asarray(rng.uniform(-1, 1, size=2)), jnp.asarray(rng.uniform(-3, 3, size=3))


SINGLE = [(i,) for i in range(len(PLAYERS))]


def many_gates(n, cnots=False):
    """An input rotation, then ``n`` RX gates alternating over two wires (and a CNOT after
    every fifth with ``cnots``): ``n`` or ``n + ceil(n / 5)`` players."""

    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x, w):
        qml.RY(x, wires=0)
        for k in range(n):
            qml.RX(w[k], wires=k % 2)
            if cnots and k % 5 == 0:
                qml.CNOT(wires=[k % 2, 1 - k % 2])
        return qml.expval(qml.Z(0))

    return model


@pytest.mark.parametrize("measure", ["expval", "probs"])
def test_exact_values_equal_brute_force(measure, args):
    result = xqml.gate_shapley(make_model(measure))(*args)
    expected, v_all, v_none = brute_force_values(measure, *args, SINGLE)
    assert result.method == "exact"
    assert [op.name for op in result.players] == NAMES
    assert result.values.shape == expected.shape
    assert_close(result.values, expected, rtol64=0, atol64=1e-10)
    assert_close(result.v_all, v_all, rtol64=0, atol64=1e-10)
    assert_close(result.v_none, v_none, rtol64=0, atol64=1e-10)
    assert np.all(np.asarray(result.stderr) == 0)
    assert_close(np.sum(result.values, axis=0), result.v_all - result.v_none)


@pytest.mark.parametrize("antithetic", [True, False])
def test_sampled_values_within_four_standard_errors_of_exact(antithetic, args):
    model = make_model()
    exact = xqml.gate_shapley(model)(*args).values
    for seed in (0, 1, 2):
        sampled = xqml.gate_shapley(
            model, method="sampling", n_permutations=40, antithetic=antithetic, seed=seed
        )(*args)
        assert sampled.method == "sampling" and sampled.n_permutations == 40
        stderr = np.asarray(sampled.stderr)
        assert np.all(stderr > 0)  # the game is not additive: orderings disagree
        assert np.all(np.abs(np.asarray(sampled.values) - np.asarray(exact)) <= 4 * stderr + 1e-6)
        # efficiency holds for every ordering, so for any number of them
        assert_close(np.sum(sampled.values), sampled.v_all - sampled.v_none)


def test_sampling_is_seeded(args):
    model = make_model()
    a, b, c = (
        xqml.gate_shapley(model, method="sampling", n_permutations=6, seed=s)(*args)
        for s in (3, 3, 4)
    )
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)


def test_beyond_twelve_players_auto_samples_with_efficiency():
    model = many_gates(14, cnots=True)
    explainer = xqml.gate_shapley(model, n_permutations=4)
    w = np.linspace(0.1, 1.4, 14)
    result = explainer(0.3, w)
    n_players = len(explainer.players(0.3, w))
    assert n_players == 17 and result.method == "sampling"
    assert len(explainer.plan(0.3, w).tapes) <= 4 * (n_players - 1) + 2
    assert_close(np.sum(result.values), result.v_all - result.v_none)


def test_groups_as_lists_and_as_a_function(args):
    model = make_model()
    groups = [[0, 2], [1, 3, 5], [4]]
    result = xqml.gate_shapley(model, groups=groups)(*args)
    expected, _, _ = brute_force_values("expval", *args, [tuple(g) for g in groups])
    assert result.groups == ((0, 2), (1, 3, 5), (4,))
    assert_close(result.values, expected, rtol64=0, atol64=1e-10)

    labelled = xqml.gate_shapley(model, groups={"a": [0, 2], "b": [1, 3, 5], "c": [4]})(*args)
    assert labelled.labels == ("a", "b", "c")
    assert_close(labelled.values, result.values, rtol64=0, atol64=0)

    by_name = xqml.gate_shapley(model, groups=lambda op: op.name)(*args)
    assert by_name.labels == ("RY", "CNOT", "RX", "CZ")
    assert by_name.groups == ((0, 4), (1, 5), (2,), (3,))
    expected, _, _ = brute_force_values("expval", *args, list(by_name.groups))
    assert_close(by_name.values, expected, rtol64=0, atol64=1e-10)


def test_decompose_makes_the_gates_of_a_template_players():
    weights = np.array([[[0.3, -1.1, 0.7], [1.9, 0.4, -0.6]]])  # one layer, two wires
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def model(x, w):
        qml.AngleEmbedding(x, wires=[0, 1])
        qml.StronglyEntanglingLayers(w, wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.Z(1))

    # the same layer written out: Rot on each wire, then CNOT(0, 1) and CNOT(1, 0)
    gates = [
        lambda: qml.Rot(*weights[0, 0], wires=0),
        lambda: qml.Rot(*weights[0, 1], wires=1),
        lambda: qml.CNOT(wires=[0, 1]),
        lambda: qml.CNOT(wires=[1, 0]),
    ]

    @qml.qnode(dev)
    def written_out(x, keep):
        qml.AngleEmbedding(x, wires=[0, 1])
        for i in keep:
            gates[i]()
        return qml.expval(qml.Z(0) @ qml.Z(1))

    x = np.array([0.8, -0.5])
    v = {s: float(written_out(x, s)) for n in range(5) for s in itertools.combinations(range(4), n)}
    expected = [
        sum(
            math.factorial(len(s)) * math.factorial(3 - len(s)) / 24
            * (v[tuple(sorted(s + (i,)))] - v[s])
            for n in range(4)
            for s in itertools.combinations([j for j in range(4) if j != i], n)
        )
        for i in range(4)
    ]  # fmt: skip

    whole = xqml.gate_shapley(model)(x, weights)
    assert [op.name for op in whole.players] == ["StronglyEntanglingLayers"]
    assert_close(whole.values, [v[(0, 1, 2, 3)] - v[()]], rtol64=0, atol64=1e-10)

    gates_result = xqml.gate_shapley(model, decompose=True)(x, weights)
    assert [op.name for op in gates_result.players] == ["Rot", "Rot", "CNOT", "CNOT"]
    assert_close(gates_result.values, expected, rtol64=0, atol64=1e-10)


def test_dataset_mean_is_the_mean_of_the_explanations(rng):
    """Shapley values are linear in the value, so the data-set mean's values are the mean of
    the rows' values; broadcast tapes and one tape per row agree."""

    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x, w):
        qml.RY(x[..., 0], wires=0)  # broadcasts over rows
        qml.RY(x[..., 1], wires=1)
        qml.RX(w[0], wires=0)
        qml.CNOT(wires=[0, 1])
        qml.RY(w[1], wires=1)
        return qml.expval(qml.Z(1))

    X, w = rng.uniform(-2, 2, size=(5, 2)), np.array([0.7, -1.3])
    explainer = xqml.gate_shapley(model, dataset=True)
    per_row = np.mean([xqml.gate_shapley(model)(x, w).values for x in X], axis=0)
    result = explainer(X, w)
    assert_close(result.values, per_row, rtol64=0, atol64=1e-10)
    broadcast, rows = explainer.plan(X, w), explainer.plan(X, w, broadcast=False)
    assert len(broadcast.tapes) == 8 and broadcast.tapes[0].batch_size == 5
    assert len(rows.tapes) == 8 * 5
    values = rows.processing_fn(qml.execute(rows.tapes, model.device), ()).values
    assert_close(values, result.values, rtol64=0, atol64=1e-10)
    assert explainer.cost(X, w).n_circuits == 8 * 5


def test_a_model_that_does_not_broadcast_rows_gets_one_tape_per_row(rng):
    """``make_model`` reads ``x[0]`` and ``x[1]``: given two rows at once it would broadcast
    over the *features* of a row (a batch of 2), which must not pass for the rows."""
    X, w = rng.uniform(-1, 1, size=(2, 2)), np.array([0.4, 2.1, -0.9])
    explainer = xqml.gate_shapley(make_model(), dataset=True, groups=[[0, 1, 2], [3, 4, 5]])
    assert len(explainer.plan(X, w).tapes) == 4 * 2
    per_row = [brute_force_values("expval", x, w, [(0, 1, 2), (3, 4, 5)])[0] for x in X]
    assert_close(explainer(X, w).values, np.mean(per_row, axis=0), rtol64=0, atol64=1e-10)


def test_value_function_of_the_outputs_over_a_data_set(rng):
    X = rng.uniform(-1, 1, size=(4, 2))
    w = np.array([0.4, 2.1, -0.9])
    labels = np.array([1.0, -1.0, -1.0, 1.0])

    def accuracy(outputs):  # outputs: (n_rows,)
        return np.mean(np.sign(outputs) == labels)

    model = make_model()
    result = xqml.gate_shapley(model, dataset=True, value=accuracy)(X, w)
    expected, v_all, v_none = brute_force_values("expval", X, w, SINGLE, accuracy, rows=True)
    assert_close(result.values, expected, rtol64=0, atol64=1e-10)
    assert float(result.v_all) == pytest.approx(float(v_all))
    assert float(result.v_none) == pytest.approx(float(v_none))


def test_the_explanation_is_one_plan(args):
    explainer = xqml.gate_shapley(make_model())
    plan = explainer.plan(*args)
    assert plan.method == "gate_shapley" and len(plan.tapes) == 2**6
    with qml.Tracker(plan.device) as tracker:
        result = explainer(*args)
    assert tracker.totals["batches"] == 1  # all coalition circuits in one qml.execute
    assert tracker.totals["simulations"] == 2**6
    results = qml.execute(plan.tapes, plan.device)
    assert_close(plan.processing_fn(results, ()).values, result.values, rtol64=0, atol64=0)
    assert explainer.cost(*args).n_circuits == 2**6
    values = explainer.coalition_values(np.array([[1] * 6, [0] * 6]), *args)
    assert_close(values, [result.v_all, result.v_none])


@pytest.mark.slow  # JAX traces every coalition circuit: seconds of compilation
@pytest.mark.parametrize("method", ["exact", "sampling"])
def test_values_are_differentiable_in_the_weights(method):
    """``jax.grad`` (and ``jax.jit``) through the explanation; central differences in float64."""
    import jax

    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x, w):
        qml.RY(x, wires=0)
        qml.RY(w[0], wires=1)
        qml.CNOT(wires=[0, 1])
        qml.RX(w[1], wires=1)
        return qml.expval(qml.Z(1))

    explainer = xqml.gate_shapley(model, method=method, n_permutations=2)

    def value(w, player):
        return explainer(0.4, w).values[player]

    w = jnp.array([0.3, 1.2])
    grad = jax.grad(value)(w, 2)
    w64, eps = np.asarray(w, dtype=np.float64), 1e-5
    fd = [(value(w64 + e, 2) - value(w64 - e, 2)) / (2 * eps) for e in eps * np.eye(2)]
    assert_close(grad, fd, rtol64=1e-6, atol64=1e-8)
    assert abs(float(grad[1])) > 1e-3  # RX(w[1]) changes its own value
    assert_close(jax.jit(value, static_argnums=1)(w, 0), value(w, 0))


def test_cost_report_counts_the_circuits_and_bounds_the_shots():
    """Three players: phi_i weighs 8 coalition values by ±1/3, ±1/6, so the per-shot variance
    bound of a Pauli-Z output (half range 1) is sum of squared weights = 4 (1/3)² + 4 (1/6)²."""
    model = many_gates(3)
    w = np.array([0.3, 1.2, -0.4])
    report = xqml.gate_shapley(model).cost(0.4, w, target_stderr=0.01)
    assert report.method == "gate_shapley" and report.n_circuits == 8
    assert report.shot_variance == pytest.approx(4 / 9 + 4 / 36)
    assert report.shots_per_circuit == math.ceil((4 / 9 + 4 / 36) / 0.01**2)
    sampled = xqml.gate_shapley(model, method="sampling", n_permutations=2).cost(0.4, w)
    assert sampled.n_circuits == 6  # two reversed orderings: 2 x 2 proper coalitions, ∅, all
    noted = xqml.gate_shapley(model, value=lambda out: out**2).cost(0.4, w)
    assert noted.first_order and "user function" in noted.notes[-1]


def test_signature_shows_every_option():
    params = inspect.signature(xqml.gate_shapley).parameters
    assert next(iter(params)) == "qnode"
    expected = {"value", "dataset", "groups", "decompose", "method", "n_permutations",
                "antithetic", "seed", "argnums"}  # fmt: skip
    assert expected == set(list(params)[1:])
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in expected)


def test_decorator_form(args):
    @xqml.gate_shapley(groups=[[0, 1, 2], [3, 4, 5]])
    @qml.qnode(qml.device("default.qubit", wires=3))
    def model(x, w):
        body(x, w, range(6))
        return qml.expval(qml.Z(0))

    assert isinstance(model, xqml.GateShapley)
    assert model(*args).values.shape == (2,)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"method": "exact"}, ValueError, "at most 12 players"),
        ({"groups": [[0, 1], [1, 2]]}, ValueError, "exactly once"),
        ({"groups": [[0, 1.5]]}, TypeError, "player indices"),
        ({"groups": "layers"}, TypeError, "list of lists"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"n_permutations": 3}, ValueError, "even"),
        ({"n_permutations": 1, "antithetic": False}, ValueError, ">= 2"),
        ({"method": "kernel"}, ValueError, "Unknown method"),
        ({"value": 3}, TypeError, "value"),
        ({"decompose": "yes"}, TypeError, "decompose"),
        ({"argnums": 5}, ValueError, "argnums"),
    ],
)
def test_bad_options_raise_before_any_circuit_runs(options, error, match):
    model = many_gates(13)
    w = np.linspace(0, 1, 13)
    with no_circuit_runs(model.device), pytest.raises(error, match=match):
        xqml.gate_shapley(model, **options)(0.3, w)


def test_bad_inputs_raise_before_any_circuit_runs():
    model = many_gates(13)
    w = np.linspace(0, 1, 13)
    with no_circuit_runs(model.device):
        with pytest.raises(ValueError, match="rows along its first axis"):
            xqml.gate_shapley(model, dataset=True)(0.3, w)
        with pytest.raises(ValueError, match="NaN"):
            xqml.gate_shapley(model)(np.nan, w)
        with pytest.raises(ValueError, match="0/1 rows"):
            xqml.gate_shapley(model).coalition_values(np.ones((1, 3)), 0.3, w)
        with pytest.raises(xqml.FunctionModelError, match="calls no QNode"):
            xqml.gate_shapley(lambda x: x)(np.ones(2))  # a function is a model: no QNode in it
        with pytest.raises(TypeError, match="qml.QNode"):
            xqml.gate_shapley(3)

    @qml.qnode(qml.device("default.qubit", wires=1))
    def only_input(x):
        qml.RY(x, wires=0)
        return qml.expval(qml.Z(0))

    with no_circuit_runs(only_input.device), pytest.raises(ValueError, match="no operation"):
        xqml.gate_shapley(only_input)(0.3)


def test_figure_colours_the_gates(args, tmp_path):
    from pennylane_xqml.experiments.plotting import plot_gate_shapley

    result = xqml.gate_shapley(make_model("probs"))(*args)
    with pytest.raises(ValueError, match="output="):
        plot_gate_shapley(result)
    path = tmp_path / "gates.png"
    fig = plot_gate_shapley(result, output=0, path=path, title="P(00)")
    assert os.path.getsize(path) > 5_000
    colours = {tuple(np.round(p.get_facecolor(), 3)) for p in fig.axes[0].patches}
    assert len(colours) >= 4  # distinct values give distinct colours (and grey input gates)


@pytest.mark.slow
def test_quick_reproduction(tmp_path):
    from pennylane_xqml.experiments.reproductions import REPRODUCTIONS, gate_shapley

    assert REPRODUCTIONS["gate-shapley"] == "gate_shapley"
    result = gate_shapley.run(str(tmp_path), quick=True, progress=False)
    layers, gates = result["layers"], result["gates"]
    assert_close(np.sum(layers.values), layers.v_all - layers.v_none)
    assert_close(np.sum(gates.values), gates.v_all - gates.v_none)
    assert result["accuracy"] >= 0.6
    removal = result["removal"]
    assert [row["k"] for row in removal] == sorted(row["k"] for row in removal)
    for row in removal:
        assert 0.0 <= row["top_accuracy"] <= 1.0
        assert len(row["random_accuracies"]) == result["n_random"]
    for name in ("gate_shapley_circuit.png", "gate_shapley_layers.png"):
        assert os.path.getsize(tmp_path / name) > 10_000
    assert "top-k" in (tmp_path / "gate_shapley_table.txt").read_text()
