"""QPert's fidelity term: the compute-uncompute circuit of two tapes of one model, run on the
QNode's own device, and the state-vector reference it is checked against."""

from __future__ import annotations

import pennylane as qml

from ...engine.execution import resolve_interface
from .losses import fidelity_loss
from .options import model_args

# ---------------------------------------------------------------------------------------------
# fidelity circuits
# ---------------------------------------------------------------------------------------------


def tape_at(qnode, x, weights, argnums):
    args = model_args(x, weights, argnums)
    return qml.workflow.construct_tape(qnode, level="user")(*args)


def compute_uncompute_tape(tape_x, tape_x_tilde, measurement="probs"):
    """The compute-uncompute circuit ``U(x)† U(x̃) |0...0>`` of two tapes of one model.

    The operations of ``tape_x_tilde`` are followed by the adjoints of those of ``tape_x`` in
    reverse order; the probability of the all-zeros outcome is ``|<ψ(x)|ψ(x̃)>|²``. It is
    measured as ``qml.probs`` of all wires (entry 0, ``measurement="probs"``) or as the
    expectation of the projector on ``|0...0>`` (``measurement="projector"``, for adjoint
    differentiation). Shots are those of ``tape_x_tilde``.

    >>> import pennylane as qml
    >>> ops = [qml.RY(0.3, wires=0)]
    >>> t = compute_uncompute_tape(qml.tape.QuantumScript(ops), qml.tape.QuantumScript(ops))
    >>> [op.name for op in t.operations], t.measurements
    (['RY', 'Adjoint(RY)'], [probs(wires=[0])])
    """
    wires = qml.wires.Wires.all_wires([tape_x_tilde.wires, tape_x.wires])
    ops = [*tape_x_tilde.operations, *(qml.adjoint(op) for op in reversed(tape_x.operations))]
    if measurement == "probs":
        mp = qml.probs(wires=wires)
    elif measurement == "projector":
        mp = qml.expval(qml.Projector([0] * len(wires), wires=wires))
    else:
        raise ValueError(f'measurement must be "probs" or "projector"; got {measurement!r}.')
    return qml.tape.QuantumScript(ops, [mp], shots=tape_x_tilde.shots)


def zero_probability(result, measurement):
    """The probability of all zeros from a compute-uncompute result (see :func:`compute_uncompute_tape`)."""
    return result[0] if measurement == "probs" else result


def fidelity_measurement(diff_method):
    """Adjoint (device) differentiation supports expectation values only."""
    return "projector" if diff_method in ("adjoint", "device") else "probs"


def resolved_diff_method(qnode, args):
    if qnode.diff_method in (None, "best"):
        return qml.workflow.get_best_diff_method(qnode)(*args)
    return qnode.diff_method


def _execute(tapes, qnode, diff_method):
    interface = resolve_interface(tapes, "auto")
    return qml.execute(
        tapes,
        qnode.device,
        diff_method=diff_method,
        interface=interface,
        gradient_kwargs=dict(qnode.gradient_kwargs or {}),
    )


def run_fidelity(qnode, x, x_tilde, weights, argnums, diff_method):
    measurement = fidelity_measurement(diff_method)
    tape = compute_uncompute_tape(
        tape_at(qnode, x, weights, argnums),
        tape_at(qnode, x_tilde, weights, argnums),
        measurement,
    )
    return zero_probability(_execute([tape], qnode, diff_method)[0], measurement)


def circuit_fidelity(qnode, x, x_tilde, *weights, argnums=0):
    """``|<ψ(x)|ψ(x̃)>|²`` measured by the compute-uncompute circuit on the QNode's device.

    Built from the QNode's tapes (``qml.workflow.construct_tape``) and run by ``qml.execute``
    with the QNode's differentiation method, so it runs on any device (with the QNode's shots)
    and is differentiable and jit-compatible. ``weights`` are the QNode's other arguments;
    ``argnums`` is the position of the input among them.

    >>> import jax.numpy as jnp, pennylane as qml
    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev)
    ... def model(x):
    ...     qml.RY(x[0], wires=0)
    ...     return qml.probs(wires=0)
    >>> round(float(circuit_fidelity(model, jnp.array([0.0]), jnp.array([1.0]))), 6)  # cos²(1/2)
    0.770151
    """
    weights = tuple(weights)
    diff_method = resolved_diff_method(qnode, model_args(x, weights, argnums))
    return run_fidelity(qnode, x, x_tilde, weights, argnums, diff_method)


def state_fidelity(qnode, x, x_tilde, *weights, argnums=0):
    """``|<ψ(x)|ψ(x̃)>|²`` from the state vectors (``qml.state()``, analytic simulators only):
    the reference :func:`circuit_fidelity` is checked against.

    >>> import jax.numpy as jnp, pennylane as qml
    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev)
    ... def model(x):
    ...     qml.RY(x[0], wires=0)
    ...     return qml.probs(wires=0)
    >>> round(float(state_fidelity(model, jnp.array([0.0]), jnp.array([1.0]))), 6)
    0.770151
    """
    weights = tuple(weights)
    tapes = [
        tape_at(qnode, point, weights, argnums).copy(measurements=[qml.state()], shots=None)
        for point in (x, x_tilde)
    ]
    diff_method = "backprop" if qnode.device.name == "default.qubit" else None
    psi, phi = _execute(tapes, qnode, diff_method)
    return 1 - fidelity_loss(psi, phi)


def check_invertible(tape):
    for op in tape.operations:
        if isinstance(op, (qml.operation.Channel, qml.ops.MidMeasure, qml.ops.PauliMeasure)):
            raise ValueError(  # noqa: TRY004 (a property of the circuit, not of an argument)
                f'fidelity="circuit" needs a unitary circuit to uncompute, but the model applies '
                f'{op.name}; use fidelity="js" (Jensen-Shannon of the output distributions).'
            )
