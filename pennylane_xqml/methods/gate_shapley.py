r"""Shapley values of the gates of a circuit (Heese et al., "Explaining Quantum Circuits with
Shapley Values", arXiv:2301.09138).

The players are the operations of the QNode's circuit that do **not** take the model's input,
as the user wrote them and in circuit order (a template such as ``StronglyEntanglingLayers`` is
one player; ``decompose=True`` makes its gates players). The value of a coalition ``S`` is
computed on the circuit in which every player outside ``S`` is removed (it acts as the
identity), the input operations and the measurements being kept:

.. math:: \phi_i = \sum_{S \subseteq N \setminus \{i\}} \frac{|S|!\,(M-|S|-1)!}{M!}
    \big[v(S \cup \{i\}) - v(S)\big].

``v`` is the model's output at the input, its mean over a data set (``dataset=True``: the
input argument holds rows), or ``value(outputs)``, a function of the outputs (for a data set
the outputs of all rows, stacked; accuracy, say). ``groups`` merges players (layers, blocks).

* **Exact** over all ``2**M`` coalitions for ``M <= 12`` players (groups), with the Shapley
  matrix of :func:`~pennylane_xqml.methods.perturbation.shapley_matrix`.
* **Permutation sampling** beyond that (and with ``method="sampling"``): the players are added
  one by one along seeded random orderings (:func:`~.perturbation.random_orderings`), each
  credited with the change of ``v`` it causes. With ``antithetic=True`` (default) every second
  ordering is the reverse of the one before; the standard errors are those of the mean over
  the independent units (single orderings, or antithetic pairs), ``std(ddof=1) / sqrt(n)``.

Efficiency holds exactly in both cases: every ordering telescopes to ``v(all) - v(none)``, so
the values sum to it for any number of orderings.

**Why not an ExplainedQNode.** The attribution transforms explain the *input* (the engine's
features are input entries); here the features are gates and the input is fixed. So
:func:`gate_shapley` returns a :class:`GateShapley` explainer (as :class:`QPertExplainer` and
:class:`GradCAM` do) that follows the same contract: ``explainer.plan(*args)`` is a
:class:`~pennylane_xqml.engine.plan.Plan` whose tapes are all the coalition circuits of one
explanation (identical coalitions merged), run as **one** batch by
:func:`~pennylane_xqml.engine.plan.execute_plan`; ``explainer.cost(*args)`` is its
:class:`~pennylane_xqml.engine.cost.CostReport`. With ``dataset=True`` the rows of a coalition
form one broadcast tape when the QNode supports parameter broadcasting (one tape per row
otherwise); the cost report counts one circuit per row, as a device without broadcasting runs
them. Outside ``jax.jit``, tapes run with NumPy parameters (see
:func:`~pennylane_xqml.engine.execution.concrete_tapes`).

The values are differentiable in the weights: under ``jax.grad``/``jax.jit`` the tapes keep the
traced parameters and run with the QNode's ``diff_method`` (the value function must then be
written with ``jax.numpy``/``qml.math``).

Standard errors are those of the permutation sampling (zeros for exact values). With shots, the
values carry shot noise too, and the sampling standard errors do not account for it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import NamedTuple

import numpy as np
import pennylane as qml
from pennylane.measurements import MidMeasureMP

from ..engine.cost import check_cost_options, plan_cost
from ..engine.encodings import input_parameter_indices
from ..engine.execution import concrete_tapes
from ..engine.functions import FunctionCall, FunctionModelError
from ..engine.plan import Plan, execute_plan
from ..engine.torch_bridge import call_with_torch, has_torch
from ..engine.validation import (
    check_bool,
    check_finite,
    check_no_program_capture,
    check_positive_int,
    check_seed,
    is_int,
    is_tracer,
)
from .perturbation import MAX_EXACT_GROUPS, all_coalitions, random_orderings, shapley_matrix

__all__ = ["GateShapley", "GateShapleyResult", "gate_shapley"]

METHODS = ("auto", "exact", "sampling")


class GateShapleyResult(NamedTuple):
    """The Shapley values of the players (or groups) of a circuit.

    Attributes:
        values: ``(n_groups, *value_shape)``, one row per group in circuit order; they sum to
            ``v_all - v_none``.
        stderr: the permutation-sampling standard errors (same shape; zeros when exact).
        v_all: the value of the full circuit.
        v_none: the value of the circuit without any player (input operations only).
        labels (tuple[str]): one label per group.
        groups (tuple[tuple[int]]): the player indices of each group.
        players (tuple[Operator]): the players, in circuit order.
        tape (QuantumScript): the circuit as played: input operations and players (decomposed
            with ``decompose=True``), with the measurements; drawn by
            :func:`~pennylane_xqml.experiments.plotting.plot_gate_shapley`.
        positions (tuple[int]): the index in ``tape.operations`` of each player.
        method (str): ``"exact"`` or ``"sampling"``.
        n_permutations (int | None): orderings sampled (``None`` when exact).
    """

    values: object
    stderr: object
    v_all: object
    v_none: object
    labels: tuple
    groups: tuple
    players: tuple
    tape: object
    positions: tuple
    method: str
    n_permutations: int | None


class _Game(NamedTuple):
    """The players of one call: the circuit(s) as played and the grouping (nothing runs)."""

    row_tapes: tuple  # the played circuit per row (or one, possibly broadcast, tape)
    is_player: tuple  # per operation of a played tape: player index or -1
    groups: tuple
    labels: tuple


# ---------------------------------------------------------------------------------------------
# the circuit: which operations are players
# ---------------------------------------------------------------------------------------------


def _expand(op):
    """``op`` decomposed until every operation has a matrix (a gate)."""
    if op.has_matrix or not op.has_decomposition:
        return [op]
    return [gate for sub in op.decomposition() for gate in _expand(sub)]


def _played_operations(tape, input_ops, decompose):
    """``(operations, is_player)``: the tape's operations (non-input ones decomposed with
    ``decompose``) and, for each, its player index or -1."""
    operations, is_player = [], []
    for k, op in enumerate(tape.operations):
        if k in input_ops or isinstance(op, MidMeasureMP):
            operations.append(op)
            is_player.append(-1)
            continue
        for gate in _expand(op) if decompose else [op]:
            operations.append(gate)
            is_player.append(sum(p >= 0 for p in is_player))
    return operations, tuple(is_player)


def _input_operations(tape, indices):
    """Positions of the operations whose parameters include one of the input's."""
    positions, start = set(), 0
    for k, op in enumerate(tape.operations):
        n = len(op.data)
        if any(start <= i < start + n for i in indices):
            positions.add(k)
        start += n
    return positions


def _broadcasts_rows(whole, rows):
    """Whether ``whole`` (the tape traced at the whole data set) is the ``rows``' tapes
    broadcast: the same operations, and every parameter the stack of the rows' (or, unbatched,
    equal to each row's). Never with traced parameters (the rows' tapes are used then)."""
    if whole.batch_size != len(rows) or any(
        [op.name for op in whole.operations] != [op.name for op in row.operations] for row in rows
    ):
        return False
    params = whole.get_parameters(trainable_only=False)
    per_row = [row.get_parameters(trainable_only=False) for row in rows]
    if any(len(ps) != len(params) for ps in per_row):
        return False
    if any(is_tracer(p) for p in params) or any(is_tracer(p) for ps in per_row for p in ps):
        return False
    for j, p in enumerate(params):
        p, stacked = np.asarray(p), np.stack([np.asarray(ps[j]) for ps in per_row])
        if p.shape == stacked.shape[1:]:
            p = np.broadcast_to(p, stacked.shape)
        if p.shape != stacked.shape or not np.allclose(p, stacked, rtol=1e-12, atol=0):
            return False
    return True


def _label(op):
    return f"{op.name}({','.join(str(w) for w in op.wires)})"


def _grouping(groups, players):
    """``(groups, labels)``: player indices per group, in order of their first player."""
    n = len(players)
    if groups is None:
        return tuple((i,) for i in range(n)), tuple(
            f"{i}: {_label(op)}" for i, op in enumerate(players)
        )
    if callable(groups):
        keys = {}
        for i, op in enumerate(players):
            keys.setdefault(groups(op), []).append(i)
        return tuple(tuple(v) for v in keys.values()), tuple(str(k) for k in keys)
    names = None
    if isinstance(groups, dict):
        names, groups = tuple(str(k) for k in groups), list(groups.values())
    members = [list(g) for g in groups]
    flat = [i for g in members for i in g]
    if not all(is_int(i) for i in flat) or any(len(g) == 0 for g in members):
        raise TypeError("groups must be non-empty lists of player indices (ints), or a function.")
    if sorted(flat) != list(range(n)):
        raise ValueError(
            f"groups must hold every player index 0..{n - 1} exactly once (the circuit has {n} "
            f"players); got {members}. GateShapley.players(*args) lists the players."
        )
    labels = names or tuple(f"group {j}" for j in range(len(members)))
    return tuple(tuple(int(i) for i in g) for g in members), labels


# ---------------------------------------------------------------------------------------------
# the explainer
# ---------------------------------------------------------------------------------------------


def _is_list_of_lists(groups):
    if isinstance(groups, dict):
        groups = list(groups.values())
    return isinstance(groups, (list, tuple)) and all(
        isinstance(g, (list, tuple, range, np.ndarray)) for g in groups
    )


def _check_options(value, dataset, groups, decompose, method, n_permutations, antithetic, seed,
                   argnums):  # fmt: skip
    """Validate the options of :func:`gate_shapley` (raises before any circuit runs)."""
    if value is not None and not callable(value):
        raise TypeError(f"value must be None (the output) or a function of it, got {value!r}.")
    check_bool(dataset, "dataset")
    check_bool(decompose, "decompose")
    check_bool(antithetic, "antithetic")
    check_seed(seed)
    if method not in METHODS:
        raise ValueError(f"Unknown method={method!r}; expected one of {METHODS}.")
    check_positive_int(n_permutations, "n_permutations")
    if n_permutations < 2 or (antithetic and n_permutations % 2):
        raise ValueError(
            "n_permutations must be >= 2 (standard errors need two orderings) and even with "
            f"antithetic=True (orderings come in pairs); got {n_permutations}."
        )
    if not (groups is None or callable(groups) or _is_list_of_lists(groups)):
        raise TypeError(
            "groups must be a list of lists of player indices, a dict {label: indices}, or a "
            f"function operation -> key; got {groups!r}."
        )
    if not (is_int(argnums) or isinstance(argnums, str)):
        raise TypeError(f"argnums must be an int or an argument name, got {argnums!r}.")


class GateShapley:
    """A QNode whose gates are explained by Shapley values (made by :func:`gate_shapley`).

    ``explainer(*args, **kwargs)`` (the QNode's arguments) returns a :class:`GateShapleyResult`;
    :meth:`plan` gives the explanation's circuits before anything runs, :meth:`cost` their
    :class:`~pennylane_xqml.engine.cost.CostReport`, :meth:`players` the players, and
    :meth:`coalition_values` the values of chosen coalitions (one batch).
    """

    def __init__(self, qnode, *, value=None, dataset=False, groups=None, decompose=False,
                 method="auto", n_permutations=100, antithetic=True, seed=0, argnums=0):  # fmt: skip
        if not isinstance(qnode, qml.QNode):
            raise TypeError(
                f"gate_shapley explains a qml.QNode or a function of QNodes, got "
                f"{type(qnode).__name__}."
            )
        _check_options(value, dataset, groups, decompose, method, n_permutations, antithetic,
                       seed, argnums)  # fmt: skip
        self.qnode, self.value, self.dataset, self.groups = qnode, value, dataset, groups
        self.decompose, self.method, self.n_permutations = decompose, method, n_permutations
        self.antithetic, self.seed, self.argnums = antithetic, int(seed), argnums
        functools.update_wrapper(self, qnode, updated=())

    def __repr__(self):
        return f"<GateShapley of {self.qnode!r}: method={self.method!r}>"

    # -- the game ---------------------------------------------------------------------------------

    def _positional(self, args, kwargs):
        """``(args, kwargs, argnum)`` with the input positional (bound by the QNode's signature)."""
        check_no_program_capture("gate_shapley")
        try:
            bound = inspect.signature(self.qnode.func).bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"The arguments do not match the QNode's signature: {error}") from error
        names = list(inspect.signature(self.qnode.func).parameters)
        argnum = names.index(self.argnums) if self.argnums in names else self.argnums
        args, kwargs = tuple(bound.args), dict(bound.kwargs)
        if not is_int(argnum) or not 0 <= argnum < len(args):
            raise ValueError(
                f"argnums={self.argnums!r} does not name a positional argument of this call "
                f"({len(args)} given)."
            )
        return args, kwargs, int(argnum)

    def _tape_of(self, args, kwargs):
        return qml.workflow.construct_tape(self.qnode, level="user")(*args, **kwargs)

    def _game(self, args, kwargs, broadcast=True) -> _Game:
        args, kwargs, argnum = self._positional(args, kwargs)
        x = args[argnum]
        check_finite(x, "The input")
        if self.dataset:
            if qml.math.ndim(x) < 1 or qml.math.shape(x)[0] == 0:
                raise ValueError(
                    "dataset=True: the input argument must hold rows along its first axis "
                    f"(n_rows >= 1); got shape {qml.math.shape(x)}."
                )
            rows = [x[i] for i in range(qml.math.shape(x)[0])]
        else:
            rows = [x]

        def at(row):
            return args[:argnum] + (row,) + args[argnum + 1 :]

        def tape_of(*call_args, **call_kwargs):
            return self._tape_of(call_args, call_kwargs)

        first = self._tape_of(at(rows[0]), kwargs)
        indices = input_parameter_indices(tape_of, at(rows[0]), kwargs, argnum)
        input_ops = _input_operations(first, indices)
        operations, is_player = _played_operations(first, input_ops, self.decompose)
        players = [op for op, p in zip(operations, is_player) if p >= 0]
        if not players:
            raise ValueError(
                "The circuit has no operation that does not take the input: there is no gate "
                "to attribute."
            )
        groups, labels = _grouping(self.groups, players)
        self._check_size(len(groups))

        def played(tape):
            ops, flags = _played_operations(tape, input_ops, self.decompose)
            if flags != is_player:
                raise ValueError(
                    "The circuit's gates change between rows of the data set; gate Shapley "
                    "values need one circuit whose input operations alone depend on the row."
                )
            return tape.copy(operations=ops)

        raw = [first] + [self._tape_of(at(r), kwargs) for r in rows[1:]]
        if self.dataset and broadcast and len(rows) > 1:
            whole = self._tape_of(at(x), kwargs)
            if _broadcasts_rows(whole, raw):
                return _Game((played(whole),), is_player, groups, labels)
        return _Game(tuple(played(t) for t in raw), is_player, groups, labels)

    def _check_size(self, n_groups):
        if self.method == "exact" and n_groups > MAX_EXACT_GROUPS:
            raise ValueError(
                f"Exact gate Shapley values need 2**{n_groups} coalition circuits; at most "
                f"{MAX_EXACT_GROUPS} players (or groups) are allowed. Merge players with "
                'groups=, or use method="sampling" (the default "auto" samples beyond '
                f"{MAX_EXACT_GROUPS})."
            )

    def _exact(self, n_groups):
        return self.method == "exact" or (self.method == "auto" and n_groups <= MAX_EXACT_GROUPS)

    def players(self, *args, **kwargs):
        """The players of ``qnode(*args, **kwargs)`` in circuit order (a list of operations;
        decomposed with ``decompose=True``). Nothing runs."""
        game = self._game(args, kwargs, broadcast=False)
        tape = game.row_tapes[0]
        return [op for op, p in zip(tape.operations, game.is_player) if p >= 0]

    # -- circuits and values ------------------------------------------------------------------------

    def _coalition_tapes(self, game, coalitions):
        """One tape per coalition (and row, unless broadcast); ``coalitions`` over the groups."""
        player_group = np.empty(sum(len(g) for g in game.groups), dtype=int)
        for j, members in enumerate(game.groups):
            player_group[list(members)] = j
        tapes = []
        for z in np.asarray(coalitions, dtype=int):
            keep = [p < 0 or z[player_group[p]] == 1 for p in game.is_player]
            for tape in game.row_tapes:
                ops = [op for op, k in zip(tape.operations, keep) if k]
                tapes.append(tape.copy(operations=ops))
        return concrete_tapes(tapes)

    def _values_fn(self, game, n_coalitions):
        """``results -> v`` of shape ``(n_coalitions, *value_shape)`` (runs nothing)."""
        per = len(game.row_tapes)

        def outputs(results):
            if per == 1:
                return results[0]
            if isinstance(results[0], (tuple, list)):  # several measurements: stack each
                return tuple(qml.math.stack(m) for m in zip(*results))
            return qml.math.stack(results)

        def default(out):
            parts = out if isinstance(out, (tuple, list)) else (out,)
            if self.dataset:
                parts = [qml.math.mean(p, axis=0) for p in parts]
            if len(parts) == 1:
                return parts[0]
            return qml.math.hstack([qml.math.reshape(p, (-1,)) for p in parts])

        value = default if self.value is None else self.value

        def values(results):
            return qml.math.stack(
                [
                    qml.math.asarray(value(outputs(results[c * per : (c + 1) * per])))
                    for c in range(n_coalitions)
                ]
            )

        return values

    def coalition_plan(self, coalitions, *args, **kwargs) -> Plan:
        """The :class:`~.plan.Plan` of the values of ``coalitions`` (0/1 rows over the groups):
        its processing returns ``v`` of shape ``(n_coalitions, *value_shape)``. Nothing runs."""
        game = self._game(args, kwargs)
        coalitions = np.asarray(coalitions)
        n_groups = len(game.groups)
        if (
            coalitions.ndim != 2
            or coalitions.shape[1] != n_groups
            or not np.isin(coalitions, (0, 1)).all()
        ):
            raise ValueError(
                f"coalitions must be 0/1 rows of length {n_groups} (one per group); got "
                f"shape {coalitions.shape}."
            )
        values = self._values_fn(game, len(coalitions))
        return self._plan(self._coalition_tapes(game, coalitions), lambda r, _: values(r))

    def coalition_values(self, coalitions, *args, **kwargs):
        """The values ``v(S)`` of ``coalitions`` (0/1 rows over the groups), in one batch
        (torch tensors give torch tensors, as in :meth:`__call__`)."""
        if has_torch(args, kwargs):
            return call_with_torch(
                lambda *a, **k: self.coalition_values(coalitions, *a, **k),
                args,
                kwargs,
                x=self._torch_input(args, kwargs),
            )
        return execute_plan(self.coalition_plan(coalitions, *args, **kwargs))

    def _plan(self, tapes, processing_fn, method="gate_shapley"):
        return Plan(
            method=method,
            embedding="fixed",
            rule="forward",
            tapes=tuple(tapes),
            device=self.qnode.device,
            diff_method=self.qnode.diff_method,
            simulator_requests=(),
            processing_fn=processing_fn,
        )

    def plan(self, *args, broadcast=True, **kwargs) -> Plan:
        """The :class:`~.plan.Plan` of ``self(*args, **kwargs)``: every coalition circuit of the
        explanation in one batch, and a processing function giving the
        :class:`GateShapleyResult`. Validation happens here; nothing runs.

        ``broadcast=False`` builds one tape per row of a data set even when the QNode supports
        parameter broadcasting (as :meth:`cost` counts them)."""
        check_bool(broadcast, "broadcast")
        game = self._game(args, kwargs, broadcast=broadcast)
        n_groups = len(game.groups)
        if self._exact(n_groups):
            coalitions, finish = _exact_design(n_groups)
        else:
            coalitions, finish = _sampling_design(
                random_orderings(n_groups, self.n_permutations, self.seed, self.antithetic),
                self.antithetic,
            )
        values = self._values_fn(game, len(coalitions))
        tape = game.row_tapes[0]
        positions = tuple(k for k, p in enumerate(game.is_player) if p >= 0)
        players = tuple(tape.operations[k] for k in positions)
        exact = self._exact(n_groups)

        def processing_fn(results, _simulator_values=()):
            phi, stderr, v_all, v_none = finish(values(results))
            return GateShapleyResult(
                phi,
                stderr,
                v_all,
                v_none,
                game.labels,
                game.groups,
                players,
                tape,
                positions,
                "exact" if exact else "sampling",
                None if exact else self.n_permutations,
            )

        return self._plan(self._coalition_tapes(game, coalitions), processing_fn)

    def cost(self, *args, target_stderr=None, gate_set=None, **kwargs):
        """The :class:`~pennylane_xqml.engine.cost.CostReport` of one explanation (circuits,
        gates, shots for ``target_stderr``), from its plan with one circuit per row; nothing
        runs. With a ``value`` function the shot bound is a first-order estimate at random
        results (and 0 for piecewise-constant values such as accuracy)."""
        gate_set = check_cost_options(target_stderr, gate_set)
        report = plan_cost(
            self.plan(*args, broadcast=False, **kwargs),
            target_stderr=target_stderr,
            gate_set=gate_set,
        )
        if self.value is None:
            return report
        note = (
            "value is a user function: the shot bound is a first-order estimate at random "
            "results (0 for piecewise-constant values such as accuracy), not a guarantee."
        )
        return dataclasses.replace(report, first_order=True, notes=report.notes + (note,))

    def __call__(self, *args, **kwargs) -> GateShapleyResult:
        """The :class:`GateShapleyResult` of ``qnode(*args, **kwargs)``.

        Torch tensors (a torch QNode's arguments) give ``values``, ``stderr``, ``v_all`` and
        ``v_none`` as torch tensors of the input's dtype and device, computed as the same call
        with JAX arrays (a ``value`` function then receives JAX arrays: write it with
        ``qml.math`` or ``jax.numpy``) and differentiable with ``torch.autograd`` with respect
        to every tensor that requires grad (:mod:`~pennylane_xqml.engine.torch_bridge`); the
        other fields (``tape``, ``players``) describe the call's detached copy."""
        if not has_torch(args, kwargs):
            return execute_plan(self.plan(*args, **kwargs))
        found = []

        def arrays(*call_args, **call_kwargs):
            result = execute_plan(self.plan(*call_args, **call_kwargs))
            found.append(result)  # the first is the forward run's (concrete) result
            return result.values, result.stderr, result.v_all, result.v_none

        values, stderr, v_all, v_none = call_with_torch(
            arrays, args, kwargs, x=self._torch_input(args, kwargs)
        )
        return found[0]._replace(values=values, stderr=stderr, v_all=v_all, v_none=v_none)

    def _torch_input(self, args, kwargs):
        """The input argument of a torch call (``None`` when the arguments do not bind: the
        JAX call then raises its own error)."""
        try:
            args, _, argnum = self._positional(args, kwargs)
        except (TypeError, ValueError):
            return None
        return args[argnum]


class FunctionGateShapley:
    """Gate Shapley values of the one QNode inside a function model (made by
    :func:`gate_shapley` from a function): the players are that QNode's gates, and a
    coalition's value is the *model's* output (the function's classical code applied to the
    QNode's outputs, then ``value`` if given). An ensemble or any model calling several QNodes
    is refused: explain each member QNode with its own ``gate_shapley``.

    Calls, :meth:`plan`, :meth:`cost`, :meth:`players` and :meth:`coalition_plan` take the
    function's arguments and are those of :class:`GateShapley` for the QNode as a function of
    the model's input (:mod:`~pennylane_xqml.engine.functions`)."""

    def __init__(self, func, **options):
        if options["dataset"]:
            raise ValueError(
                "gate_shapley of a function model explains one input (dataset=False); map it "
                "over the rows, or explain the QNode itself with dataset=True."
            )
        self.func, self.options = func, options
        functools.update_wrapper(self, func, updated=())

    def __repr__(self):
        return f"<GateShapley of the function {self.func!r}>"

    def explainer(self, *args, **kwargs):
        """``(GateShapley, arguments)``: the explainer of the model's QNode for this call."""
        options = dict(self.options)
        call = FunctionCall(self.func, args, kwargs, options.pop("argnums"))
        if len(call.calls) != 1:
            raise FunctionModelError(
                f"gate_shapley explains the gates of one QNode, and this model calls QNodes "
                f"{len(call.calls)} times: call xqml.gate_shapley on each member QNode (with "
                "value= for the model's head, if wanted)."
            )
        user_value = options.pop("value")

        def value(outputs):
            parts = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            flat = qml.math.concatenate([qml.math.reshape(p, (-1,)) for p in parts])
            model = qml.math.reshape(call.head(call.x, [flat]), call.output_shape)
            return model if user_value is None else user_value(model)

        qnode = call.sub_qnode(call.calls[0])
        return GateShapley(qnode, value=value, argnums=0, **options), call.sub_args(call.x)

    def __call__(self, *args, **kwargs) -> GateShapleyResult:
        explainer, sub_args = self.explainer(*args, **kwargs)
        return explainer(*sub_args)

    def plan(self, *args, broadcast=True, **kwargs) -> Plan:
        explainer, sub_args = self.explainer(*args, **kwargs)
        return explainer.plan(*sub_args, broadcast=broadcast)

    def cost(self, *args, target_stderr=None, gate_set=None, **kwargs):
        explainer, sub_args = self.explainer(*args, **kwargs)
        return explainer.cost(*sub_args, target_stderr=target_stderr, gate_set=gate_set)

    def players(self, *args, **kwargs):
        explainer, sub_args = self.explainer(*args, **kwargs)
        return explainer.players(*sub_args)

    def coalition_plan(self, coalitions, *args, **kwargs) -> Plan:
        explainer, sub_args = self.explainer(*args, **kwargs)
        return explainer.coalition_plan(coalitions, *sub_args)


# ---------------------------------------------------------------------------------------------
# the designs: coalitions to evaluate, and the map from their values to the Shapley values
# ---------------------------------------------------------------------------------------------


def _exact_design(n_groups):
    coalitions = all_coalitions(n_groups)
    matrix = shapley_matrix(n_groups)

    def finish(v):
        phi = qml.math.tensordot(qml.math.convert_like(matrix, v), v, axes=1)
        return phi, qml.math.zeros_like(phi), v[-1], v[0]

    return coalitions, finish


def _sampling_design(orders, antithetic):
    """Coalitions along ``orders`` (identical ones merged) and the map from their values to the
    mean marginal contributions and their standard errors."""
    n_orders, n_groups = orders.shape
    chains = np.zeros((n_orders, n_groups + 1, n_groups), dtype=int)
    for p, order in enumerate(orders):
        for j, player in enumerate(order):
            chains[p, j + 1 :, player] = 1
    unique, inverse = np.unique(chains.reshape(-1, n_groups), axis=0, return_inverse=True)
    inverse = inverse.reshape(n_orders, n_groups + 1)
    position = np.argsort(orders, axis=1)  # position[p, i]: step at which player i joins
    empty = int(np.flatnonzero(unique.sum(axis=1) == 0)[0])
    full = int(np.flatnonzero(unique.sum(axis=1) == n_groups)[0])

    def finish(v):
        steps = v[inverse[:, 1:]] - v[inverse[:, :-1]]  # (P, M, ...) in ordering positions
        marginal = steps[np.arange(n_orders)[:, None], position]  # (P, M, ...) per player
        units = (marginal[0::2] + marginal[1::2]) / 2 if antithetic else marginal
        n = units.shape[0]
        phi = qml.math.mean(units, axis=0)
        spread = qml.math.sum((units - phi[None]) ** 2, axis=0) / (n - 1)
        return phi, qml.math.sqrt(spread / n), v[full], v[empty]

    return unique, finish


def gate_shapley(qnode=None, *, value=None, dataset=False, groups=None, decompose=False,
                 method="auto", n_permutations=100, antithetic=True, seed=0, argnums=0):  # fmt: skip
    r"""Shapley values of the gates of a QNode's circuit (see :mod:`.gate_shapley`).

    Use it as a decorator (``@gate_shapley(...)`` above ``@qml.qnode``) or call
    ``gate_shapley(qnode, ...)``; options are keyword-only and validated at once.

    Args:
        qnode (QNode): the model (omit to get a decorator).
        value (callable): ``value(outputs)``, the value of a coalition from the QNode's outputs
            (for a data set, the outputs of all rows stacked along a first axis, as a broadcast
            QNode returns them), e.g. an accuracy. Default ``None``: the output itself (for a
            data set, its mean over the rows); several measurements are concatenated.
        dataset (bool): the input argument holds rows along its first axis (default False).
        groups: merge players: a list of lists of player indices (every player exactly once;
            see :meth:`GateShapley.players`), a dict ``{label: indices}`` (the same, labelled),
            or a function ``operation -> key`` (players with equal keys form a group, labelled
            by the key). Default: every player alone.
        decompose (bool): decompose templates into gates, each a player (default False).
        method (str): ``"auto"`` (exact up to 12 players or groups, sampling beyond),
            ``"exact"`` or ``"sampling"``.
        n_permutations (int): orderings sampled (default 100; even with ``antithetic``).
        antithetic (bool): pair each ordering with its reverse (default True).
        seed (int): seed of the orderings (default 0).
        argnums (int or str): the QNode argument that is the model's input (default 0).

    Returns:
        GateShapley: ``explainer(*args, **kwargs)`` returns a :class:`GateShapleyResult`
        (``values`` of shape ``(n_groups, *value_shape)``, ``stderr``, ``v_all``, ``v_none``,
        ``labels``, ...); ``explainer.plan(*args)``/``explainer.cost(*args)`` give the circuits
        before anything runs. Exact: ``2**M`` circuits (times the rows of a data set when the
        QNode cannot broadcast); sampling: at most ``n_permutations * (M - 1) + 2``.

    **Example**

    >>> import numpy as np, pennylane as qml
    >>> from pennylane_xqml.methods.gate_shapley import gate_shapley
    >>> dev = qml.device("default.qubit", wires=2)
    >>> @gate_shapley()
    ... @qml.qnode(dev)
    ... def model(x, w):
    ...     qml.RY(x, wires=0)            # takes the input: not a player
    ...     qml.RY(w[0], wires=1)         # player 0
    ...     qml.CNOT(wires=[0, 1])        # player 1
    ...     qml.RX(w[1], wires=1)         # player 2
    ...     return qml.expval(qml.Z(1))
    >>> result = model(0.4, np.array([0.3, 1.2]))
    >>> result.labels
    ('0: RY(1)', '1: CNOT(0,1)', '2: RX(1)')
    >>> bool(np.isclose(result.values.sum(), result.v_all - result.v_none))  # efficiency
    True
    >>> len(model.plan(0.4, np.array([0.3, 1.2])).tapes)  # 2**3 coalitions, one batch
    8

    The mean over a data set, or any function of the outputs (here an accuracy):

    >>> X, y = np.array([0.1, 2.9, 0.4]), np.array([1, -1, 1])
    >>> accuracy = lambda z: np.mean(np.sign(z) == y)
    >>> explainer = gate_shapley(model.qnode, dataset=True, value=accuracy)
    >>> result = explainer(X, np.array([0.3, 1.2]))
    >>> float(result.v_all), float(result.v_none)
    (1.0, 0.6666666666666666)
    """
    options = {"value": value, "dataset": dataset, "groups": groups, "decompose": decompose,
               "method": method, "n_permutations": n_permutations, "antithetic": antithetic,
               "seed": seed, "argnums": argnums}  # fmt: skip
    if qnode is None:
        _check_options(**options)  # the decorator form validates at once too
        return lambda qnode: _explainer(qnode, options)
    return _explainer(qnode, options)


def _explainer(model, options):
    """A :class:`GateShapley` of a QNode, or a :class:`FunctionGateShapley` of a function."""
    if callable(model) and not isinstance(model, qml.QNode) and not hasattr(model, "qnode"):
        _check_options(**options)
        return FunctionGateShapley(model, **options)
    return GateShapley(model, **options)
