"""Running generated tapes: one batch per call, through PennyLane's own execution.

Everything that touches a device lives here: choosing the ancilla wire for Hadamard tests,
resolving the interface (``jax-jit`` under ``jax.jit`` *and* ``jax.vmap``, so that devices such
as lightning.qubit go through a callback instead of converting tracers), and the single
:func:`qml.execute` call of each explanation.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml

from .inputs import rebuilt_operators
from .validation import check_no_program_capture, is_tracer

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


# Devices that simulate parameter broadcasting natively and differentiate it by backprop:
# merged tapes may carry traced (differentiated) parameters there. Elsewhere a merged tape is
# expanded by the device (``qml.transforms.broadcast_expand``), which is still cheaper per
# circuit, but PennyLane's gradient transforms refuse trainable broadcast parameters, so only
# tapes with concrete parameters are merged.
_BROADCAST_BACKPROP = ("default.qubit", "default.mixed")


def _structure_of(tape):
    """``(leaves, key)``: the tape's parameters and what must be equal for two tapes to be one
    parameter-broadcast tape (operations, wires, hyperparameters, measurements, shots and
    trainable parameters: the pytree structure PennyLane registers with JAX, plus each
    parameter's shape)."""
    import jax  # pylint: disable=import-outside-toplevel

    leaves, treedef = jax.tree_util.tree_flatten(tape)
    if tape.batch_size is not None:
        return leaves, None  # already broadcast: run as it is
    n_operation_leaves = len(jax.tree_util.tree_leaves(tape.operations))
    try:
        shapes = tuple(tuple(qml.math.shape(leaf)) for leaf in leaves)
        key = (treedef, shapes, n_operation_leaves)
        hash(key)
    except TypeError:  # an unhashable hyperparameter
        return leaves, None
    return leaves, key


def _all_equal(column) -> bool:
    """Whether the leaves are equal NumPy values, Python numbers or concrete JAX arrays on the
    CPU (tracers are compared by identity only: no loss of a differentiated value). Equal
    weights of every coalition then stay one unbroadcast parameter, which devices that expand
    broadcasts themselves need (qiskit.aer received a list as a template's gate angle)."""
    if not all(_comparable(leaf) for leaf in column):
        return False
    stacked = np.stack([np.asarray(leaf) for leaf in column])
    return bool((stacked == stacked[0]).all())


def _comparable(leaf) -> bool:
    if isinstance(leaf, (np.ndarray, np.generic, int, float, complex)):
        return True
    import jax  # pylint: disable=import-outside-toplevel

    return (
        isinstance(leaf, jax.Array)
        and not is_tracer(leaf)
        and all(device.platform == "cpu" for device in leaf.devices())
    )


def _stacked_leaves(group_leaves, n_operation_leaves):
    """The leaves of one broadcast tape: a leaf shared (or equal) across the tapes stays as it
    is, an operation's leaf that differs is stacked along a new leading (broadcast) axis.
    ``None`` when nothing differs, or when a measurement's leaf (an observable's coefficient)
    differs: PennyLane does not broadcast observables."""
    merged, stacked_any = [], False
    for position, column in enumerate(zip(*group_leaves)):
        first = column[0]
        if all(leaf is first for leaf in column[1:]) or _all_equal(column):
            merged.append(first)
        elif position >= n_operation_leaves:
            return None
        else:
            merged.append(qml.math.stack(column))
            stacked_any = True
    return merged if stacked_any else None


def _traced(tapes) -> bool:
    """Whether a parameter is a tracer or requires a gradient (something differentiates)."""
    return any(
        qml.math.requires_grad(p) or is_tracer(p)
        for tape in tapes
        for p in tape.get_parameters(trainable_only=False)
    )


def _may_merge(tapes, device, diff_method):
    """Whether same-structure tapes may become broadcast tapes on ``device``: always with
    concrete parameters; with traced ones only where JAX differentiates the simulation itself
    (analytic default.qubit/default.mixed by backprop). Elsewhere traced tapes run through
    PennyLane's callbacks, whose gradient transforms refuse broadcast parameters and whose
    ``jax.vmap`` rule adds a batch axis of its own to every parameter."""
    analytic = all(tape.shots.total_shots is None for tape in tapes)
    if (
        getattr(device, "name", None) in _BROADCAST_BACKPROP
        and diff_method in ("best", "backprop")
        and analytic
    ):
        return True
    return not _traced(tapes)


def concrete_jax(tapes) -> bool:
    """Whether the tapes hold concrete JAX arrays (an eager call: nothing differentiates them)
    and otherwise only NumPy values, with JAX's 64-bit mode on. (With it off, the call stays in
    JAX: NumPy post-processing would turn float32 results into float64 ones, and methods choose
    tolerances, such as the root search's, by the results' precision.)"""
    import jax  # pylint: disable=import-outside-toplevel

    if jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
        return False
    has_jax = False
    for tape in tapes:
        for p in tape.get_parameters(trainable_only=False):
            interface = qml.math.get_interface(p)
            if interface == "jax":
                if is_tracer(p):
                    return False
                has_jax = True
            elif interface != "numpy":
                return False
    return has_jax


def as_jax_arrays(tree):
    """``tree`` with its NumPy arrays as JAX arrays (in JAX's current precision); other leaves
    (JAX arrays, functions, ``None``) are left as they are."""
    import jax  # pylint: disable=import-outside-toplevel

    def convert(leaf):
        return jax.numpy.asarray(leaf) if isinstance(leaf, (np.ndarray, np.generic)) else leaf

    return jax.tree_util.tree_map(convert, tree)


def broadcast_tapes(tapes):
    """Merge tapes that differ only in their parameters into parameter-broadcast tapes.

    Returns ``(executed, slots)``: the tapes to run (broadcast tapes and the tapes left as they
    were, in first-appearance order) and, for every input tape, ``(index, row)``: its result is
    row ``row`` of ``executed[index]``'s result (``row is None`` for a tape run as it is).
    A group falls back to its separate tapes when an operation does not accept a broadcast
    parameter (its batch size would not be the group's size).
    """
    import jax  # pylint: disable=import-outside-toplevel

    structures = [_structure_of(tape) for tape in tapes]
    groups: dict = {}
    for i, (_, key) in enumerate(structures):
        groups.setdefault(("single", i) if key is None else ("merge", key), []).append(i)
    executed, slots = [], [None] * len(tapes)
    for (kind, key), members in groups.items():
        merged = None
        if kind == "merge" and len(members) > 1:
            leaves = _stacked_leaves([structures[i][0] for i in members], key[2])
            if leaves is not None:
                try:  # key = (treedef, shapes, n_operation_leaves); operators are rebuilt
                    merged = jax.tree_util.tree_unflatten(key[0], leaves)
                    if merged.batch_size != len(members):  # raises when batch sizes disagree
                        merged = None
                except (ValueError, TypeError, IndexError):  # an operation refuses a batch
                    merged = None
        if merged is None:
            for i in members:
                slots[i] = (len(executed), None)
                executed.append(tapes[i])
        else:
            for row, i in enumerate(members):
                slots[i] = (len(executed), row)
            executed.append(merged)
    return executed, slots


def row_of(result, row, n_measurements):
    """Row ``row`` of a broadcast tape's result (each measurement's leading axis)."""
    if n_measurements == 1:
        return result[row]
    return tuple(r[row] for r in result)


def _expanded(tapes):
    """Every broadcast tape as its separate circuits: ``(executed, slots)`` with ``slots[i] =
    (start, n)``: tape ``i``'s result is ``executed[start:start+n]``'s results stacked
    (``n is None``: run as it is)."""
    executed, slots = [], []
    for tape in tapes:
        if tape.batch_size is None:
            slots.append((len(executed), None))
            executed.append(tape)
        else:
            rows, _ = qml.transforms.broadcast_expand(tape)
            slots.append((len(executed), len(rows)))
            # rebuilt: a row keeps the batch size some operators cache (qml.MultiRZ)
            executed.extend(rebuilt_operators(row) for row in rows)
    return executed, slots


def _stack_rows(rows, n_measurements):
    """The result of a broadcast tape from its rows' results (the inverse of :func:`row_of`)."""
    if n_measurements == 1:
        return qml.math.stack(rows)
    return tuple(qml.math.stack(column) for column in zip(*rows))


def executed_batch(tapes, device, diff_method="best", broadcast=True):
    """What :func:`execute_batch` sends to the device for ``tapes``: ``(executed, gather,
    eager)``. ``gather(results)`` maps the results of ``executed`` back to one result per tape
    of ``tapes``; ``eager`` says whether they run with NumPy parameters (concrete JAX values:
    an eager, undifferentiated call)."""
    eager = broadcast and concrete_jax(tapes)
    if eager:  # NumPy parameters before merging, so equal values (shared weights) stay shared
        tapes = concrete_tapes(tapes)
    mergeable = broadcast and (eager or _may_merge(tapes, device, diff_method))
    if not mergeable and any(tape.batch_size is not None for tape in tapes):
        executed, spans = _expanded(tapes)  # differentiated off backprop, or broadcast=False

        def gather_rows(results):
            return tuple(
                results[start]
                if n is None
                else _stack_rows(results[start : start + n], len(tape.measurements))
                for (start, n), tape in zip(spans, tapes)
            )

        return executed, gather_rows, eager
    if not mergeable or len(tapes) == 1:
        return list(tapes), tuple, eager
    executed, slots = broadcast_tapes(tapes)

    def gather(results):
        return tuple(
            results[index]
            if row is None
            else row_of(results[index], row, len(executed[index].measurements))
            for index, row in slots
        )

    return executed, gather, eager


def execute_batch(tapes, device, diff_method="best", interface="auto", broadcast=True):
    """Execute ``tapes`` as a single batch and return their results (a tuple, one per tape).

    With ``broadcast=True``, tapes that differ only in their parameters run as one
    parameter-broadcast tape (:func:`broadcast_tapes`): on default.qubit one simulation of all
    of them, on devices without native broadcasting one device call that expands it. The
    results are those of the separate tapes, in order. ``broadcast=False`` runs every tape on
    its own (the per-tape path, kept for comparison). Merging needs concrete parameters except
    on default.qubit/default.mixed with backprop (PennyLane's gradient transforms do not
    differentiate broadcast parameters).
    """
    check_no_program_capture("pennylane-xqml")
    if not tapes:
        return ()
    interface = resolve_interface(tapes, interface)
    # an eager call's tapes come back with NumPy parameters: not differentiated, they are
    # simulated (and post-processed) in NumPy
    executed, gather, eager = executed_batch(tapes, device, diff_method, broadcast)
    if eager or not _traced(tapes):  # nothing to differentiate: no gradient configuration
        diff_method = None  # (lightning's adjoint one returned wrong shapes for broadcast tapes)
    return gather(qml.execute(executed, device, diff_method=diff_method, interface=interface))
