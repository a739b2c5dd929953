"""Import time of ``pennylane_xqml`` against its baseline, ``import pennylane, jax``.

Each measurement is a fresh interpreter (``python -c``), alternating baseline and package so
that machine load hits both alike; prints the medians, their difference and ratio.

    python benchmarks/bench_import.py            # 7 rounds
    python benchmarks/bench_import.py --rounds 15
"""

import argparse
import statistics
import subprocess
import sys

BASELINE = "import pennylane, jax"
PACKAGE = "import pennylane, jax; import pennylane_xqml"
TIMER = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"


def seconds(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    seconds(PACKAGE)  # warm the bytecode caches
    base, package = [], []
    for _ in range(rounds):
        base.append(seconds(BASELINE))
        package.append(seconds(PACKAGE))
    b, p = statistics.median(base), statistics.median(package)
    print(f"import pennylane, jax            : {b:.3f} s (median of {rounds})")
    print(f"... then import pennylane_xqml   : {p:.3f} s")
    print(f"pennylane_xqml adds              : {p - b:+.3f} s  (ratio {p / b:.2f})")


if __name__ == "__main__":
    main()
