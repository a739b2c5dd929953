"""Helpers shared by the benchmark scripts: timing, peak memory, markdown tables."""

from __future__ import annotations

import resource
import statistics
import time


def block(tree):
    """Wait for every JAX array in ``tree`` (asynchronous dispatch), then return it."""
    import jax  # pylint: disable=import-outside-toplevel  (scripts import JAX late, on purpose)

    return jax.tree_util.tree_map(
        lambda leaf: leaf.block_until_ready() if hasattr(leaf, "block_until_ready") else leaf, tree
    )


def time_repeated(fn, min_time=1.0, max_reps=50):
    """Median wall time of ``fn()`` over repeats (at least one; stop after ``min_time`` s)."""
    times, start = [], time.perf_counter()
    while len(times) < max_reps:
        t0 = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > min_time:
            break
    return statistics.median(times), len(times)


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_markdown_table(header, lines):
    """Print rows of strings as a markdown table with aligned columns."""
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    print(fmt.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print(fmt.format(*line))
