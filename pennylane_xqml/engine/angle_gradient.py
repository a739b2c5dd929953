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
        op, _, p_index = base.get_operation(index)
        recipe = _snap_shifts(
            qml.gradients.generate_shift_rule(op.parameter_frequencies[p_index], order=order)
        )
        recipes.append(recipe)
        for _, shift in recipe:
            shifted = list(params)
            shifted[index] = params[index] + shift
            try:
                circuit = base.bind_new_parameters(shifted, list(range(len(params))))
            except IndexError as error:
                raise ValueError(
                    f"PennyLane cannot rebind the parameters of {op.name} to shift them "
                    "(qml.evolve of a Hamiltonian with several terms is a known case; PennyLane's "
                    'own parameter shift fails there too). Use gradient="backprop" (default.qubit '
                    'with JAX inputs) or "adjoint" on a simulator.'
                ) from error
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
            value = variance = 0.0
            for coeff, _ in recipe:
                start, size, estimate = next(cursor)
                mean, var = estimate(results[start : start + size])
                value = value + coeff * mean
                variance = variance + coeff**2 * var
            values.append(value)
            variances.append(variance)
        if not values:
            empty = np.zeros((len(sentences), 0))
            return ShiftGradient(empty, empty)
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
