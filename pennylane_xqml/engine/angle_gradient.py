"""Layer 2 for angle inputs: parameter-shift circuits for the gate parameters fed by the input.

The tape is first decomposed until every parametrised gate has known parameter frequencies
(templates such as ``AngleEmbedding`` or ``IQPEmbedding`` become rotations). For each gate
parameter ``θ_p`` that depends on the input, PennyLane's general shift rule for the gate's
frequencies gives ``∂f/∂θ_p = Σ_s c_s f(θ + s e_p)``; the chain rule with the classical
Jacobian ``∂θ/∂x`` (JAX or autograd, so classical pre-processing such as ``qml.RY(np.pi * x[0])``
is handled) gives ``∂f/∂x``.

Each shifted circuit estimates every output with :func:`~.estimation.estimate_outputs`, so with
shots the variance of each estimate is known (the multinomial covariance of the words measured
together is counted).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pennylane as qml
from pennylane.exceptions import ParameterFrequenciesUndefinedError

from .estimation import estimate_outputs
from .execution import shots_of
from .inputs import bind_broadcast_parameters


def _has_frequencies(op) -> bool:
    if op.num_params == 0:
        return True
    try:
        _ = op.parameter_frequencies
    except (ParameterFrequenciesUndefinedError, NotImplementedError, TypeError):
        # TypeError: some generators (qml.evolve) branch on a traced coefficient; decompose them
        return False
    return True


def expand_for_shifts(tape):
    """Decompose ``tape`` until every parametrised gate has a parameter-shift rule."""
    [expanded], _ = qml.transforms.decompose(tape, stopping_condition=_has_frequencies)
    return expanded


def _snap_shifts(recipe):
    """PennyLane rounds higher-order shifts to 10 decimals (``-3.1415926536``): snap shifts that
    are that close to a multiple of π/4 back onto it, so second derivatives are exact."""
    recipe = np.array(recipe, dtype=float)
    snapped = np.round(recipe[:, 1] / (np.pi / 4)) * (np.pi / 4)
    close = np.abs(snapped - recipe[:, 1]) < 1e-9
    recipe[close, 1] = snapped[close]
    return recipe


class ShiftGradient(NamedTuple):
    """``∂f_k/∂θ_p`` for the input parameters: arrays of shape ``(n_outputs, n_params)``."""

    value: object
    variance: object


def _recipe(tape, index, order):
    """``(operation, recipe)``: the shift rule (rows ``(coefficient, shift)``) of parameter
    ``index`` of ``tape``."""
    op, _, p_index = tape.get_operation(index)
    if not op.parameter_frequencies[p_index]:
        # a global phase: no output depends on it, its derivative is 0 (no shifted circuit)
        return op, np.zeros((0, 2))
    recipe = _snap_shifts(
        qml.gradients.generate_shift_rule(op.parameter_frequencies[p_index], order=order)
    )
    return op, recipe


def _rebind_error(op):
    return ValueError(
        f"PennyLane cannot rebind the parameters of {op.name} to shift them (qml.evolve of a "
        "Hamiltonian with several terms is a known case; PennyLane's own parameter shift fails "
        'there too). Use gradient="backprop" (default.qubit with JAX inputs) or "adjoint" on a '
        "simulator."
    )


def broadcast_shift_tapes(tape, indices, sentences, device=None):
    """The first-order shifted circuits of :func:`shift_tapes` as **one** parameter-broadcast
    circuit (per measurement group with shots), for a tape broadcast over ``n`` input points.

    Args:
        tape: a tape expanded by :func:`expand_for_shifts` whose input parameters ``indices``
            carry a leading axis of ``n`` points (``tape.batch_size == n``; the other
            parameters are unbatched).
        indices, sentences, device: as in :func:`shift_tapes`.

    Returns:
        ``(tapes, postprocess)``, or ``None`` when an operation does not accept the stacked
        parameters. ``postprocess(results)`` is a :class:`ShiftGradient` whose arrays have
        shape ``(n, n_outputs, n_params)``. Row ``(s, j)`` of the broadcast circuit is shift
        ``s`` (over every parameter's recipe) at point ``j``, so every value is the one the
        separate circuits give.
    """
    n = tape.batch_size
    shots = shots_of(tape)
    params = tape.get_parameters(trainable_only=False)
    base = tape.copy()
    base.trainable_params = list(range(len(params)))
    recipes = [_recipe(base, index, 1)[1] for index in indices]
    combos = [(k, shift) for k, recipe in enumerate(recipes) for _, shift in recipe]
    if not combos:  # only global phases depend on the input: the per-point path gives zeros
        return None
    stacked = list(params)
    for k_index, index in enumerate(indices):
        stacked[index] = qml.math.concatenate(
            [params[index] + shift if k == k_index else params[index] for k, shift in combos]
        )
    try:
        circuit = bind_broadcast_parameters(base, stacked)
    except IndexError as error:
        raise _rebind_error(base.get_operation(indices[0])[0]) from error
    except (ValueError, TypeError):  # an operation refuses the stacked parameters
        return None
    if circuit.batch_size != len(combos) * n:
        return None
    tapes, estimate = estimate_outputs(circuit, sentences, shots, device)
    coefficients = np.zeros((len(indices), len(combos)))
    row = 0
    for k, recipe in enumerate(recipes):
        coefficients[k, row : row + len(recipe)] = recipe[:, 0]
        row += len(recipe)

    def postprocess(results):
        mean, variance = estimate(results)  # (n_combos * n, K)
        mean = qml.math.reshape(mean, (len(combos), n, -1))
        variance = qml.math.reshape(variance, (len(combos), n, -1))
        # (n, K, n_params): Σ_s c_s f(θ + s e_p) per parameter p
        value = qml.math.einsum("ps,snk->nkp", coefficients, mean)
        return ShiftGradient(value, qml.math.einsum("ps,snk->nkp", coefficients**2, variance))

    return tapes, postprocess


def shift_tapes(tape, indices, sentences, order=1, device=None, measure=None):
    """Shifted tapes for the parameters ``indices`` of ``tape`` and their post-processing.

    Args:
        tape: a tape expanded by :func:`expand_for_shifts`.
        indices (list[int]): positions in ``tape.get_parameters(trainable_only=False)``.
        sentences (list[PauliSentence]): the outputs.
        order (int): 1 for first derivatives, 2 for second (diagonal) derivatives.
        device: where the tapes run (see :func:`~.estimation.estimate_outputs`).
        measure (callable): ``measure(circuit) -> (tapes, estimate)`` with
            ``estimate(results) -> (mean, variance)``, replacing the estimate of ``sentences``
            (e.g. tapes that return ``qml.density_matrix``: derivatives of the state).

    Returns:
        tuple[list[QuantumScript], callable]: the tapes, and a function mapping their results
        to a :class:`ShiftGradient`.
    """
    shots = shots_of(tape)
    params = tape.get_parameters(trainable_only=False)
    base = tape.copy()
    base.trainable_params = list(range(len(params)))
    tapes, recipes, estimates = [], [], []
    for index in indices:
        op, recipe = _recipe(base, index, order)
        recipes.append(recipe)
        for _, shift in recipe:
            shifted = list(params)
            shifted[index] = params[index] + shift
            try:
                circuit = base.bind_new_parameters(shifted, list(range(len(params))))
            except IndexError as error:
                raise _rebind_error(op) from error
            if measure is None:
                measured, estimate = estimate_outputs(circuit, sentences, shots, device)
            else:
                measured, estimate = measure(circuit)
            estimates.append((len(tapes), len(measured), estimate))
            tapes.extend(measured)

    def postprocess(results):
        cursor = iter(estimates)
        values, variances = [], []
        for recipe in recipes:
            if not len(recipe):  # a global phase's parameter (filled with zeros below)
                values.append(None)
                variances.append(None)
                continue
            value = variance = 0.0
            for coeff, _ in recipe:
                start, size, estimate = next(cursor)
                mean, var = estimate(results[start : start + size])
                value = value + coeff * mean
                variance = variance + coeff**2 * var
            values.append(value)
            variances.append(variance)
        shaped = [v for v in values if v is not None]
        if not shaped:
            empty = np.zeros((len(sentences), len(values)))
            return ShiftGradient(empty, empty)
        values = [qml.math.zeros_like(shaped[0]) if v is None else v for v in values]
        variances = [qml.math.zeros_like(shaped[0]) if v is None else v for v in variances]
        return ShiftGradient(qml.math.stack(values, axis=1), qml.math.stack(variances, axis=1))

    return tapes, postprocess


def classical_jacobian(param_fn, x):
    """``∂θ/∂x`` of shape ``(n_params, x.size)``, with JAX for JAX inputs, autograd otherwise."""
    interface = qml.math.get_interface(x)
    if interface == "jax":
        import jax  # pylint: disable=import-outside-toplevel

        jac = jax.jacobian(param_fn)(x)
    else:
        from pennylane import numpy as pnp  # pylint: disable=import-outside-toplevel

        jac = qml.jacobian(param_fn)(pnp.array(x, requires_grad=True))
    return qml.math.reshape(jac, (-1, int(np.prod(qml.math.shape(x)))))
