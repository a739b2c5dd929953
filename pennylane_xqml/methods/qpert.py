r"""QPert: learned perturbation masks for quantum classifiers (METHODS.md section 2).

For one instance ``x`` QPert optimises ``K`` masks ``m_k = sigmoid(θ_k) ∈ (0, 1)^d``, each paired
with a background row ``b_k``, and blends the instance with the background:

* ``mode="preserve"`` (default, the paper's appendix): ``x̃_k = m_k ⊙ x + (1 - m_k) ⊙ b_k``, the
  mask marks what must be *kept* for the prediction to survive;
* ``mode="delete"`` (the paper's method section): ``x̃_k = (1 - m_k) ⊙ x + m_k ⊙ b_k``, the mask
  marks what must be *removed* to suppress the prediction.

In both modes a large mask entry means an important feature. The loss is a sum of small pure
loss terms weighted by a phased schedule (:func:`schedule_weights`)

.. math:: L(t) = \sum_j c_j [t \ge s_j] L_j, \qquad
    j \in \{\text{target}, \text{l1}, \text{fidelity}, \text{entanglement}, \text{superposition}\}

(:func:`target_loss`, :func:`l1_loss`, :func:`fidelity_loss` / :func:`js_divergence`,
:func:`entanglement_loss`, :func:`superposition_loss`), minimised by an optax optimiser (Adam by
default) inside one ``jax.lax.scan``; the saliency is the mask averaged over its ``K`` copies and
normalised to sum 1. The whole explanation of one instance is one jit-compiled pure function,
and :meth:`QPertExplainer.explain_batch` ``vmap``\ s it over instances.

The fidelity term runs the *compute-uncompute* circuit on the QNode's own device (the model's
operations at ``x̃`` followed by the adjoint of its operations at ``x``; the probability of all
zeros is ``|<ψ(x)|ψ(x̃)>|²``), built from the QNode's tapes and executed with ``qml.execute``,
so it works on any device, with shots, and under ``jax.jit``. ``fidelity="js"`` replaces it by
the Jensen-Shannon divergence of the predicted class distributions (the paper's fallback when
the state is not accessible).

Differentiation goes through the QNode's own ``diff_method``: ``default.qubit`` with backprop is
the fast path; ``lightning.qubit`` works with ``diff_method="adjoint"`` for expectation-value
models (the fidelity circuit then measures the projector on ``|0...0>`` instead of
``qml.probs``, which adjoint differentiation does not support); QNodes with shots need
``diff_method="parameter-shift"`` (every iteration then runs ``O(d)`` shifted circuits per mask,
through a callback: correct but much slower).

Speed (measured on 2 shared CPU cores, float64, the paper's trained Iris model
``IrisQCL(n_layers=3)`` on ``default.qubit`` with backprop, ``head=class_probabilities``, 4 masks
per instance, the paper's schedule and coefficients): explaining the 30 Iris test instances with
1000 iterations each (one ``explain_batch`` call, 120 masks) runs in about 3 s (2.6 s of CPU)
with the compute-uncompute fidelity and about 1 s (0.8 s of CPU) with ``fidelity="js"``. The
first call also compiles: about 20 s of CPU (25-40 s of wall time on busy cores), 15 s with
``"js"``; most of it is XLA compiling the gradient of ``default.qubit``'s simulation. Later
calls with new weights or other instances of the same shape reuse the compiled code, and JAX's
persistent cache (``jax.config.update("jax_compilation_cache_dir", path)``) keeps it across
sessions (a new session then starts in about 5 s).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

from ..engine.cost import QPertCost, check_cost_options, gate_counts, measurement_groups
from ..engine.encodings import input_parameter_indices
from ..engine.execution import resolve_interface, shots_of
from ..engine.validation import check_positive_int, is_int, is_real

__all__ = [
    "DEFAULT_COEFFICIENTS",
    "LOSS_TERMS",
    "PAPER_GRID",
    "QPertExplainer",
    "QPertResult",
    "circuit_fidelity",
    "compute_uncompute_tape",
    "default_schedule",
    "entanglement_loss",
    "fidelity_loss",
    "hyperparameter_search",
    "js_divergence",
    "l1_loss",
    "perturb",
    "qpert_mask",
    "resolve_coefficients",
    "resolve_schedule",
    "saliency_from_masks",
    "schedule_weights",
    "shannon_entropy",
    "state_fidelity",
    "superposition_loss",
    "target_loss",
    "total_loss",
]

LOSS_TERMS = ("target", "l1", "fidelity", "entanglement", "superposition")
MODES = ("preserve", "delete")
FIDELITY_OPTIONS = ("circuit", "js", "auto", None)
DEFAULT_COEFFICIENTS = {
    "target": 1.0,
    "l1": 0.05,
    "superposition": 0.1,
    "fidelity": 0.3,
    "entanglement": 0.2,
}
#: start of each term as a fraction of ``n_iter`` (the paper's 0/250/500/750 of 1000)
SCHEDULE_FRACTIONS = {
    "target": 0.0,
    "l1": 0.25,
    "fidelity": 0.5,
    "entanglement": 0.75,
    "superposition": 0.75,
}
PAPER_GRID = {
    "target": (0.5, 1.0, 2.5),
    "l1": (0.05, 0.1, 0.3),
    "superposition": (0.1, 0.2, 0.5),
    "fidelity": (0.25, 0.5, 1.0),
    "entanglement": (0.1, 0.3, 0.6),
}
_PROB_FLOOR = 1e-10  # probabilities are floored here before a logarithm
_THETA_SCALE = 0.1  # θ0 ~ N(0, 0.1²): masks start near 0.5, slightly different from each other


# ---------------------------------------------------------------------------------------------
# loss terms: small pure JAX functions
# ---------------------------------------------------------------------------------------------


def perturb(mask, x, background, mode="preserve"):
    """The perturbed input ``x̃``.

    ``preserve``: ``x̃ = m ⊙ x + (1 - m) ⊙ b``; ``delete``: ``x̃ = (1 - m) ⊙ x + m ⊙ b``.

    >>> float(perturb(0.25, 1.0, 0.0)), float(perturb(0.25, 1.0, 0.0, mode="delete"))
    (0.25, 0.75)
    """
    if mode == "preserve":
        return mask * x + (1 - mask) * background
    if mode == "delete":
        return (1 - mask) * x + mask * background
    raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")


def shannon_entropy(p):
    """``H(p) = -Σ_i p_i log p_i`` over the last axis (natural log, ``0 log 0 = 0``).

    Safe to differentiate at ``p_i = 0``.

    >>> round(float(shannon_entropy(jnp.array([0.5, 0.5, 0.0]))), 6)  # log 2
    0.693147
    """
    p = jnp.asarray(p)
    positive = p > 0
    logs = jnp.log(jnp.where(positive, p, 1.0))
    return -jnp.sum(jnp.where(positive, p * logs, 0.0), axis=-1)


def target_loss(p, target, mode="preserve"):
    """The target term on predicted class probabilities ``p`` (last axis) of ``x̃``.

    * ``preserve``: the negative log-likelihood of the class, ``-log p_c`` (keep the prediction);
    * ``delete``: the suppression loss ``-log(1 - p_c)`` (destroy the prediction): it vanishes
      when ``p_c → 0`` and grows without bound when ``p_c → 1``, the mirror image of the NLL.

    Probabilities are floored at ``1e-10`` before the logarithm. ``target`` may be traced.

    >>> p = jnp.array([0.2, 0.8])
    >>> round(float(target_loss(p, 1)), 6), round(float(target_loss(p, 1, "delete")), 6)
    (0.223144, 1.609438)
    """
    p_c = jnp.take(jnp.asarray(p), target, axis=-1)
    if mode == "preserve":
        return -jnp.log(jnp.maximum(p_c, _PROB_FLOOR))
    if mode == "delete":
        return -jnp.log(jnp.maximum(1 - p_c, _PROB_FLOOR))
    raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")


def l1_loss(masks):
    """The sparsity term ``mean_i |m_i|`` over all mask entries (all masks of an instance).

    The mean (not the sum) keeps the coefficient independent of ``d`` and ``K``.

    >>> round(float(l1_loss(jnp.array([[0.2, 0.4], [0.6, 0.0]]))), 6)
    0.3
    """
    return jnp.mean(jnp.abs(masks))


def fidelity_loss(psi, phi):
    """``1 - |<ψ|φ>|²`` of two normalised state vectors.

    (QPert itself measures ``|<ψ(x)|ψ(x̃)>|²`` with the compute-uncompute circuit, see
    :func:`circuit_fidelity`; this is the same formula from state vectors.)

    >>> psi = jnp.array([1.0, 0.0]); phi = jnp.array([1.0, 1.0]) / jnp.sqrt(2.0)
    >>> round(float(fidelity_loss(psi, phi)), 6)
    0.5
    """
    return 1 - jnp.abs(jnp.vdot(psi, phi)) ** 2


def js_divergence(P, Q):
    """Jensen-Shannon divergence ``JS(P, Q) = H((P+Q)/2) - H(P)/2 - H(Q)/2`` (natural log, last
    axis): the fidelity fallback on output distributions; 0 for equal distributions, at most
    ``log 2``.

    >>> round(float(js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))), 6)  # log 2
    0.693147
    """
    P, Q = jnp.asarray(P), jnp.asarray(Q)
    return shannon_entropy((P + Q) / 2) - shannon_entropy(P) / 2 - shannon_entropy(Q) / 2


def entanglement_loss(masks):
    r"""Mean absolute off-diagonal Pearson correlation of the mask elements across ``K`` masks.

    ``masks`` has shape ``(K, *shape)`` (flattened to ``(K, d)``); with ``c = m - mean_k m``,
    ``R_pq = Σ_k c_kp c_kq / sqrt(Σ_k c_kp² Σ_k c_kq²)`` and the loss is
    ``mean_{p≠q} |R_pq|``. It is exactly 0 when ``K = 1`` or ``d = 1`` (no correlation to
    measure). A mask element that is constant over the ``K`` masks has no defined correlation:
    its row and column of ``R`` count as 0 (no NaN, finite gradients).

    >>> masks = jnp.array([[0.1, 0.2, 0.5], [0.3, 0.4, 0.5], [0.5, 0.0, 0.5]])
    >>> round(float(entanglement_loss(masks)), 6)  # |R_01| = 0.5, the constant column counts 0
    0.166667
    """
    masks = jnp.asarray(masks)
    k = masks.shape[0]
    flat = jnp.reshape(masks, (k, -1))
    d = flat.shape[1]
    if k == 1 or d == 1:
        return jnp.zeros((), dtype=flat.dtype)
    centred = flat - jnp.mean(flat, axis=0)
    cov = centred.T @ centred / k
    var = jnp.diag(cov)
    varies = var > jnp.finfo(flat.dtype).eps ** 2
    std = jnp.sqrt(jnp.where(varies, var, 1.0))
    defined = varies[:, None] & varies[None, :]
    corr = jnp.where(defined, cov / (std[:, None] * std[None, :]), 0.0)
    off_diagonal = 1.0 - jnp.eye(d, dtype=flat.dtype)
    return jnp.sum(jnp.abs(corr) * off_diagonal) / (d * (d - 1))


def superposition_loss(p, alpha=1.0):
    """``L_participation + α L_entropy`` of class probabilities ``p`` over ``N`` classes (last
    axis), with ``L_participation = (Σ p_i² - 1/N)/(1 - 1/N)`` and
    ``L_entropy = 1 - H(p)/log N``.

    Both parts are 0 for the uniform distribution and 1 for a one-hot one.

    >>> round(float(superposition_loss(jnp.array([0.5, 0.5, 0.0]), alpha=1.0)), 5)  # 0.25 + (1 - log 2 / log 3)
    0.61907
    """
    p = jnp.asarray(p)
    n = p.shape[-1]
    participation = (jnp.sum(p**2, axis=-1) - 1 / n) / (1 - 1 / n)
    entropy_term = 1 - shannon_entropy(p) / math.log(n)
    return participation + alpha * entropy_term


# ---------------------------------------------------------------------------------------------
# the phased schedule
# ---------------------------------------------------------------------------------------------


def default_schedule(n_iter=1000):
    """The paper's phases scaled to ``n_iter``: term ``j`` starts at
    ``floor(fraction_j × n_iter)`` with fractions target 0, L1 1/4, fidelity 1/2,
    entanglement and superposition 3/4 (0/250/500/750 for 1000 iterations).

    >>> default_schedule(1000)
    {'target': 0, 'l1': 250, 'fidelity': 500, 'entanglement': 750, 'superposition': 750}
    >>> default_schedule(10)
    {'target': 0, 'l1': 2, 'fidelity': 5, 'entanglement': 7, 'superposition': 7}
    """
    return {name: math.floor(SCHEDULE_FRACTIONS[name] * n_iter) for name in LOSS_TERMS}


def schedule_weights(step, schedule=None, coefficients=None):
    """The weight of every loss term at iteration ``step``: ``c_j`` once ``step >= start_j``,
    else 0.

    Pure and traceable (``step`` and the coefficients may be JAX tracers). ``schedule`` and
    ``coefficients`` map every name of :data:`LOSS_TERMS` to a start iteration and a
    coefficient; ``None`` means :func:`default_schedule` (for 1000 iterations) and
    :data:`DEFAULT_COEFFICIENTS`. (:func:`qpert_mask` validates and completes partial dicts.)

    >>> w = schedule_weights(500)
    >>> {k: round(float(v), 6) for k, v in w.items()}
    {'target': 1.0, 'l1': 0.05, 'fidelity': 0.3, 'entanglement': 0.0, 'superposition': 0.0}
    """
    schedule = default_schedule() if schedule is None else schedule
    coefficients = DEFAULT_COEFFICIENTS if coefficients is None else coefficients
    return {name: jnp.where(step >= schedule[name], coefficients[name], 0.0) for name in LOSS_TERMS}


def total_loss(terms, weights):
    """``Σ_j w_j L_j`` over the loss terms (dicts keyed by :data:`LOSS_TERMS`)."""
    return sum(weights[name] * terms[name] for name in LOSS_TERMS)


# ---------------------------------------------------------------------------------------------
# fidelity circuits
# ---------------------------------------------------------------------------------------------


def _tape_at(qnode, x, weights, argnums):
    args = _model_args(x, weights, argnums)
    return qml.workflow.construct_tape(qnode, level="user")(*args)


def compute_uncompute_tape(tape_x, tape_x_tilde, measurement="probs"):
    """The compute-uncompute circuit ``U(x)† U(x̃) |0...0>`` of two tapes of one model.

    The operations of ``tape_x_tilde`` are followed by the adjoints of those of ``tape_x`` in
    reverse order; the probability of the all-zeros outcome is ``|<ψ(x)|ψ(x̃)>|²``. It is
    measured as ``qml.probs`` of all wires (entry 0, ``measurement="probs"``) or as the
    expectation of the projector on ``|0...0>`` (``measurement="projector"``, for adjoint
    differentiation). Shots are those of ``tape_x_tilde``.

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


def _zero_probability(result, measurement):
    return result[0] if measurement == "probs" else result


def _fidelity_measurement(diff_method):
    """Adjoint (device) differentiation supports expectation values only."""
    return "projector" if diff_method in ("adjoint", "device") else "probs"


def _resolved_diff_method(qnode, args):
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


def _run_fidelity(qnode, x, x_tilde, weights, argnums, diff_method):
    measurement = _fidelity_measurement(diff_method)
    tape = compute_uncompute_tape(
        _tape_at(qnode, x, weights, argnums),
        _tape_at(qnode, x_tilde, weights, argnums),
        measurement,
    )
    return _zero_probability(_execute([tape], qnode, diff_method)[0], measurement)


def circuit_fidelity(qnode, x, x_tilde, *weights, argnums=0):
    """``|<ψ(x)|ψ(x̃)>|²`` measured by the compute-uncompute circuit on the QNode's device.

    Built from the QNode's tapes (``qml.workflow.construct_tape``) and run by ``qml.execute``
    with the QNode's differentiation method, so it runs on any device (with the QNode's shots)
    and is differentiable and jit-compatible. ``weights`` are the QNode's other arguments;
    ``argnums`` is the position of the input among them.

    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev)
    ... def model(x):
    ...     qml.RY(x[0], wires=0)
    ...     return qml.probs(wires=0)
    >>> round(float(circuit_fidelity(model, jnp.array([0.0]), jnp.array([1.0]))), 6)  # cos²(1/2)
    0.770151
    """
    weights = tuple(weights)
    diff_method = _resolved_diff_method(qnode, _model_args(x, weights, argnums))
    return _run_fidelity(qnode, x, x_tilde, weights, argnums, diff_method)


def state_fidelity(qnode, x, x_tilde, *weights, argnums=0):
    """``|<ψ(x)|ψ(x̃)>|²`` from the state vectors (``qml.state()``, analytic simulators only):
    the reference :func:`circuit_fidelity` is checked against.

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
        _tape_at(qnode, point, weights, argnums).copy(measurements=[qml.state()], shots=None)
        for point in (x, x_tilde)
    ]
    diff_method = "backprop" if qnode.device.name == "default.qubit" else None
    psi, phi = _execute(tapes, qnode, diff_method)
    return 1 - fidelity_loss(psi, phi)


def _check_invertible(tape):
    for op in tape.operations:
        if isinstance(op, (qml.operation.Channel, qml.ops.MidMeasure, qml.ops.PauliMeasure)):
            raise ValueError(  # noqa: TRY004 (a property of the circuit, not of an argument)
                f'fidelity="circuit" needs a unitary circuit to uncompute, but the model applies '
                f'{op.name}; use fidelity="js" (Jensen-Shannon of the output distributions).'
            )


# ---------------------------------------------------------------------------------------------
# the optimisation of one instance: a pure function, jit- and vmap-compatible
# ---------------------------------------------------------------------------------------------


class QPertResult(NamedTuple):
    """One explanation: ``saliency`` (shape of ``x``, sums to 1), the ``K`` final ``masks``
    (shape ``(K, *x.shape)``) and ``history``, a dict of every loss term (unweighted) and of the
    scheduled ``"total"``, one value per iteration (evaluated before that iteration's update).
    :meth:`QPertExplainer.explain_batch` adds a leading instance axis to each."""

    saliency: object
    masks: object
    history: dict


class _Problem(NamedTuple):
    """The static part of an explanation (everything closed over by the compiled function)."""

    probabilities: Callable  # (x, weights) -> class probabilities (N,)
    fidelity: Callable | None  # (x, x_tilde, weights, p_x, p_x_tilde) -> fidelity loss
    mode: str
    target: int | None
    alpha: float
    optimizer: optax.GradientTransformation
    n_iter: int
    schedule: dict


def saliency_from_masks(masks):
    """The mask averaged over its ``K`` copies (axis 0), normalised to sum 1 (entries are in
    ``(0, 1)``, so the sum is positive)."""
    mean = jnp.mean(masks, axis=0)
    return mean / jnp.sum(mean)


def _loss_terms(theta, x, backgrounds, weights, p_x, target, problem):
    masks = jax.nn.sigmoid(theta)
    x_tilde = jax.vmap(perturb, in_axes=(0, None, 0, None))(masks, x, backgrounds, problem.mode)
    p = jax.vmap(problem.probabilities, in_axes=(0, None))(x_tilde, weights)
    if problem.fidelity is None:
        fidelity = jnp.zeros((), dtype=p.dtype)
    else:
        per_mask = jax.vmap(problem.fidelity, in_axes=(None, 0, None, None, 0))
        fidelity = jnp.mean(per_mask(x, x_tilde, weights, p_x, p))
    return {
        "target": jnp.mean(target_loss(p, target, problem.mode)),
        "l1": l1_loss(masks),
        "fidelity": fidelity,
        "entanglement": entanglement_loss(masks),
        "superposition": jnp.mean(superposition_loss(p, problem.alpha)),
    }


def _explain_instance(theta0, x, backgrounds, weights, coefficients, problem):
    """Optimise the ``K`` masks of one instance: ``lax.scan`` over optax updates."""
    p_x = problem.probabilities(x, weights)
    target = jnp.argmax(p_x) if problem.target is None else problem.target

    def objective(theta, step):
        terms = _loss_terms(theta, x, backgrounds, weights, p_x, target, problem)
        total = total_loss(terms, schedule_weights(step, problem.schedule, coefficients))
        return total, {**terms, "total": total}

    value_and_grad = jax.value_and_grad(objective, has_aux=True)

    def update(carry, step):
        theta, opt_state = carry
        (_, record), grads = value_and_grad(theta, step)
        updates, opt_state = problem.optimizer.update(grads, opt_state, theta)
        return (optax.apply_updates(theta, updates), opt_state), record

    init = (theta0, problem.optimizer.init(theta0))
    (theta, _), history = jax.lax.scan(update, init, jnp.arange(problem.n_iter))
    masks = jax.nn.sigmoid(theta)
    return QPertResult(saliency_from_masks(masks), masks, history)


# ---------------------------------------------------------------------------------------------
# validation (everything raises before any circuit runs)
# ---------------------------------------------------------------------------------------------


def _check_number(value, name, positive=False):
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}.")


def _check_names(mapping, what):
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"{what} must be a dict keyed by {LOSS_TERMS}, got {type(mapping).__name__}."
        )
    unknown = sorted(set(mapping) - set(LOSS_TERMS), key=str)
    if unknown:
        raise ValueError(f"Unknown {what} names {unknown}; expected some of {LOSS_TERMS}.")


def resolve_coefficients(coefficients=None):
    """:data:`DEFAULT_COEFFICIENTS` updated by ``coefficients`` (validated: known names,
    finite, non-negative).

    >>> resolve_coefficients({"l1": 0.1})["l1"]
    0.1
    """
    if coefficients is None:
        return dict(DEFAULT_COEFFICIENTS)
    _check_names(coefficients, "coefficient")
    for name, value in coefficients.items():
        _check_number(value, f"coefficients[{name!r}]")
    return {name: float(coefficients.get(name, DEFAULT_COEFFICIENTS[name])) for name in LOSS_TERMS}


def resolve_schedule(schedule=None, n_iter=1000):
    """:func:`default_schedule` of ``n_iter`` updated by ``schedule`` (start iterations).

    Starts must be integers >= 0 and keep the phase order
    ``target <= l1 <= fidelity <= entanglement`` and ``fidelity <= superposition``; a start
    ``>= n_iter`` switches its term off.

    >>> resolve_schedule({"l1": 0}, n_iter=100)
    {'target': 0, 'l1': 0, 'fidelity': 50, 'entanglement': 75, 'superposition': 75}
    """
    resolved = default_schedule(n_iter)
    if schedule is None:
        return resolved
    _check_names(schedule, "schedule")
    for name, start in schedule.items():
        if not is_int(start):
            raise TypeError(f"schedule[{name!r}] must be an int iteration, got {start!r}.")
        if start < 0:
            raise ValueError(f"schedule[{name!r}] must be >= 0, got {start}.")
        resolved[name] = int(start)
    s = resolved
    if not (
        s["target"] <= s["l1"] <= s["fidelity"] <= s["entanglement"]
        and s["fidelity"] <= s["superposition"]
    ):
        raise ValueError(
            "The schedule must switch terms on in the paper's phase order target <= l1 <= "
            f"fidelity <= entanglement, superposition; got {resolved} (missing names take "
            f"default_schedule({n_iter}))."
        )
    return resolved


class _Options(NamedTuple):
    background: np.ndarray
    target: int | None
    mode: str
    n_iter: int
    schedule: dict
    coefficients: dict
    n_masks: int
    learning_rate: float
    optimizer: optax.GradientTransformation | None  # as given; None means Adam(learning_rate)
    seed: int
    head: Callable | None
    fidelity: str | None
    argnums: int
    alpha: float


def _check_background(background):
    if background is None:
        raise ValueError("qpert_mask needs background rows (e.g. the training inputs).")
    try:
        array = np.asarray(background, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"background must be a numeric array: {error}") from error
    if array.ndim < 2:
        raise ValueError(
            f"background must hold rows shaped like one input, shape (n_rows, *input_shape); got "
            f"shape {array.shape} (use background[None] for a single row)."
        )
    if len(array) == 0:
        raise ValueError("background is empty; give at least one row.")
    if not np.all(np.isfinite(array)):
        raise ValueError("background contains NaN or inf.")
    return array


def _validate(**kw):
    mode, fidelity = kw["mode"], kw["fidelity"]
    if mode not in MODES:
        raise ValueError(f"Unknown mode={mode!r}; expected one of {MODES}.")
    if fidelity not in FIDELITY_OPTIONS:
        raise ValueError(f"Unknown fidelity={fidelity!r}; expected one of {FIDELITY_OPTIONS}.")
    check_positive_int(kw["n_iter"], "n_iter")
    check_positive_int(kw["n_masks"], "n_masks")
    target = kw["target"]
    if target is not None and not is_int(target):
        raise TypeError(f"target must be an int class index or None, got {target!r}.")
    if not is_int(kw["seed"]):
        raise TypeError(f"seed must be an int, got {kw['seed']!r}.")
    if not is_int(kw["argnums"]) or kw["argnums"] < 0:
        raise TypeError(
            f"argnums must be one int >= 0 (the input argument), got {kw['argnums']!r}."
        )
    _check_number(kw["learning_rate"], "learning_rate", positive=True)
    _check_number(kw["alpha"], "alpha")
    optimizer = kw["optimizer"]
    if optimizer is not None and not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {optimizer!r}.")
    head = kw["head"]
    if head is not None and not callable(head):
        raise TypeError(
            f"head must be callable (model output -> class probabilities), got {head!r}."
        )
    return _Options(
        background=_check_background(kw["background"]),
        target=None if target is None else int(target),
        mode=mode,
        n_iter=int(kw["n_iter"]),
        schedule=resolve_schedule(kw["schedule"], int(kw["n_iter"])),
        coefficients=resolve_coefficients(kw["coefficients"]),
        n_masks=int(kw["n_masks"]),
        learning_rate=float(kw["learning_rate"]),
        optimizer=optimizer,
        seed=int(kw["seed"]),
        head=head,
        fidelity=fidelity,
        argnums=int(kw["argnums"]),
        alpha=float(kw["alpha"]),
    )


def _model_args(x, weights, argnums):
    weights = tuple(weights)
    return weights[:argnums] + (x,) + weights[argnums:]


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

    def __init__(self, model, options: _Options):
        if not callable(model):
            raise TypeError(f"qpert_mask explains a qml.QNode (or a JAX function), got {model!r}.")
        self.model, self.options = model, options
        self.is_qnode = isinstance(model, qml.QNode)
        if options.fidelity == "circuit" and not self.is_qnode:
            raise TypeError(
                f'fidelity="circuit" runs the compute-uncompute circuit of a qml.QNode; got '
                f'{type(model).__name__}. Use fidelity="js" (or None) for other models.'
            )
        for name in _Options._fields:
            setattr(self, name, getattr(options, name))
        if options.optimizer is None:
            self.optimizer = optax.adam(options.learning_rate)
        if isinstance(model, qml.QNode):
            functools.update_wrapper(self, model, updated=())
        self._compiled = None  # (one, batch, fidelity_kind), built by the first call

    def __repr__(self):
        name = getattr(self.model, "__name__", type(self.model).__name__)
        return (
            f"<QPertExplainer of {name}: mode={self.mode!r}, n_iter={self.n_iter}, "
            f"n_masks={self.n_masks}, fidelity={self.fidelity!r}>"
        )

    def replace(self, **changes):
        """A new explainer with some options changed (validated like :func:`qpert_mask`)."""
        options = {**self.options._asdict(), **changes}
        return qpert_mask(self.model, **options)

    # -- preparation -----------------------------------------------------------------------------

    def probabilities(self, x, *weights):
        """Class probabilities of the model at ``x`` (``head`` applied to the output)."""
        output = self.model(*_model_args(x, weights, self.argnums))
        return jnp.asarray(output if self.head is None else self.head(output))

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
        tape = _tape_at(self.model, x, weights, self.argnums)
        if self.fidelity == "auto" and shots_of(tape) is not None:
            return "js", None
        _check_invertible(tape)
        return "circuit", _resolved_diff_method(self.model, _model_args(x, weights, self.argnums))

    def _compile(self, x, weights, n_classes):
        kind, diff_method = self._fidelity_kind(x, weights)
        if kind == "circuit":

            def fidelity(x, x_tilde, weights, p_x, p_x_tilde):  # pylint: disable=unused-argument
                return 1 - _run_fidelity(self.model, x, x_tilde, weights, self.argnums, diff_method)

        elif kind == "js":

            def fidelity(x, x_tilde, weights, p_x, p_x_tilde):  # pylint: disable=unused-argument
                return js_divergence(p_x, p_x_tilde)

        else:
            fidelity = None
        target = None if self.target is None else self.target % n_classes
        problem = _Problem(
            probabilities=lambda x, weights: self.probabilities(x, *weights),
            fidelity=fidelity,
            mode=self.mode,
            target=target,
            alpha=self.alpha,
            optimizer=self.optimizer,
            n_iter=self.n_iter,
            schedule=self.schedule,
        )
        one = functools.partial(_explain_instance, problem=problem)
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
        """The full explanation of one instance: ``QPertResult(saliency, masks, history)``."""
        return self._run(x, weights, batched=False)

    def explain_batch(self, X, *weights):
        """Explanations of the rows of ``X`` (``jax.vmap`` of :meth:`explain`): a
        :class:`QPertResult` whose fields have a leading axis of ``len(X)``."""
        return self._run(X, weights, batched=True)

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
        if not self.is_qnode:
            raise TypeError(
                "qpert_cost needs a QPertExplainer of a qml.QNode; a JAX function runs no circuits."
            )
        gate_set = check_cost_options(target_stderr, gate_set)
        batched = np.ndim(x) == self.background.ndim
        X, x, _ = self._check_call(x, weights, batched)
        n_instances = X.shape[0] if batched else 1
        qnode, argnums = self.model, self.argnums
        args = _model_args(x, weights, argnums)
        rule = _resolved_diff_method(qnode, args)
        if rule not in _SIMULATOR_RULES + ("parameter-shift",):
            raise ValueError(
                f"qpert_cost counts the circuits of diff_method 'parameter-shift' (hardware) or "
                f"{_SIMULATOR_RULES} (simulators); the QNode resolves to {rule!r}."
            )
        kind, _ = self._fidelity_kind(x, weights)
        weights = tuple(weights)

        def model_tape(x):
            return _tape_at(qnode, x, weights, argnums)

        def fidelity_tape(x_tilde, x):
            measurement = _fidelity_measurement(rule)
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
    options = _validate(
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


# ---------------------------------------------------------------------------------------------
# hyper-parameter search
# ---------------------------------------------------------------------------------------------


def _check_grid(grid):
    grid = PAPER_GRID if grid is None else grid
    _check_names(grid, "grid")
    values = {}
    for name, choices in grid.items():
        choices = [choices] if isinstance(choices, numbers.Real) else list(choices)
        if not choices:
            raise ValueError(f"grid[{name!r}] is empty.")
        for value in choices:
            _check_number(value, f"grid[{name!r}] entry")
        values[name] = [float(v) for v in choices]
    return values


def hyperparameter_search(
    qnode_or_explainer,
    X,
    *weights,
    background=None,
    grid=None,
    n_trials=20,
    seed=0,
    n_iter=None,
    progress=True,
    **options,
):
    """The paper's coefficient search: explain ``X`` with each sampled configuration and keep the
    one with the lowest final total loss.

    Args:
        qnode_or_explainer: a QNode (or JAX function, then give ``background`` and any
            :func:`qpert_mask` option such as ``head=`` as keywords) or a
            :class:`QPertExplainer` (its options are used; keywords override them).
        X (array): the instances, ``(n, *input_shape)``; ``weights``: the model's weights.
        grid (dict): candidate values per coefficient; default :data:`PAPER_GRID` (target
            {0.5, 1, 2.5}, l1 {0.05, 0.1, 0.3}, superposition {0.1, 0.2, 0.5}, fidelity
            {0.25, 0.5, 1}, entanglement {0.1, 0.3, 0.6}: 243 combinations). Coefficients
            missing from the grid keep the explainer's value.
        n_trials (int): at most this many combinations, sampled at random without replacement
            (seeded by ``seed``) when the grid is larger (all of them otherwise, in grid order).
        n_iter (int): iterations per explanation (default: the explainer's, 1000 for a QNode).
        progress (bool): show a tqdm progress bar.

    Returns:
        ``(best_coefficients, table)``: the coefficient dict with the lowest total loss and one
        dict per trial: the coefficients (keys of :data:`LOSS_TERMS`), ``"total_loss"`` and the
        final value of every unweighted term (``"final_target"``, ``"final_l1"``, ...), each
        averaged over the instances. The total loss is the scheduled
        total at the last iteration. As in the paper it is compared across coefficient
        settings, which favours small coefficients; read the table, not only the winner.

    The coefficients are traced arguments of the compiled explanation, so all trials share one
    compilation.

    >>> import pennylane as qml, numpy as np
    >>> dev = qml.device("default.qubit", wires=1)
    >>> @qml.qnode(dev)
    ... def model(x):
    ...     qml.RY(np.pi * x[0], wires=0)
    ...     return qml.probs(wires=0)
    >>> X = np.array([[0.2], [0.8]])
    >>> best, table = hyperparameter_search(model, X, background=X, grid={"l1": [0.05, 0.3]},
    ...                                     n_iter=20, progress=False, fidelity="js")
    >>> len(table), best["l1"]
    (2, 0.05)
    """
    check_positive_int(n_trials, "n_trials")
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    values = _check_grid(grid)
    changes = dict(options)
    if n_iter is not None:
        changes["n_iter"] = n_iter
    if background is not None:
        changes["background"] = background
    if isinstance(qnode_or_explainer, QPertExplainer):
        explainer = qnode_or_explainer.replace(**changes) if changes else qnode_or_explainer
    else:
        if background is None:
            raise ValueError("hyperparameter_search needs background= when given a model.")
        explainer = qpert_mask(qnode_or_explainer, **changes)
    names = list(values)
    combos = list(itertools.product(*(values[name] for name in names)))
    if len(combos) > n_trials:
        picks = np.random.default_rng(seed).choice(len(combos), size=n_trials, replace=False)
        combos = [combos[i] for i in picks]
    table = []
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel  (import time)

    for combo in tqdm(combos, desc="QPert search", disable=not progress):
        coefficients = {**explainer.coefficients, **dict(zip(names, combo))}
        result = explainer._run(X, weights, batched=True, coefficients=coefficients)
        final = {name: float(jnp.mean(series[:, -1])) for name, series in result.history.items()}
        row = {**coefficients, "total_loss": final.pop("total")}
        table.append({**row, **{f"final_{name}": value for name, value in final.items()}})
    best = min(range(len(table)), key=lambda i: table[i]["total_loss"])
    return {name: table[best][name] for name in LOSS_TERMS}, table


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
