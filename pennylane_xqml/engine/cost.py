r"""Circuit cost report: what one explanation will cost on a device, before it runs.

:func:`cost_report` (also ``explained.cost(*args)``) builds the batch of tapes that one call of
an :class:`~pennylane_xqml.engine.transform.ExplainedQNode` would execute and returns a
:class:`CostReport` with

* **circuits**: ``n_circuits``, the tapes of the one ``qml.execute`` call of the explanation
  (exactly :meth:`~pennylane_xqml.engine.transform.ExplainedQNode.construct_batch`), and
  ``n_measurement_groups``, the circuits a device runs once every tape's non-commuting
  measurements are split (:func:`qml.transforms.split_non_commuting`); simulator-only autodiff
  rules (``gradient="backprop"``, and ``"adjoint"`` for angle inputs) compute their gradients
  without circuits: they are counted in ``n_simulator_requests``, not as circuits;
* **gates** (PennyLane's :func:`qml.resource.resources_from_tape` on every tape as the device
  runs it, i.e. after the device's own preprocessing, which decomposes templates into its
  gates; optionally decomposed further by :func:`qml.transforms.decompose` to a native
  ``gate_set``): gate counts by name, two-qubit gates, gates on more than two qubits (state
  preparations, multi-controlled gates: give a ``gate_set`` to count them in native gates),
  the largest depth and width;
* **shots for a target standard error**, without running anything. Every tape result enters the
  attribution through the method's post-processing ``a = F(r)``; with shots each estimate is an
  average over ``S`` independent shots, so for a post-processing that is linear in the results

  .. math:: \operatorname{Var} a_k \le \frac{1}{S} \sum_{t} \Big(\sum_{m \in t}
      \tfrac{1}{2}\, \mathrm{range}_m(J_{k})\Big)^2 = \frac{v_k}{S},

  where ``J = ∂F/∂r`` (``jax.jacrev`` at random valid results) and ``range_m(J_k)`` is the
  range of the per-shot value that measurement ``m`` of tape ``t`` contributes to ``a_k``:
  ``max_i J_ki - min_i J_ki`` for ``probs`` (one outcome ``i`` per shot) and
  ``|J_k| (λ_max - λ_min)`` for ``expval`` (for a Pauli word, ``2 |J_k|``). Half the range
  bounds a per-shot standard deviation (Popoviciu), and summing the measurements of a tape
  before squaring makes the bound hold however a device groups them (jointly measured,
  correlated, or on separate shots). Tapes are independent, so the bounds add. Hence
  ``shots_per_circuit = ceil(max_k v_k / target_stderr²)`` guarantees a standard error of at
  most ``target_stderr`` for *every* attribution component, and
  ``total_shots = shots_per_circuit × n_measurement_groups``.

  When ``F`` is not linear (``nt_type="smoothgrad_sq"``/``"vargrad"``, whose values square the
  gradients), the bound depends on the unknown results: the report then gives the largest
  first-order (delta-method) value over a few random result sets, flags ``first_order=True``,
  and says so: an estimate, not a guarantee. ``saliency``'s absolute value does not matter
  (``| |g| - |g'| | <= |g - g'|``).

Grad-CAM and QPert are not transforms: ``cam.cost(params, images)``
(:func:`~pennylane_xqml.methods.gradcam.grad_cam_cost`) gives a :class:`CostReport` of the plan of
Grad-CAM's one batch (shots bound the channel weights ``w_k``), and
``explainer.cost(x, *weights)`` (:func:`~pennylane_xqml.methods.qpert.qpert_cost`) a
:class:`QPertCost`: circuits per iteration and in total, gates of the model and fidelity
circuits, no shot bound (the loss is not linear in the results). All reports share
:class:`GateCounts`.

``taylor_fourier`` and ``qlrp`` with ``root="search"`` run their Newton steps in a preparation
step (``explained.prepare(*args)``) before their plan exists; the report runs that step and
counts the circuits the device executed then (``n_setup_circuits``, measured with
:class:`qml.Tracker`) -- give ``root=<an array>`` to budget without running anything.
``qlrp``'s circuits return density matrices (simulators only; shots do not apply). The gradient
rule is resolved for the QNode as given: on an analytic simulator
``gradient="auto"`` picks simulator rules, so budget hardware with the QNode's shots set
(``qml.set_shots``) or with ``gradient="hadamard_all"``/``"parameter-shift"``.

**Example**

>>> import pennylane as qml, numpy as np
>>> import pennylane_xqml as xqml
>>> dev = qml.device("default.qubit", wires=2)
>>> @xqml.saliency(abs=False, gradient="parameter-shift")
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     qml.RY(x[1], wires=1)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.Z(1))
>>> report = model.cost(np.array([0.5, 1.0]), target_stderr=0.01)
>>> report.n_circuits, report.two_qubit_gates, report.shots_per_circuit, report.total_shots
(4, 4, 5000, 20000)
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
import pennylane as qml
from pennylane.measurements import ExpectationMP, ProbabilityMP

from .execution import executed_batch
from .validation import is_real

_RANDOM_RESULT_SETS = 3  # result sets at which the variance bound is evaluated (linearity check)


@dataclass(frozen=True)
class GateCounts:
    """Gates of a set of tapes as the device runs them (:func:`qml.resource.resources_from_tape`
    after the device's preprocessing, optionally decomposed to a ``gate_set``).

    ``gate_counts`` by name, ``n_gates``, ``two_qubit_gates``, ``multi_qubit_gates`` (on more
    than two qubits), the largest ``max_depth`` and ``max_wires``; ``resources`` holds
    PennyLane's :class:`~pennylane.resource.SpecsResources` of every tape.
    """

    gate_counts: dict
    n_gates: int
    two_qubit_gates: int
    multi_qubit_gates: int
    max_depth: int
    max_wires: int
    resources: tuple

    def __add__(self, other):
        """The counts of both sets of tapes (a function model's devices, added up)."""
        gates = Counter(self.gate_counts)
        gates.update(other.gate_counts)
        return GateCounts(
            gate_counts=dict(gates),
            n_gates=self.n_gates + other.n_gates,
            two_qubit_gates=self.two_qubit_gates + other.two_qubit_gates,
            multi_qubit_gates=self.multi_qubit_gates + other.multi_qubit_gates,
            max_depth=max(self.max_depth, other.max_depth),
            max_wires=max(self.max_wires, other.max_wires),
            resources=self.resources + other.resources,
        )

    def rows(self, prefix=""):
        """``(label, value)`` rows of a report table."""
        return [
            (prefix + "gates", self.n_gates),
            (prefix + "two-qubit gates", self.two_qubit_gates),
            (prefix + "gates on > 2 qubits", self.multi_qubit_gates),
            (prefix + "max depth", self.max_depth),
            (prefix + "max wires", self.max_wires),
        ]


def _table(rows, notes):
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines + [f"note: {note}" for note in notes])


@dataclass(frozen=True)
class CostReport:
    """The cost of one explanation (see :mod:`pennylane_xqml.engine.cost`); ``str(report)`` is a table.

    ``shot_variance`` is ``max_k v_k``: the per-shot variance bound of the worst attribution
    component (``None`` when shots do not apply: simulator-only rules, state outputs);
    ``shots_per_circuit`` and ``total_shots`` are set when a ``target_stderr`` was given.
    The gate fields are those of :class:`GateCounts` (also as ``report.gates``).
    """

    method: str
    gradient: str
    n_circuits: int
    n_measurement_groups: int
    n_simulator_requests: int
    n_setup_circuits: int
    gate_counts: dict
    n_gates: int
    two_qubit_gates: int
    multi_qubit_gates: int
    max_depth: int
    max_wires: int
    shot_variance: float | None
    first_order: bool
    target_stderr: float | None
    shots_per_circuit: int | None
    total_shots: int | None
    notes: tuple
    resources: tuple
    n_executed_tapes: int | None = None

    @property
    def gates(self):
        """The gate fields as a :class:`GateCounts`."""
        return GateCounts(**{f.name: getattr(self, f.name) for f in fields(GateCounts)})

    def stderr_bound(self, shots):
        """The largest standard error of an attribution component with ``shots`` per circuit."""
        if self.shot_variance is None:
            raise ValueError("Shots do not apply to this explanation (see the report's notes).")
        _check_positive(shots, "shots")
        return math.sqrt(self.shot_variance / shots)

    def __str__(self):
        rows = [
            ("method", self.method),
            ("gradient rule", self.gradient),
            ("circuits (one batch)", self.n_circuits),
            ("tapes executed (after broadcasting)", self.n_executed_tapes),
            ("measurement groups", self.n_measurement_groups),
            ("simulator requests", self.n_simulator_requests),
            ("setup circuits (already run)", self.n_setup_circuits),
            *self.gates.rows(),
        ]
        if self.shot_variance is not None:
            kind = " (first-order estimate)" if self.first_order else ""
            rows.append(("per-shot variance bound" + kind, f"{self.shot_variance:.6g}"))
        if self.target_stderr is not None:
            rows += [
                ("target standard error", f"{self.target_stderr:g}"),
                ("shots per circuit", self.shots_per_circuit),
                ("total shots", self.total_shots),
            ]
        return _table(rows, self.notes)


def _check_positive(value, name):
    if not is_real(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")


# ---------------------------------------------------------------------------------------------
# gates
# ---------------------------------------------------------------------------------------------


def gate_counts(tapes, device, gate_set):
    """:class:`GateCounts` of the tapes as ``device`` runs them (after its own preprocessing,
    which decomposes templates into its gates), optionally decomposed further to ``gate_set``."""
    device_tapes, _ = device.preprocess_transforms(qml.devices.ExecutionConfig())(list(tapes))
    resources = []
    for tape in device_tapes:
        if gate_set is not None:
            [tape], _ = qml.transforms.decompose(tape, gate_set=gate_set)
        resources.append(qml.resource.resources_from_tape(tape))
    gates, sizes = Counter(), Counter()
    for res in resources:
        gates.update(res.gate_types)
        sizes.update(res.gate_sizes)
    return GateCounts(
        gate_counts=dict(gates),
        n_gates=sum(gates.values()),
        two_qubit_gates=sizes.get(2, 0),
        multi_qubit_gates=sum(n for size, n in sizes.items() if size > 2),
        max_depth=max((res.depth for res in resources), default=0),
        max_wires=max((len(t.wires) for t in tapes), default=0),
        resources=tuple(resources),
    )


def measurement_groups(tape):
    tapes, _ = qml.transforms.split_non_commuting(tape)
    return len(tapes)


def check_cost_options(target_stderr, gate_set):
    """Validate the budget options shared by every report; ``gate_set`` as a set or ``None``."""
    if target_stderr is not None:
        _check_positive(target_stderr, "target_stderr")
    if gate_set is None:
        return None
    if isinstance(gate_set, str) or not all(isinstance(g, str) for g in gate_set):
        raise TypeError(f"gate_set must be a collection of gate names, got {gate_set!r}.")
    return set(gate_set)


# ---------------------------------------------------------------------------------------------
# the per-shot variance bound
# ---------------------------------------------------------------------------------------------


def _observable_range(obs):
    """``λ_max - λ_min`` of an observable (``2 Σ|c|`` bounds it for a Pauli sentence)."""
    sentence = obs.pauli_rep
    if sentence is not None:
        return 2 * sum(abs(c) for word, c in sentence.items() if len(word) > 0)
    eigvals = np.real(qml.eigvals(obs))
    return float(eigvals.max() - eigvals.min())


def _shot_bound_applies(tapes):
    return all(
        isinstance(mp, ProbabilityMP) or (isinstance(mp, ExpectationMP) and mp.obs is not None)
        for tape in tapes
        for mp in tape.measurements
    )


def random_results(tapes, rng=None):
    """Valid results of ``tapes`` (probabilities on the simplex, expectations in range), shaped
    as ``qml.execute`` returns them; without ``rng``, uniform probabilities and expectations at
    the middle of their range (0 for a Pauli word)."""
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    results = []
    for tape in tapes:
        values = []
        for mp in tape.measurements:
            if isinstance(mp, ProbabilityMP):
                size = int(np.prod(mp.shape(None, len(tape.wires))))
                probs = np.full(size, 1 / size) if rng is None else rng.dirichlet(np.ones(size))
                values.append(jnp.asarray(probs))
            else:
                half = _observable_range(mp.obs) / 2
                values.append(jnp.asarray(0.0 if rng is None else rng.uniform(-half, half)))
        results.append(values[0] if len(values) == 1 else tuple(values))
    return tuple(results)


def _half_ranges(jac, tape):
    """``Σ_m range_m / 2`` of each component for one tape's Jacobian block ``(C, ...)``."""
    blocks = jac if len(tape.measurements) > 1 else (jac,)
    total = 0.0
    for mp, block in zip(tape.measurements, blocks):
        block = np.real(np.asarray(block)).reshape(block.shape[0], -1)
        if isinstance(mp, ProbabilityMP):
            total = total + (block.max(axis=1) - block.min(axis=1)) / 2
        else:
            total = total + np.abs(block[:, 0]) * _observable_range(mp.obs) / 2
    return total


def _shot_variance(flat_values, tapes):
    """``(max_k v_k, first_order)`` of the post-processing ``flat_values(results)`` (a vector):
    ``v_k`` at a few random result sets (one compiled Jacobian, vectorised over the sets)."""
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(0)
    sets = [random_results(tapes, rng) for _ in range(_RANDOM_RESULT_SETS)]
    stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *sets)
    jac = jax.jit(jax.vmap(jax.jacrev(flat_values)))(stacked)
    bounds = [
        sum(
            _half_ranges(jax.tree_util.tree_map(lambda leaf, s=s: leaf[s], block), tape) ** 2
            for block, tape in zip(jac, tapes)
        )
        for s in range(_RANDOM_RESULT_SETS)
    ]
    first_order = not all(np.allclose(b, bounds[0], rtol=1e-9, atol=1e-12) for b in bounds)
    return float(np.max(bounds)), first_order


def _shots_for(variance, target_stderr, n_groups):
    """``(shots_per_circuit, total_shots)`` for a per-shot variance bound, or ``(None, None)``."""
    if variance is None or target_stderr is None:
        return None, None
    # the relative 1e-9 absorbs float round-off (x64 or not) in an exact ratio such as 5000
    shots = math.ceil(variance / target_stderr**2 * (1 - 1e-9)) if n_groups else 0
    return shots, shots * n_groups


def make_report(method, gradient, tapes, gates, *, variance=None, first_order=False, target_stderr=None,
            n_simulator_requests=0, n_setup_circuits=0, notes=(), n_executed_tapes=None):  # fmt: skip
    """A :class:`CostReport` of one batch of ``tapes`` (``n_executed_tapes``: how many tapes the
    executor sends after merging them into broadcast tapes; default: one per circuit)."""
    n_groups = sum(measurement_groups(t) for t in tapes)
    shots, total = _shots_for(variance, target_stderr, n_groups)
    return CostReport(
        method=method,
        gradient=gradient,
        n_circuits=len(tapes),
        n_measurement_groups=n_groups,
        n_simulator_requests=n_simulator_requests,
        n_setup_circuits=n_setup_circuits,
        **{f.name: getattr(gates, f.name) for f in fields(GateCounts)},
        shot_variance=variance,
        first_order=first_order,
        target_stderr=target_stderr,
        shots_per_circuit=shots,
        total_shots=total,
        notes=tuple(notes),
        n_executed_tapes=len(tapes) if n_executed_tapes is None else n_executed_tapes,
    )


# ---------------------------------------------------------------------------------------------
# attribution transforms (ExplainedQNode)
# ---------------------------------------------------------------------------------------------


class _CountExecutions:
    """Count the circuits ``device`` executes in the block (its own tracker is restored)."""

    def __init__(self, device):
        self.device = device
        self.count = 0

    def __enter__(self):
        self._saved = getattr(self.device, "tracker", None)
        self._tracker = qml.Tracker(self.device) if self._saved is not None else None
        if self._tracker is not None:
            self._tracker.__enter__()
        return self

    def __exit__(self, *exc):
        if self._tracker is not None:
            self._tracker.__exit__(*exc)
            totals = self._tracker.totals  # default.qubit: "simulations" are circuits,
            # "executions" their measurement groups; other devices record executions only
            self.count = int(totals.get("simulations", totals.get("executions", 0)))
            self.device.tracker = self._saved


def cost_report(explained, *args, target_stderr=None, gate_set=None, **kwargs):
    """The cost of ``explained(*args, **kwargs)``, without executing its circuits.

    Args:
        explained (ExplainedQNode): a QNode wrapped by an attribution method.
        *args, **kwargs: the call to budget (as for the explanation itself).
        target_stderr (float): the largest standard error wanted for every attribution
            component; gives ``shots_per_circuit`` and ``total_shots``.
        gate_set (set[str]): count gates after :func:`qml.transforms.decompose` to these gates
            (e.g. ``{"RZ", "SX", "CNOT"}``); default: the gates as generated.

    Returns:
        CostReport: see :mod:`pennylane_xqml.engine.cost`.
    """
    if not callable(getattr(explained, "plan", None)) or not hasattr(explained, "method"):
        raise TypeError(
            "cost_report takes an explanation (a QNode wrapped by an attribution method such as "
            f"xqml.integrated_gradients), got {type(explained).__name__}."
        )
    gate_set = check_cost_options(target_stderr, gate_set)

    with _CountExecutions(explained.device) as setup:  # the preparation step, if any
        prepared = explained.prepare(*args, **kwargs)
    plan = prepared.plan(*args, **kwargs)
    return plan_cost(
        plan, target_stderr=target_stderr, gate_set=gate_set, n_setup_circuits=setup.count
    )


def plan_cost(plan, *, target_stderr=None, gate_set=None, n_setup_circuits=0):
    """The :class:`CostReport` of a :class:`~.plan.Plan`: its circuits and gates, and the shots
    for ``target_stderr`` (see :func:`cost_report`); ``n_setup_circuits`` are circuits that ran
    while the plan was built."""
    gate_set = check_cost_options(target_stderr, gate_set)
    # a broadcast tape of B parameter sets is B circuits on hardware: count its rows
    tapes, gathers, gates, n_executed = [], [], None, 0
    for part_tapes, device, diff_method in plan.parts:
        expanded, gather, _ = executed_batch(part_tapes, device, diff_method, broadcast=False)
        gathers.append((len(tapes), len(expanded), gather))
        tapes.extend(expanded)
        counts = gate_counts(expanded, device, gate_set)
        gates = counts if gates is None else gates + counts
        n_executed += len(executed_batch(part_tapes, device, diff_method, plan.broadcast)[0])

    def gather(results):
        out = []
        for start, size, gather_part in gathers:
            out.extend(gather_part(results[start : start + size]))
        return tuple(out)

    n_direct = len(plan.simulator_requests)
    notes = []
    if n_setup_circuits:
        notes.append(
            f"{n_setup_circuits} circuits ran in the explanation's preparation step (root "
            "search); give root=<an array> to budget without running anything."
        )
    variance, first_order = None, False
    if plan.method == "qlrp":
        notes.append("relevances come from density matrices (state tapes): shots do not apply.")
    elif n_direct or not _shot_bound_applies(tapes):
        notes.append(
            f'gradient="{plan.rule}" is simulator-only (autodiff or state outputs): shots do '
            'not apply; use "hadamard_all" (amplitudes) or "parameter-shift" (angles).'
        )
    elif not tapes:
        variance = 0.0
    else:

        def flat_values(results):
            import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

            out = plan.processing_fn(gather(results), ())
            values = out[0] if isinstance(out, tuple) else out
            return jnp.real(jnp.reshape(jnp.asarray(values), (-1,)))

        variance, first_order = _shot_variance(flat_values, tapes)
        if first_order:
            notes.append(
                "the post-processing is not linear in the results: the shot count is a "
                "first-order estimate at random results, not a guarantee."
            )
    return make_report(
        plan.method,
        plan.rule,
        tapes,
        gates,
        variance=variance,
        first_order=first_order,
        target_stderr=target_stderr,
        n_simulator_requests=n_direct,
        n_setup_circuits=n_setup_circuits,
        notes=notes,
        n_executed_tapes=n_executed,
    )


# ---------------------------------------------------------------------------------------------
# QPert (learned masks)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QPertCost:
    """The cost of a QPert explanation (see :func:`~pennylane_xqml.methods.qpert.qpert_cost`); ``str(cost)`` is a table.

    Every instance evaluates its class probabilities once (``n_setup_circuits``), then each of
    the ``n_iter`` iterations runs ``circuits_per_iteration`` circuits: the model at the ``K``
    perturbed inputs (``model_circuits_per_iteration``) and, for ``fidelity="circuit"``, ``K``
    compute-uncompute circuits (``fidelity_circuits_per_iteration``), each with its
    parameter-shift circuits (none for simulator-only rules). ``n_circuits`` is the total.
    ``model_gates``/``fidelity_gates`` are the :class:`GateCounts` of one model circuit and of
    one fidelity circuit; ``total_shots`` uses the QNode's own shots (``None`` when analytic).
    ``shots_for_target`` is always ``None``: see the notes.
    """

    method: str
    gradient: str
    fidelity: str | None
    n_instances: int
    n_masks: int
    n_iter: int
    n_setup_circuits: int
    model_circuits_per_iteration: int
    fidelity_circuits_per_iteration: int
    circuits_per_iteration: int
    n_circuits: int
    n_measurement_groups: int
    model_gates: GateCounts
    fidelity_gates: GateCounts | None
    shots_per_circuit: int | None
    total_shots: int | None
    target_stderr: float | None
    shots_for_target: None
    notes: tuple

    def __str__(self):
        rows = [
            ("method", self.method),
            ("gradient rule", self.gradient),
            ("fidelity term", self.fidelity),
            ("instances x masks", f"{self.n_instances} x {self.n_masks}"),
            ("iterations", self.n_iter),
            ("setup circuits", self.n_setup_circuits),
            ("circuits per iteration", self.circuits_per_iteration),
            ("circuits (total)", self.n_circuits),
            ("measurement groups (total)", self.n_measurement_groups),
            *self.model_gates.rows("model circuit: "),
            *(self.fidelity_gates.rows("fidelity circuit: ") if self.fidelity_gates else []),
            ("shots per circuit", self.shots_per_circuit),
            ("total shots", self.total_shots),
        ]
        return _table(rows, self.notes)
