"""Running generated tapes: one batch per call, through PennyLane's own execution.

Everything that touches a device lives here: choosing the ancilla wire for Hadamard tests,
resolving the interface (``jax-jit`` under ``jax.jit`` *and* ``jax.vmap``, so that devices such
as lightning.qubit go through a callback instead of converting tracers), and the single
:func:`qml.execute` call of each explanation.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml

from .validation import is_tracer

ANCILLA_LABEL = "xqml_ancilla"


def ancilla_and_device(device, circuit_wires, ancilla=None):
    """Pick the ancilla wire of the Hadamard tests and a device that has it.

    Preference: the wire given by the user; a device wire the circuit does not use; a new wire
    label on a device without fixed wires; otherwise a sibling of a ``default.qubit`` or
    ``lightning.*`` device with one more wire (same seed for default.qubit). Other devices must
    be created with a spare wire, and the error says so.
    """
    circuit_wires = qml.wires.Wires(circuit_wires)
    if ancilla is not None:
        if ancilla in circuit_wires:
            raise ValueError(f"ancilla={ancilla!r} is used by the circuit; choose a free wire.")
        if device.wires is not None and ancilla not in device.wires:
            raise ValueError(f"ancilla={ancilla!r} is not a wire of the device {device.name}.")
        return ancilla, device
    if device.wires is None:
        return ANCILLA_LABEL, device
    spare = [w for w in device.wires if w not in circuit_wires]
    if spare:
        return spare[-1], device
    wires = list(device.wires) + [ANCILLA_LABEL]
    if device.name == "default.qubit":
        return ANCILLA_LABEL, qml.device("default.qubit", wires=wires, seed=device._rng)
    if device.name.startswith("lightning."):
        return ANCILLA_LABEL, qml.device(device.name, wires=wires)
    raise ValueError(
        f"The Hadamard-test gradients need one ancilla wire that the circuit does not use, and "
        f"the device {device.name} has none spare. Create the device with one more wire, or "
        "pass ancilla=<a free wire label>."
    )


def shots_of(tape):
    """Total shots of ``tape`` (``None`` when analytic); shot vectors are refused."""
    shots = tape.shots
    if shots.has_partitioned_shots:
        raise ValueError("Shot vectors are not supported by attributions; use a single shot count.")
    return shots.total_shots


def resolve_interface(tapes, interface):
    """``jax-jit`` whenever a parameter is a JAX tracer (jit *or* vmap), else ``interface``."""
    if interface in ("jax", "auto") and any(
        is_tracer(p) for tape in tapes for p in tape.get_parameters(trainable_only=False)
    ):
        return "jax-jit"
    return interface


def concrete_tapes(tapes):
    """Outside any JAX transformation, the tapes with NumPy parameters: the explanation is not
    differentiated, and NumPy simulation avoids JAX's per-operation dispatch (~30x faster on
    default.qubit). Traced tapes (jit, vmap, grad) are returned unchanged."""
    params = [tape.get_parameters(trainable_only=False) for tape in tapes]
    if any(is_tracer(p) for ps in params for p in ps):
        return list(tapes)
    return [
        tape.bind_new_parameters([np.asarray(p) for p in ps], list(range(len(ps))))
        for tape, ps in zip(tapes, params)
    ]


def execute_batch(tapes, device, diff_method="best", interface="auto"):
    """Execute ``tapes`` as a single batch and return their results (a tuple)."""
    if not tapes:
        return ()
    interface = resolve_interface(tapes, interface)
    return qml.execute(tapes, device, diff_method=diff_method, interface=interface)
