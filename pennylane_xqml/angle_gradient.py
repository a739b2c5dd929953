"""Layer 2 for angle inputs: parameter-shift circuits for the gate parameters fed by the input.

The tape is first decomposed until every parametrised gate has known parameter frequencies
(templates such as ``AngleEmbedding`` or ``IQPEmbedding`` become rotations). For each gate
parameter ``θ_p`` that depends on the input, PennyLane's general shift rule for the gate's
frequencies gives ``∂f/∂θ_p = Σ_s c_s f(θ + s e_p)``; the chain rule with the classical
Jacobian ``∂θ/∂x`` (JAX or autograd, so classical pre-processing such as ``qml.RY(np.pi * x[0])``
is handled) gives ``∂f/∂x``.

Each shifted circuit measures the expectation of every Pauli word of the outputs, so that with
shots the variance of each estimate is known: ``(1 - <P>^2) / shots`` per word, words treated
as independent estimates (as when a device measures non-commuting words in separate groups).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pennylane as qml
from pennylane.exceptions import ParameterFrequenciesUndefinedError

from .encodings import collect_words, word_expectations, word_tape, word_variances
from .execution import shots_of


def _has_frequencies(op) -> bool:
    if op.num_params == 0:
        return True
    try:
        op.parameter_frequencies  # pylint: disable=pointless-statement
    except (ParameterFrequenciesUndefinedError, NotImplementedError):
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


def shift_tapes(tape, indices, sentences, order=1):
    """Shifted tapes for the parameters ``indices`` of ``tape`` and their post-processing.

    Args:
        tape: a tape expanded by :func:`expand_for_shifts`.
        indices (list[int]): positions in ``tape.get_parameters(trainable_only=False)``.
        sentences (list[PauliSentence]): the outputs.
        order (int): 1 for first derivatives, 2 for second (diagonal) derivatives.

    Returns:
        tuple[list[QuantumScript], callable]: the tapes, and a function mapping their results
        to a :class:`ShiftGradient`.
    """
    plan = collect_words(sentences)
    shots = shots_of(tape)
    base = word_tape(tape, plan.words)  # operation parameters keep their indices
    params = base.get_parameters(trainable_only=False)
    base.trainable_params = list(range(len(params)))
    tapes, recipes = [], []
    for index in indices:
        op, _, p_index = base.get_operation(index)
        recipe = _snap_shifts(
            qml.gradients.generate_shift_rule(op.parameter_frequencies[p_index], order=order)
        )
        recipes.append(recipe)
        for _, shift in recipe:
            shifted = list(params)
            shifted[index] = params[index] + shift
            tapes.append(base.bind_new_parameters(shifted, list(range(len(params)))))

    def postprocess(results):
        cursor = iter(results)
        values, variances = [], []
        for recipe in recipes:
            word_values = [word_expectations(next(cursor)) for _ in recipe]
            value = sum(c * e for (c, _), e in zip(recipe, word_values))
            variance = sum(c**2 * word_variances(e, shots) for (c, _), e in zip(recipe, word_values))
            values.append(value)
            variances.append(variance)
        coeffs = qml.math.asarray(plan.coefficients)
        value = coeffs @ qml.math.stack(values, axis=1)
        variance = coeffs**2 @ qml.math.stack(variances, axis=1)
        return ShiftGradient(value, variance)

    if not plan.words:  # constant outputs: the gradient is zero, no circuit needed
        return [], lambda _: ShiftGradient(
            np.zeros((len(sentences), len(indices))), np.zeros((len(sentences), len(indices)))
        )
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
