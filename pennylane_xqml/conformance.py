"""Device conformance: every hardware-ready method on one device, against default.qubit.

:func:`conformance_rows` runs each method of :data:`METHODS` on small random models placed on a
device and compares the result with the same explanation on analytic default.qubit: to
``1e-10`` when the device is analytic, within 4 of the explanation's own reported standard
errors when it samples. ``tests/test_conformance.py`` asserts every row for every installed
plugin; ``python scripts/support_matrix.py`` prints the README's support matrix from the same
rows.

>>> import pennylane as qml
>>> rows = conformance_rows("default.mixed", lambda wires: qml.device("default.mixed", wires=wires),
...                         methods=["parameter shift"])
>>> [(row.method, row.ok) for row in rows]
[('parameter shift', True)]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pennylane as qml

from .methods.gradients import saliency
from .methods.integrated_gradients import integrated_gradients
from .methods.perturbation import feature_ablation, shapley_values
from .methods.qpert import circuit_fidelity
from .methods.taylor_fourier import taylor_fourier

N_WIRES = 3  # two data wires and a spare one (the Hadamard tests' ancilla)


@dataclass
class Row:
    """One method on one device."""

    device: str
    method: str
    ok: bool
    error: float  # largest |value - reference|
    zscore: float  # largest |value - reference| / stderr (shots), else nan
    note: str = ""


def _amplitude_model(device, weights):
    @qml.qnode(device)
    def model(x):
        qml.AmplitudeEmbedding(x, wires=[0, 1], normalize=True)
        qml.StronglyEntanglingLayers(weights, wires=[0, 1])
        return qml.expval(qml.Z(0) @ qml.X(1) + 0.5 * qml.Y(0))

    return model


def _angle_model(device, weights):
    @qml.qnode(device)
    def model(x):
        qml.AngleEmbedding(x, wires=[0, 1], rotation="Y")
        qml.StronglyEntanglingLayers(weights, wires=[0, 1])
        return qml.probs(wires=[1, 0])

    return model


def _fidelity(qnode, x):
    return qml.math.reshape(circuit_fidelity(qnode, x, x + 0.4), (1,))


#: method name -> (model kind, explanation builder ``qnode -> callable(x)``, reports stderr);
#: the fidelity circuit reports none: its value is one outcome's probability, binomial stderr.
METHODS = {
    "IG (Hadamard test)": ("amplitude", lambda q: integrated_gradients(q, gradient="hadamard_all", return_stderr=True), True),
    "gradient (Hadamard test)": ("amplitude", lambda q: saliency(q, abs=False, gradient="hadamard_all", return_stderr=True), True),
    "gradient (HATTRIQ per feature)": ("amplitude", lambda q: saliency(q, abs=False, gradient="hadamard", return_stderr=True), True),
    "parameter shift": ("angle", lambda q: saliency(q, abs=False, gradient="parameter-shift", return_stderr=True), True),
    "IG (parameter shift)": ("angle", lambda q: integrated_gradients(q, gradient="parameter-shift", n_steps=4, return_stderr=True), True),
    "feature ablation": ("angle", lambda q: feature_ablation(q, return_stderr=True), True),
    "Shapley values": ("angle", lambda q: shapley_values(q, baselines=0.2, return_stderr=True), True),
    "Taylor-Fourier": ("angle", lambda q: taylor_fourier(q, root=np.zeros(2), gradient="parameter-shift", return_stderr=True), True),
    "QPert fidelity circuit": ("angle", lambda q: (lambda x: _fidelity(q, x)), False),
}  # fmt: skip


def _explain(kind, build, device, weights, x):
    model = (_amplitude_model if kind == "amplitude" else _angle_model)(device, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = build(model)(x)
    if isinstance(result, tuple):
        return np.asarray(result[0]), np.asarray(result[1])
    return np.asarray(result), None


def conformance_rows(name, make_device, shots=None, methods=None, seed=7):
    """Rows of :class:`Row` for the device ``make_device(wires)`` (``name`` labels it).

    Args:
        name (str): the device's label in the rows.
        make_device (callable): ``make_device(wires) -> device`` for ``N_WIRES`` wires.
        shots (int): run with this many shots (compared within 4 standard errors), or ``None``.
        methods (list[str]): a subset of :data:`METHODS` (default: all).
        seed (int): seed of the random weights and inputs.
    """
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0, 2 * np.pi, size=(1, 2, 3))
    inputs = {"amplitude": rng.normal(size=4), "angle": rng.uniform(-1.5, 1.5, size=2)}
    reference_device = qml.device("default.qubit", wires=N_WIRES)
    rows = []
    for method in methods or list(METHODS):
        kind, build, has_stderr = METHODS[method]
        x = inputs[kind]
        expected, _ = _explain(kind, build, reference_device, weights, x)
        device = make_device(N_WIRES)
        try:
            if shots is not None:
                build_shots = lambda q, b=build: b(qml.set_shots(q, shots=shots))
                values, stderr = _explain(kind, build_shots, device, weights, x)
            else:
                values, stderr = _explain(kind, build, device, weights, x)
        except Exception as error:  # noqa: BLE001 - a device failure is a row, not a crash
            rows.append(
                Row(name, method, False, np.nan, np.nan, f"{type(error).__name__}: {error}"[:200])
            )
            continue
        error = float(np.max(np.abs(values - expected)))
        if shots is None:
            rows.append(Row(name, method, error < 1e-10, error, np.nan))
        else:
            if not has_stderr or stderr is None:
                stderr = np.sqrt(expected * (1 - expected) / shots)
            z = float(np.max(np.abs(values - expected) / np.maximum(stderr, 1e-12)))
            rows.append(Row(name, method, z < 4, error, z))
    return rows


def markdown_matrix(rows):
    """The support matrix (devices × methods) as a Markdown table."""
    devices = list(dict.fromkeys(row.device for row in rows))
    methods = list(dict.fromkeys(row.method for row in rows))
    cell = {(row.device, row.method): row for row in rows}
    lines = ["| method | " + " | ".join(devices) + " |", "| --- |" + " --- |" * len(devices)]
    for method in methods:
        marks = []
        for device in devices:
            row = cell.get((device, method))
            if row is None:
                marks.append("")
            elif row.ok:
                marks.append("yes" if np.isnan(row.zscore) else f"yes (z ≤ {row.zscore:.1f})")
            else:
                marks.append("**no**: " + (row.note or f"error {row.error:.2g}"))
        lines.append(f"| {method} | " + " | ".join(marks) + " |")
    return "\n".join(lines)
