"""Repeated ``xqml.explain_batch`` calls: is the compiled program reused?

The 64-amplitude digits classifier (6 qubits, exact integrated gradients, default.qubit), as in
the performance issue's measurement. In one process:

* ``direct``: a hand-written ``jax.jit(jax.vmap(explainer))`` on the same rows, warmed up, then
  the median of repeated calls: the baseline;
* ``first call``: ``explain_batch`` on a fresh cache (traces and compiles);
* ``repeat``: ``explain_batch`` again with the same explainer, other rows of the same count and
  new weights (the median of repeated calls); before the cache it cost about as much as the
  first call;
* ``more rows``: ``explain_batch`` on 5× the rows (same chunk shape, so no new compilation).

Every timing is printed with its ratio to ``direct`` (per row). Usage::

    python benchmarks/bench_batch_repeat.py              # 200 rows, chunk 200 (~1 min)
    python benchmarks/bench_batch_repeat.py --rows 50    # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import jax
    import numpy as np
    from sklearn.datasets import load_digits

    import pennylane_xqml as xqml
    from pennylane_xqml.engine.batching import clear_compiled_cache
    from pennylane_xqml.experiments.models import AmplitudeClassifier

    jax.config.update("jax_enable_x64", True)
    X = load_digits().data / 16.0
    X = X[X.any(axis=1)]
    rows = X[: args.rows]
    other = X[args.rows : 2 * args.rows]
    clf = AmplitudeClassifier(6, n_layers=2)
    explainer = xqml.integrated_gradients(clf.qnode)
    w, w2 = clf.weights, clf.weights * 0.5

    def timed(fn):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        return time.perf_counter() - start

    direct = jax.jit(jax.vmap(explainer, in_axes=(0, None)))
    timed(lambda: direct(rows, w))
    t_direct = statistics.median(timed(lambda: direct(rows, w)) for _ in range(args.repeats))

    clear_compiled_cache()
    batch = args.rows
    t_first = timed(lambda: xqml.explain_batch(explainer, rows, w, internal_batch_size=batch))
    t_repeat = statistics.median(
        timed(lambda: xqml.explain_batch(explainer, other, w2, internal_batch_size=batch))
        for _ in range(args.repeats)
    )
    many = np.concatenate([rows] * 5)
    t_many = timed(lambda: xqml.explain_batch(explainer, many, w, internal_batch_size=batch))
    same = xqml.explain_batch(explainer, rows, w, internal_batch_size=batch)
    error = float(np.max(np.abs(np.asarray(direct(rows, w)) - same)))

    print(f"rows per call: {args.rows}; max |explain_batch - direct| = {error:.2e}")
    print(f"{'run':<28}{'seconds':>10}{'per row vs direct':>20}")
    for name, seconds, n in [
        ("direct jit(vmap)", t_direct, args.rows),
        ("explain_batch, first call", t_first, args.rows),
        ("explain_batch, repeat", t_repeat, args.rows),
        ("explain_batch, 5x rows", t_many, 5 * args.rows),
    ]:
        ratio = (seconds / n) / (t_direct / args.rows)
        print(f"{name:<28}{seconds:>10.3f}{ratio:>19.1f}x")


if __name__ == "__main__":
    main()
