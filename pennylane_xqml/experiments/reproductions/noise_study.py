"""``xqml reproduce noise-study``: how attributions degrade on noisy devices, and whether ZNE helps.

Two small models, explained by every hardware-ready method through the public transforms:

* **amplitude**: ``AmplitudeEmbedding`` of 8 features on 3 qubits (normalised) and two
  ``StronglyEntanglingLayers`` with seeded weights, output ``<Z_0>``. Methods: exact integrated
  gradients by the one-circuit Hadamard test (``gradient="hadamard_all"``, zero baseline; one
  more wire for the ancilla) and feature ablation (zero baseline).
* **angle**: :class:`~pennylane_xqml.experiments.synthetic.FourierPQC` (4 qubits, ``RY(x_i)`` encodings,
  2 layers) with its seeded initial weights (untrained: only the agreement of noisy and
  noiseless explanations of the *same* model is measured). Methods: saliency (signed, parameter
  shift), integrated gradients (parameter shift, 4 Gauss-Legendre points, zero baseline),
  Taylor-Fourier (root = 0), feature ablation and exact Shapley values (zero baseline), and
  QPert's compute-uncompute :func:`~pennylane_xqml.methods.qpert.circuit_fidelity` of ``x`` with 4
  masked copies ``m ⊙ x`` (masks seeded; reference: the state fidelity).

Devices (:mod:`pennylane_xqml.noise`): ``default.mixed`` with depolarising noise ``p`` after
every gate (a sweep of ``p``, analytic, and a sweep of shots at one ``p``) and Qiskit Aer with
the ``FakeManilaV2`` snapshot's noise, coupling map and basis gates (sweep of shots; with and
without its readout errors, to separate gate noise from readout noise), each without and with
zero-noise extrapolation (``ZNE()``: scale factors 1, 3, 5, Richardson).

Scores per setting, method and instance, averaged over instances, against the noiseless
attribution of the same instance on ``default.qubit``:

* ``spearman``: :func:`~pennylane_xqml.metrics.spearman` rank correlation (1 = same ranking);
* ``rel_error``: ``‖a - a_ref‖ / ‖a_ref‖``;
* ``auc_diff``: AUC-Difference (:func:`~pennylane_xqml.metrics.insertion_deletion`, zero
  baseline) of the noisy attribution, scored on the **noiseless** model, next to
  ``auc_diff_ref``, that of the noiseless attribution (not defined for the fidelity rows).

Output: ``noise_study.csv`` / ``noise_study.json`` (one row per setting x method) and
``noise_study.png`` in ``output_dir``, and a printed table with the seconds each explanation
batch took. Full run: 4 instances, ``p ∈`` :data:`P_VALUES`, shots :data:`SHOTS`.
``quick=True`` (tests, notebook; about 30 s): 2 instances, every method at ``p = 0.01`` and
``0.04`` (analytic), and :data:`QUICK_METHODS` with ZNE, with 2000 shots and on the fake
backend (20000 shots; with ZNE only integrated gradients).

All inputs are NumPy arrays: ``default.mixed`` then simulates with NumPy; with JAX arrays every
gate and channel is a separate JAX dispatch, 5-20 times slower here. The noiseless references
run on ``default.qubit`` with each method's default rule (adjoint for amplitude gradients,
parameter shift for angle gradients with NumPy inputs, :func:`~pennylane_xqml.methods.qpert.state_fidelity`
for QPert's fidelity).
"""

from __future__ import annotations

import csv
import json
import os
import time
from typing import NamedTuple

import numpy as np
import pennylane as qml

from ... import (
    feature_ablation,
    integrated_gradients,
    metrics,
    saliency,
    shapley_values,
    taylor_fourier,
)
from ...engine.inputs import enable_x64
from ...methods import qpert
from ...noise import ZNE, depolarizing_device, fake_backend_device, on_device
from ..synthetic import FourierPQC, SyntheticTask

N_AMPLITUDE_QUBITS = 3
N_ANGLE_QUBITS = 4
N_MASKS = 4
P_VALUES = (0.0, 0.001, 0.003, 0.01, 0.03)
SHOTS = (1000, 10000, 100000)
FAKE_BACKEND = "FakeManilaV2"
COLUMNS = (
    "backend", "p", "shots", "zne", "model", "method",
    "spearman", "rel_error", "auc_diff", "auc_diff_ref", "seconds",
)  # fmt: skip


class Setting(NamedTuple):
    """One noisy device configuration; ``make(wires)`` builds its device; ``methods``: the
    names of the methods run on it (``None``: all)."""

    backend: str  # "default.mixed" or the fake backend's name (+ " (no readout error)")
    p: float | None  # depolarising probability (default.mixed only)
    shots: int | None
    zne: bool
    make: object
    methods: tuple | None = None


# ---------------------------------------------------------------------------------------------
# models and methods
# ---------------------------------------------------------------------------------------------


class Case(NamedTuple):
    """A model with its instances: ``qnode(x, weights)``, a noiseless scalar ``score(X)`` for
    insertion/deletion, and ``points(x)``, the input in attribution space."""

    qnode: object
    weights: object
    X: object
    n_wires: int  # wires a noisy device needs (the Hadamard test's ancilla included)
    score: object
    points: object


def amplitude_case(n_instances, seed=0):
    """The 3-qubit amplitude model; its score is the quadratic form ``aᵀ Re(M) a``."""
    n = N_AMPLITUDE_QUBITS
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=qml.StronglyEntanglingLayers.shape(2, n))
    X = rng.normal(size=(n_instances, 2**n))

    @qml.qnode(qml.device("default.qubit", wires=n), interface="jax")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(n), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(n))
        return qml.expval(qml.Z(0))

    unitary = qml.matrix(qml.StronglyEntanglingLayers(weights, wires=range(n)), wire_order=range(n))
    quadratic = np.real(unitary.conj().T @ qml.matrix(qml.Z(0), wire_order=range(n)) @ unitary)

    def score(A):
        A = np.asarray(A)
        return np.einsum("ni,ij,nj->n", A, quadratic, A)

    def points(x):
        return np.asarray(x) / np.linalg.norm(x)

    return Case(model, weights, X, n + 1, score, points)


def angle_case(n_instances, seed=0):
    """The untrained 4-qubit FourierPQC on inputs of the synthetic task."""
    model = FourierPQC(n_qubits=N_ANGLE_QUBITS, n_layers=2, seed=seed)
    X, _ = SyntheticTask(d=N_ANGLE_QUBITS).data(n_instances, seed=seed + 1)
    return Case(model.qnode, np.asarray(model.weights), X, N_ANGLE_QUBITS, model, np.asarray)


def _masks(d, seed=0):
    return np.random.default_rng(seed).uniform(0.2, 1.0, size=(N_MASKS, d))


def _fidelities(qnode, masks, exact=False):
    """QPert's fidelity of ``x`` with each masked copy ``m ⊙ x``: measured by the
    compute-uncompute circuit, or (``exact``) from the noiseless state vectors."""
    fidelity = qpert.state_fidelity if exact else qpert.circuit_fidelity

    def explain(x, w):
        return np.array([fidelity(qnode, x, m * x, w) for m in masks])

    return explain


def methods(kind, qnode, noisy=True):
    """``{name: explain(x, weights)}`` for a model of ``kind`` ("amplitude" or "angle").

    ``noisy=False`` builds the noiseless reference of the same quantities (default gradient
    rules; the state-vector fidelity).
    """
    if kind == "amplitude":
        rule = "hadamard_all" if noisy else "auto"
        return {
            "IG (Hadamard test)": integrated_gradients(qnode, baselines=0.0, gradient=rule),
            "Feature ablation": feature_ablation(qnode, baselines=0.0),
        }
    rule = "parameter-shift" if noisy else "auto"
    zero = np.zeros(N_ANGLE_QUBITS)
    return {
        "Saliency (shift)": saliency(qnode, abs=False, gradient=rule),
        "IG (shift)": integrated_gradients(qnode, baselines=0.0, n_steps=4, gradient=rule),
        "Taylor-Fourier": taylor_fourier(qnode, root=zero),
        "Feature ablation": feature_ablation(qnode, baselines=0.0),
        "Shapley (exact)": shapley_values(qnode, background=zero[None]),
        "QPert fidelity": _fidelities(qnode, _masks(N_ANGLE_QUBITS), exact=not noisy),
    }


# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------


QUICK_METHODS = ("IG (Hadamard test)", "Saliency (shift)", "QPert fidelity")
"""The methods ``quick=True`` runs on its ZNE, shots and fake-backend settings (on the fake
backend with ZNE only the first: there every circuit is a separate Aer job of 0.1-0.3 s)."""


def settings(quick=False, seed=0):
    """The device configurations of the study (see the module docstring)."""

    def mixed(p, zne):
        return lambda wires: depolarizing_device(wires, p, zne=ZNE() if zne else None, seed=seed)

    def aer(zne, readout_error=True):
        return lambda wires: fake_backend_device(
            wires, zne=ZNE() if zne else None, seed=seed, readout_error=readout_error
        )

    if quick:
        subset = QUICK_METHODS
        return [
            Setting("default.mixed", 0.01, None, False, mixed(0.01, False)),
            Setting("default.mixed", 0.04, None, False, mixed(0.04, False)),
            Setting("default.mixed", 0.01, None, True, mixed(0.01, True), subset),
            Setting("default.mixed", 0.01, 2000, False, mixed(0.01, False), subset),
            Setting(FAKE_BACKEND, None, 20000, False, aer(False), subset),
            Setting(FAKE_BACKEND, None, 20000, True, aer(True), subset[:1]),
        ]
    out = []
    for zne in (False, True):
        out += [Setting("default.mixed", p, None, zne, mixed(p, zne)) for p in P_VALUES]
        out += [Setting("default.mixed", 0.01, s, zne, mixed(0.01, zne)) for s in SHOTS[:2]]
        out += [Setting(FAKE_BACKEND, None, s, zne, aer(zne)) for s in SHOTS]
        out.append(
            Setting(f"{FAKE_BACKEND} (no readout error)", None, SHOTS[-1], zne, aer(zne, False))
        )
    return out


# ---------------------------------------------------------------------------------------------
# the study
# ---------------------------------------------------------------------------------------------


def _scores(case, attributions, references, is_attribution):
    rho = [metrics.spearman(a, r) for a, r in zip(attributions, references)]
    errors = [np.linalg.norm(a - r) / np.linalg.norm(r) for a, r in zip(attributions, references)]
    row = {"spearman": float(np.mean(rho)), "rel_error": float(np.mean(errors))}
    if is_attribution:
        points = [case.points(x) for x in np.asarray(case.X)]

        def auc(values):
            return float(np.mean([
                metrics.insertion_deletion(case.score, p, a, np.zeros_like(p))["auc_difference"]
                for p, a in zip(points, values)
            ]))  # fmt: skip

        row["auc_diff"], row["auc_diff_ref"] = auc(attributions), auc(references)
    else:
        row["auc_diff"] = row["auc_diff_ref"] = float("nan")
    return row


def _explain_all(explain, case):
    return np.stack([np.asarray(explain(x, case.weights)) for x in case.X])


def run(output_dir="xqml_output", quick=False, progress=True):
    """Run the study; returns ``{"rows", "table", "references", "csv", "json", "figure"}``."""
    enable_x64()
    os.makedirs(output_dir, exist_ok=True)
    n_instances = 2 if quick else 4
    cases = {"amplitude": amplitude_case(n_instances), "angle": angle_case(n_instances)}
    references = {
        (kind, name): _explain_all(explain, case)
        for kind, case in cases.items()
        for name, explain in methods(kind, case.qnode, noisy=False).items()
    }
    rows = []
    for setting in settings(quick):
        for kind, case in cases.items():
            qnode = on_device(case.qnode, setting.make(case.n_wires), shots=setting.shots)
            for name, explain in methods(kind, qnode).items():
                if setting.methods is not None and name not in setting.methods:
                    continue
                start = time.perf_counter()
                values = _explain_all(explain, case)
                seconds = time.perf_counter() - start
                row = {
                    "backend": setting.backend, "p": setting.p, "shots": setting.shots,
                    "zne": setting.zne, "model": kind, "method": name,
                    **_scores(case, values, references[kind, name], name != "QPert fidelity"),
                    "seconds": seconds,
                }  # fmt: skip
                rows.append(row)
                if progress:
                    print(_format_row(row), flush=True)
    table = format_table(rows)
    print(table)
    paths = _write(rows, output_dir)
    paths["figure"] = _figure(rows, output_dir)
    print(f"table written to {paths['csv']} and {paths['json']}, figure to {paths['figure']}")
    return {"rows": rows, "table": table, "references": references, **paths}


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------


def _format_row(row):
    p = "-" if row["p"] is None else f"{row['p']:g}"
    shots = "exact" if row["shots"] is None else str(row["shots"])
    return (
        f"{row['backend']:<32}{p:>7}{shots:>8}{'yes' if row['zne'] else 'no':>5}  "
        f"{row['method']:<20}{row['spearman']:>9.3f}{row['rel_error']:>10.3f}"
        f"{row['auc_diff']:>10.3f}{row['auc_diff_ref']:>10.3f}{row['seconds']:>9.2f}"
    )


def format_table(rows):
    """The rows as a text table (``auc_diff_ref``: the noiseless attribution's AUC-Diff)."""
    header = (
        f"{'backend':<32}{'p':>7}{'shots':>8}{'ZNE':>5}  {'method':<20}{'Spearman':>9}"
        f"{'rel.err':>10}{'AUC-Diff':>10}{'(ref)':>10}{'seconds':>9}"
    )
    return "\n".join([header, "-" * len(header), *(_format_row(r) for r in rows)])


def _write(rows, output_dir):
    csv_path = os.path.join(output_dir, "noise_study.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    json_path = os.path.join(output_dir, "noise_study.json")
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=1)
    return {"csv": csv_path, "json": json_path}


def _figure(rows, output_dir):
    """Left: Spearman vs p on default.mixed (analytic); right: relative error on every
    setting at the largest shot count, without and with ZNE."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    sweep = [r for r in rows if r["backend"] == "default.mixed" and r["shots"] is None]
    names = sorted({(r["model"], r["method"]) for r in sweep})
    for j, (model, method) in enumerate(names):
        for zne, style in ((False, "-"), (True, "--")):
            pts = sorted((r["p"], r["rel_error"]) for r in sweep
                         if (r["model"], r["method"], r["zne"]) == (model, method, zne) and r["p"] > 0)  # fmt: skip
            if pts:
                left.loglog(*zip(*pts), style, marker="o", color=f"C{j}",
                            label=f"{method} ({model})" if not zne else None)  # fmt: skip
    left.set_xlabel("depolarising p per gate and wire")
    left.set_ylabel("relative error vs noiseless")
    left.set_title("default.mixed, analytic (dashed: ZNE 1, 3, 5)")
    left.legend(fontsize=7)
    aer = [r for r in rows if r["backend"] != "default.mixed"]
    top = max((r["shots"] for r in aer), default=None)
    bars = [r for r in aer if r["shots"] == top and not r["zne"]]
    labels = [f"{r['method']}\n{r['backend'].replace('FakeManilaV2', 'Manila')}" for r in bars]
    plain = [r["rel_error"] for r in bars]
    mitigated = [
        next((s["rel_error"] for s in aer if s["zne"] and s["shots"] == top
              and (s["backend"], s["method"], s["model"]) == (r["backend"], r["method"], r["model"])),
             np.nan)
        for r in bars
    ]  # fmt: skip
    x = np.arange(len(bars))
    right.bar(x - 0.2, plain, 0.4, label="no mitigation")
    right.bar(x + 0.2, mitigated, 0.4, label="ZNE")
    right.set_xticks(x, labels, fontsize=6, rotation=60, ha="right")
    right.set_ylabel("relative error vs noiseless")
    right.set_title(f"Aer with FakeManilaV2 noise, {top} shots")
    right.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(output_dir, "noise_study.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
