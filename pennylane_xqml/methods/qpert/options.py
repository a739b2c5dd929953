"""QPert's options, validated before any circuit runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import optax

from ...engine.torch_bridge import constant_options
from ...engine.validation import check_positive_int, is_int, is_real
from .losses import DEFAULT_COEFFICIENTS, LOSS_TERMS, MODES, default_schedule

FIDELITY_OPTIONS = ("circuit", "js", "auto", None)

# ---------------------------------------------------------------------------------------------
# validation (everything raises before any circuit runs)
# ---------------------------------------------------------------------------------------------


def check_number(value, name, positive=False):
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}.")


def check_names(mapping, what):
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"{what} must be a dict keyed by {LOSS_TERMS}, got {type(mapping).__name__}."
        )
    unknown = sorted(set(mapping) - set(LOSS_TERMS), key=str)
    if unknown:
        raise ValueError(f"Unknown {what} names {unknown}; expected some of {LOSS_TERMS}.")


def resolve_coefficients(coefficients=None):
    """:data:`DEFAULT_COEFFICIENTS` updated by ``coefficients`` (validated: known names,
    finite, non-negative).

    >>> resolve_coefficients({"l1": 0.1})["l1"]
    0.1
    """
    if coefficients is None:
        return dict(DEFAULT_COEFFICIENTS)
    check_names(coefficients, "coefficient")
    for name, value in coefficients.items():
        check_number(value, f"coefficients[{name!r}]")
    return {name: float(coefficients.get(name, DEFAULT_COEFFICIENTS[name])) for name in LOSS_TERMS}


def resolve_schedule(schedule=None, n_iter=1000):
    """:func:`default_schedule` of ``n_iter`` updated by ``schedule`` (start iterations).

    Starts must be integers >= 0 and keep the phase order
    ``target <= l1 <= fidelity <= entanglement`` and ``fidelity <= superposition``; a start
    ``>= n_iter`` switches its term off.

    >>> resolve_schedule({"l1": 0}, n_iter=100)
    {'target': 0, 'l1': 0, 'fidelity': 50, 'entanglement': 75, 'superposition': 75}
    """
    resolved = default_schedule(n_iter)
    if schedule is None:
        return resolved
    check_names(schedule, "schedule")
    for name, start in schedule.items():
        if not is_int(start):
            raise TypeError(f"schedule[{name!r}] must be an int iteration, got {start!r}.")
        if start < 0:
            raise ValueError(f"schedule[{name!r}] must be >= 0, got {start}.")
        resolved[name] = int(start)
    s = resolved
    if not (
        s["target"] <= s["l1"] <= s["fidelity"] <= s["entanglement"]
        and s["fidelity"] <= s["superposition"]
    ):
        raise ValueError(
            "The schedule must switch terms on in the paper's phase order target <= l1 <= "
            f"fidelity <= entanglement, superposition; got {resolved} (missing names take "
            f"default_schedule({n_iter}))."
        )
    return resolved


class QPertOptions(NamedTuple):
    background: np.ndarray
    target: int | None
    mode: str
    n_iter: int
    schedule: dict
    coefficients: dict
    n_masks: int
    learning_rate: float
    optimizer: optax.GradientTransformation | None  # as given; None means Adam(learning_rate)
    seed: int
    head: Callable | None
    fidelity: str | None
    argnums: int
    alpha: float


def _check_background(background):
    if background is None:
        raise ValueError("qpert_mask needs background rows (e.g. the training inputs).")
    try:
        array = np.asarray(background, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"background must be a numeric array: {error}") from error
    if array.ndim < 2:
        raise ValueError(
            f"background must hold rows shaped like one input, shape (n_rows, *input_shape); got "
            f"shape {array.shape} (use background[None] for a single row)."
        )
    if len(array) == 0:
        raise ValueError("background is empty; give at least one row.")
    if not np.all(np.isfinite(array)):
        raise ValueError("background contains NaN or inf.")
    return array


def validate_options(**kw):
    mode, fidelity = kw["mode"], kw["fidelity"]
    if mode not in MODES:
        raise ValueError(f"Unknown mode={mode!r}; expected one of {MODES}.")
    if fidelity not in FIDELITY_OPTIONS:
        raise ValueError(f"Unknown fidelity={fidelity!r}; expected one of {FIDELITY_OPTIONS}.")
    check_positive_int(kw["n_iter"], "n_iter")
    check_positive_int(kw["n_masks"], "n_masks")
    target = kw["target"]
    if target is not None and not is_int(target):
        raise TypeError(f"target must be an int class index or None, got {target!r}.")
    if not is_int(kw["seed"]):
        raise TypeError(f"seed must be an int, got {kw['seed']!r}.")
    if not is_int(kw["argnums"]) or kw["argnums"] < 0:
        raise TypeError(
            f"argnums must be one int >= 0 (the input argument), got {kw['argnums']!r}."
        )
    check_number(kw["learning_rate"], "learning_rate", positive=True)
    check_number(kw["alpha"], "alpha")
    optimizer = kw["optimizer"]
    if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {optimizer!r}.")
    head = kw["head"]
    if head is not None and not callable(head):
        raise TypeError(
            f"head must be callable (model output -> class probabilities), got {head!r}."
        )
    return QPertOptions(
        background=_check_background(
            constant_options({"background": kw["background"]}, "qpert_mask")["background"]
        ),
        target=None if target is None else int(target),
        mode=mode,
        n_iter=int(kw["n_iter"]),
        schedule=resolve_schedule(kw["schedule"], int(kw["n_iter"])),
        coefficients=resolve_coefficients(kw["coefficients"]),
        n_masks=int(kw["n_masks"]),
        learning_rate=float(kw["learning_rate"]),
        optimizer=optimizer,
        seed=int(kw["seed"]),
        head=head,
        fidelity=fidelity,
        argnums=int(kw["argnums"]),
        alpha=float(kw["alpha"]),
    )


def model_args(x, weights, argnums):
    weights = tuple(weights)
    return weights[:argnums] + (x,) + weights[argnums:]
