"""Executing a plan inside a ``qml.qjit`` program (PennyLane's compiler, Catalyst).

Catalyst compiles the circuits of QNodes that are *traced inside* its program. Outside such a
program an explanation runs its tapes with :func:`qml.execute`, which under a JAX tracer is a
Python callback that Catalyst cannot lower (``Unsupported custom call:
xla_ffi_python_cpu_callback``). Everything else an explanation does (tracing the QNode,
building its tapes, the processing function) is JAX code that traces under ``qml.qjit``. So
when an explained QNode is called while Catalyst traces (``qml.qjit(explained)``, or a
``qml.qjit`` program that calls it), it builds its :class:`~.plan.Plan` as usual and executes
the tapes with :func:`run_tapes`: tapes with the same structure (same gates, wires and
measurements; only parameter values differ, as for the coalitions of a Shapley explanation or
the shifts of a parameter-shift gradient) become **one** QNode on integer wires, mapped over
their stacked parameters with ``catalyst.vmap``.

What compiles is checked in Catalyst's environment (``scripts/catalyst/run_catalyst_checks.py``);
everything else is refused by :func:`check_compilable` / :func:`check_compilable_plan` with a
message, while Catalyst traces and before anything is compiled or run. Catalyst is imported
only inside :func:`run_tapes`, and :func:`catalyst_tracing` is a dictionary lookup when
Catalyst is not installed (or not imported), so the package's other calls pay nothing.

>>> import pennylane as qml
>>> catalyst_tracing()  # not inside qml.qjit
False
>>> check_compilable("lime", qml.device("lightning.qubit", wires=1))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: qml.qjit compiles the explanations of integrated_gradients, saliency, ...
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pennylane as qml

CATALYST_DEVICES = ("lightning.qubit", "lightning.kokkos", "lightning.gpu")
"""Devices Catalyst 0.15 compiles for that the route has been run on (lightning.qubit checked)."""

COMPILED_METHODS = ("integrated_gradients", "saliency", "feature_ablation", "shapley_values")
"""Methods whose explanations ``qml.qjit`` compiles, checked in Catalyst's environment."""

_CIRCUIT_RULES = (
    '"hadamard_all", "hadamard" or "adjoint" (state-vector circuits) for amplitude inputs, '
    '"parameter-shift" for angle inputs'
)


def catalyst_tracing() -> bool:
    """Whether Catalyst (``qml.qjit``) is tracing the current call.

    PennyLane's :func:`qml.compiler.active_compiler` looks only at compilers already imported,
    so without Catalyst this is a loop over an empty registry (about 0.3 µs)."""
    return qml.compiler.active_compiler() == "catalyst"


def check_compilable(method_name: str, device) -> None:
    """Refuse, before the call is traced, an explanation ``qml.qjit`` does not compile: a
    method outside :data:`COMPILED_METHODS` or a device outside :data:`CATALYST_DEVICES`."""
    if method_name not in COMPILED_METHODS:
        raise ValueError(
            f"qml.qjit compiles the explanations of {', '.join(COMPILED_METHODS)}; "
            f"{method_name} is not one of them (its circuits, random draws or preparation step "
            "are not checked under Catalyst). Call the explanation without qml.qjit, or inside "
            "jax.jit."
        )
    if device.name not in CATALYST_DEVICES:
        raise ValueError(
            f"qml.qjit of an explanation needs a Catalyst device ({', '.join(CATALYST_DEVICES)}); "
            f"the QNode runs on {device.name}. Build it on lightning.qubit, or use jax.jit."
        )


def check_compilable_plan(plan) -> None:
    """Refuse, before anything is compiled, a plan ``qml.qjit`` does not compile: JAX autodiff
    through the simulator (``simulator_requests``), or tapes with shots."""
    if plan.simulator_requests:
        raise ValueError(
            f'{plan.method} with gradient="{plan.rule}" differentiates the simulator with JAX '
            "autodiff, which Catalyst cannot compile inside an explanation; under qml.qjit use "
            f'a circuit rule: gradient={_CIRCUIT_RULES}. (On lightning, gradient="auto" picks '
            '"adjoint" for angle inputs.)'
        )
    shots = [tape.shots.total_shots for tape in plan.tapes if tape.shots]
    if shots:
        raise ValueError(
            f"qml.qjit of an explanation runs analytic circuits only; this QNode has "
            f"shots={shots[0]}. Remove the shots (qml.set_shots(qnode, None)), or explain the "
            "QNode with shots without qml.qjit."
        )


def untraceable_input(error: Exception) -> ValueError:
    """The error for a QNode whose input map JAX cannot trace, under ``qml.qjit``."""
    return ValueError(
        "Under qml.qjit the input is a JAX tracer, so the QNode's map from its input to the "
        "gates must be written with jax.numpy or qml.math (NumPy and pennylane.numpy functions "
        f"cannot follow it). {error}"
    )


def _on_integer_wires(tape, wire_order):
    """``tape`` with its wires relabelled ``0..n-1`` (Catalyst needs integer wires; the package
    may add an ancilla labelled ``"xqml_ancilla"``)."""
    [mapped], _ = qml.map_wires(tape, {wire: i for i, wire in enumerate(wire_order)})
    return mapped


def _circuit(treedef, device):
    """A QNode running the tape ``treedef`` describes, as a function of its pytree leaves."""

    def apply_tape(leaves):
        with qml.QueuingManager.stop_recording():  # rebuilding must not queue the gates twice
            tape = jax.tree_util.tree_unflatten(treedef, leaves)
        for op in tape.operations:
            qml.apply(op)
        measurements = [qml.apply(mp) for mp in tape.measurements]
        return measurements[0] if len(measurements) == 1 else tuple(measurements)

    return qml.QNode(apply_tape, device)


def _wire_order(tapes, device):
    """The device's wires, or (a device without fixed wires) the tapes' wires in order."""
    if device.wires is not None:
        return list(device.wires)
    return list(qml.wires.Wires.all_wires([tape.wires for tape in tapes]))


def run_tapes(tapes, device):
    """Results of ``tapes`` on ``device`` inside a ``qml.qjit`` trace, like ``qml.execute``'s.

    Tapes are grouped by structure; each group is one QNode on a fresh device of the same name
    with integer wires, ``catalyst.vmap``-ed over the stacked parameters of its tapes when it
    has more than one."""
    import catalyst  # pylint: disable=import-outside-toplevel  (optional, own environment)

    wires = _wire_order(tapes, device)
    target = qml.device(device.name, wires=len(wires))
    groups = {}
    for index, tape in enumerate(tapes):
        leaves, treedef = jax.tree_util.tree_flatten(_on_integer_wires(tape, wires))
        groups.setdefault(treedef, []).append((index, leaves))
    results = [None] * len(tapes)
    for treedef, members in groups.items():
        circuit = _circuit(treedef, target)
        if len(members) == 1:
            index, leaves = members[0]
            results[index] = circuit(leaves)
            continue
        stacked = [
            jnp.stack([jnp.asarray(leaf) for leaf in column])
            for column in zip(*[m[1] for m in members])
        ]
        batched = catalyst.vmap(circuit)(stacked)
        for k, (index, _) in enumerate(members):
            results[index] = jax.tree_util.tree_map(lambda out, k=k: out[k], batched)
    return tuple(results)
