"""The one training loop (pennylane_xqml.experiments.training) every reference model uses."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pennylane_xqml.experiments.training import (
    EpochDecision,
    epoch_batches,
    make_step,
    train,
)
from pennylane_xqml.testing import assert_close


def _regression(seed=0, n=23):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.3
    return X, y


def _mse(params, X, y):
    w, b = params
    return jnp.mean((X @ w + b - y) ** 2)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    batch_size=st.integers(1, 50),
    remainder=st.sampled_from(["keep", "drop", "pad"]),
    seed=st.integers(0, 2**16),
)
def test_epoch_batches_cover_the_rows_as_documented(n, batch_size, remainder, seed):
    indices, weights = epoch_batches(np.random.default_rng(seed), n, batch_size, remainder)
    size = min(batch_size, n)
    assert all(len(i) == len(w) for i, w in zip(indices, weights))
    real = np.concatenate([i[w == 1] for i, w in zip(indices, weights)]) if indices else []
    if remainder == "drop":
        assert all(len(i) == size for i in indices)
        assert len(real) == (n // size) * size and len(set(real)) == len(real)
    else:
        assert sorted(real) == list(range(n))  # every row once, with weight 1
        if remainder == "pad":
            assert all(len(i) == size for i in indices)
            assert sum(w.sum() for w in weights) == n
        else:
            assert all(len(i) == size for i in indices[:-1]) and 1 <= len(indices[-1]) <= size


def test_the_same_seed_gives_the_same_batches_and_one_permutation_per_epoch():
    first, _ = epoch_batches(np.random.default_rng(3), 10, 4)
    again, _ = epoch_batches(np.random.default_rng(3), 10, 4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert np.array_equal(np.concatenate(first), np.random.default_rng(3).permutation(10))


def test_make_step_is_one_optax_update():
    X, y = _regression()
    params = (jnp.zeros(3), jnp.array(0.0))
    optimizer = optax.adam(0.1)
    state = optimizer.init(params)
    new, new_state, loss = make_step(_mse, optimizer)(params, state, X, y)
    grads = jax.grad(_mse)(params, X, y)
    updates, expected_state = optimizer.update(grads, state, params)
    expected = optax.apply_updates(params, updates)
    assert_close(loss, _mse(params, X, y))
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(expected)):
        assert_close(a, b)
    assert_close(new_state[0].count, expected_state[0].count)


@pytest.mark.parametrize("remainder", ["keep", "drop", "pad"])
def test_mini_batch_training_reaches_the_least_squares_solution(remainder):
    X, y = _regression()
    weighted = remainder == "pad"

    def loss(params, Xb, yb, *row_weights):
        w, b = params
        r = (Xb @ w + b - yb) ** 2
        return jnp.sum(row_weights[0] * r) / jnp.sum(row_weights[0]) if weighted else jnp.mean(r)

    result = train(
        loss,
        (jnp.zeros(3), jnp.array(0.0)),
        optax.adam(optax.exponential_decay(0.1, 50, 0.5)),
        (X, y),
        epochs=150,
        batch_size=5,
        remainder=remainder,
        weighted_loss=weighted,
    )
    coef, *_ = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)
    assert_close(np.r_[result.params[0], result.params[1]], coef, atol=1e-3, rtol=0)
    assert len(result.history) == 150 and result.history[-1] < 1e-5 < result.history[0]


def test_scan_epochs_equal_stepwise_epochs():
    X, y = _regression()
    args = (_mse, (jnp.zeros(3), jnp.array(0.0)), optax.adam(0.05), (X, y))
    options = {"epochs": 4, "batch_size": 6, "seed": 7, "remainder": "drop"}
    scanned = train(*args, scan=True, **options)
    stepwise = train(*args, **options)
    assert_close(scanned.params[0], stepwise.params[0])
    history_dtype = scanned.params[0].dtype  # the losses are floats of this precision
    assert_close(np.array(scanned.history), np.array(stepwise.history), dtype=history_dtype)


def test_full_batch_epochs_are_plain_gradient_steps_without_data():
    X, y = _regression()
    result = train(lambda p: _mse(p, X, y), (jnp.zeros(3), 0.0), optax.sgd(0.1), (), epochs=3)
    params = (jnp.zeros(3), 0.0)
    for _ in range(3):
        grads = jax.grad(_mse)(params, X, y)
        params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    assert_close(result.params[0], params[0])


def test_after_epoch_sets_the_learning_rate_and_stops():
    X, y = _regression()
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    seen = []

    def after_epoch(epoch, params, opt_state, loss):
        seen.append((epoch, float(optax.tree_utils.tree_get(opt_state, "learning_rate"))))
        state = optax.tree_utils.tree_set(opt_state, learning_rate=jnp.asarray(0.0))
        return EpochDecision(opt_state=state, stop=epoch == 3)

    result = train(_mse, (jnp.zeros(3), 0.0), optimizer, (X, y), epochs=10, after_epoch=after_epoch)
    assert [e for e, _ in seen] == [1, 2, 3] and len(result.history) == 3
    assert seen[0][1] == pytest.approx(0.1) and seen[1][1] == 0.0
    assert result.history[1] == pytest.approx(result.history[2])  # learning rate 0: no change


@pytest.mark.parametrize(
    "options, message",
    [
        ({"epochs": -1}, "epochs must be a non-negative integer"),
        ({"epochs": 2, "batch_size": 0}, "batch_size"),
        ({"epochs": 2, "batch_size": 4, "remainder": "fill"}, "remainder must be one of"),
        ({"epochs": 2, "batch_size": 4, "scan": True}, 'use remainder="drop"'),
        ({"epochs": 2, "scan": True, "remainder": "drop"}, "scan=True needs a batch_size"),
        (
            {
                "epochs": 2,
                "batch_size": 4,
                "scan": True,
                "remainder": "drop",
                "weighted_loss": True,
            },
            "weighted_loss does not apply",
        ),
    ],
)
def test_bad_options_raise_before_any_step(options, message):
    X, y = _regression()
    calls = []

    def loss(params, Xb, yb):
        calls.append(1)
        return _mse(params, Xb, yb)

    with pytest.raises(ValueError, match=message):
        train(loss, (jnp.zeros(3), 0.0), optax.sgd(0.1), (X, y), **options)
    with pytest.raises(ValueError, match="same number of rows"):
        train(loss, (jnp.zeros(3), 0.0), optax.sgd(0.1), (X, y[:-1]), epochs=1)
    assert calls == []
