r"""Circuit cost report: what one explanation will cost on a device, before it runs.

:func:`cost_report` (also ``explained.cost(*args)``) builds the batch of tapes that one call of
an :class:`~pennylane_xqml.transform.ExplainedQNode` would execute and returns a
:class:`CostReport` with

* **circuits**: ``n_circuits``, the tapes of the one ``qml.execute`` call of the explanation
  (exactly :meth:`~pennylane_xqml.transform.ExplainedQNode.construct_batch`), and
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

Grad-CAM and QPert are not transforms: :func:`grad_cam_cost` (``cam.cost(params, images)``)
gives a :class:`CostReport` of Grad-CAM's one batch (shots bound the channel weights ``w_k``),
and :func:`qpert_cost` (``explainer.cost(x, *weights)``) a :class:`QPertCost`: circuits per
iteration and in total, gates of the model and fidelity circuits, no shot bound (the loss is
not linear in the results). All reports share :class:`GateCounts`.

``taylor_fourier`` with ``root="search"`` runs its Newton steps while the explanation is built;
the report counts the circuits the device executed then (``n_setup_circuits``, measured with
:class:`qml.Tracker`) -- give ``root=<an array>`` to budget without running anything.
``qlrp`` computes its relevances from a simulated density matrix (no circuits; shots do not
apply). The gradient rule is resolved for the QNode as given: on an analytic simulator
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
    """The cost of one explanation (see :mod:`pennylane_xqml.cost`); ``str(report)`` is a table.

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
    if (
        not isinstance(value, (int, float, np.integer, np.floating))
        or isinstance(value, bool)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")


# ---------------------------------------------------------------------------------------------
# gates
# ---------------------------------------------------------------------------------------------


def _gate_counts(tapes, device, gate_set):
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


def _measurement_groups(tape):
    tapes, _ = qml.transforms.split_non_commuting(tape)
    return len(tapes)


def _check_options(target_stderr, gate_set):
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


def _random_results(tapes, rng=None):
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
    sets = [_random_results(tapes, rng) for _ in range(_RANDOM_RESULT_SETS)]
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


def _report(method, gradient, tapes, gates, *, variance=None, first_order=False, target_stderr=None,
            n_simulator_requests=0, n_setup_circuits=0, notes=()):  # fmt: skip
    """A :class:`CostReport` of one batch of ``tapes``."""
    n_groups = sum(_measurement_groups(t) for t in tapes)
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
        CostReport: see :mod:`pennylane_xqml.cost`.
    """
    from .transform import ExplainedQNode  # pylint: disable=import-outside-toplevel

    if not isinstance(explained, ExplainedQNode):
        raise TypeError(
            "cost_report takes an explanation (a QNode wrapped by an attribution method such as "
            f"xqml.integrated_gradients), got {type(explained).__name__}."
        )
    gate_set = _check_options(target_stderr, gate_set)

    with _CountExecutions(explained.device) as setup:
        engine, result = explained._engine(args, kwargs)  # pylint: disable=protected-access
    tapes = list(engine.batch.tapes)
    n_direct = engine.n_direct_requests
    notes = []
    name = explained.method.public_name
    if setup.count:
        notes.append(
            f"{setup.count} circuits ran while the explanation was built (root search); "
            "give root=<an array> to budget without running anything."
        )
    variance, first_order = None, False
    if name == "qlrp":
        notes.append("relevances come from a simulated density matrix: shots do not apply.")
    elif n_direct or not _shot_bound_applies(tapes):
        notes.append(
            f'gradient="{engine.rule}" is simulator-only (autodiff or state outputs): shots do '
            'not apply; use "hadamard_all" (amplitudes) or "parameter-shift" (angles).'
        )
    elif not tapes:
        variance = 0.0
    else:

        def flat_values(results):
            import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

            out = result(engine.postprocess(results))
            values = out[0] if isinstance(out, tuple) else out
            return jnp.real(jnp.reshape(jnp.asarray(values), (-1,)))

        variance, first_order = _shot_variance(flat_values, tapes)
        if first_order:
            notes.append(
                "the post-processing is not linear in the results: the shot count is a "
                "first-order estimate at random results, not a guarantee."
            )
    return _report(
        name,
        engine.rule,
        tapes,
        _gate_counts(tapes, engine.device, gate_set),
        variance=variance,
        first_order=first_order,
        target_stderr=target_stderr,
        n_simulator_requests=n_direct,
        n_setup_circuits=setup.count,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# Grad-CAM (hybrid CNN-VQC models)
# ---------------------------------------------------------------------------------------------


class _RecordingDevice(qml.devices.Device):
    """Records the circuits it is given and answers with placeholder results (nothing runs):
    Grad-CAM builds, batches and post-processes its tapes exactly as on the real device."""

    def __init__(self, wires):
        super().__init__(wires=wires)
        self.circuits = []

    def execute(self, circuits, execution_config=None):
        self.circuits.extend(circuits)
        return _random_results(circuits)


def grad_cam_cost(cam, params, images, *, target_stderr=None, gate_set=None):
    r"""The cost of ``cam(params, images)`` (a :func:`~pennylane_xqml.grad_cam` callable),
    without running its circuits; also ``cam.cost(params, images, ...)``.

    The tapes are the very ones Grad-CAM builds: it runs with its QNode moved to a device that
    records them and answers placeholder results (``n_images × 2 × n_angles`` shifted circuits,
    plus one forward circuit per image for ``target=None``, in one batch). The shot bound is
    for the **channel weights** ``w_k`` of every class (the CAM ``ReLU(Σ_k w_k A^k)`` is not
    linear in the results; ReLU is 1-Lipschitz, so a CAM pixel's error is at most
    ``Σ_k |A^k_ij| · |δw_k|``). ``w = R · D · (J_g M)`` is linear in the results of the shifted
    circuits, with the classical factors fixed by ``params`` and
    ``images``. With shots each circuit measures ``qml.probs`` of its qubit-wise commuting words
    (:func:`~.estimation.estimate_outputs`), so Grad-CAM's own propagated variance at one shot
    is the exact multinomial variance; the bound is its maximum over random valid results,
    at one shot. ``gradient="backprop"`` runs no circuits (one simulator request).

    >>> import jax.numpy as jnp, pennylane_xqml as xqml
    >>> from pennylane_xqml.hybrid import HybridCNNVQC
    >>> model = HybridCNNVQC(n_classes=2, n_channels=2, n_qubits=2, n_layers=1, n_hidden=2,
    ...                      image_shape=(5, 5))
    >>> images = jnp.linspace(0, 1, 50).reshape(2, 5, 5)
    >>> report = xqml.grad_cam(model).cost(model.params, images, target_stderr=0.05)
    >>> report.n_circuits  # 2 images x (2 shifts x 2 angles + 1 forward)
    10
    >>> report.total_shots == report.shots_per_circuit * report.n_measurement_groups
    True
    """
    import copy  # pylint: disable=import-outside-toplevel

    from .gradcam import GradCAM  # pylint: disable=import-outside-toplevel

    if not isinstance(cam, GradCAM):
        raise TypeError(f"grad_cam_cost takes a GradCAM (xqml.grad_cam(model)), got {type(cam).__name__}.")
    gate_set = _check_options(target_stderr, gate_set)
    model = cam.model
    checked, _ = model.check_images(images)
    if checked.shape[0] == 0:
        raise ValueError("images is empty; give at least one image.")
    cam._check_target(cam.target, checked.shape[0])  # pylint: disable=protected-access
    if cam.gradient == "backprop":
        note = 'gradient="backprop" is simulator-only (jax.jacrev): shots do not apply.'
        return _report("grad_cam", cam.gradient, [], _gate_counts([], model.qnode.device, gate_set),
                       n_simulator_requests=1, notes=[note])  # fmt: skip

    recorder = _RecordingDevice(model.qnode.device.wires)
    dry = copy.copy(model)
    dry.qnode = qml.set_shots(model.qnode.update(device=recorder), 1)  # variances per shot
    dry_cam = GradCAM(dry, cam.layer, cam.target)
    dry_cam._cache = cam._cache  # pylint: disable=protected-access  # same compiled parts
    A = model.activations(params, checked, cam.layer)
    _, variances, _ = dry_cam._shift_weights(params, A)  # pylint: disable=protected-access
    tapes = [t.copy(shots=model.qnode.shots) for t in recorder.circuits]
    notes = ["the shot bound is for the channel weights w_k of every class, not the ReLU'd CAM."]
    return _report("grad_cam", cam.gradient, tapes, _gate_counts(tapes, model.qnode.device, gate_set),
                   variance=float(np.max(variances)), target_stderr=target_stderr, notes=notes)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# QPert (learned masks)
# ---------------------------------------------------------------------------------------------

_SIMULATOR_RULES = ("backprop", "adjoint", "device")


@dataclass(frozen=True)
class QPertCost:
    """The cost of a QPert explanation (see :func:`qpert_cost`); ``str(cost)`` is a table.

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


def _shift_circuits(tape_of, args, argnum, device):
    """Parameter-shift circuits of ``tape_of(*args)`` for the gate parameters fed by
    ``args[argnum]`` (the only ones QPert differentiates), after the expansions ``qml.execute``
    applies first (the gradient's, then the device's preprocessing)."""
    from .encodings import input_parameter_indices  # pylint: disable=import-outside-toplevel

    preprocess = device.preprocess_transforms(qml.devices.ExecutionConfig())

    def expanded(*call_args):
        [tape], _ = qml.gradients.param_shift.expand_transform(tape_of(*call_args))
        [tape], _ = preprocess([tape])
        return tape

    tape = expanded(*args)
    tape.trainable_params = input_parameter_indices(expanded, args, {}, argnum)
    if not tape.trainable_params:
        return 0
    shifted, _ = qml.gradients.param_shift(tape)
    return len(shifted)


def qpert_cost(explainer, x, *weights, target_stderr=None, gate_set=None):
    """The circuits and gates of ``explainer.explain(x, *weights)`` (``x`` one instance) or of
    ``explainer.explain_batch(x, *weights)`` (``x`` of shape ``(n, *input_shape)``), without
    running anything; also ``explainer.cost(x, *weights, ...)``.

    Per instance: ``1 + n_iter × K × ((1 + g_model) + (1 + g_fidelity))`` circuits, where
    ``g`` is the number of parameter-shift circuits of a tape for the gate parameters fed by
    the perturbed input (the masks are the only differentiated quantity; the fidelity term is
    evaluated at every iteration, weighted 0 before its phase starts, and is absent for
    ``fidelity="js"``/``None``). ``diff_method="backprop"``/``"adjoint"`` compute gradients
    on the simulator (``g = 0``; not runnable on hardware). Other gradient transforms
    (finite-diff, SPSA, Hadamard) are refused: their counts are not verified.

    Circuits are counted as a device without parameter broadcasting runs them
    (``default.qubit`` simulates the setup of a batch, vmapped over the instances, as one
    broadcast tape of ``n`` circuits).

    No shot count is given for a target standard error (``shots_for_target`` is ``None``): the
    loss is non-linear in the estimates (``-log p_c``, entropies, squares) and its gradient
    divides by ``p_c``, so its shot error has no bound uniform in the unknown probabilities
    (it diverges as ``p_c → 0``), and Adam's normalised steps are not linear either.

    >>> import pennylane as qml, numpy as np, pennylane_xqml as xqml
    >>> dev = qml.device("default.qubit", wires=2)
    >>> @qml.set_shots(1000)
    ... @qml.qnode(dev, diff_method="parameter-shift")
    ... def model(x, w):
    ...     qml.RY(np.pi * x[0], wires=0)
    ...     qml.RY(np.pi * x[1], wires=1)
    ...     qml.CNOT(wires=[0, 1])
    ...     qml.RX(w, wires=1)
    ...     return qml.probs(wires=0)
    >>> explainer = xqml.qpert_mask(model, background=np.zeros((1, 2)), n_iter=100, n_masks=2)
    >>> cost = explainer.cost(np.array([0.9, 0.2]), 0.3)
    >>> cost.circuits_per_iteration  # 2 masks x ((1 + 2 x 2 shifts) + (1 + 2 x 2 shifts))
    20
    >>> cost.n_circuits, cost.total_shots, cost.fidelity_gates.two_qubit_gates
    (2001, 2001000, 2)
    """
    from . import qpert  # pylint: disable=import-outside-toplevel

    if not isinstance(explainer, qpert.QPertExplainer):
        raise TypeError(f"qpert_cost takes a QPertExplainer (xqml.qpert_mask(qnode, ...)), got {type(explainer).__name__}.")
    if not explainer.is_qnode:
        raise TypeError("qpert_cost needs a QPertExplainer of a qml.QNode; a JAX function runs no circuits.")
    gate_set = _check_options(target_stderr, gate_set)
    batched = np.ndim(x) == explainer.background.ndim
    X, x, _ = explainer._check_call(x, weights, batched)  # pylint: disable=protected-access
    n_instances = X.shape[0] if batched else 1
    qnode, argnums = explainer.model, explainer.argnums
    args = qpert._model_args(x, weights, argnums)  # pylint: disable=protected-access
    rule = qpert._resolved_diff_method(qnode, args)  # pylint: disable=protected-access
    if rule not in _SIMULATOR_RULES + ("parameter-shift",):
        raise ValueError(
            f"qpert_cost counts the circuits of diff_method 'parameter-shift' (hardware) or "
            f"{_SIMULATOR_RULES} (simulators); the QNode resolves to {rule!r}."
        )
    kind, _ = explainer._fidelity_kind(x, weights)  # pylint: disable=protected-access
    weights = tuple(weights)

    def model_tape(x):
        return qpert._tape_at(qnode, x, weights, argnums)  # pylint: disable=protected-access

    def fidelity_tape(x_tilde, x):
        measurement = qpert._fidelity_measurement(rule)  # pylint: disable=protected-access
        return qpert.compute_uncompute_tape(model_tape(x), model_tape(x_tilde), measurement)

    tape = model_tape(x)
    shifts = rule == "parameter-shift"
    k = explainer.n_masks * n_instances
    model_circuits = k * (1 + (_shift_circuits(model_tape, (x,), 0, qnode.device) if shifts else 0))
    groups = model_circuits * _measurement_groups(tape)
    fidelity_circuits, fidelity_gates = 0, None
    if kind == "circuit":
        f_tape = fidelity_tape(x, x)
        fidelity_circuits = k * (1 + (_shift_circuits(fidelity_tape, (x, x), 0, qnode.device) if shifts else 0))
        groups += fidelity_circuits * _measurement_groups(f_tape)
        fidelity_gates = _gate_counts([f_tape], qnode.device, gate_set)
    per_iteration = model_circuits + fidelity_circuits
    n_circuits = n_instances + explainer.n_iter * per_iteration
    n_groups = n_instances * _measurement_groups(tape) + explainer.n_iter * groups
    shots = qml.workflow.construct_tape(qnode, level="user")(*args).shots.total_shots
    notes = [
        (
            "no shot count bounds the loss or its gradient: the loss is non-linear in the "
            "estimates (log p_c, entropies) and its gradient divides by p_c."
        )
    ]
    if not shifts:
        notes.append(f'diff_method="{rule}" is simulator-only: gradients need no circuits, but '
                     'it cannot run on hardware (use "parameter-shift" with shots).')  # fmt: skip
    return QPertCost(
        method="qpert_mask",
        gradient=rule,
        fidelity=kind,
        n_instances=n_instances,
        n_masks=explainer.n_masks,
        n_iter=explainer.n_iter,
        n_setup_circuits=n_instances,
        model_circuits_per_iteration=model_circuits,
        fidelity_circuits_per_iteration=fidelity_circuits,
        circuits_per_iteration=per_iteration,
        n_circuits=n_circuits,
        n_measurement_groups=n_groups,
        model_gates=_gate_counts([tape], qnode.device, gate_set),
        fidelity_gates=fidelity_gates,
        shots_per_circuit=shots,
        total_shots=None if shots is None else shots * n_groups,
        target_stderr=target_stderr,
        shots_for_target=None,
        notes=tuple(notes),
    )
