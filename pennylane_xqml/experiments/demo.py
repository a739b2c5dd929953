"""The HATTRIQ experiment in one call: train amplitude classifiers, explain them exactly.

:func:`run_demo` reproduces the integrated-gradients experiment of HATTRIQ (arXiv 2510.02497)
on 4x4 Bars and Stripes (4 qubits) and on scikit-learn's 8x8 digits 0 vs 1 (6 qubits), with
this package's exact one-circuit form of IG, and compares circuit counts with HATTRIQ's.

Run it from the shell with ``xqml demo``, or from Python (tested in ``tests/test_demo.py``)::

    from pennylane_xqml.experiments.demo import run_demo
    rows = run_demo("xqml_output", quick=True, progress=False)
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from ..engine.core import ModelCall, resolve_gradient
from ..engine.inputs import enable_x64
from ..methods.integrated_gradients import integrated_gradients
from .data import bars_and_stripes, load_digits_pair
from .models import AmplitudeClassifier

__all__ = ["HATTRIQ_STEPS", "ROW_KEYS", "run_demo"]

HATTRIQ_STEPS = 50
"""Riemann steps HATTRIQ uses per input component (its cost: ``d × n_steps`` circuits)."""

ROW_KEYS = (
    "dataset",
    "qubits",
    "test_accuracy",
    "images_explained",
    "mean_abs_delta",
    "ms_per_explanation",
    "default_rule",
    "circuits_default",
    "circuits_hadamard_all",
    "circuits_hattriq",
)
"""Keys of each row :func:`run_demo` returns (and the columns of the table it prints)."""

_HEADERS = {
    "dataset": "dataset",
    "qubits": "qubits",
    "test_accuracy": "test acc",
    "images_explained": "images",
    "mean_abs_delta": "mean |delta|",
    "ms_per_explanation": "ms/expl",
    "default_rule": "default rule",
    "circuits_default": "circ (default)",
    "circuits_hadamard_all": "circ (hadamard_all)",
    "circuits_hattriq": f"circ (HATTRIQ, {HATTRIQ_STEPS} steps)",
}


def _bars_and_stripes(quick):
    """Train on noisy draws of the 28 patterns, test on fresh noisy draws (other seed)."""
    X_train, y_train = bars_and_stripes(4, n_samples=120 if quick else 240, noise=0.1, seed=1)
    X_test, y_test = bars_and_stripes(4, n_samples=40 if quick else 100, noise=0.1, seed=2)
    return {
        "name": "bars_and_stripes",
        "label": "Bars and Stripes 4x4",
        "classes": ("bar", "stripe"),
        "image_shape": (4, 4),
        "n_qubits": 4,
        "n_layers": 3,
        "epochs": 8 if quick else 15,
        "data": (X_train, X_test, y_train, y_test),
    }


def _digits(quick):
    X, y = load_digits_pair((0, 1))
    data = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    return {
        "name": "digits",
        "label": "digits 0 vs 1 (8x8)",
        "classes": ("0", "1"),
        "image_shape": (8, 8),
        "n_qubits": 6,
        "n_layers": 2,
        "epochs": 2 if quick else 5,
        "data": data,
    }


def _explain(spec, quick, progress):
    """Train one classifier and explain its test images; returns a table row and the figure data."""
    X_train, X_test, y_train, y_test = spec["data"]
    clf = AmplitudeClassifier(spec["n_qubits"], n_layers=spec["n_layers"], seed=0)
    clf.fit(X_train, y_train, epochs=spec["epochs"], learning_rate=0.05, progress=progress)
    accuracy = clf.score(X_test, y_test)

    explained = integrated_gradients(clf.qnode, baselines=0.0, return_convergence_delta=True)
    explain = jax.jit(explained)
    n_images = min(len(X_test), 16 if quick else len(X_test))
    X_explain = np.asarray(X_test[:n_images], dtype=np.float64)
    weights = clf.weights

    jax.block_until_ready(explain(X_explain[0], weights))  # warm-up: compile once
    attributions, deltas = [], []
    start = time.perf_counter()
    for x in tqdm(X_explain, desc=f"explaining {spec['name']}", disable=not progress):
        attr, delta = explain(x, weights)
        attributions.append(attr)
        deltas.append(delta)
    jax.block_until_ready(attributions)
    elapsed = time.perf_counter() - start
    attributions, deltas = np.asarray(attributions), np.asarray(deltas)

    # circuits of the attribution itself (the completeness delta adds two forward circuits)
    x0 = X_explain[0]
    default = integrated_gradients(clf.qnode, baselines=0.0)
    hardware = integrated_gradients(clf.qnode, baselines=0.0, gradient="hadamard_all")
    d = 2 ** spec["n_qubits"]
    row = {
        "dataset": spec["name"],
        "qubits": spec["n_qubits"],
        "test_accuracy": accuracy,
        "images_explained": n_images,
        "mean_abs_delta": float(np.mean(np.abs(deltas))),
        "ms_per_explanation": 1e3 * elapsed / n_images,
        "default_rule": _default_rule(clf.qnode, x0, weights),
        "circuits_default": len(default.construct_batch(x0, weights)),
        "circuits_hadamard_all": len(hardware.construct_batch(x0, weights)),
        "circuits_hattriq": d * HATTRIQ_STEPS,
    }
    return row, (X_test[:n_images], y_test[:n_images], attributions)


def _default_rule(qnode, x, weights):
    """What ``gradient="auto"`` resolves to for this model and device."""
    return resolve_gradient(ModelCall(qnode, (x, weights), {}, 0), "auto")


def _figure(spec, images, labels, attributions, path):
    from . import plotting

    picks = [i for c in (0, 1) for i in np.flatnonzero(labels == c)[:3]]
    names = spec["classes"]
    titles = [f"{names[labels[i]]}" for i in picks]
    fig = plotting.plot_attribution_grid(
        images[picks],
        attributions[picks],
        spec["image_shape"],
        titles=titles,
        path=path,
        cbar_label=r"IG of $\langle Z_0\rangle$" + f"\n(+ {names[0]}, − {names[1]})",
        suptitle=f"{spec['label']}: exact integrated gradients (amplitude space, zero baseline)",
    )
    plotting.plt.close(fig)


def format_table(rows):
    """The rows of :func:`run_demo` as a plain-text table."""
    cells = [[_HEADERS[k] for k in ROW_KEYS]]
    for row in rows:
        cells.append(
            [
                row["dataset"],
                str(row["qubits"]),
                f"{row['test_accuracy']:.3f}",
                str(row["images_explained"]),
                f"{row['mean_abs_delta']:.1e}",
                f"{row['ms_per_explanation']:.2f}",
                row["default_rule"],
                str(row["circuits_default"]),
                str(row["circuits_hadamard_all"]),
                str(row["circuits_hattriq"]),
            ]
        )
    widths = [max(len(r[j]) for r in cells) for j in range(len(ROW_KEYS))]
    lines = [
        "  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths)))
        for r in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def run_demo(output_dir="xqml_output", quick=False, progress=True):
    """Train amplitude classifiers on Bars and Stripes and digits, explain them with exact IG.

    For each data set: train an :class:`~pennylane_xqml.experiments.models.AmplitudeClassifier`, explain
    test images with :func:`~pennylane_xqml.methods.integrated_gradients` (zero amplitude baseline,
    exact closed form, completeness delta), time the ``jax.jit``-compiled explanation after a
    warm-up call, count the circuits one explanation needs (default rule, the hardware rule
    ``gradient="hadamard_all"``, and HATTRIQ's ``d × 50``), print a table and write the heatmaps
    ``bars_and_stripes_ig.png`` and ``digits_ig.png`` to ``output_dir``.

    Args:
        output_dir (str): where the PNG files go (created if missing).
        quick (bool): fewer training epochs and explained images (for tests, < 30 s).
        progress (bool): show tqdm progress bars.

    Returns:
        list[dict]: one row per data set with the keys :data:`ROW_KEYS`: ``dataset``,
        ``qubits``, ``test_accuracy``, ``images_explained``, ``mean_abs_delta``,
        ``ms_per_explanation``, ``default_rule`` (what ``gradient="auto"`` picked),
        ``circuits_default``, ``circuits_hadamard_all`` (one per Pauli word of the observable),
        ``circuits_hattriq``. Circuit counts are those of the attribution; asking for the
        completeness delta adds two forward circuits.

    Example (tested in ``tests/test_demo.py``)::

        rows = run_demo("/tmp/xqml_output", quick=True, progress=False)
        rows[0]["circuits_hadamard_all"]  # 1: one Hadamard test for PauliZ(0)
    """
    enable_x64()
    os.makedirs(output_dir, exist_ok=True)
    rows = []
    for spec in (_bars_and_stripes(quick), _digits(quick)):
        row, (images, labels, attributions) = _explain(spec, quick, progress)
        _figure(
            spec, images, labels, attributions, os.path.join(output_dir, f"{spec['name']}_ig.png")
        )
        rows.append(row)
    print(format_table(rows))
    return rows
