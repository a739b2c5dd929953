"""The paper's search over QPert's loss coefficients."""

from __future__ import annotations

import itertools
import numbers

import jax.numpy as jnp
import numpy as np

from ...engine.validation import check_positive_int, is_int
from .explainer import QPertExplainer, qpert_mask
from .losses import LOSS_TERMS
from .options import check_names, check_number

PAPER_GRID = {
    "target": (0.5, 1.0, 2.5),
    "l1": (0.05, 0.1, 0.3),
    "superposition": (0.1, 0.2, 0.5),
    "fidelity": (0.25, 0.5, 1.0),
    "entanglement": (0.1, 0.3, 0.6),
}

# ---------------------------------------------------------------------------------------------
# hyper-parameter search
# ---------------------------------------------------------------------------------------------


def _check_grid(grid):
    grid = PAPER_GRID if grid is None else grid
    check_names(grid, "grid")
    values = {}
    for name, choices in grid.items():
        choices = [choices] if isinstance(choices, numbers.Real) else list(choices)
        if not choices:
            raise ValueError(f"grid[{name!r}] is empty.")
        for value in choices:
            check_number(value, f"grid[{name!r}] entry")
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
        result = explainer.explain_batch(X, *weights, coefficients=coefficients)
        final = {name: float(jnp.mean(series[:, -1])) for name, series in result.history.items()}
        row = {**coefficients, "total_loss": final.pop("total")}
        table.append({**row, **{f"final_{name}": value for name, value in final.items()}})
    best = min(range(len(table)), key=lambda i: table[i]["total_loss"])
    return {name: table[best][name] for name in LOSS_TERMS}, table
