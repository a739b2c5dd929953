"""Checks of user input shared by every module: one place for "an int but not a bool",
positive counts, flags, seeds, finite arrays and JAX tracers.

Errors are raised before any circuit runs, with the option's name in the message.

>>> is_int(3), is_int(True), is_int(3.0)
(True, False, False)
>>> check_positive_int(0, "n_samples")
Traceback (most recent call last):
...
ValueError: n_samples must be a positive integer (>= 1), got 0.
"""

from __future__ import annotations

import numbers

import numpy as np
import pennylane as qml


def is_int(value) -> bool:
    """A Python or NumPy integer, and not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A real number (Python or NumPy), and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


_PROGRAM_CAPTURE = (
    "{what} does not support PennyLane's program capture, which is on "
    "(qml.capture.enable()): explanations build and run tapes, and with capture on PennyLane "
    "traces the QNode into a plxpr program instead, so the results would not be the "
    "explanation. Turn it off with qml.capture.disable() before explaining (nothing has run)."
)


def check_no_program_capture(what: str) -> None:
    """Refuse, before anything is traced or run, a call made while PennyLane's program capture
    (``qml.capture.enable()``) is on: ``NotImplementedError`` naming ``qml.capture.disable()``."""
    capture = getattr(qml, "capture", None)
    if capture is not None and capture.enabled():
        raise NotImplementedError(_PROGRAM_CAPTURE.format(what=what))


def check_positive_int(value, name: str) -> int:
    """``value`` as an ``int`` when it is an integer >= 1; else ``ValueError``."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}.")
    return int(value)


def check_bool(value, name: str) -> bool:
    """``value`` when it is ``True`` or ``False``; else ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}.")
    return value


def check_seed(seed) -> int:
    """An integer seed (explanations are reproducible); else ``TypeError``."""
    if not is_int(seed):
        raise TypeError(f"seed must be an int (explanations are reproducible), got {seed!r}.")
    return int(seed)


def precision_bits(dtype) -> int:
    """64 for 64-bit floats and 128-bit complex numbers, 32 for anything narrower."""
    dtype = np.dtype(dtype)
    bits = dtype.itemsize * (4 if dtype.kind == "c" else 8)
    return 64 if bits >= 64 else 32


def is_tracer(value) -> bool:
    """Whether ``value`` is a JAX tracer (under ``jit``, ``vmap``, ``grad``...)."""
    import jax  # pylint: disable=import-outside-toplevel

    return isinstance(value, jax.core.Tracer)


def leaves(value) -> list:
    """The array leaves of a pytree (``value`` itself for a leaf)."""
    import jax  # pylint: disable=import-outside-toplevel

    return jax.tree_util.tree_leaves(value)


def check_finite(x, name: str) -> None:
    """Raise when concrete ``x`` is not numeric or holds NaN/inf (tracers are not checked)."""
    if qml.math.is_abstract(x):
        return
    values = np.asarray(qml.math.unwrap(x))
    if not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {values.dtype}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or inf; attributions need finite values.")
