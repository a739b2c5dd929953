"""Helpers for checking explanations: tolerances that follow the dtype, and "no circuit ran".

Used by this package's tests, and useful for anyone checking attributions against a reference.

>>> import numpy as np
>>> tolerances(np.float64)
(1e-08, 1e-08)
>>> assert_close(np.float32([1.0, 2.0]), [1.00002, 2.0])
"""

from __future__ import annotations

import contextlib

import numpy as np
import pennylane as qml

from .engine.inputs import x64_mode
from .engine.validation import precision_bits

#: ``(rtol, atol)`` by precision: 1e-8 in float64; 1e-4 relative in float32 (JAX's default).
TOLERANCES = {64: (1e-8, 1e-8), 32: (1e-4, 1e-4)}


def tolerances(dtype) -> tuple[float, float]:
    """``(rtol, atol)`` for values of ``dtype`` (64-bit, or 32-bit and lower)."""
    return TOLERANCES[precision_bits(dtype)]


def assert_close(actual, expected, dtype=None, rtol=None, atol=None, *, rtol64=None, atol64=None):
    """Assert ``actual ≈ expected`` with tolerances chosen by ``dtype`` (default: the lower
    precision of ``actual`` and ``expected``). In float32 ``atol`` is relative to the largest
    expected magnitude, so small components are compared on the vector's own scale.

    ``rtol``/``atol`` replace the tolerances in every precision (for statistical bounds, say);
    ``rtol64``/``atol64`` replace them in 64-bit only, so a check can be stricter than 1e-8 in
    float64 and still follow the dtype in float32.

    >>> assert_close(np.float64(1.0), 1.0 + 1e-9, rtol64=0, atol64=1e-12)
    Traceback (most recent call last):
    ...
    AssertionError: ...
    >>> assert_close(np.float32(1.0), 1.0 + 1e-9, rtol64=0, atol64=1e-12)  # float32: 1e-4 relative
    """
    actual = np.asarray(qml.math.unwrap(actual))
    expected = np.asarray(qml.math.unwrap(expected))
    if dtype is None:
        kinds = [a.dtype for a in (actual, expected) if a.dtype.kind in "fc"]
        dtype = min(kinds, key=precision_bits) if kinds else np.float64
    default_rtol, default_atol = tolerances(dtype)
    if precision_bits(dtype) == 64:
        default_rtol = default_rtol if rtol64 is None else rtol64
        default_atol = default_atol if atol64 is None else atol64
    if precision_bits(dtype) == 32 and expected.size:
        default_atol *= max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(
        actual,
        expected,
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
    )


@contextlib.contextmanager
def jax_precision(x64: bool):
    """Run the block with JAX's 64-bit mode on or off (``False``: JAX's default float32).

    JAX's compilation caches are cleared on entry and exit: executables compiled in one
    precision must not be reused in the other (JAX can otherwise hand a float32 executable
    float64 buffers when the mode is switched inside one process)."""
    import jax  # pylint: disable=import-outside-toplevel

    jax.clear_caches()
    try:
        with x64_mode(x64):
            yield
    finally:
        jax.clear_caches()


@contextlib.contextmanager
def no_circuit_runs(*devices):
    """Fail if any circuit executes on ``devices`` inside the block (use it around a call that
    must be refused before any circuit runs)."""
    with contextlib.ExitStack() as stack:
        trackers = [stack.enter_context(qml.Tracker(device)) for device in devices]
        yield
    ran = sum(tracker.totals.get("executions", 0) for tracker in trackers)
    assert ran == 0, f"{ran} circuit(s) ran, expected none"
