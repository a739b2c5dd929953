"""``xqml reproduce gate-shapley``: which gates of the Iris classifier matter (issue 14, part 1).

Heese et al. (arXiv:2301.09138) attribute a circuit's performance to its gates with Shapley
values. Here, on :class:`~pennylane_xqml.experiments.iris.IrisQCL` (3 layers of ``RX RY RZ`` on
each qubit and a CNOT ring, then output rotations: 56 gates besides the input encoding):

1. train the model on the Iris split;
2. the value of a set of gates is the **training accuracy** of the circuit that keeps only
   those gates (the input encoding and the measurement are always kept; a removed gate is the
   identity);
3. rank the **layers** (each layer's 16 gates, and the 8 output rotations, as groups): exact
   Shapley values over the ``2**4`` coalitions;
4. rank the **single gates**: permutation sampling (antithetic orderings) with standard errors;
5. check the ranking on the **test set** (and on the training rows the values were computed
   on): remove the ``k`` gates with the largest values and measure the accuracy, against
   removing ``k`` gates drawn at random (several draws).

Every explanation is one batch of coalition circuits (:meth:`GateShapley.plan`), each a
broadcast tape over the rows. Prints the tables and writes ``gate_shapley_table.txt``, the
circuit coloured by the gates' values (``gate_shapley_circuit.png``), the layers' values
(``gate_shapley_layers.png``) and the removal curves (``gate_shapley_removal.png``).

``quick=True``: one layer (24 gates), 32 training rows for the values, 10 orderings and 5
random draws (a smoke run for the tests).
"""

from __future__ import annotations

import os
import time

import numpy as np

from ...engine.inputs import enable_x64
from ...engine.plan import execute_plan
from ...methods.gate_shapley import gate_shapley
from ..iris import CLASS_MAP, IrisQCL, load_iris_split
from ..plotting import plot_attribution_bars, plot_gate_shapley, plt

N_QUBITS = 4
GATES_PER_LAYER = 4 * 3 + 4  # rotations, then the CNOT ring


def accuracy_of(labels):
    """The value: accuracy of the 16 basis-state probabilities ``(n_rows, 16)`` of the rows."""
    labels = np.asarray(labels)

    def accuracy(probs):
        classes = np.argmax(np.asarray(probs).reshape(len(labels), -1) @ CLASS_MAP, axis=1)
        return np.mean(classes == labels)

    return accuracy


def layer_groups(n_layers):
    """``{label: player indices}``: each layer's 16 gates, then the 8 output rotations."""
    groups = {
        f"layer {layer + 1}": list(range(GATES_PER_LAYER * layer, GATES_PER_LAYER * (layer + 1)))
        for layer in range(n_layers)
    }
    start = GATES_PER_LAYER * n_layers
    groups["output rotations"] = list(range(start, start + 2 * N_QUBITS))
    return groups


def removal_check(evaluator, X, weights, values, ks, n_random, seed):
    """Test accuracy after removing the top-``k`` gates by value, and ``k`` random gates
    (``n_random`` draws per ``k``); all coalitions in one batch."""
    n = len(values)
    order = np.argsort(-np.asarray(values), kind="stable")
    rng = np.random.default_rng(seed)
    coalitions, index = [np.ones(n, dtype=int)], []
    for k in ks:
        top = np.ones(n, dtype=int)
        top[order[:k]] = 0
        coalitions.append(top)
        randoms = []
        for _ in range(n_random):
            z = np.ones(n, dtype=int)
            z[rng.choice(n, size=k, replace=False)] = 0
            randoms.append(len(coalitions))
            coalitions.append(z)
        index.append((k, len(coalitions) - n_random - 1, randoms))
    accuracy = np.asarray(evaluator.coalition_values(np.array(coalitions), X, weights))
    rows = []
    for k, top, randoms in index:
        random_accuracies = accuracy[randoms]
        rows.append(
            {
                "k": k,
                "top_accuracy": float(accuracy[top]),
                "random_accuracies": random_accuracies.tolist(),
                "random_mean": float(random_accuracies.mean()),
                "random_std": float(random_accuracies.std(ddof=1)),
            }
        )
    return float(accuracy[0]), rows


def format_tables(layers, gates, checks, n_random, top=10):
    """The layers' and the top gates' values, and the removal checks
    (``{name: (full_accuracy, rows)}``) as a text table."""
    lines = [
        "Layers (exact Shapley values of the training accuracy):",
        f"{'group':<20}{'value':>9}",
    ]
    for j in np.argsort(-np.asarray(layers.values), kind="stable"):
        lines.append(f"{layers.labels[j]:<20}{float(layers.values[j]):>9.4f}")
    lines.append(
        f"sum {float(np.sum(layers.values)):.4f} = v(all) {float(layers.v_all):.4f} "
        f"- v(none) {float(layers.v_none):.4f}"
    )
    lines += [
        "",
        f"Single gates (permutation sampling, {gates.n_permutations} antithetic orderings), top {top}:",
        f"{'rank':>4}  {'gate':<18}{'value':>9}{'stderr':>9}",
    ]
    order = np.argsort(-np.asarray(gates.values), kind="stable")
    for rank, j in enumerate(order[:top], start=1):
        lines.append(
            f"{rank:>4}  {gates.labels[j]:<18}{float(gates.values[j]):>9.4f}"
            f"{float(gates.stderr[j]):>9.4f}"
        )
    lines.append(
        f"sum {float(np.sum(gates.values)):.4f} = v(all) {float(gates.v_all):.4f} "
        f"- v(none) {float(gates.v_none):.4f}"
    )
    for name, (full, rows) in checks.items():
        lines += [
            "",
            f"Removal check on the {name} (full circuit: accuracy {full:.3f}):",
            f"{'k':>11}{'top-k removed':>16}{'random k removed':>22}  ({n_random} draws, mean ± std)",
        ]
        for row in rows:
            lines.append(
                f"{row['k']:>11}{row['top_accuracy']:>16.3f}"
                f"{row['random_mean']:>15.3f} ± {row['random_std']:.3f}"
            )
        top_mean = np.mean([row["top_accuracy"] for row in rows])
        random_mean = np.mean([row["random_mean"] for row in rows])
        lines.append(f"{'mean over k':>11}{top_mean:>16.3f}{random_mean:>15.3f}")
    return "\n".join(lines)


def _removal_figure(checks, path):
    fig, axes = plt.subplots(1, len(checks), figsize=(5.0 * len(checks), 3.6), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, (name, (full, rows)) in zip(axes[0], checks.items()):
        ks = [0] + [row["k"] for row in rows]
        ax.plot(ks, [full] + [r["top_accuracy"] for r in rows], "o-",
                label="top-k gates by Shapley value removed")  # fmt: skip
        mean = np.array([full] + [r["random_mean"] for r in rows])
        std = np.array([0.0] + [r["random_std"] for r in rows])
        ax.errorbar(ks, mean, yerr=std, fmt="s--", capsize=3, label="k random gates removed")
        ax.set_xlabel("gates removed (k)")
        ax.set_ylabel("accuracy")
        ax.set_title(name)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(frameon=False)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def run(output_dir="xqml_output", quick=False, progress=True):
    """Run the reproduction; returns ``{"accuracy", "layers", "gates", "removal",
    "removal_training", "n_random", "table", "timings"}`` (``layers``/``gates`` are
    :class:`GateShapleyResult`; ``removal`` the test-set check, rows of ``k``, ``top_accuracy``,
    ``random_accuracies``, ``random_mean``, ``random_std``)."""
    enable_x64()
    os.makedirs(output_dir, exist_ok=True)
    seed = 0
    split = load_iris_split(seed)
    n_layers = 1 if quick else 3
    n_rows = 32 if quick else len(split.X_train)
    n_permutations = 10 if quick else 100
    n_random = 5 if quick else 20
    ks = (1, 2, 4) if quick else (1, 2, 4, 8, 16)
    timings = {}

    start = time.perf_counter()
    model = IrisQCL(n_layers=n_layers, seed=seed)
    model.fit(split.X_train, split.y_train, split.X_val, split.y_val,
              epochs=60 if quick else 300, progress=progress)  # fmt: skip
    timings["training"] = time.perf_counter() - start
    accuracy = model.score(split.X_test, split.y_test)
    print(f"IrisQCL ({n_layers} layers): test accuracy {accuracy:.3f}")

    X, y, weights = split.X_train[:n_rows], split.y_train[:n_rows], model.weights
    value = accuracy_of(y)
    start = time.perf_counter()
    layers = gate_shapley(model.qnode, dataset=True, value=value, groups=layer_groups(n_layers))
    layers_result = layers(X, weights)
    timings["layers"] = time.perf_counter() - start
    start = time.perf_counter()
    gates = gate_shapley(model.qnode, dataset=True, value=value, method="sampling",
                         n_permutations=n_permutations, seed=seed)  # fmt: skip
    plan = gates.plan(X, weights)
    gates_result = execute_plan(plan)
    timings["gates"] = time.perf_counter() - start
    per_tape = f"each broadcast over {n_rows} rows" if plan.tapes[0].batch_size else "one per row"
    print(
        f"{len(gates_result.values)} gates: {len(plan.tapes)} coalition circuits ({per_tape}) "
        f"in {timings['gates']:.1f} s"
    )

    start = time.perf_counter()
    checks = {}
    for name, (X_check, y_check) in {
        "test set": (split.X_test, split.y_test),
        "training rows of the values": (X, y),
    }.items():
        evaluator = gate_shapley(model.qnode, dataset=True, value=accuracy_of(y_check))
        checks[name] = removal_check(
            evaluator, X_check, weights, gates_result.values, ks, n_random, seed
        )
    timings["removal"] = time.perf_counter() - start

    table = format_tables(layers_result, gates_result, checks, n_random)
    print(table)
    with open(os.path.join(output_dir, "gate_shapley_table.txt"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    title = "Shapley value of each gate (training accuracy)"
    fig = plot_gate_shapley(gates_result, title=title,
                            path=os.path.join(output_dir, "gate_shapley_circuit.png"))  # fmt: skip
    plt.close(fig)
    fig = plot_attribution_bars(
        layers_result.values,
        list(layers_result.labels),
        path=os.path.join(output_dir, "gate_shapley_layers.png"),
        title="Exact Shapley values of the layers (training accuracy)",
    )
    plt.close(fig)
    _removal_figure(checks, os.path.join(output_dir, "gate_shapley_removal.png"))
    print(
        "times: " + ", ".join(f"{k} {t:.1f} s" for k, t in timings.items())
        + f"; figures and table written to {output_dir}/gate_shapley_*"
    )  # fmt: skip
    return {
        "accuracy": accuracy,
        "layers": layers_result,
        "gates": gates_result,
        "removal": checks["test set"][1],
        "removal_training": checks["training rows of the values"][1],
        "n_random": n_random,
        "table": table,
        "timings": timings,
    }
