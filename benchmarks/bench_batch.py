"""Batches of explanations with ``xqml.explain_batch``: speed, peak memory, sharding.

For the 64-amplitude digits classifier (exact integrated gradients) and the Iris QCL
(integrated gradients by Gauss-Legendre quadrature, autodiff through default.qubit), every
configuration runs in a fresh Python process so that its peak resident memory
(``resource.getrusage(...).ru_maxrss``) is its own:

* ``chunked``: ``explain_batch(..., internal_batch_size=--chunk)`` for 1,000 / 5,000 / 10,000
  explanations: peak memory should stay flat as the count grows;
* ``unchunked``: one ``jit(vmap(...))`` call over all rows, for comparison;
* ``sharded``: the chunked run over 2 CPU devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count=2``); its results are compared with the
  single-device run's (max absolute difference);
* ``loop``: the naive baseline, one eager explanation per row (timed on ``--loop-rows`` rows).

Usage::

    python benchmarks/bench_batch.py                      # full run (~10 min on 2 cores)
    python benchmarks/bench_batch.py --counts 200 400 --loop-rows 10   # smoke run

Rows beyond the data set (1,797 digits, 150 Iris flowers) repeat it cyclically. Model weights
are random (speed does not depend on training). Timings on a shared machine vary by ±30%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from bench_common import peak_rss_mib

MODELS = ("digits", "iris")


def build(model):
    """``(explainer, inputs, shared_args)`` for a model name (imports JAX lazily)."""
    import jax
    import jax.numpy as jnp
    from sklearn.datasets import load_digits

    import pennylane_xqml as xqml
    from pennylane_xqml.experiments.iris import IrisQCL, load_iris_split
    from pennylane_xqml.experiments.models import AmplitudeClassifier

    jax.config.update("jax_enable_x64", True)
    if model == "digits":
        X = load_digits().data / 16.0
        clf = AmplitudeClassifier(6, n_layers=2)
        return xqml.integrated_gradients(clf.qnode), X, (clf.weights,)
    iris = IrisQCL(n_layers=3)
    explainer = xqml.integrated_gradients(iris.qnode, target=0, n_steps=8, method="gausslegendre")
    return explainer, np.asarray(load_iris_split().X_train), (jnp.asarray(iris.weights),)


def rows(X, count):
    return X[np.arange(count) % len(X)]


def worker(args):
    """One configuration in this process; prints a JSON line."""
    import jax
    import jax.numpy as jnp

    import pennylane_xqml as xqml

    explainer, X, shared = build(args.model)
    X = rows(X, args.count)
    start = time.perf_counter()
    if args.mode == "loop":
        values = np.stack([np.asarray(explainer(jnp.asarray(x), *shared)) for x in X])
    elif args.mode == "unchunked":
        batched = jax.jit(jax.vmap(explainer, in_axes=(0,) + (None,) * len(shared)))
        values = np.asarray(batched(jnp.asarray(X), *shared))
    else:
        values = xqml.explain_batch(explainer, X, *shared, internal_batch_size=args.chunk)
    seconds = time.perf_counter() - start
    if args.save:
        np.save(args.save, values)
    peak = peak_rss_mib()
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "devices": jax.device_count()}))


def run(model, mode, count, chunk, devices=1, save=None):
    env = dict(os.environ)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    command = [sys.executable, __file__, "--worker", "--model", model, "--mode", mode,
               "--count", str(count), "--chunk", str(chunk)]  # fmt: skip
    if save:
        command += ["--save", save]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{model} {mode} {count} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--counts", nargs="+", type=int, default=[1000, 5000, 10000])
    parser.add_argument("--chunk", type=int, default=256, help="internal_batch_size")
    parser.add_argument("--loop-rows", type=int, default=50, help="rows of the naive loop")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("chunked", "unchunked", "loop"), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    print(f"{'model':7} {'mode':22} {'rows':>6} {'seconds':>8} {'expl/s':>9} {'peak MiB':>9}")
    tmp = tempfile.mkdtemp()
    for model in args.models:
        loop = run(model, "loop", args.loop_rows, args.chunk)
        loop_rate = args.loop_rows / loop["seconds"]
        print(f"{model:7} {'naive per-row loop':22} {args.loop_rows:6d} {loop['seconds']:8.2f} "
              f"{loop_rate:9.1f} {loop['peak_mib']:9.0f}")  # fmt: skip
        for count in args.counts:
            for mode, devices in (("chunked", 1), ("chunked", 2), ("unchunked", 1)):
                save = os.path.join(tmp, f"{model}_{mode}_{devices}_{count}.npy")
                result = run(model, mode, count, args.chunk, devices, save)
                label = f"{mode} ({devices} device{'s' if devices > 1 else ''})"
                rate = count / result["seconds"]
                print(f"{model:7} {label:22} {count:6d} {result['seconds']:8.2f} {rate:9.1f} "
                      f"{result['peak_mib']:9.0f}   x{rate / loop_rate:.0f} vs loop")  # fmt: skip
            single = np.load(os.path.join(tmp, f"{model}_chunked_1_{count}.npy"))
            sharded = np.load(os.path.join(tmp, f"{model}_chunked_2_{count}.npy"))
            whole = np.load(os.path.join(tmp, f"{model}_unchunked_1_{count}.npy"))
            print(f"{'':7} max |sharded - single| = {np.abs(sharded - single).max():.1e}, "
                  f"max |chunked - unchunked| = {np.abs(single - whole).max():.1e}")  # fmt: skip
    return None


if __name__ == "__main__":
    main()
