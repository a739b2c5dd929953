"""The paper's Iris QCL model: data split, circuit, class mapping, training schedule, accuracy."""

import time

import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from sklearn.datasets import load_iris

from pennylane_xqml.experiments.iris import (
    IrisQCL,
    circuit_unitary,
    class_probabilities,
    encoded_states,
    load_iris_split,
    n_parameters,
)
from pennylane_xqml.testing import assert_close


@pytest.fixture(scope="module")
def split():
    return load_iris_split(seed=0)


@pytest.fixture(scope="module")
def trained(split):
    model = IrisQCL(seed=0)
    start = time.perf_counter()
    model.fit(split.X_train, split.y_train, split.X_val, split.y_val)
    return model, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def test_split_sizes_stratification_and_scaling(split):
    assert (len(split.X_train), len(split.X_val), len(split.X_test)) == (96, 24, 30)
    assert [len(y) for y in (split.y_train, split.y_val, split.y_test)] == [96, 24, 30]
    for y, per_class in [(split.y_train, 32), (split.y_val, 8), (split.y_test, 10)]:
        np.testing.assert_array_equal(np.bincount(y, minlength=3), [per_class] * 3)
    # the scaler is fitted on the training rows only
    assert_close(split.X_train.min(axis=0), 0.0, rtol64=1e-7, atol64=1e-12)
    assert_close(split.X_train.max(axis=0), 1.0, rtol64=1e-7, atol64=1e-12)
    raw = {tuple(np.round(row, 6)) for row in load_iris().data}
    train_raw = split.scaler.inverse_transform(split.X_train)
    assert_close(split.scaler.data_min_, train_raw.min(axis=0), rtol64=1e-7, atol64=0)
    assert_close(split.scaler.data_max_, train_raw.max(axis=0), rtol64=1e-7, atol64=0)
    # the three parts are the 150 flowers, each once (with labels)
    parts = [
        (split.X_train, split.y_train),
        (split.X_val, split.y_val),
        (split.X_test, split.y_test),
    ]
    rows = [
        tuple(np.round(r, 6)) + (int(c),)
        for X, y in parts
        for r, c in zip(split.scaler.inverse_transform(X), y)
    ]
    iris = load_iris()
    assert sorted(rows) == sorted(
        tuple(np.round(r, 6)) + (int(c),) for r, c in zip(iris.data, iris.target)
    )
    assert {r[:4] for r in rows} <= raw
    assert split.feature_names[0].startswith("sepal length") and list(split.class_names) == [
        "setosa",
        "versicolor",
        "virginica",
    ]


def test_split_is_seeded():
    a, b, c = load_iris_split(0), load_iris_split(0), load_iris_split(1)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.y_train, c.y_train) or not np.allclose(a.X_train, c.X_train)


# ---------------------------------------------------------------------------------------------
# circuit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_parameter_count(n_layers):
    model = IrisQCL(n_layers=n_layers)
    assert model.n_params == n_parameters(n_layers) == 12 * n_layers + 8
    assert model.weights.shape == (12 * n_layers + 8,)
    tape = qml.workflow.construct_tape(model.qnode)(np.full(4, 0.3), model.weights)
    names = [op.name for op in tape.operations]
    assert names.count("CNOT") == 4 * n_layers
    assert (
        len(tape.operations) - names.count("CNOT") == 8 + 12 * n_layers + 8
    )  # encoding + trainable
    trainable = tape.get_parameters(trainable_only=False)[8:]
    assert_close(trainable, model.weights, rtol64=1e-6, atol64=1e-12)


def test_circuit_structure():
    model = IrisQCL(n_layers=1)
    tape = qml.workflow.construct_tape(model.qnode)(np.array([0.1, 0.2, 0.3, 0.4]), model.weights)
    ops = [(op.name, tuple(op.wires)) for op in tape.operations]
    assert ops[:8] == [(g, (i,)) for i in range(4) for g in ("RY", "RZ")]
    assert ops[8:20] == [(g, (i,)) for i in range(4) for g in ("RX", "RY", "RZ")]
    assert ops[20:24] == [("CNOT", (0, 1)), ("CNOT", (1, 2)), ("CNOT", (2, 3)), ("CNOT", (3, 0))]
    assert ops[24:] == [(g, (i,)) for i in range(4) for g in ("RX", "RY")]
    encoding = tape.get_parameters(trainable_only=False)[:2]
    assert_close(encoding, [0.1 * np.pi, 0.1 * np.pi], rtol64=1e-7, atol64=0)
    assert tape.measurements[0].wires.tolist() == [0, 1, 2, 3]


def test_class_mapping():
    expected = {0: [0, 3, 6, 9, 12, 15], 1: [1, 4, 7, 10, 13], 2: [2, 5, 8, 11, 14]}
    for label, states in expected.items():
        for k in states:
            assert_close(
                class_probabilities(np.eye(16)[k]), np.eye(3)[label], rtol64=1e-7, atol64=0
            )
    p = np.random.default_rng(0).dirichlet(np.ones(16), size=5)
    got = class_probabilities(p)
    folded = np.stack([p[:, v].sum(1) for v in expected.values()], axis=1)
    assert_close(got, folded, rtol64=1e-7, atol64=0)
    assert_close(class_probabilities(2 * p), got, rtol64=1e-7, atol64=0)  # renormalised
    assert isinstance(class_probabilities(jnp.asarray(p)), type(jnp.zeros(1)))
    with pytest.raises(ValueError, match="16 entries"):
        class_probabilities(np.ones(8) / 8)


def test_qnode_simulator_and_predictions_agree(split):
    model = IrisQCL(n_layers=3, seed=4)
    X = split.X_test[:5]
    exact = np.stack([np.asarray(model.qnode(x, model.weights)) for x in X])
    assert_close(
        np.abs(encoded_states(X) @ np.asarray(circuit_unitary(model.weights, 3)).T) ** 2,
        exact,
        rtol64=1e-7,
        atol64=1e-12,
    )
    proba = model.predict_proba(X)
    # both sides are float64 arrays holding the qnode's precision (exact.dtype)
    assert_close(proba, class_probabilities(exact), exact.dtype, rtol64=1e-7, atol64=1e-12)
    assert_close(model.forward(jnp.asarray(X[0])), proba[0], rtol64=1e-7, atol64=1e-12)
    assert_close(proba.sum(axis=1), 1.0, rtol64=1e-7, atol64=0)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))
    assert model.predict_proba(X[0]).shape == (1, 3)
    # the same model on lightning.qubit, and with shots (sampling error ~ 1/sqrt(4000))
    light = IrisQCL(n_layers=3, seed=4, device="lightning.qubit")
    assert_close(light.predict_proba(X), proba, rtol64=1e-7, atol64=1e-10)
    noisy = IrisQCL(n_layers=3, seed=4, shots=4000)
    assert noisy.predict_proba(X[:1]).shape == (1, 3)
    np.testing.assert_allclose(noisy.predict_proba(X), proba, atol=0.05)


def test_errors(split):
    with pytest.raises(ValueError, match="n_layers"):
        IrisQCL(n_layers=0)
    with pytest.raises(ValueError, match="shots"):
        IrisQCL(shots=0)
    model = IrisQCL(n_layers=1)
    with pytest.raises(ValueError, match="shape"):
        model.predict_proba(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        model.predict_proba(np.ones((0, 4)))
    with pytest.raises(ValueError, match="labels"):
        model.score(split.X_val, split.y_val + 1)
    with pytest.raises(ValueError, match="engine"):
        model.fit(split.X_train, split.y_train, split.X_val, split.y_val, engine="torch")
    with pytest.raises(ValueError, match="epochs"):
        model.fit(split.X_train, split.y_train, split.X_val, split.y_val, batch_size=0)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_training_reaches_the_paper_accuracy(split, trained):
    model, seconds = trained
    accuracy = model.score(split.X_test, split.y_test)
    print(
        f"Iris QCL: test accuracy {accuracy:.3f}, trained in {seconds:.1f} s, "
        f"{len(model.history['val_loss'])} epochs"
    )
    assert accuracy >= 0.9
    assert seconds < 60


def test_training_schedule(trained):
    model, _ = trained
    val, lrs = np.array(model.history["val_loss"]), np.array(model.history["learning_rate"])
    n_epochs = len(val)
    assert len(model.history["train_loss"]) == n_epochs <= 300
    # the kept weights are those of the best validation epoch
    assert model.best_epoch == int(np.argmin(val)) + 1
    # stopped by patience 20 or by the validation-loss threshold
    assert n_epochs == model.best_epoch + 20 or val[-1] < 0.1 or n_epochs == 300
    # learning rate: x 0.97 after every 12 epochs without improvement (counter restarts)
    best, wait, lr = np.inf, 0, 0.3
    for epoch in range(n_epochs):
        assert_close(lrs[epoch], lr, rtol64=1e-6, atol64=1e-12)
        if val[epoch] < best:
            best, wait = val[epoch], 0
        else:
            wait += 1
            if wait % 12 == 0:
                lr *= 0.97
    assert lrs[0] == 0.3


def test_best_weights_are_kept(split, trained):
    model, _ = trained
    ce = -np.mean(np.log(model.predict_proba(split.X_val)[np.arange(24), split.y_val]))
    # the losses are computed in the model's precision (its weights' dtype)
    best = min(model.history["val_loss"])
    assert_close(ce, best, dtype=model.weights.dtype, rtol64=1e-9, atol64=1e-12)


def test_zero_epochs_keeps_weights(split):
    model = IrisQCL(n_layers=1)
    before = np.asarray(model.weights)
    model.fit(split.X_train, split.y_train, split.X_val, split.y_val, epochs=0)
    np.testing.assert_array_equal(np.asarray(model.weights), before)
    assert model.history["val_loss"] == [] and model.best_epoch == 0
