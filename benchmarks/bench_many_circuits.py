"""Many circuits at the price of one (issue #12): every goal ratio, next to its baseline.

Each ratio's numerator and denominator are measured in this one process, with the same device
and the same input type, so the machine's load affects both. The rows (see
``benchmarks/README.md`` for what each one means):

* ``shapley eager``: exact Shapley values (``xqml.shapley_values``, default.qubit, JAX float64
  inputs, 4-feature ``AngleEmbedding`` + ``StronglyEntanglingLayers``, 10 background rows),
  eagerly / the median eager forward pass of the same QNode with the same inputs (goal <= 5);
* ``shapley compile``: compile time of ``jax.jit(jax.vmap(shapley_values(...)))`` over 8
  instances / compile time of a hand-written ``jax.jit(jax.vmap)`` over the same coalition
  inputs (goal <= 3); ``shapley run``: their run times;
* ``explain_batch lightning``: ``xqml.explain_batch`` on lightning.qubit per row (6-qubit
  exact integrated gradients of the amplitude model, one Pauli word, 1,000 rows, after a warm-up
  call) / lightning's per-tape cost, ``qml.execute`` of 200 NumPy tapes of the same circuit
  (goal <= 2);
* ``explain_batch repeat``: a repeated ``explain_batch`` on default.qubit / a direct
  ``jax.jit(jax.vmap(explainer))`` call on the same 1,000 rows (goal <= 2);
* ``param-shift IG eager``: parameter-shift integrated gradients of the 4-qubit angle model
  (default.qubit, NumPy inputs, 50 Gauss-Legendre points, eager) / the median eager forward pass
  with NumPy inputs (goal <= 10).

Every row is also measured with the per-tape path (``broadcast=False``) when the attribution
decorators accept that option, and printed as ``n/a`` otherwise. Each package result is checked
against its hand-written baseline (max absolute difference printed).

Usage::

    python benchmarks/bench_many_circuits.py            # full run
    python benchmarks/bench_many_circuits.py --quick    # smoke run (< 1 min; smaller setups)
    python benchmarks/bench_many_circuits.py --json out.json
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import statistics
import time

import numpy as np
from bench_common import block, print_markdown_table

N_FEATURES = 4
ANGLE_LAYERS = 2
AMPLITUDE_QUBITS = 6


def timed(fn):
    """``(seconds, result)`` of one call, waiting for asynchronous JAX results."""
    start = time.perf_counter()
    result = block(fn())
    return time.perf_counter() - start, result


def median_time(fn, repeats, min_time=0.0):
    """Median wall time of ``fn()`` over ``repeats`` calls (more while under ``min_time`` s)."""
    times, start = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        times.append(timed(fn)[0])
        if len(times) >= 1000:
            break
    return statistics.median(times)


def accepts_broadcast(decorator):
    """Whether an attribution decorator takes the ``broadcast`` option (the per-tape switch)."""
    try:
        return "broadcast" in inspect.signature(decorator).parameters
    except (TypeError, ValueError):
        return False


def variants(decorator):
    """``[(label, kwargs)]``: the default path, and the per-tape path when it exists."""
    rows = [("default", {})]
    if accepts_broadcast(decorator):
        rows.append(("broadcast=False", {"broadcast": False}))
    return rows


def angle_model(interface):
    """The 4-feature angle model and its weights (seeded)."""
    import pennylane as qml

    dev = qml.device("default.qubit", wires=N_FEATURES)

    @qml.qnode(dev, interface=interface)
    def qnode(x, weights):
        qml.AngleEmbedding(x, wires=range(N_FEATURES))
        qml.StronglyEntanglingLayers(weights, wires=range(N_FEATURES))
        return qml.expval(qml.PauliZ(0))

    shape = qml.StronglyEntanglingLayers.shape(n_layers=ANGLE_LAYERS, n_wires=N_FEATURES)
    weights = np.random.default_rng(1).uniform(0, 2 * np.pi, shape)
    return qnode, weights


def hand_written_shapley(qnode, background):
    """Exact interventional Shapley values written by hand: one ``jax.vmap`` over every
    (coalition, background row) input, then the Shapley weights of each coalition."""
    import jax
    import jax.numpy as jnp

    from pennylane_xqml.methods.perturbation import all_coalitions, shapley_matrix

    coalitions = jnp.asarray(all_coalitions(N_FEATURES), dtype=bool)
    matrix = jnp.asarray(shapley_matrix(N_FEATURES))
    background = jnp.asarray(background)

    def explain(x, weights):
        inputs = jnp.where(coalitions[:, None, :], x, background[None, :, :])  # (2^M, B, M)
        flat = inputs.reshape(-1, N_FEATURES)
        values = jax.vmap(qnode, in_axes=(0, None))(flat, weights).reshape(inputs.shape[:2])
        return matrix @ values.mean(axis=1)

    return explain


def bench_shapley(args, results):
    """Rows ``shapley eager``, ``shapley compile`` and ``shapley run``."""
    import jax
    import jax.numpy as jnp

    import pennylane_xqml as xqml

    qnode, weights = angle_model("auto")
    rng = np.random.default_rng(0)
    background = rng.uniform(0, np.pi, (args.background, N_FEATURES))
    X = jnp.asarray(rng.uniform(0, np.pi, (args.instances, N_FEATURES)))
    w = jnp.asarray(weights)
    x = X[0]

    forward = median_time(lambda: qnode(x, w), repeats=args.forward_repeats, min_time=args.min_time)
    hand = hand_written_shapley(qnode, background)
    hand_jit = jax.jit(jax.vmap(hand, in_axes=(0, None)))
    start = time.perf_counter()
    hand_compiled = hand_jit.lower(X, w).compile()
    hand_compile = time.perf_counter() - start
    hand_run = median_time(lambda: hand_compiled(X, w), repeats=5)
    reference = np.asarray(hand_compiled(X, w))

    for label, options in variants(xqml.shapley_values):
        explained = xqml.shapley_values(qnode, background=background, **options)
        first, values = timed(lambda: explained(x, w))  # noqa: B023
        eager = (
            first if args.quick else min(first, median_time(lambda: explained(x, w), repeats=2))  # noqa: B023
        )
        error = float(np.max(np.abs(np.asarray(values) - reference[0])))
        results.append(
            row(
                "shapley eager",
                label,
                "default.qubit",
                eager,
                forward,
                "eager fwd (JAX)",
                5,
                error,
            )
        )
        if args.skip_compile:
            continue
        jitted = jax.jit(jax.vmap(explained, in_axes=(0, None)))
        start = time.perf_counter()
        compiled = jitted.lower(X, w).compile()
        compile_time = time.perf_counter() - start
        run = median_time(lambda: compiled(X, w), repeats=5)  # noqa: B023
        error = float(np.max(np.abs(np.asarray(compiled(X, w)) - reference)))
        results.append(
            row(
                "shapley compile",
                label,
                "default.qubit",
                compile_time,
                hand_compile,
                "hand jit(vmap) compile",
                3,
                error,
            )
        )
        results.append(
            row(
                "shapley run",
                label,
                "default.qubit",
                run,
                hand_run,
                "hand jit(vmap) run",
                None,
                error,
            )
        )


def digits_rows(n_rows):
    """``n_rows`` non-zero 8x8 digits scaled to [0, 1] (repeated cyclically beyond 1,797)."""
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    X = X[X.any(axis=1)]
    return np.resize(X, (n_rows, X.shape[1]))


def bench_lightning(args, results):
    """Row ``explain_batch lightning``: per row against ``qml.execute`` of NumPy tapes."""
    import pennylane as qml

    import pennylane_xqml as xqml
    from pennylane_xqml.experiments.models import AmplitudeClassifier

    clf = AmplitudeClassifier(AMPLITUDE_QUBITS, n_layers=2, device="lightning.qubit")
    weights = np.asarray(clf.weights)
    rows = digits_rows(args.rows)
    exact = xqml.integrated_gradients(AmplitudeClassifier(AMPLITUDE_QUBITS, n_layers=2).qnode)
    reference = np.asarray(xqml.explain_batch(exact, rows, weights))

    # lightning's own cost per circuit: the circuits one row's explanation runs, as NumPy tapes
    base = xqml.integrated_gradients(clf.qnode)
    tapes = [t for x in rows[: args.tapes] for t in base.construct_batch(x, weights)]
    per_row_tapes = len(tapes) // args.tapes
    tapes = tapes[: args.tapes]
    qml.execute(tapes[:10], clf.device, diff_method=None)  # warm-up
    per_tape = median_time(lambda: qml.execute(tapes, clf.device, diff_method=None), 3) / len(tapes)

    for label, options in variants(xqml.integrated_gradients):
        explainer = xqml.integrated_gradients(clf.qnode, **options)
        xqml.explain_batch(explainer, rows[: min(len(rows), 256)], weights)  # warm-up
        seconds, values = timed(lambda: xqml.explain_batch(explainer, rows, weights))  # noqa: B023
        error = float(np.max(np.abs(np.asarray(values) - reference)))
        results.append(
            row(
                "explain_batch lightning",
                label,
                "lightning.qubit",
                seconds / len(rows),
                per_tape,
                f"qml.execute per tape ({per_row_tapes}/row)",
                2,
                error,
            )
        )


def bench_repeat(args, results):
    """Row ``explain_batch repeat``: a repeated call against a direct ``jit(vmap)``."""
    import jax

    import pennylane_xqml as xqml
    from pennylane_xqml.experiments.models import AmplitudeClassifier

    clf = AmplitudeClassifier(AMPLITUDE_QUBITS, n_layers=2)
    rows = digits_rows(args.rows)
    w = clf.weights
    for label, options in variants(xqml.integrated_gradients):
        explainer = xqml.integrated_gradients(clf.qnode, **options)
        direct = jax.jit(jax.vmap(explainer, in_axes=(0, None)))
        _, reference = timed(lambda: direct(rows, w))  # noqa: B023
        t_direct = median_time(lambda: direct(rows, w), repeats=5)  # noqa: B023
        xqml.explain_batch(explainer, rows, w)  # first call: compiles
        t_repeat = median_time(lambda: xqml.explain_batch(explainer, rows, w), repeats=5)  # noqa: B023
        error = float(
            np.max(np.abs(np.asarray(xqml.explain_batch(explainer, rows, w)) - reference))
        )
        results.append(
            row(
                "explain_batch repeat",
                label,
                "default.qubit",
                t_repeat,
                t_direct,
                "direct jit(vmap)",
                2,
                error,
            )
        )


def bench_parameter_shift(args, results):
    """Row ``param-shift IG eager``: NumPy inputs, eager, against the NumPy forward pass."""
    import pennylane_xqml as xqml

    qnode, weights = angle_model("auto")
    x = np.random.default_rng(2).uniform(0, np.pi, N_FEATURES)
    forward = median_time(
        lambda: qnode(x, weights), repeats=args.forward_repeats, min_time=args.min_time
    )
    reference = None
    for label, options in variants(xqml.integrated_gradients):
        explained = xqml.integrated_gradients(
            qnode,
            gradient="parameter-shift",
            method="gausslegendre",
            n_steps=args.steps,
            **options,
        )
        seconds, values = timed(lambda: explained(x, weights))  # noqa: B023
        if not args.quick:
            seconds = min(seconds, median_time(lambda: explained(x, weights), repeats=2))  # noqa: B023
        reference = np.asarray(values) if reference is None else reference
        error = float(np.max(np.abs(np.asarray(values) - reference)))
        results.append(
            row(
                "param-shift IG eager",
                label,
                "default.qubit",
                seconds,
                forward,
                f"eager fwd (NumPy), {n_circuits(explained.construct_batch(x, weights))} circuits",
                10,
                error,
            )
        )


def n_circuits(tapes):
    """Circuits of a batch: a parameter-broadcast tape of B parameter sets is B circuits."""
    return sum(tape.batch_size or 1 for tape in tapes)


def row(name, path, device, seconds, baseline, baseline_name, goal, error):
    """One result as a dict (``ratio = seconds / baseline``)."""
    return {
        "row": name,
        "path": path,
        "device": device,
        "seconds": seconds,
        "baseline": baseline_name,
        "baseline_seconds": baseline,
        "ratio": seconds / baseline,
        "goal": goal,
        "max_abs_error": error,
    }


def table(results):
    """The result rows, with ``n/a`` for the per-tape path when it does not exist."""
    header = ["row", "path", "device", "seconds", "baseline", "baseline s", "ratio", "goal", "err"]
    lines = []
    names = list(dict.fromkeys(r["row"] for r in results))
    for name in names:
        group = [r for r in results if r["row"] == name]
        for r in group:
            goal = "" if r["goal"] is None else f"<= {r['goal']}"
            lines.append(
                [
                    r["row"],
                    r["path"],
                    r["device"],
                    f"{r['seconds']:.4g}",
                    r["baseline"],
                    f"{r['baseline_seconds']:.4g}",
                    f"{r['ratio']:.3g}x",
                    goal,
                    f"{r['max_abs_error']:.1e}",
                ]
            )
        if not any(r["path"] == "broadcast=False" for r in group):
            lines.append([name, "broadcast=False", group[0]["device"]] + ["n/a"] * 6)
    print_markdown_table(header, lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--skip-compile", action="store_true", help="skip the compile row")
    parser.add_argument("--only", nargs="*", help="run only these groups", default=None)
    args = parser.parse_args()
    quick = args.quick
    args.background = 1 if quick else 10
    args.instances = 8
    args.rows = 100 if quick else 1000
    args.tapes = 20 if quick else 200
    args.steps = 5 if quick else 50
    args.forward_repeats = 5 if quick else 20
    args.min_time = 0.2 if quick else 1.0

    import jax

    jax.config.update("jax_enable_x64", True)
    import pennylane as qml

    import pennylane_xqml as xqml

    load = os.getloadavg()
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"load average (1, 5, 15 min) at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"python {platform.python_version()}, pennylane {qml.__version__}, jax {jax.__version__}, "
        f"pennylane-xqml {getattr(xqml, '__version__', '?')}, {os.cpu_count()} CPUs"
    )
    print(f"broadcast option accepted: {accepts_broadcast(xqml.shapley_values)}")
    if quick:
        print(
            f"--quick: {args.background} background rows, {args.rows} rows, {args.tapes} tapes, "
            f"{args.steps} IG steps (ratios are not the goals' setups)"
        )
    groups = {
        "shapley": bench_shapley,
        "lightning": bench_lightning,
        "repeat": bench_repeat,
        "shift": bench_parameter_shift,
    }
    results = []
    start = time.perf_counter()
    for name, bench in groups.items():
        if args.only is None or name in args.only:
            bench(args, results)
    load_end = os.getloadavg()
    print()
    table(results)
    print(
        f"\ntotal {time.perf_counter() - start:.0f} s; load average at end: "
        f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"load": load, "quick": quick, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
