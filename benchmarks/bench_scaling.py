"""Benchmark: exact integrated gradients of amplitude-embedded models from 8 to 20 qubits.

For each number of qubits n and each simulator, prints the forward time of the QNode, the time
of one exact IG explanation (first call and steady state), their ratio, the completeness delta,
the process's peak memory, and the agreement with an independent closed form. A script, not a
test: it never asserts timings (the correctness checks live in ``tests/test_scale.py``).

Model: ``AmplitudeEmbedding(x, normalize=True)`` of ``2**n`` random positive features,
``StronglyEntanglingLayers`` (2 layers, weights from a fixed seed), ``<Z_0>``; NumPy inputs
(the QNode's ``interface="auto"``), analytic simulators. The explanation is
``xqml.integrated_gradients(model)`` with its defaults: ``method="auto"`` -> the exact closed
form, ``gradient="auto"`` -> the "adjoint" rule (one circuit ``StatePrep(v), U, Z_0, U†``
returning the state ``M v``), zero baseline.

Each (n, device) configuration runs in a fresh Python process, so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, read after the timings and before the reference
is computed) is its own. The reference ``IG = a ⊙ Re(M a)`` comes from three plain default.qubit
simulations (``qml.state()`` of ``U|a>``, ``Z_0`` applied with NumPy, ``qml.adjoint`` of the
template), the helper of ``tests/test_scale.py``.

Run::

    python benchmarks/bench_scaling.py                          # 8, 12, 16, 20 qubits, ~3 min
    python benchmarks/bench_scaling.py --qubits 8 12 --skip-default-above 0   # quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings

from bench_common import block, peak_rss_mib, print_markdown_table, time_repeated

TESTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests")
DEVICES = ("lightning.qubit", "default.qubit")


def time_calls(fn, min_time=2.0, max_reps=10):
    """(first call, median of the following calls, their number) in seconds."""
    t0 = time.perf_counter()
    block(fn())
    first = time.perf_counter() - t0
    return (first, *time_repeated(fn, min_time, max_reps))


def measure_one(n_qubits, device_name, layers, seed):
    """Everything for one configuration, in this process; returns a dict."""
    import jax  # pylint: disable=import-outside-toplevel

    jax.config.update("jax_enable_x64", True)
    import numpy as np  # pylint: disable=import-outside-toplevel
    import pennylane as qml  # pylint: disable=import-outside-toplevel

    import pennylane_xqml as xqml  # pylint: disable=import-outside-toplevel

    sys.path.insert(0, TESTS_DIR)
    from test_scale import reference_ig  # pylint: disable=import-outside-toplevel

    warnings.filterwarnings("ignore", category=UserWarning)
    rss_after_imports = peak_rss_mib()
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=qml.StronglyEntanglingLayers.shape(layers, n_qubits))
    x = rng.random(2**n_qubits)

    @qml.qnode(qml.device(device_name, wires=n_qubits))
    def model(x, weights):
        qml.AmplitudeEmbedding(x, wires=range(n_qubits), normalize=True)
        qml.StronglyEntanglingLayers(weights, wires=range(n_qubits))
        return qml.expval(qml.PauliZ(0))

    explained = xqml.integrated_gradients(model)
    with_delta = xqml.integrated_gradients(model, return_convergence_delta=True)
    tapes = explained.construct_batch(x, weights)
    gates = len(qml.StronglyEntanglingLayers(weights, wires=range(n_qubits)).decomposition())

    forward_first, forward, forward_reps = time_calls(lambda: model(x, weights))
    ig_first, ig, ig_reps = time_calls(lambda: explained(x, weights))
    _, ig_delta, _ = time_calls(lambda: with_delta(x, weights), min_time=0.0, max_reps=1)
    attributions, delta = with_delta(x, weights)
    peak = peak_rss_mib()

    reference = reference_ig(x, None, weights, n_qubits)
    error = float(np.max(np.abs(np.asarray(attributions) - reference)))
    return {
        "qubits": n_qubits, "device": device_name, "gates": gates, "circuits": len(tapes),
        "forward_first": forward_first, "forward": forward, "forward_reps": forward_reps,
        "ig_first": ig_first, "ig": ig, "ig_reps": ig_reps, "ig_delta": ig_delta,
        "delta": float(delta), "error": error, "rel_error": error / float(np.max(np.abs(reference))),
        "rss_imports": rss_after_imports, "rss_peak": peak,
    }  # fmt: skip


def run_isolated(n_qubits, device_name, layers, seed):
    """``measure_one`` in a fresh interpreter (own peak memory); returns its dict."""
    command = [sys.executable, os.path.abspath(__file__), "--one", str(n_qubits), device_name,
               "--layers", str(layers), "--seed", str(seed)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results):
    header = ("qubits", "device", "gates", "circuits", "forward s", "IG first s", "IG s",
              "IG/forward", "IG+delta s", "(IG+delta)/fwd", "compl. delta", "max|IG-ref|",
              "rel. to max", "peak RSS MiB")  # fmt: skip
    lines = [
        (str(r["qubits"]), r["device"], str(r["gates"]), str(r["circuits"]),
         f"{r['forward']:.3g}", f"{r['ig_first']:.3g}", f"{r['ig']:.3g}",
         f"{r['ig'] / r['forward']:.2f}", f"{r['ig_delta']:.3g}",
         f"{r['ig_delta'] / r['forward']:.2f}", f"{r['delta']:.1e}", f"{r['error']:.1e}",
         f"{r['rel_error']:.1e}", f"{r['rss_peak']:.0f} ({r['rss_imports']:.0f})")
        for r in results
    ]  # fmt: skip
    print_markdown_table(header, lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--qubits",
        type=int,
        nargs="+",
        default=[8, 12, 16, 20],
        help="numbers of qubits (default 8 12 16 20)",
    )
    parser.add_argument(
        "--devices",
        nargs="+",
        choices=DEVICES,
        default=list(DEVICES),
        help="simulators (default both)",
    )
    parser.add_argument(
        "--skip-default-above",
        type=int,
        default=None,
        metavar="N",
        help="run default.qubit only up to N qubits (~15x slower than lightning.qubit at 20)",
    )
    parser.add_argument("--layers", type=int, default=2, help="StronglyEntanglingLayers layers")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input and weights")
    parser.add_argument("--one", nargs=2, metavar=("QUBITS", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(n < 1 or n > 26 for n in args.qubits):
        parser.error(f"--qubits must be between 1 and 26, got {args.qubits}")
    if args.layers < 1:
        parser.error(f"--layers must be >= 1, got {args.layers}")

    if args.one:  # child process: one configuration, JSON on the last line
        print(json.dumps(measure_one(int(args.one[0]), args.one[1], args.layers, args.seed)))
        return

    import pennylane as qml  # pylint: disable=import-outside-toplevel

    started = time.perf_counter()
    print(
        f"pennylane_xqml IG scaling benchmark, {datetime.date.today()}, {os.cpu_count()} CPU "
        f"cores, {platform.processor() or platform.machine()}; PennyLane {qml.__version__}"
    )
    print(
        f"model: AmplitudeEmbedding(2**n, normalize=True) + StronglyEntanglingLayers"
        f"({args.layers} layers, seed {args.seed}) + <Z0>; zero baseline; one process per row"
    )
    print()
    results = []
    for n_qubits in args.qubits:
        for device_name in args.devices:
            limit = args.skip_default_above
            if device_name == "default.qubit" and limit is not None and n_qubits > limit:
                print(
                    f"  skipped default.qubit at {n_qubits} qubits (--skip-default-above {limit})"
                )
                continue
            result = run_isolated(n_qubits, device_name, args.layers, args.seed)
            print(
                f"  {n_qubits} qubits, {device_name}: forward {result['forward']:.3g} s, "
                f"IG {result['ig']:.3g} s",
                flush=True,
            )
            results.append(result)
    print()
    print_table(results)
    print()
    print(
        "gates: operations of the template's decomposition (Rot and CNOT); circuits: circuits "
        "per explanation without the delta (construct_batch)."
    )
    print(
        "forward s / IG s: median of repeated calls after a first call (IG first s); "
        "IG+delta s: one call with return_convergence_delta=True (two extra forward circuits)."
    )
    print(
        "max|IG-ref|: largest absolute difference to the independent state-sweep closed form; "
        "rel. to max: divided by max|IG|."
    )
    print(
        "peak RSS MiB: ru_maxrss of the configuration's own process after the timings "
        "(in parentheses: after importing jax, PennyLane and the package)."
    )
    print(f"Total wall time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
