"""The contract every explanation follows: a :class:`Plan` of circuits plus post-processing.

An explanation of one call is, as for PennyLane's gradient transforms, the tapes to run and a
processing function that maps their results to the attribution. The processing function never
executes anything. What the tapes cannot express, JAX autodiff through a simulator (the
``"backprop"`` and ``"adjoint"`` rules), is listed as *simulator requests*: functions the
executor calls next to the tapes, whose values the processing function receives too.

Everything that runs explanations uses this contract and nothing else: calling an explained
QNode (:func:`execute_plan`), :func:`~pennylane_xqml.cost_report`,
:func:`~pennylane_xqml.explain_batch`, the Catalyst route, ``construct_batch`` and ``draw``.

>>> import numpy as np, pennylane as qml, pennylane_xqml as xqml
>>> dev = qml.device("default.qubit", wires=1)
>>> @xqml.saliency(gradient="parameter-shift")
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     return qml.expval(qml.Z(0))
>>> plan = model.plan(np.array([0.5]))
>>> plan.method, plan.embedding, plan.rule, len(plan.tapes), len(plan.simulator_requests)
('saliency', 'angle', 'parameter-shift', 1, 0)
>>> plan.tapes[0].batch_size  # the two shifted circuits, as one parameter-broadcast tape
2
>>> results = qml.execute(plan.tapes, plan.device)
>>> round(float(plan.processing_fn(results, ())[0]), 6)  # |-sin(0.5)|
0.479426
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pennylane.measurements import DensityMatrixMP, StateMP

from .execution import as_jax_arrays, concrete_jax, execute_batch, executed_batch


class PlanBlock(NamedTuple):
    """Consecutive tapes of a plan that run on one device (a function model's QNodes may
    live on several devices)."""

    n_tapes: int
    device: object
    diff_method: str | None


@dataclass(frozen=True)
class Plan:
    """One explanation, before anything runs.

    Attributes:
        method (str): the method's public name (``"integrated_gradients"``, ...).
        embedding (str): how the input enters the circuit: ``"amplitude"`` (a leading
            ``StatePrep``/``AmplitudeEmbedding``) or ``"angle"`` (gate parameters).
        rule (str): the input-gradient rule the explanation uses (``"hadamard_all"``,
            ``"parameter-shift"``, ``"adjoint"``, ``"backprop"``, ...).
        tapes (tuple[QuantumScript]): the circuits, executed as one batch.
        device: the device that runs them (the QNode's, or a copy with one more wire for the
            Hadamard tests' ancilla).
        diff_method (str | None): the differentiation method ``qml.execute`` gets, so that
            explanations are differentiable with respect to the weights.
        simulator_requests (tuple[Callable[[], object]]): computations that are not circuits:
            JAX autodiff through the simulator. Empty for every rule that runs on hardware.
        processing_fn (Callable): ``processing_fn(tape_results, simulator_values)`` is the
            attribution (formatted as the explained QNode returns it). It executes nothing.
        broadcast (bool): whether the executor may run tapes that differ only in their
            parameters as one parameter-broadcast tape (:func:`.execution.execute_batch`);
            ``False`` runs every tape on its own. Either way ``tapes`` lists every circuit.
        blocks (tuple[PlanBlock]): for the plan of a function model whose QNodes run on
            several devices, which consecutive tapes run on which device (``device`` and
            ``diff_method`` are then the first block's); empty when every tape runs on
            ``device``. Use :attr:`parts`.
    """

    method: str
    embedding: str
    rule: str
    tapes: tuple
    device: object
    diff_method: str | None
    simulator_requests: tuple
    processing_fn: Callable
    broadcast: bool = True
    blocks: tuple = ()

    @property
    def parts(self) -> tuple:
        """``((tapes, device, diff_method), ...)``: the tapes of each device, in plan order."""
        if not self.blocks:
            return ((self.tapes, self.device, self.diff_method),)
        parts, start = [], 0
        for block in self.blocks:
            parts.append(
                (self.tapes[start : start + block.n_tapes], block.device, block.diff_method)
            )
            start += block.n_tapes
        return tuple(parts)

    @property
    def returns_states(self) -> bool:
        """Whether a tape returns a state or density matrix (simulators only)."""
        return any(
            isinstance(m, (StateMP, DensityMatrixMP)) for t in self.tapes for m in t.measurements
        )

    @property
    def simulator_only(self) -> bool:
        """Whether the plan needs a simulator (state outputs or autodiff requests)."""
        return bool(self.simulator_requests) or self.returns_states


def execute_plan(plan: Plan, run_tapes: Callable[[Sequence, object], Sequence] | None = None):
    """Run ``plan``: its tapes in one batch, then its simulator requests, then its processing.

    ``run_tapes(tapes, device)`` replaces PennyLane's execution (the Catalyst route gives its
    own) and receives every circuit as its own tape (parameter-broadcast tapes of the plan are
    expanded, and their rows' results stacked again); by default the tapes go through
    :func:`~.execution.execute_batch` (one :func:`qml.execute` call with the plan's
    ``diff_method``, same-structure circuits merged into broadcast tapes unless
    ``plan.broadcast`` is ``False``).
    """
    if run_tapes is not None:  # an executor of its own gets every circuit as its own tape
        results = []
        for tapes, device, diff_method in plan.parts:
            tapes, gather, _ = executed_batch(tapes, device, diff_method, False)
            results.extend(gather(run_tapes(tapes, device)))
        values = tuple(request() for request in plan.simulator_requests)
        return plan.processing_fn(tuple(results), values)
    # an eager call with JAX values runs and is processed in NumPy (see execute_batch); its
    # attributions come back as JAX arrays, in JAX's precision, as a traced call's would
    eager_jax = plan.broadcast and concrete_jax(plan.tapes)
    results = []
    for tapes, device, diff_method in plan.parts:
        results.extend(
            execute_batch(tapes, device, diff_method=diff_method, broadcast=plan.broadcast)
        )
    results = tuple(results)
    values = tuple(request() for request in plan.simulator_requests)
    output = plan.processing_fn(results, values)
    if eager_jax:
        output = as_jax_arrays(output)
    return output
