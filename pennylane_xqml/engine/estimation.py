"""Estimating a circuit's outputs from its Pauli words, with honest standard errors.

Every output of a model (an ``expval`` of an observable, or one probability of ``qml.probs``)
is a linear combination of Pauli words (:func:`~.encodings.output_sentences`). The forward
evaluations of the perturbation methods and the shifted circuits of parameter shift measure
them as follows:

* **analytic**: one tape measuring ``expval`` of every word; the variances are zero;
* **with shots**: one tape per group of qubit-wise commuting words, which rotates those
  words to the computational basis and measures ``qml.probs`` of their wires. Each output is
  then a function ``g_k(b)`` of the measured bit string, and its variance is the multinomial
  one, ``(Σ_b p_b g_k(b)² - (Σ_b p_b g_k(b))²) / shots``: words measured on the same shots are
  correlated (the projectors of ``qml.probs``, the terms of a Hamiltonian), and this counts
  their covariance exactly. Different groups run on independent shots, so their variances add.
"""

from __future__ import annotations

import numpy as np
import pennylane as qml

from .encodings import collect_words, device_wire_order


def qubitwise_groups(words) -> list[list[int]]:
    """Greedy partition of ``words`` (PauliWords) into qubit-wise commuting groups (indices).

    >>> from pennylane.pauli import PauliWord
    >>> qubitwise_groups([PauliWord({0: "Z"}), PauliWord({0: "X"}), PauliWord({0: "Z", 1: "Z"})])
    [[0, 2], [1]]
    """
    groups, letters = [], []
    for index, word in enumerate(words):
        for group, basis in zip(groups, letters):
            if all(basis.get(wire, letter) == letter for wire, letter in word.items()):
                group.append(index)
                basis.update(word)
                break
        else:
            groups.append([index])
            letters.append(dict(word))
    return groups


def _rotations(basis):
    """Gates that map each wire's Pauli (``basis``: wire -> letter) to Z."""
    ops = []
    for wire, letter in basis.items():
        if letter == "X":
            ops.append(qml.Hadamard(wire))
        elif letter == "Y":
            ops.extend([qml.adjoint(qml.S(wire)), qml.Hadamard(wire)])
    return ops


def _signs(words, wires):
    """``s[w, b]``: the eigenvalue (±1) of word ``w`` on computational basis outcome ``b``."""
    m = len(wires)
    outcomes = (np.arange(2**m)[:, None] >> (m - 1 - np.arange(m))) & 1  # (2^m, m)
    signs = np.ones((len(words), 2**m))
    for row, word in enumerate(words):
        for wire in word:
            signs[row] *= 1 - 2 * outcomes[:, wires.index(wire)]
    return signs


def estimate_outputs(tape, sentences, shots, device=None):
    """Tapes that estimate every output in ``sentences`` on the circuit of ``tape``, and
    ``estimate(results) -> (values, variances)``, both of shape ``(n_outputs,)``.

    A parameter-broadcast ``tape`` gives broadcast tapes, and ``estimate`` then returns arrays
    of shape ``(batch_size, n_outputs)``.

    Args:
        tape: the circuit (its measurements are replaced).
        sentences (list[PauliSentence]): the outputs.
        shots (int or None): ``None`` for analytic results (zero variances).
        device: where the tapes run; probabilities are measured over wires in its own order
            (some plugins do not honour other orders).
    """
    plan = collect_words(sentences)
    identity = np.asarray(plan.identity)
    zeros = np.zeros_like(identity)
    if not plan.words:  # constant outputs: no circuit
        return [], lambda results: (qml.math.asarray(identity), qml.math.asarray(zeros))
    coeffs = np.asarray(plan.coefficients)
    if shots is None:
        measured = tape.copy(measurements=[qml.expval(word.operation()) for word in plan.words])

        def analytic(results):
            result = results[0]
            expectations = qml.math.stack(
                result if isinstance(result, (tuple, list)) else (result,), axis=-1
            )  # (..., n_words): a broadcast tape's leading batch axis is kept
            values = qml.math.tensordot(expectations, coeffs, axes=[[-1], [1]]) + identity
            return values, qml.math.zeros_like(values)

        return [measured], analytic

    tapes, estimators = [], []
    order = device_wire_order(device, tape) if device is not None else None
    for group in qubitwise_groups(plan.words):
        words = [plan.words[i] for i in group]
        basis = {}
        for word in words:
            basis.update(word)
        wires = list(basis) if order is None else sorted(basis, key=order.index)
        ops = [*tape.operations, *_rotations(basis)]
        tapes.append(tape.copy(operations=ops, measurements=[qml.probs(wires=wires)]))
        estimators.append(coeffs[:, group] @ _signs(words, wires))  # (K, 2^m)

    def sampled(results):
        values, variances = identity, zeros
        for estimator, probs in zip(estimators, results):  # probs: (..., 2^m)
            mean = qml.math.tensordot(probs, estimator, axes=[[-1], [1]])
            second = qml.math.tensordot(probs, estimator**2, axes=[[-1], [1]])
            values = values + mean
            variances = variances + qml.math.maximum(second - mean**2, 0.0) / shots
        return values, variances

    return tapes, sampled
