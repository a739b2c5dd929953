"""The QPert explainer (:func:`qpert_mask`), and its cost report."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

from ...engine.cost import QPertCost, check_cost_options, gate_counts, measurement_groups
from ...engine.encodings import input_parameter_indices
from ...engine.execution import shots_of
from ...engine.plan import Plan
from ...engine.torch_bridge import call_with_torch, has_torch
from ...engine.validation import check_no_program_capture, is_int
from .fidelity import (
    check_invertible,
    compute_uncompute_tape,
    fidelity_measurement,
    resolved_diff_method,
    run_fidelity,
    tape_at,
    zero_probability,
)
from .losses import js_divergence, schedule_weights, total_loss
from .optimise import Problem, explain_instance, perturbed_inputs, terms_from
from .options import QPertOptions, model_args, validate_options

_AMPLITUDE_OPS = (qml.StatePrep, qml.AmplitudeEmbedding)
_THETA_SCALE = 0.1  # θ0 ~ N(0, 0.1²): masks start near 0.5, slightly different from each other

# ---------------------------------------------------------------------------------------------
# the explainer
# ---------------------------------------------------------------------------------------------


class QPertExplainer:
    """A model explained by QPert (made by :func:`qpert_mask`).

    ``explainer(x, *weights)`` returns the saliency (shape of ``x``: the mask averaged over its
    ``K`` copies, normalised to sum 1); :meth:`explain` returns the full :class:`QPertResult`
    and :meth:`explain_batch` explains a batch of instances at once (``jax.vmap``). ``weights``
    are the model's other arguments, in order (the input sits at position ``argnums``).
    Options are the attributes of the same names (``background``, ``mode``, ``n_iter``,
    ``schedule``, ``coefficients``, ...); :meth:`replace` gives a copy with other options.

    The compiled optimisation is cached on the explainer: later calls with new weights or other
    instances of the same shape do not recompile; the coefficients are traced arguments, so
    :func:`hyperparameter_search` compiles once for all its trials.
    """

    def __init__(self, model, options: QPertOptions):
        if not callable(model):
            raise TypeError(f"qpert_mask explains a qml.QNode (or a JAX function), got {model!r}.")
        self.model, self.options = model, options
        self.is_qnode = isinstance(model, qml.QNode)
        if options.fidelity == "circuit" and not self.is_qnode:
            raise TypeError(
                f'fidelity="circuit" runs the compute-uncompute circuit of a qml.QNode; got '
                f'{type(model).__name__}. Use fidelity="js" (or None) for other models.'
            )
        for name in QPertOptions._fields:
            setattr(self, name, getattr(options, name))
        if options.optimizer is None:
            self.optimizer = optax.adam(options.learning_rate)
        if isinstance(model, qml.QNode):
            functools.update_wrapper(self, model, updated=())
        self._compiled = None  # (one, batch, fidelity_kind), built by the first call
        self._jax_twin = None  # the explainer torch calls run (see _jax_view)

    def __repr__(self):
        name = getattr(self.model, "__name__", type(self.model).__name__)
        return (
            f"<QPertExplainer of {name}: mode={self.mode!r}, n_iter={self.n_iter}, "
            f"n_masks={self.n_masks}, fidelity={self.fidelity!r}>"
        )

    def _jax_view(self):
        """The explainer that torch calls run, with JAX arrays: ``self``, or for a QNode with
        ``interface="torch"`` (which would turn JAX's traced values into torch tensors) the
        explainer of the same QNode with ``interface="auto"`` (made once)."""
        if not self.is_qnode or self.model.interface != "torch":
            return self
        if self._jax_twin is None:
            self._jax_twin = QPertExplainer(self.model.update(interface="auto"), self.options)
        return self._jax_twin

    def replace(self, **changes):
        """A new explainer with some options changed (validated like :func:`qpert_mask`)."""
        options = {**self.options._asdict(), **changes}
        return qpert_mask(self.model, **options)

    # -- preparation -----------------------------------------------------------------------------

    def probabilities(self, x, *weights):
        """Class probabilities of the model at ``x`` (``head`` applied to the output)."""
        return self.class_probabilities(self.model(*model_args(x, weights, self.argnums)))

    def class_probabilities(self, output):
        """The class probabilities of one model output (``head`` applied, if given)."""
        return jnp.asarray(output if self.head is None else self.head(output))

    def loss_plan(self, x, *weights, theta=None, step=None):
        """The :class:`~pennylane_xqml.engine.plan.Plan` of one evaluation of the loss terms
        for the instance ``x``, at the masks ``sigmoid(theta)`` (default: the seeded start
        ``θ0`` of :meth:`initial_state`); nothing runs.

        Its tapes are the model at ``x`` (which fixes the predicted class and ``p(x)``), the
        model at the ``K`` perturbed inputs and, with ``fidelity="circuit"``, the ``K``
        compute-uncompute circuits; its processing returns the dict of unweighted loss terms
        (:func:`~pennylane_xqml.methods.qpert.optimise.terms_from`), plus ``"total"`` when
        ``step`` gives the iteration whose schedule weights apply. The optimisation evaluates
        the same terms at every iteration (without the tape at ``x``, which it runs once) and
        differentiates them with the QNode's ``diff_method``.

        >>> import numpy as np, pennylane as qml, pennylane_xqml as xqml
        >>> from pennylane_xqml.engine.plan import execute_plan
        >>> dev = qml.device("default.qubit", wires=1)
        >>> @xqml.qpert_mask(background=np.zeros((3, 1)), n_masks=2, n_iter=5)
        ... @qml.qnode(dev)
        ... def model(x):
        ...     qml.RY(np.pi * x[0], wires=0)
        ...     return qml.probs(wires=0)
        >>> plan = model.loss_plan(np.array([0.7]))
        >>> len(plan.tapes)  # x, 2 perturbed inputs, 2 compute-uncompute circuits
        5
        >>> terms = execute_plan(plan)
        >>> bool(np.isclose(terms["target"], model.explain(np.array([0.7])).history["target"][0]))
        True
        """
        if not self.is_qnode:
            raise TypeError("loss_plan needs a QPertExplainer of a qml.QNode (circuits to plan).")
        weights = tuple(weights)
        X, x, n_classes = self._check_call(x, weights, batched=False)
        theta0, backgrounds = self.initial_state(X.dtype)
        if theta is None:
            theta = theta0
        elif jnp.shape(theta) != theta0.shape:
            raise ValueError(f"theta must have shape {theta0.shape}; got {jnp.shape(theta)}.")
        if step is not None and (not is_int(step) or step < 0):
            raise ValueError(f"step must be None or an int >= 0; got {step!r}.")
        kind, _ = self._fidelity_kind(x, weights)
        args = model_args(x, weights, self.argnums)
        rule = resolved_diff_method(self.model, args)
        measurement = fidelity_measurement(rule)
        masks, x_tilde = perturbed_inputs(jnp.asarray(theta, X.dtype), x, backgrounds, self.mode)
        at_x = tape_at(self.model, x, weights, self.argnums)
        perturbed = [tape_at(self.model, xt, weights, self.argnums) for xt in x_tilde]
        fidelity = []
        if kind == "circuit":
            fidelity = [compute_uncompute_tape(at_x, t, measurement) for t in perturbed]
        n_masks = len(perturbed)
        first = at_x.operations[0] if at_x.operations else None

        def processing_fn(results, _simulator_values):
            p_x = self.class_probabilities(results[0])
            p = jnp.stack([self.class_probabilities(r) for r in results[1 : 1 + n_masks]])
            target = jnp.argmax(p_x) if self.target is None else self.target % n_classes
            if kind == "circuit":
                found = [zero_probability(r, measurement) for r in results[1 + n_masks :]]
                fidelities = 1 - jnp.stack(found)
            elif kind == "js":
                fidelities = jnp.stack([js_divergence(p_x, p_k) for p_k in p])
            else:
                fidelities = None
            terms = terms_from(masks, p, fidelities, target, self.mode, self.alpha)
            if step is not None:
                weights_now = schedule_weights(step, self.schedule, self.coefficients)
                terms["total"] = total_loss(terms, weights_now)
            return terms

        return Plan(
            method="qpert_mask",
            embedding="amplitude" if isinstance(first, _AMPLITUDE_OPS) else "angle",
            rule=rule,
            tapes=(at_x, *perturbed, *fidelity),
            device=self.model.device,
            diff_method=rule,
            simulator_requests=(),
            processing_fn=processing_fn,
        )

    def _check_call(self, X, weights, batched):
        """Validate one call (shapes, target, the circuit); nothing is executed."""
        if self.argnums > len(weights):
            raise ValueError(
                f"argnums={self.argnums} but only {len(weights)} weight argument(s) were given."
            )
        try:
            X = jnp.asarray(X)
        except TypeError as error:
            raise TypeError(f"The input must be a numeric array: {error}") from error
        if not jnp.issubdtype(X.dtype, jnp.number):
            raise TypeError(f"The input must be numeric, got dtype {X.dtype}.")
        if not jnp.issubdtype(X.dtype, jnp.floating):
            X = X.astype(jnp.result_type(float))
        row_shape = self.background.shape[1:]
        shape = X.shape[1:] if batched else X.shape
        if shape != row_shape or (batched and X.shape[0] == 0):
            what = "X must have shape (n >= 1, *row_shape)" if batched else "x must have shape"
            raise ValueError(
                f"The background rows have shape {row_shape} but the input has shape {X.shape}: "
                f"{what} {row_shape}."
            )
        if not isinstance(X, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(X))):
            raise ValueError("The input contains NaN or inf.")
        x = X[0] if batched else X
        out = jax.eval_shape(self.probabilities, x, *weights)
        if len(out.shape) != 1 or out.shape[0] < 2:
            raise ValueError(
                f"QPert needs class probabilities of shape (n_classes >= 2,) from the model, got "
                f"shape {out.shape}; pass head= to map the model output to class probabilities."
            )
        n_classes = out.shape[0]
        if self.target is not None and not -n_classes <= self.target < n_classes:
            raise ValueError(f"target={self.target} is out of range for {n_classes} classes.")
        return X, x, n_classes

    def _fidelity_kind(self, x, weights):
        if self.fidelity is None or self.fidelity == "js":
            return self.fidelity, None
        if not self.is_qnode:  # "auto" on a JAX function
            return "js", None
        tape = tape_at(self.model, x, weights, self.argnums)
        if self.fidelity == "auto" and shots_of(tape) is not None:
            return "js", None
        check_invertible(tape)
        return "circuit", resolved_diff_method(self.model, model_args(x, weights, self.argnums))

    def _compile(self, x, weights, n_classes):
        kind, diff_method = self._fidelity_kind(x, weights)
        if kind == "circuit":

            def fidelity(x, x_tilde, weights, p_x, p_x_tilde):  # pylint: disable=unused-argument
                return 1 - run_fidelity(self.model, x, x_tilde, weights, self.argnums, diff_method)

        elif kind == "js":

            def fidelity(x, x_tilde, weights, p_x, p_x_tilde):  # pylint: disable=unused-argument
                return js_divergence(p_x, p_x_tilde)

        else:
            fidelity = None
        target = None if self.target is None else self.target % n_classes
        problem = Problem(
            probabilities=lambda x, weights: self.probabilities(x, *weights),
            fidelity=fidelity,
            mode=self.mode,
            target=target,
            alpha=self.alpha,
            optimizer=self.optimizer,
            n_iter=self.n_iter,
            schedule=self.schedule,
        )
        one = functools.partial(explain_instance, problem=problem)
        batch = jax.vmap(one, in_axes=(None, 0, None, None, None))
        self._compiled = (jax.jit(one), jax.jit(batch), kind)

    def initial_state(self, dtype=None):
        """The seeded start of every explanation: ``(theta0, backgrounds)``, both of shape
        ``(K, *row_shape)``. The ``K`` background rows are drawn without replacement when the
        background has at least ``K`` rows (with replacement otherwise); ``θ0 ~ N(0, 0.1²)``.
        Both depend on ``seed`` only, so every instance uses the same draws and an instance
        explained alone equals its row of :meth:`explain_batch`."""
        rng = np.random.default_rng(self.seed)
        n_rows = len(self.background)
        rows = rng.choice(n_rows, size=self.n_masks, replace=n_rows < self.n_masks)
        theta0 = _THETA_SCALE * rng.standard_normal((self.n_masks, *self.background.shape[1:]))
        dtype = jnp.result_type(float) if dtype is None else dtype
        return jnp.asarray(theta0, dtype=dtype), jnp.asarray(self.background[rows], dtype=dtype)

    def _run(self, X, weights, batched, coefficients=None):
        check_no_program_capture("qpert_mask")
        weights = tuple(weights)
        X, x, n_classes = self._check_call(X, weights, batched)
        if self._compiled is None:
            self._compile(x, weights, n_classes)
        one, batch, _ = self._compiled
        theta0, backgrounds = self.initial_state(X.dtype)
        coefficients = self.coefficients if coefficients is None else coefficients
        coefficients = {k: jnp.asarray(v, dtype=X.dtype) for k, v in coefficients.items()}
        run = batch if batched else one
        return run(theta0, X, backgrounds, weights, coefficients)

    # -- public calls ----------------------------------------------------------------------------

    def explain(self, x, *weights):
        """The full explanation of one instance: ``QPertResult(saliency, masks, history)``.

        Torch tensors give torch tensors (the input's dtype and device), computed as the same
        call with JAX arrays and differentiable with ``torch.autograd`` through the
        optimisation, as with ``jax.grad`` (:mod:`~pennylane_xqml.engine.torch_bridge`)."""
        if has_torch(x, weights):
            return call_with_torch(self._jax_view().explain, (x, *weights), {}, x=x)
        return self._run(x, weights, batched=False)

    def explain_batch(self, X, *weights, coefficients=None):
        """Explanations of the rows of ``X`` (``jax.vmap`` of :meth:`explain`): a
        :class:`QPertResult` whose fields have a leading axis of ``len(X)``.

        ``coefficients`` (a complete dict keyed by :data:`LOSS_TERMS`, default the explainer's)
        are traced arguments of the compiled function: other values do not recompile, which is
        what :func:`~pennylane_xqml.methods.qpert.hyperparameter_search` relies on. Torch
        tensors give torch tensors, as in :meth:`explain`."""
        if has_torch(X, weights, coefficients):
            return call_with_torch(
                lambda X, *weights, coefficients=None: self._jax_view().explain_batch(
                    X, *weights, coefficients=coefficients
                ),
                (X, *weights),
                {"coefficients": coefficients},
                x=X,
            )
        return self._run(X, weights, batched=True, coefficients=coefficients)

    def __call__(self, x, *weights):
        """The saliency of one instance (shape of ``x``, sums to 1)."""
        return self.explain(x, *weights).saliency

    def cost(self, x, *weights, target_stderr=None, gate_set=None):
        """The circuits and gates of ``self.explain(x, *weights)`` (``x`` one instance) or of
        ``self.explain_batch(x, *weights)`` (``x`` of shape ``(n, *input_shape)``), without
        running anything; also ``xqml.qpert_cost(explainer, x, *weights)``.

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
        check_no_program_capture("qpert_mask")
        if not self.is_qnode:
            raise TypeError(
                "qpert_cost needs a QPertExplainer of a qml.QNode; a JAX function runs no circuits."
            )
        gate_set = check_cost_options(target_stderr, gate_set)
        batched = np.ndim(x) == self.background.ndim
        X, x, _ = self._check_call(x, weights, batched)
        n_instances = X.shape[0] if batched else 1
        qnode, argnums = self.model, self.argnums
        args = model_args(x, weights, argnums)
        rule = resolved_diff_method(qnode, args)
        if rule not in _SIMULATOR_RULES + ("parameter-shift",):
            raise ValueError(
                f"qpert_cost counts the circuits of diff_method 'parameter-shift' (hardware) or "
                f"{_SIMULATOR_RULES} (simulators); the QNode resolves to {rule!r}."
            )
        kind, _ = self._fidelity_kind(x, weights)
        weights = tuple(weights)

        def model_tape(x):
            return tape_at(qnode, x, weights, argnums)

        def fidelity_tape(x_tilde, x):
            measurement = fidelity_measurement(rule)
            return compute_uncompute_tape(model_tape(x), model_tape(x_tilde), measurement)

        tape = model_tape(x)
        shifts = rule == "parameter-shift"
        k = self.n_masks * n_instances
        model_circuits = k * (
            1 + (_shift_circuits(model_tape, (x,), 0, qnode.device) if shifts else 0)
        )
        groups = model_circuits * measurement_groups(tape)
        fidelity_circuits, fidelity_gates = 0, None
        if kind == "circuit":
            f_tape = fidelity_tape(x, x)
            fidelity_circuits = k * (
                1 + (_shift_circuits(fidelity_tape, (x, x), 0, qnode.device) if shifts else 0)
            )
            groups += fidelity_circuits * measurement_groups(f_tape)
            fidelity_gates = gate_counts([f_tape], qnode.device, gate_set)
        per_iteration = model_circuits + fidelity_circuits
        n_circuits = n_instances + self.n_iter * per_iteration
        n_groups = n_instances * measurement_groups(tape) + self.n_iter * groups
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
            n_masks=self.n_masks,
            n_iter=self.n_iter,
            n_setup_circuits=n_instances,
            model_circuits_per_iteration=model_circuits,
            fidelity_circuits_per_iteration=fidelity_circuits,
            circuits_per_iteration=per_iteration,
            n_circuits=n_circuits,
            n_measurement_groups=n_groups,
            model_gates=gate_counts([tape], qnode.device, gate_set),
            fidelity_gates=fidelity_gates,
            shots_per_circuit=shots,
            total_shots=None if shots is None else shots * n_groups,
            target_stderr=target_stderr,
            shots_for_target=None,
            notes=tuple(notes),
        )

    @property
    def fidelity_method(self):
        """The fidelity term in use (``"circuit"``, ``"js"`` or ``None``), known after a call."""
        return None if self._compiled is None else self._compiled[2]


def qpert_mask(
    qnode=None,
    *,
    background,
    target=None,
    mode="preserve",
    n_iter=1000,
    schedule=None,
    coefficients=None,
    n_masks=4,
    learning_rate=0.05,
    optimizer=None,
    seed=0,
    head=None,
    fidelity="circuit",
    argnums=0,
    alpha=1.0,
):
    r"""QPert saliency masks of a QNode (METHODS.md section 2; see the module docstring).

    Use it as a decorator (``@qpert_mask(background=X_train)`` above ``@qml.qnode``) or call
    ``qpert_mask(qnode, background=X_train)``; options are keyword-only and validated at once.

    Args:
        qnode (QNode): the model ``qnode(x, *weights)`` (omit to get a decorator). It must accept
            JAX arrays (interface ``"auto"`` or ``"jax"``). A plain JAX function of the same
            signature also works with ``fidelity="js"`` or ``None``.
        background (array): rows ``b`` shaped like one input, ``(n_rows, *input_shape)``
            (e.g. the training inputs); each of the ``K`` masks is paired with one row drawn
            from it (seeded, the same rows for every instance, see
            :meth:`QPertExplainer.initial_state`).
        target (int): the class whose probability the target term keeps (``"preserve"``) or
            suppresses (``"delete"``); default: the class the model predicts for ``x``.
        mode (str): ``"preserve"`` (``x̃ = m ⊙ x + (1 - m) ⊙ b``, target ``-log p_c``) or
            ``"delete"`` (``x̃ = (1 - m) ⊙ x + m ⊙ b``, target ``-log(1 - p_c)``).
        n_iter (int): optimisation steps (default 1000, as the paper).
        schedule (dict): start iteration of some loss terms; the others follow
            :func:`default_schedule` scaled to ``n_iter`` (0, 1/4, 1/2, 3/4 of ``n_iter``:
            0/250/500/750 for 1000 iterations). See :func:`resolve_schedule`.
        coefficients (dict): some of the coefficients (default target 1.0, l1 0.05,
            superposition 0.1, fidelity 0.3, entanglement 0.2: the paper's best).
        n_masks (int): ``K``, the masks optimised together per instance (default 4); the
            entanglement term correlates them, so it is 0 for ``K = 1``.
        learning_rate (float): Adam's learning rate (default 0.05; the paper does not give
            one), used when ``optimizer`` is not given.
        optimizer (optax.GradientTransformation): default ``optax.adam(learning_rate)``.
        seed (int): seed of the background draws and of ``θ0``.
        head (callable): maps the model output to class probabilities (for
            :class:`~pennylane_xqml.experiments.iris.IrisQCL`: :func:`~pennylane_xqml.experiments.iris.class_probabilities`);
            default: the output is already a probability vector (``qml.probs``).
        fidelity (str): ``"circuit"`` (default: ``1 - |<ψ(x)|ψ(x̃)>|²`` from the compute-uncompute
            circuit, see :func:`circuit_fidelity`), ``"js"`` (Jensen-Shannon divergence of the
            class distributions at ``x`` and ``x̃``), ``"auto"`` (``"circuit"`` for an analytic
            QNode; ``"js"`` when the QNode has shots, where the circuit is a noisy estimate, or
            for a JAX function), or ``None`` (no fidelity term).
        argnums (int): position of the input among the model's arguments (default 0).
        alpha (float): ``α`` of the superposition term (default 1; the paper leaves it open).

    Returns:
        QPertExplainer: ``explainer(x, *weights)`` is the saliency; ``explainer.explain`` gives
        ``(saliency, masks, history)``; ``explainer.explain_batch(X, *weights)`` the same for
        a batch (vmapped, one compilation).

    **Example**

    >>> import pennylane as qml, numpy as np
    >>> from pennylane_xqml.methods.qpert import qpert_mask
    >>> dev = qml.device("default.qubit", wires=2)
    >>> background = np.random.default_rng(0).uniform(0, 1, size=(8, 2))
    >>> @qpert_mask(background=background, n_iter=60, learning_rate=0.2)
    ... @qml.qnode(dev)
    ... def model(x, w):
    ...     qml.RY(np.pi * x[0], wires=0)
    ...     qml.RY(np.pi * x[1], wires=1)
    ...     qml.RX(w, wires=1)
    ...     return qml.probs(wires=0)  # depends on x[0] only
    >>> saliency = model(np.array([0.9, 0.9]), 0.3)
    >>> saliency.shape, round(float(saliency.sum()), 6), int(saliency.argmax())
    ((2,), 1.0, 0)
    >>> sorted(model.explain(np.array([0.9, 0.9]), 0.3).history)
    ['entanglement', 'fidelity', 'l1', 'superposition', 'target', 'total']
    """
    options = validate_options(
        background=background,
        target=target,
        mode=mode,
        n_iter=n_iter,
        schedule=schedule,
        coefficients=coefficients,
        n_masks=n_masks,
        learning_rate=learning_rate,
        optimizer=optimizer,
        seed=seed,
        head=head,
        fidelity=fidelity,
        argnums=argnums,
        alpha=alpha,
    )
    if qnode is None:
        return lambda model: QPertExplainer(model, options)
    return QPertExplainer(qnode, options)


_SIMULATOR_RULES = ("backprop", "adjoint", "device")


def _shift_circuits(tape_of, args, argnum, device):
    """Parameter-shift circuits of ``tape_of(*args)`` for the gate parameters fed by
    ``args[argnum]`` (the only ones QPert differentiates), after the expansions ``qml.execute``
    applies first (the gradient's, then the device's preprocessing)."""
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
    """The circuits and gates of a QPert explanation, without running anything:
    ``explainer.cost(x, *weights, ...)`` (see :meth:`QPertExplainer.cost`)."""
    if not isinstance(explainer, QPertExplainer):
        raise TypeError(
            f"qpert_cost takes a QPertExplainer (xqml.qpert_mask(qnode, ...)), got {type(explainer).__name__}."
        )
    return explainer.cost(x, *weights, target_stderr=target_stderr, gate_set=gate_set)
