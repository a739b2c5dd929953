"""Run the circuits an explanation generates as one Catalyst (``qml.qjit``) program.

An optional extra: ``pennylane-catalyst`` 0.15 pins ``jax==0.7.1``, so it lives in its own
virtual environment (``bash scripts/catalyst/setup_venv.sh``; see ``docs/catalyst.md``). This
module imports Catalyst only when a compiled explanation runs; its examples are checked in that
environment by ``scripts/catalyst/run_catalyst_checks.py`` (from ``.ci/run``).

``qml.qjit(explained)`` itself does not compile: the package runs its tapes with
``qml.execute``, which under a tracer becomes a ``jax.pure_callback`` that Catalyst cannot lower
("Unsupported custom call: xla_ffi_python_cpu_callback"). Everything *else* an explanation does
(tracing the QNode, building tapes, post-processing) is plain JAX and traces fine under
``qml.qjit``. So :func:`qjit_explanation` keeps the package's tape construction and
post-processing and replaces only the execution: tapes with the same structure (same gates,
wires and measurements; only parameter values differ, e.g. the coalitions of a Shapley
explanation or the shifts of a parameter-shift gradient) become **one** QNode on integer wires,
mapped over their stacked parameters with :func:`catalyst.vmap`, so the compiled program holds
one circuit per structure instead of one per tape.

>>> from pennylane_xqml.catalyst import qjit_explanation
>>> import jax; jax.config.update("jax_enable_x64", True)
>>> import numpy as np, pennylane as qml, pennylane_xqml as xqml
>>> dev = qml.device("lightning.qubit", wires=2)
>>> @qml.qnode(dev)
... def model(x, w):
...     qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
...     qml.RY(w, wires=0)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.Z(1))
>>> ig = xqml.integrated_gradients(model, gradient="hadamard_all")
>>> x, w = np.array([1.0, 2.0, 0.5, 0.3]), 0.4
>>> bool(np.allclose(qjit_explanation(ig)(x, w), ig(x, w), atol=1e-10))
True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pennylane as qml

from .engine.plan import execute_plan

CATALYST_DEVICES = ("lightning.qubit", "lightning.kokkos", "lightning.gpu")


def _on_integer_wires(tape, device_wires):
    """``tape`` with the device's wires relabelled ``0..n-1`` (Catalyst needs integer wires;
    the package may add an ancilla labelled ``"xqml_ancilla"``)."""
    [mapped], _ = qml.map_wires(tape, {wire: i for i, wire in enumerate(device_wires)})
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


def run_tapes(tapes, device):
    """Results of ``tapes`` on ``device`` inside a ``qml.qjit`` trace, like ``qml.execute``'s.

    Tapes are grouped by structure; each group is one QNode, ``catalyst.vmap``-ed over the
    stacked parameters of its tapes when it has more than one.
    """
    import catalyst  # pylint: disable=import-outside-toplevel  (optional extra, own venv)

    wires = list(device.wires)
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


def qjit_explanation(explained, **qjit_options):
    """``qml.qjit``-compiled version of an :class:`~pennylane_xqml.engine.transform.ExplainedQNode`.

    Supports the circuit rules (``gradient="hadamard_all"``, ``"hadamard"``, ``"adjoint"``
    for amplitude inputs, ``"parameter-shift"`` for angle inputs) and the perturbation methods,
    analytic, on a Catalyst device; rules computed by JAX autodiff through the simulator
    (``"backprop"``, and ``"adjoint"`` for angle inputs) are refused.
    """
    device = explained.qnode.device
    if device.name not in CATALYST_DEVICES:
        raise ValueError(
            f"qjit_explanation needs a Catalyst device {CATALYST_DEVICES}; got {device.name}."
        )

    def explain(*args, **kwargs):
        plan = explained.prepared_plan(*args, **kwargs)
        if plan.simulator_requests:
            raise ValueError(
                f'gradient="{plan.rule}" is computed by JAX autodiff through the simulator, '
                'which Catalyst cannot compile here; use a circuit rule ("hadamard_all" for '
                'amplitude inputs, "parameter-shift" for angle inputs).'
            )
        return execute_plan(plan, run_tapes)

    return qml.qjit(explain, **qjit_options)
