"""One training loop for every reference model: optax steps, shuffled mini-batches, callbacks.

Every model of :mod:`pennylane_xqml.experiments` (the amplitude classifier, the hybrid CNN–VQC,
the Iris QCL and the synthetic Fourier PQC) trains with :func:`train`. It is built from two
small functions, in optax's style:

- :func:`make_step`: one optimiser step ``(params, opt_state, *batch) -> (params, opt_state,
  loss)`` (``jax.value_and_grad``, ``optimizer.update``, ``optax.apply_updates``);
- :func:`epoch_batches`: the index arrays of one epoch's shuffled mini-batches.

:func:`train` runs them for a number of epochs, either one jitted step per mini-batch or (with
``scan=True``) one jitted ``lax.scan`` per epoch, and calls ``after_epoch`` between epochs so a
model can keep its best weights, change the learning rate or stop early.

**Example**

>>> import jax.numpy as jnp, numpy as np, optax
>>> X = np.linspace(-1, 1, 8)[:, None]
>>> y = 3 * X[:, 0]
>>> loss = lambda w, Xb, yb: jnp.mean((Xb[:, 0] * w - yb) ** 2)
>>> result = train(loss, jnp.array(0.0), optax.adam(0.5), (X, y), epochs=100, batch_size=4)
>>> round(float(result.params), 2), len(result.history)
(3.0, 100)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..engine.validation import check_positive_int, is_int

REMAINDERS = ("keep", "drop", "pad")


class EpochDecision(NamedTuple):
    """What ``after_epoch`` returns to :func:`train` (``None`` means: go on unchanged).

    Attributes:
        opt_state: the optimiser state for the next epoch (``None``: unchanged), for example
            with a new learning rate set by ``optax.tree_utils.tree_set``.
        stop (bool): stop training after this epoch.
        status (str): shown next to the progress bar.
    """

    opt_state: object = None
    stop: bool = False
    status: str | None = None


class TrainResult(NamedTuple):
    """The outcome of :func:`train`.

    Attributes:
        params: the parameters after the last epoch.
        opt_state: the optimiser state after the last epoch.
        history (list[float]): the mean training loss of each epoch (over the rows of the
            epoch's mini-batches, padded rows excluded).
    """

    params: object
    opt_state: object
    history: list


def make_step(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """One optimiser step of ``loss_fn(params, *batch)`` (not jitted; :func:`train` jits it).

    Returns:
        callable: ``step(params, opt_state, *batch) -> (params, opt_state, loss)``.
    """

    def step(params, opt_state, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def epoch_batches(rng: np.random.Generator, n: int, batch_size: int, remainder: str = "keep"):
    """The mini-batches of one epoch: a fresh permutation of ``range(n)`` drawn from ``rng``.

    Args:
        rng (numpy.random.Generator): one permutation is drawn from it.
        n (int): the number of rows.
        batch_size (int): rows per mini-batch (at most ``n`` is used).
        remainder (str): what happens to the last, partial batch: ``"keep"`` (a smaller last
            batch), ``"drop"`` (left out this epoch) or ``"pad"`` (topped up with rows from the
            start of the permutation, which get weight 0, so every batch has the same shape).

    Returns:
        tuple[list[numpy.ndarray], list[numpy.ndarray]]: the index array of each batch and the
        weight (1 for a real row, 0 for a padded one) of each of its rows.
    """
    if remainder not in REMAINDERS:
        raise ValueError(f"remainder must be one of {REMAINDERS}; got {remainder!r}.")
    batch_size = min(batch_size, n)
    order = rng.permutation(n)
    if remainder == "keep":
        indices = [order[b : b + batch_size] for b in range(0, n, batch_size)]
        return indices, [np.ones(len(i)) for i in indices]
    if remainder == "drop":
        n_batches = n // batch_size
        indices = list(order[: n_batches * batch_size].reshape(n_batches, batch_size))
        return indices, [np.ones(batch_size) for _ in indices]
    n_padded = n + -n % batch_size
    weights = (np.arange(n_padded) < n).reshape(-1, batch_size).astype(np.float64)
    return list(np.resize(order, weights.shape)), list(weights)


def _scan_epoch(step):
    """One jitted ``lax.scan`` of ``step`` over the rows of ``order`` (batches of equal size)."""

    @jax.jit
    def epoch(params, opt_state, order, *data):  # data as arguments: no constant folding
        def body(carry, idx):
            params, opt_state = carry
            params, opt_state, loss = step(params, opt_state, *(d[idx] for d in data))
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), order)
        return params, opt_state, jnp.mean(losses)

    return epoch


def _check_train_options(data, epochs, batch_size, remainder, scan, weighted_loss):
    if not is_int(epochs) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}.")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    if remainder not in REMAINDERS:
        raise ValueError(f"remainder must be one of {REMAINDERS}; got {remainder!r}.")
    if scan and remainder != "drop":
        raise ValueError('scan=True needs batches of one size: use remainder="drop".')
    if scan and weighted_loss:
        raise ValueError("scan=True runs batches of equal size: weighted_loss does not apply.")
    if scan and batch_size is None:
        raise ValueError("scan=True needs a batch_size (full-batch epochs are one step).")
    if not data and batch_size is not None:
        raise ValueError("Mini-batches need data: pass data=(X, ...) or batch_size=None.")
    lengths = {len(d) for d in data}
    if len(lengths) > 1:
        raise ValueError(f"Every data array must have the same number of rows; got {lengths}.")


def train(
    loss_fn: Callable,
    params,
    optimizer: optax.GradientTransformation,
    data: tuple,
    *,
    epochs: int,
    batch_size: int | None = None,
    seed=0,
    remainder: str = "keep",
    scan: bool = False,
    weighted_loss: bool = False,
    opt_state=None,
    after_epoch: Callable | None = None,
    progress: bool = False,
    desc: str = "training",
) -> TrainResult:
    """Train ``params`` on ``loss_fn(params, *batch)`` with an optax optimiser.

    Args:
        loss_fn (callable): ``loss_fn(params, *batch)`` (``weighted_loss=False``) or
            ``loss_fn(params, *batch, row_weights)`` (``weighted_loss=True``: the padded rows of
            ``remainder="pad"`` have weight 0).
        params: the starting parameters (any pytree).
        optimizer (optax.GradientTransformation): the optimiser.
        data (tuple[array]): arrays with one row per sample; each batch passes their rows. With
            ``batch_size=None`` it may be ``()``, for a ``loss_fn(params)`` that holds its data.
        epochs (int): passes over the data (``batch_size=None``: full-batch steps).
        batch_size (int or None): rows per mini-batch; ``None`` uses all rows, unshuffled, in
            one step per epoch.
        seed (int or numpy.random.Generator): the shuffling seed (one permutation per epoch).
        remainder (str): the last, partial batch: ``"keep"``, ``"drop"`` or ``"pad"`` (see
            :func:`epoch_batches`).
        scan (bool): run each epoch as one jitted ``lax.scan`` (needs ``remainder="drop"``).
        weighted_loss (bool): pass each row's weight to ``loss_fn`` as a last argument.
        opt_state: the starting optimiser state (default ``optimizer.init(params)``).
        after_epoch (callable): ``after_epoch(epoch, params, opt_state, loss)`` is called after
            every epoch (``epoch`` counts from 1) and returns ``None`` or an
            :class:`EpochDecision`.
        progress (bool): show a ``tqdm`` progress bar.
        desc (str): the progress bar's label.

    Returns:
        TrainResult: ``(params, opt_state, history)``.
    """
    data = tuple(data)
    _check_train_options(data, epochs, batch_size, remainder, scan, weighted_loss)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    step = make_step(loss_fn, optimizer)
    run_step = _scan_epoch(step) if scan else jax.jit(step)
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    n = len(data[0]) if data else 0
    history = []
    epochs_range = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

        epochs_range = tqdm(epochs_range, desc=desc)
    for epoch in epochs_range:
        if batch_size is None:
            batch = data + ((np.ones(n),) if weighted_loss else ())
            params, opt_state, loss = run_step(params, opt_state, *batch)
            loss = float(loss)
        elif scan:
            indices, _ = epoch_batches(rng, n, batch_size, remainder)
            params, opt_state, loss = run_step(params, opt_state, jnp.asarray(indices), *data)
            loss = float(loss)
        else:
            indices, weights = epoch_batches(rng, n, batch_size, remainder)
            total = 0.0
            for idx, w in zip(indices, weights):
                batch = tuple(d[idx] for d in data) + ((w,) if weighted_loss else ())
                params, opt_state, batch_loss = run_step(params, opt_state, *batch)
                total += float(batch_loss) * w.sum()
            loss = float(total / sum(w.sum() for w in weights))
        history.append(loss)
        decision = after_epoch(epoch, params, opt_state, loss) if after_epoch else None
        if decision is not None:
            opt_state = opt_state if decision.opt_state is None else decision.opt_state
            if progress and decision.status:
                epochs_range.set_postfix_str(decision.status)
            if decision.stop:
                break
    if progress:
        epochs_range.close()
    return TrainResult(params, opt_state, history)
