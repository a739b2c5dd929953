"""``qml.qjit(explained)`` against the uncompiled explanation: compile time and repeated calls.

Runs in the Catalyst environment only (``bash scripts/catalyst/setup_venv.sh`` first)::

    PYTHONPATH=$PWD /tmp/catalyst-venv/bin/python benchmarks/bench_catalyst.py
    PYTHONPATH=$PWD /tmp/catalyst-venv/bin/python benchmarks/bench_catalyst.py --qubits 4

Models on lightning.qubit (float64), two ``StronglyEntanglingLayers``, observable
``0.7 Z0 + 0.4 X1 Y2`` (two Pauli words): an amplitude model (``2**n`` features) and an angle
model (``n`` features, RX). For each explanation, in one process:

* ``eager``: the explanation called as usual (``explained(x, w)``, median of repeats after a
  first call): what a user gets without compiling;
* ``jax.jit``: ``jax.jit(explained)``, first call (trace + XLA compile) and median of repeats;
* ``qjit``: ``qml.qjit(explained)``, first call (trace + Catalyst compile) and median.

Printed: the times and the ratios ``qjit first / eager``, ``eager / qjit`` (speed-up of a
repeated call) and ``jax.jit / qjit``. Also checks that the compiled result equals the eager
one (1e-10). Nothing else is asserted; the machine is shared, so absolute times are rough.
"""

from __future__ import annotations

import argparse
import time

from bench_common import block, print_markdown_table, time_repeated


def first_call(fn, *args):
    """Seconds of the first call (tracing and compilation included) and its result."""
    start = time.perf_counter()
    result = block(fn(*args))
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per median")
    opts = parser.parse_args()

    import jax  # pylint: disable=import-outside-toplevel

    jax.config.update("jax_enable_x64", True)
    import numpy as np  # pylint: disable=import-outside-toplevel
    import pennylane as qml  # pylint: disable=import-outside-toplevel

    import pennylane_xqml as xqml  # pylint: disable=import-outside-toplevel

    n = opts.qubits
    wires = list(range(n))
    dev = qml.device("lightning.qubit", wires=n)
    obs = qml.sum(0.7 * qml.Z(0), 0.4 * qml.X(1 % n) @ qml.Y(2 % n))

    @qml.qnode(dev)
    def amplitude_model(x, w):
        qml.AmplitudeEmbedding(x, wires=wires, normalize=True)
        qml.StronglyEntanglingLayers(w, wires=wires)
        return qml.expval(obs)

    @qml.qnode(dev)
    def angle_model(x, w):
        qml.AngleEmbedding(x, wires=wires)
        qml.StronglyEntanglingLayers(w, wires=wires)
        return qml.expval(obs)

    rng = np.random.default_rng(7)
    w = rng.normal(size=qml.StronglyEntanglingLayers.shape(2, n))
    amp, ang = (rng.normal(size=2**n), w), (rng.normal(size=n), w)
    cases = [
        ("IG exact, hadamard_all (amplitude)",
         xqml.integrated_gradients(amplitude_model, gradient="hadamard_all"), amp),
        ("saliency, parameter-shift (angle)",
         xqml.saliency(angle_model, gradient="parameter-shift", abs=False), ang),
        ("feature_ablation (angle)", xqml.feature_ablation(angle_model), ang),
        ("shapley_values (angle)", xqml.shapley_values(angle_model), ang),
        ("feature_ablation (amplitude)", xqml.feature_ablation(amplitude_model), amp),
    ]  # fmt: skip
    header = ["explanation", "circuits", "eager", "jax.jit first", "jax.jit", "qjit first",
              "qjit", "qjit first / eager", "eager / qjit", "jax.jit / qjit", "max|diff|"]  # fmt: skip
    lines = []
    start = time.perf_counter()
    for name, explained, args in cases:
        circuits = len(explained.plan(*args).tapes)
        _, eager_result = first_call(explained, *args)
        eager, _ = time_repeated(lambda e=explained, a=args: e(*a), min_time=opts.min_time)
        jitted = jax.jit(explained)
        jit_first, _ = first_call(jitted, *args)
        jit_steady, _ = time_repeated(lambda f=jitted, a=args: f(*a), min_time=opts.min_time)
        compiled = qml.qjit(explained)
        qjit_first, result = first_call(compiled, *args)
        qjit_steady, _ = time_repeated(lambda f=compiled, a=args: f(*a), min_time=opts.min_time)
        diff = float(np.max(np.abs(np.asarray(result) - np.asarray(eager_result))))
        lines.append([name, str(circuits), f"{eager * 1e3:.1f} ms", f"{jit_first:.2f} s",
                      f"{jit_steady * 1e3:.1f} ms", f"{qjit_first:.2f} s",
                      f"{qjit_steady * 1e3:.2f} ms", f"{qjit_first / eager:.0f}x",
                      f"{eager / qjit_steady:.0f}x", f"{jit_steady / qjit_steady:.0f}x",
                      f"{diff:.1e}"])  # fmt: skip
        if diff > 1e-10:
            print(f"WARNING: {name}: qjit differs from the eager explanation by {diff:.1e}")
    print(f"lightning.qubit, {n} qubits, float64; total {time.perf_counter() - start:.0f} s")
    print_markdown_table(header, lines)


if __name__ == "__main__":
    main()
