"""A device self-test: run it before trusting explanations on a device we have never seen.

:func:`check_device` runs a few small circuits that exercise exactly the primitives the methods
rely on, on the device's *raw* behaviour (none of this package's workarounds), and reports what
holds and which methods and gradient rules are safe there:

* ``probs_order``: ``qml.probs`` over wires in an order other than the device's own comes back in
  that order. Some plugins return device order regardless (Amazon Braket's local simulator did
  for some circuits). The package measures in device order and permutes in post-processing, so
  this defect is worked around; the report says so.
* ``state_prep_wires``: ``qml.StatePrep`` on wires in a permuted order prepares the right state.
  The Hadamard tests prepare their joint state in device order, so this is worked around too.
* ``controlled_pauli``: a Pauli controlled by another wire (the Hadamard test's only controlled
  gate) acts as it should.
* ``broadcasting``: a parameter-broadcast circuit returns one result per parameter.
* ``shots``: with shots, an expectation value lands within 5 standard errors of its exact value.

>>> import pennylane as qml
>>> report = check_device(qml.device("default.qubit", wires=3))
>>> report.passed("probs_order"), report.safe["hadamard_all"]
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pennylane as qml

#: What each check means for the gradient rules and methods that rely on it.
RELIES_ON = {
    "hadamard_all": ("state_prep", "controlled_pauli"),
    "hadamard": ("state_prep", "controlled_pauli"),
    "parameter-shift": ("expval",),
    "perturbation methods": ("expval", "state_prep"),
}
WORKED_AROUND = {
    "probs_order": "the package measures probabilities in device order and permutes them itself",
    "state_prep_wires": "the package prepares states on wires in device order",
}


@dataclass
class Check:
    """One primitive: whether it holds on the device, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass
class DeviceReport:
    """The outcome of :func:`check_device`."""

    device: str
    checks: list = field(default_factory=list)
    safe: dict = field(default_factory=dict)

    def passed(self, name) -> bool:
        return next(check.ok for check in self.checks if check.name == name)

    def __str__(self):
        lines = [f"check_device({self.device})"]
        for check in self.checks:
            mark = "ok  " if check.ok else "FAIL"
            note = (
                ""
                if check.ok or check.name not in WORKED_AROUND
                else f" [worked around: {WORKED_AROUND[check.name]}]"
            )
            lines.append(f"  {mark} {check.name}: {check.detail}{note}")
        lines.append(
            "  safe: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in self.safe.items())
        )
        return "\n".join(lines)


def _run(device, ops, measurements, shots=None):
    tape = qml.tape.QuantumScript(ops, measurements, shots=shots)
    return qml.execute([tape], device, diff_method=None)[0]


def _wires(device):
    wires = list(device.wires) if device.wires is not None else [0, 1, 2]
    if len(wires) < 2:
        raise ValueError(
            f"check_device needs a device with at least 2 wires; {device.name} has {len(wires)}."
        )
    return wires


def _probs_order(device, wires):
    """Rotations on the first and last wire, probabilities with the last wire first and the
    untouched wires after (the pattern on which Amazon Braket's local simulator misordered)."""
    first, last, middle = wires[0], wires[-1], list(wires[1:-1])
    measured = [last, first, *middle]
    probs = np.asarray(
        _run(device, [qml.RY(0.3, first), qml.RY(1.0, last)], [qml.probs(wires=measured)])
    )
    single = {first: np.array([np.cos(0.15) ** 2, np.sin(0.15) ** 2]),
              last: np.array([np.cos(0.5) ** 2, np.sin(0.5) ** 2])}  # fmt: skip
    expected = np.array([1.0])
    for wire in measured:
        expected = np.kron(expected, single.get(wire, np.array([1.0, 0.0])))
    ok = probs.shape == expected.shape and np.allclose(probs, expected, atol=1e-6)
    return Check("probs_order", ok, f"probs(wires={measured}) after RY on {first!r} and {last!r}: "
                 f"largest error {np.max(np.abs(probs - expected)):.3g}")  # fmt: skip


def _state_prep(device, w0, w1):
    state = np.array([0.0, 0.6, 0.8, 0.0])  # over [w1, w0]: |01> and |10>
    probs = np.asarray(
        _run(device, [qml.StatePrep(state, wires=[w0, w1])], [qml.probs(wires=[w0, w1])])
    )
    expected = state**2
    ok = np.allclose(probs, expected, atol=1e-6)
    prep = Check(
        "state_prep",
        ok,
        f"StatePrep on [{w0!r}, {w1!r}] gives {np.round(probs, 4)}, expected {expected}",
    )
    probs = np.asarray(
        _run(device, [qml.StatePrep(state, wires=[w1, w0])], [qml.probs(wires=[w0, w1])])
    )
    expected = np.array([0.0, 0.64, 0.36, 0.0])
    ok = np.allclose(probs, expected, atol=1e-6)
    permuted = Check(
        "state_prep_wires",
        ok,
        f"StatePrep on [{w1!r}, {w0!r}] read on [{w0!r}, {w1!r}] gives {np.round(probs, 4)}, expected {expected}",
    )
    return [prep, permuted]


def _controlled_pauli(device, w0, w1):
    """The Hadamard test itself: ``<Z>`` of the control after ``H, ctrl(P), H`` is
    ``Re <ψ|P|ψ>``, the Bloch vector component of the target ``|ψ> = RZ(0.9) RY(0.4)|0>``."""
    bloch = {"X": np.sin(0.4) * np.cos(0.9), "Y": np.sin(0.4) * np.sin(0.9), "Z": np.cos(0.4)}
    seen = {}
    for letter, pauli in (("X", qml.X), ("Y", qml.Y), ("Z", qml.Z)):
        ops = [
            qml.Hadamard(w0),
            qml.RY(0.4, w1),
            qml.RZ(0.9, w1),
            qml.ctrl(pauli(w1), w0),
            qml.Hadamard(w0),
        ]
        seen[letter] = float(np.asarray(_run(device, ops, [qml.expval(qml.Z(w0))])))
    ok = all(abs(seen[k] - bloch[k]) < 1e-6 for k in bloch)
    detail = ", ".join(f"{k}: {seen[k]:.4f} (expected {bloch[k]:.4f})" for k in bloch)
    return Check("controlled_pauli", ok, f"Hadamard tests of controlled Paulis: {detail}")


def _expval(device, w0):
    value = float(np.asarray(_run(device, [qml.RY(0.7, w0)], [qml.expval(qml.Z(w0))])))
    ok = abs(value - np.cos(0.7)) < 1e-6
    return Check("expval", ok, f"<Z> after RY(0.7) = {value:.6f}, expected {np.cos(0.7):.6f}")


def _broadcasting(device, w0):
    angles = np.array([0.1, 0.7, 1.3])
    try:
        values = np.asarray(_run(device, [qml.RY(angles, w0)], [qml.expval(qml.Z(w0))]))
    except (qml.exceptions.DeviceError, ValueError, TypeError, NotImplementedError) as error:
        return Check("broadcasting", False, f"failed: {type(error).__name__}: {error}")
    ok = values.shape == (3,) and np.allclose(values, np.cos(angles), atol=1e-6)
    return Check(
        "broadcasting",
        ok,
        f"RY([0.1, 0.7, 1.3]) gives {np.round(values, 4)}, expected {np.round(np.cos(angles), 4)}",
    )


def _shots(device, w0, shots):
    value = float(np.asarray(_run(device, [qml.RY(0.7, w0)], [qml.expval(qml.Z(w0))], shots=shots)))
    stderr = np.sqrt((1 - np.cos(0.7) ** 2) / shots)
    ok = abs(value - np.cos(0.7)) < 5 * stderr
    return Check(
        "shots",
        ok,
        f"<Z> with {shots} shots = {value:.4f}, exact {np.cos(0.7):.4f} (5 stderr = {5 * stderr:.4f})",
    )


def check_device(device, shots=10_000) -> DeviceReport:
    """Test the primitives explanations rely on, on ``device`` itself; see the module docs.

    Args:
        device: a PennyLane device with at least 2 wires (or none fixed).
        shots (int): shots for the sampling check (``None`` skips it).

    Returns:
        DeviceReport: the checks (``report.checks``), which gradient rules and methods are safe
        (``report.safe``), and a readable summary (``print(report)``).
    """
    wires = _wires(device)
    w0, w1 = wires[0], wires[1]
    checks = [_expval(device, w0), _probs_order(device, wires), *_state_prep(device, w0, w1),
              _controlled_pauli(device, w0, w1), _broadcasting(device, w0)]  # fmt: skip
    if shots is not None:
        checks.append(_shots(device, w0, shots))
    report = DeviceReport(device.name, checks)
    ok = {check.name: check.ok for check in checks}
    report.safe = {name: all(ok[need] for need in needs) for name, needs in RELIES_ON.items()}
    return report
