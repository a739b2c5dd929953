"""Many rows with ``xqml.explain_batch``: one device execution per chunk on lightning.qubit.

The 6-qubit exact-IG amplitude model of issue #12 (``AmplitudeEmbedding`` of 64 features,
2 ``StronglyEntanglingLayers``, one Pauli word ``Z0``, ``gradient="hadamard_all"``: one
Hadamard-test circuit on 7 qubits per row). In one process, x64:

lightning.qubit (after a warm-up call of each path):

* ``new``: ``explain_batch`` on ``--rows`` rows (chunks of ``--chunk``): one host callback and
  one ``execute_batch`` call per chunk;
* ``old``: the per-row path, ``jax.jit(jax.vmap(explainer))``, where PennyLane's ``jax-jit``
  interface runs one host callback (one ``qml.execute``) per row; timed on ``--old-rows`` rows;
* ``qml.execute``: lightning's own cost per tape, ``qml.execute`` of 200 NumPy tapes of the same
  circuit (the explanation's Hadamard test at 200 rows), and of the model's own circuit; and
  per row of the same 200 circuits as one parameter-broadcast tape (what merging the chunk's
  tapes in ``execute_batch`` would cost);
* ``new / qml.execute``: the goal is ≤ 2.

default.qubit: a repeated ``explain_batch`` (compiled program cached) against a direct
``jax.jit(jax.vmap(explainer))`` call on the same 1,000 rows (goal ≤ 2), with the default chunk
(256) and with one chunk of all rows.

Prints, never asserts. Usage::

    python benchmarks/bench_explain_batch_rows.py                 # ~1-3 min on 2 cores
    python benchmarks/bench_explain_batch_rows.py --rows 200 --old-rows 20   # smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def timed(fn, repeats=1):
    """Median wall time of ``fn()`` (blocking on JAX results) over ``repeats`` calls."""
    import jax  # pylint: disable=import-outside-toplevel

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(device_name, wires):
    """The explained 6-qubit amplitude model on ``device_name``."""
    import pennylane as qml  # pylint: disable=import-outside-toplevel

    import pennylane_xqml as xqml  # pylint: disable=import-outside-toplevel

    dev = qml.device(device_name, wires=wires)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(6), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(6))
        return qml.expval(qml.Z(0))

    return model, xqml.integrated_gradients(model, gradient="hadamard_all")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--old-rows", type=int, default=100, help="rows of the per-row path")
    parser.add_argument("--chunk", type=int, default=256, help="internal_batch_size")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np
    import pennylane as qml

    import pennylane_xqml as xqml
    from pennylane_xqml.engine.execution import concrete_tapes

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    X = rng.uniform(0.05, 1.0, size=(args.rows, 64))
    w = rng.uniform(0, 2 * np.pi, size=(2, 6, 3))
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")

    # -- lightning.qubit -------------------------------------------------------------------------
    model, explainer = build("lightning.qubit", 7)  # 7 wires: the ancilla is a spare wire
    chunk = args.chunk
    xqml.explain_batch(explainer, X[:chunk], w, internal_batch_size=chunk)  # warm-up: compiles
    t_new = timed(lambda: xqml.explain_batch(explainer, X, w, internal_batch_size=chunk))
    new = xqml.explain_batch(explainer, X, w, internal_batch_size=chunk)

    old_rows = jnp.asarray(X[: args.old_rows])
    old_fn = jax.jit(jax.vmap(explainer, in_axes=(0, None)))
    old_fn(old_rows, w)  # warm-up: compiles
    t_old = timed(lambda: old_fn(old_rows, w))
    old = np.asarray(old_fn(old_rows, w))

    plans = [explainer.plan(x, w) for x in X[:200]]
    tapes = [t for plan in plans for t in concrete_tapes(plan.tapes)]
    qml.execute(tapes[:5], plans[0].device)  # warm-up
    t_tapes = timed(lambda: qml.execute(tapes, plans[0].device), args.repeats) / len(tapes)
    # the same 200 circuits as one parameter-broadcast tape (lightning expands it itself)
    stacked = [
        np.stack(column) for column in zip(*(t.get_parameters(trainable_only=False) for t in tapes))
    ]
    broadcast = tapes[0].bind_new_parameters(stacked, list(range(len(stacked))))
    qml.execute([broadcast], plans[0].device)
    t_broadcast = timed(lambda: qml.execute([broadcast], plans[0].device), args.repeats) / 200
    model_tapes = [qml.workflow.construct_tape(model)(x, w) for x in X[:200]]
    qml.execute(model_tapes[:5], model.device)
    t_model = timed(lambda: qml.execute(model_tapes, model.device), args.repeats) / 200

    per_new, per_old = t_new / args.rows, t_old / args.old_rows
    print(f"\nlightning.qubit, {args.rows} rows, chunks of {chunk}, one tape per row "
          f"(max |new - old| = {np.abs(new[: args.old_rows] - old).max():.1e})")  # fmt: skip
    print(f"{'run':<62}{'ms per row/tape':>16}{'vs qml.execute':>16}")
    for name, seconds in [
        ("explain_batch, one execution per chunk (new)", per_new),
        (f"jit(vmap(explainer)), one callback per row (old, {args.old_rows} rows)", per_old),
        ("qml.execute, 200 NumPy tapes of the explanation", t_tapes),
        ("qml.execute, 200 NumPy tapes of the model", t_model),
        ("qml.execute, one broadcast tape of the 200 explanation rows", t_broadcast),
    ]:
        print(f"{name:<62}{1e3 * seconds:>16.3f}{seconds / t_tapes:>15.2f}x")
    print(f"goal: new / qml.execute per tape <= 2; measured {per_new / t_tapes:.2f}")

    # -- default.qubit: repeated explain_batch vs direct jit(vmap) -------------------------------
    _, explainer = build("default.qubit", 7)
    direct = jax.jit(jax.vmap(explainer, in_axes=(0, None)))
    rows = jnp.asarray(X)
    direct(rows, w)
    t_direct = timed(lambda: direct(rows, w), args.repeats)
    print(f"\ndefault.qubit, {args.rows} rows: direct jit(vmap) {1e3 * t_direct:.1f} ms")
    for size in (256, args.rows):
        xqml.explain_batch(explainer, X, w, internal_batch_size=size)  # first call compiles
        t_batch = timed(
            lambda size=size: xqml.explain_batch(explainer, X, w, internal_batch_size=size),
            args.repeats,
        )
        print(f"repeated explain_batch (chunk {size}): {1e3 * t_batch:.1f} ms, "
              f"{t_batch / t_direct:.2f}x direct (goal <= 2)")  # fmt: skip


if __name__ == "__main__":
    main()
