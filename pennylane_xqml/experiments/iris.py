"""The Iris quantum-circuit-learning (QCL) classifier of the QPert paper (METHODS.md section 2).

* :func:`load_iris_split` -- the 150 Iris flowers, stratified 64/16/20 train/validation/test
  split (96/24/30 rows) with a fixed seed, features min-max scaled with a scaler fitted on the
  training rows only (validation and test rows may therefore fall slightly outside [0, 1]).
* :class:`IrisQCL` -- 4 qubits, one feature per qubit, ``L`` layers of trainable single-qubit
  rotations with a CNOT ring, trainable output rotations, ``qml.probs`` of the 16 basis states
  folded into 3 classes by index modulo 3 (:func:`class_probabilities`); ``p = 12 L + 8``
  parameters; trained with optax Adam on cross-entropy exactly with the paper's schedule.

Choices the paper leaves open (documented here, METHODS.md allows them):

* Encoding of feature ``x_i`` on qubit ``i``: ``RY(pi x_i)`` then ``RZ(pi x_i)``: the polar angle
  runs from ``|0>`` (x = 0) to ``|1>`` (x = 1) while the azimuth turns by half a circle, so distinct
  feature values give distinct states without wrapping around.
* Each layer: ``RX, RY, RZ`` on every qubit (an Euler decomposition, 3 x 4 = 12 parameters per
  layer), then the CNOT ring ``0->1, 1->2, 2->3, 3->0``.
* Output rotations: ``RX, RY`` on every qubit (2 x 4 = 8 parameters). Z rotations would be
  useless here: they commute with the computational-basis measurement.
* The weights are one flat vector of length ``12 L + 8``: the ``L x 4 x 3`` layer angles
  (row-major), then the ``4 x 2`` output angles.
* ``device``/``shots`` apply to :attr:`IrisQCL.qnode` and to predictions (the paper's "2000
  shots per evaluation"); training is always exact (no shots).

Speed: the circuit is a product-state encoding followed by a weight-only unitary, so
:func:`circuit_unitary` and :func:`encoded_states` simulate it directly in JAX (identical to the
QNode to 1e-15, checked by the tests). :meth:`IrisQCL.fit` differentiates that simulation by
default because XLA compiles it in about a second, while the gradient through ``default.qubit``
takes 10-30 s to compile on two CPU cores; ``fit(engine="qnode")`` trains through the QNode
instead (same trajectory, same weights up to rounding). Exact predictions use it too, so
``predict_proba`` does not recompile for every new batch size.
"""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

from .training import EpochDecision, train

__all__ = [
    "IrisQCL",
    "IrisSplit",
    "circuit_unitary",
    "class_probabilities",
    "encoded_states",
    "load_iris_split",
    "n_parameters",
]

N_QUBITS = 4
N_CLASSES = 3
_EPS = 1e-10
# CLASS_MAP[k, c] = 1 when basis state k belongs to class c = k mod 3
CLASS_MAP = np.eye(N_CLASSES)[np.arange(2**N_QUBITS) % N_CLASSES]


class IrisSplit(NamedTuple):
    """Train/validation/test arrays of :func:`load_iris_split` (features scaled)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    scaler: object
    feature_names: list
    class_names: list


def load_iris_split(seed=0):
    """Iris split 64/16/20 (96/24/30 rows), stratified, min-max scaled on the training rows.

    The test set (20 %) is split off first, then 20 % of the remainder becomes the validation
    set; both splits are stratified by class and seeded with ``seed``.

    >>> split = load_iris_split()
    >>> len(split.X_train), len(split.X_val), len(split.X_test)
    (96, 24, 30)
    >>> float(split.X_train.min()), float(split.X_train.max())
    (0.0, 1.0)
    """
    from sklearn.datasets import load_iris  # pylint: disable=import-outside-toplevel
    from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel
    from sklearn.preprocessing import MinMaxScaler  # pylint: disable=import-outside-toplevel

    data = load_iris()
    X, y = data.data.astype(np.float64), data.target.astype(np.int64)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=seed
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=0.2, stratify=y_rest, random_state=seed
    )
    scaler = MinMaxScaler().fit(X_train)
    return IrisSplit(
        scaler.transform(X_train),
        y_train,
        scaler.transform(X_val),
        y_val,
        scaler.transform(X_test),
        y_test,
        scaler,
        list(data.feature_names),
        list(data.target_names),
    )


def class_probabilities(probs16):
    """Fold the 16 basis-state probabilities (last axis) into 3 classes by index modulo 3.

    Class 0 collects states {0, 3, 6, 9, 12, 15}, class 1 {1, 4, 7, 10, 13} and class 2
    {2, 5, 8, 11, 14}. The result is renormalised to sum to one (a no-op for exact
    probabilities; it guards against rounding). Works on NumPy and JAX arrays of shape
    ``(..., 16)``.

    >>> p = np.zeros(16); p[[0, 1, 5]] = 0.5, 0.25, 0.25
    >>> class_probabilities(p)
    array([0.5 , 0.25, 0.25])
    """
    if isinstance(probs16, (list, tuple)):
        probs16 = np.asarray(probs16, dtype=np.float64)
    if qml.math.shape(probs16)[-1:] != (2**N_QUBITS,):
        raise ValueError(
            f"probs16 must have 16 entries on its last axis; got shape {qml.math.shape(probs16)}."
        )
    p = probs16 @ CLASS_MAP
    return p / qml.math.sum(p, axis=-1)[..., None]


def n_parameters(n_layers):
    """Number of trainable angles, ``12 n_layers + 8``."""
    return 3 * N_QUBITS * n_layers + 2 * N_QUBITS


def _circuit(x, weights, n_layers):
    layers = jnp.reshape(weights[: 3 * N_QUBITS * n_layers], (n_layers, N_QUBITS, 3))
    output = jnp.reshape(weights[3 * N_QUBITS * n_layers :], (N_QUBITS, 2))
    for i in range(N_QUBITS):
        qml.RY(jnp.pi * x[..., i], wires=i)  # x[..., i]: a batch of rows broadcasts
        qml.RZ(jnp.pi * x[..., i], wires=i)
    for layer in range(n_layers):
        for i in range(N_QUBITS):
            qml.RX(layers[layer, i, 0], wires=i)
            qml.RY(layers[layer, i, 1], wires=i)
            qml.RZ(layers[layer, i, 2], wires=i)
        for i in range(N_QUBITS):
            qml.CNOT(wires=[i, (i + 1) % N_QUBITS])
    for i in range(N_QUBITS):
        qml.RX(output[i, 0], wires=i)
        qml.RY(output[i, 1], wires=i)
    return qml.probs(wires=range(N_QUBITS))


def _rx(t):
    c, s = jnp.cos(t / 2), jnp.sin(t / 2)
    return jnp.array([[c, -1j * s], [-1j * s, c]])


def _ry(t):
    c, s = jnp.cos(t / 2), jnp.sin(t / 2)
    return jnp.array([[c, -s], [s, c]]) + 0j


def _rz(t):
    e = jnp.exp(-0.5j * t)
    return jnp.array([[e, 0], [0, jnp.conj(e)]])


def _ring_permutation():
    """Indices ``perm`` with ``state_after = state_before[perm]`` for the CNOT ring."""
    image = np.arange(2**N_QUBITS)
    for control in range(N_QUBITS):
        target = (control + 1) % N_QUBITS
        bit_c, bit_t = 1 << (N_QUBITS - 1 - control), 1 << (N_QUBITS - 1 - target)  # wire 0 = MSB
        image = np.where(image & bit_c, image ^ bit_t, image)
    return np.argsort(image)


_RING = _ring_permutation()


def _kron(mats):
    out = mats[0]
    for m in mats[1:]:
        out = jnp.kron(out, m)
    return out


def circuit_unitary(weights, n_layers):
    """The 16 x 16 unitary of the trainable part (layers, CNOT rings, output rotations)."""
    layers = jnp.reshape(weights[: 3 * N_QUBITS * n_layers], (n_layers, N_QUBITS, 3))
    output = jnp.reshape(weights[3 * N_QUBITS * n_layers :], (N_QUBITS, 2))
    ring = jnp.asarray(np.eye(2**N_QUBITS)[_RING]) + 0j
    unitary = jnp.eye(2**N_QUBITS) + 0j
    for layer in range(n_layers):
        a = layers[layer]
        local = _kron([_rz(a[i, 2]) @ _ry(a[i, 1]) @ _rx(a[i, 0]) for i in range(N_QUBITS)])
        unitary = ring @ local @ unitary
    return _kron([_ry(output[i, 1]) @ _rx(output[i, 0]) for i in range(N_QUBITS)]) @ unitary


def encoded_states(X):
    """The product states ``RZ(pi x_i) RY(pi x_i) |0>`` of the rows of ``X``, shape ``(n, 16)``.

    NumPy in, NumPy out; JAX in, JAX out.
    """
    xp = jnp if isinstance(X, jax.Array) else np
    half = xp.pi * xp.asarray(X) / 2
    qubits = xp.stack(
        [xp.cos(half) * xp.exp(-1j * half), xp.sin(half) * xp.exp(1j * half)], axis=-1
    )
    state = qubits[:, 0]
    for i in range(1, N_QUBITS):
        state = (state[:, :, None] * qubits[:, i, None, :]).reshape(len(state), -1)
    return state


_unitary_jit = jax.jit(circuit_unitary, static_argnums=1)


def _simulate(X, weights, n_layers):
    """The 16 probabilities of :func:`_circuit` for each row of ``X``, by direct simulation in JAX.

    The circuit is a product-state encoding followed by a fixed unitary, so a batch costs one
    16 x 16 unitary (built once from ``weights``) and one matrix product. Mathematically identical
    to the QNode (the tests check it to 1e-12); XLA compiles its gradient in about a second,
    whereas the gradient through ``default.qubit`` takes 10-20 s to compile for this circuit.
    """
    amplitudes = encoded_states(X) @ circuit_unitary(weights, n_layers).T
    return jnp.abs(amplitudes) ** 2


def _check_X(X):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != N_QUBITS or len(X) == 0:
        raise ValueError(f"X must have shape (n >= 1, {N_QUBITS}); got {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf.")
    return X


def _check_Xy(X, y):
    X = _check_X(X)
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ValueError(f"y must have shape ({len(X)},); got {y.shape}.")
    if not np.isin(y, np.arange(N_CLASSES)).all():
        raise ValueError(f"y must contain labels 0, 1, 2; got {np.unique(y).tolist()}.")
    return X, y.astype(np.int64)


def _sample_losses(weights, X, y, batched):
    """Cross-entropy ``-log p_y(x)`` of each row."""
    p = batched(X, weights)
    picked = jnp.take_along_axis(p, jnp.asarray(y)[:, None], axis=1)[:, 0]
    return -jnp.log(jnp.clip(picked, _EPS, 1.0))


class IrisQCL:
    """The paper's 4-qubit Iris classifier (see the module docstring for the circuit).

    ``qnode(x, weights)`` returns the 16 basis-state probabilities (JAX interface, runs on
    ``device`` with ``shots``); :meth:`forward` maps them to the 3 class probabilities, and
    :meth:`predict_proba` does so for a batch. ``weights`` is the flat vector of ``n_params``
    angles; :meth:`fit` trains it.

    >>> split = load_iris_split()
    >>> model = IrisQCL(n_layers=1)
    >>> model.n_params
    20
    >>> model.predict_proba(split.X_test[:2]).shape
    (2, 3)
    """

    def __init__(self, n_layers=3, device=None, shots=None, seed=0):
        if int(n_layers) != n_layers or n_layers < 1:
            raise ValueError(f"n_layers must be a positive integer; got {n_layers}.")
        if shots is not None and (int(shots) != shots or shots < 1):
            raise ValueError(f"shots must be None or a positive integer; got {shots}.")
        self.n_layers, self.shots, self.seed = int(n_layers), shots, seed
        self.n_params = n_parameters(self.n_layers)

        def circuit(x, weights):
            return _circuit(x, weights, self.n_layers)

        self.exact = device is None and shots is None
        if self.exact:
            device = qml.device("default.qubit", wires=N_QUBITS)
        elif device is None or isinstance(device, str):
            device = qml.device(device or "default.qubit", wires=N_QUBITS, seed=seed)
        self.device = device
        self.qnode = qml.QNode(circuit, device, interface="jax", shots=shots)
        self.weights = jax.random.uniform(
            jax.random.PRNGKey(seed), (self.n_params,), minval=0.0, maxval=2 * jnp.pi
        )
        self.history = {"train_loss": [], "val_loss": [], "learning_rate": []}
        self.best_epoch = None
        self.fit_time = None
        self._unitary_cache = (None, None)
        self._simulated = jax.jit(lambda X, w: class_probabilities(_simulate(X, w, self.n_layers)))

    # ------------------------------------------------------------------ model
    def forward(self, x, weights=None):
        """Class probabilities ``(3,)`` of one input ``x`` (JAX-differentiable in both arguments)."""
        return class_probabilities(self.qnode(x, self.weights if weights is None else weights))

    def predict_proba(self, X):
        """Class probabilities, shape ``(n, 3)``; a single row ``(4,)`` is accepted as ``(1, 4)``.

        Without ``device`` and ``shots`` the rows are evaluated by the (exact, identical) JAX
        state-vector simulation (jitted); otherwise by one ``qnode`` call on the whole batch
        (parameter broadcasting).
        """
        X = _check_X(X)
        if (
            self.exact
        ):  # the state-vector simulation of the same circuit: no recompilation per batch size
            if self._unitary_cache[0] is not self.weights:
                self._unitary_cache = (
                    self.weights,
                    np.asarray(_unitary_jit(self.weights, self.n_layers)),
                )
            return class_probabilities(np.abs(encoded_states(X) @ self._unitary_cache[1].T) ** 2)
        probs = self.qnode(jnp.asarray(X), self.weights)  # broadcast over the rows
        return np.asarray(class_probabilities(jnp.reshape(probs, (len(X), 2**N_QUBITS))))

    def predict(self, X):
        """Predicted class labels, shape ``(n,)``."""
        return np.argmax(self.predict_proba(X), axis=1)

    def score(self, X, y):
        """Accuracy on ``(X, y)``."""
        X, y = _check_Xy(X, y)
        return float(np.mean(self.predict(X) == y))

    # --------------------------------------------------------------- training
    def fit(
        self,
        X_train,
        y_train,
        X_val,
        y_val,
        epochs=300,
        batch_size=4,
        learning_rate=0.3,
        patience=20,
        lr_patience=12,
        lr_factor=0.97,
        target_val_loss=0.1,
        seed=None,
        progress=False,
        engine="statevector",
    ):
        """Train with Adam on cross-entropy on the paper's schedule; keep the best validation model.

        Each epoch reshuffles the training rows (``seed``, default the model's seed) into
        mini-batches of ``batch_size`` (a last, smaller batch is kept). After every epoch the
        full training and validation losses are appended to ``history``. When the validation
        loss has not improved for ``lr_patience`` epochs the learning rate is multiplied by
        ``lr_factor`` (the counter then restarts); training stops after ``patience`` epochs
        without improvement, when the validation loss falls below ``target_val_loss``, or after
        ``epochs`` epochs. The weights with the lowest validation loss are kept. Returns ``self``.

        Training is exact (no shots). ``engine="statevector"`` (default) differentiates the JAX
        state-vector simulation of the circuit, ``engine="qnode"`` differentiates an exact
        ``default.qubit`` QNode of it (the same numbers, but XLA needs 10-20 s more to compile).
        """
        X_train, y_train = _check_Xy(X_train, y_train)
        X_val, y_val = _check_Xy(X_val, y_val)
        if epochs < 0 or batch_size < 1 or patience < 1 or lr_patience < 1:
            raise ValueError(
                f"Need epochs >= 0 and batch_size, patience, lr_patience >= 1; got "
                f"{epochs}, {batch_size}, {patience}, {lr_patience}."
            )
        if not 0 < lr_factor <= 1 or learning_rate <= 0:
            raise ValueError(
                f"Need learning_rate > 0 and 0 < lr_factor <= 1; got {learning_rate}, {lr_factor}."
            )
        if engine == "statevector":
            batched = self._simulated
        elif engine == "qnode":
            exact = qml.QNode(
                self.qnode.func, qml.device("default.qubit", wires=N_QUBITS), interface="jax"
            )
            batched = jax.vmap(lambda x, w: class_probabilities(exact(x, w)), in_axes=(0, None))
        else:
            raise ValueError(f'engine must be "statevector" or "qnode"; got {engine!r}.')
        losses = functools.partial(_sample_losses, batched=batched)
        start = time.perf_counter()
        # the learning rate is part of the optimiser's state: changing it never recompiles
        optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=float(learning_rate))

        # training and validation losses in one call (one compilation)
        X_all, y_all = np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val])
        n = len(X_train)

        @jax.jit
        def evaluate(weights):
            per_sample = losses(weights, X_all, y_all)
            return jnp.mean(per_sample[:n]), jnp.mean(per_sample[n:])

        best = {"weights": self.weights, "loss": float(evaluate(self.weights)[1]), "epoch": 0}
        schedule = {"wait": 0, "lr_wait": 0, "lr": float(learning_rate)}

        def after_epoch(epoch, weights, opt_state, _):
            train_loss, val_loss = map(float, evaluate(weights))
            self.history["train_loss"].append(train_loss)
            self.history["val_loss"].append(val_loss)
            self.history["learning_rate"].append(schedule["lr"])
            status = f"train={train_loss:.3f}, val={val_loss:.3f}, lr={schedule['lr']:.3g}"
            new_state = None
            if val_loss < best["loss"]:
                best.update(weights=weights, loss=val_loss, epoch=epoch)
                schedule.update(wait=0, lr_wait=0)
            else:
                schedule["wait"] += 1
                schedule["lr_wait"] += 1
                if schedule["lr_wait"] >= lr_patience:
                    schedule.update(lr=schedule["lr"] * lr_factor, lr_wait=0)
                    old = optax.tree_utils.tree_get(opt_state, "learning_rate")
                    lr = jnp.asarray(schedule["lr"], dtype=old.dtype)  # same type: no recompiling
                    new_state = optax.tree_utils.tree_set(opt_state, learning_rate=lr)
            stop = val_loss < target_val_loss or schedule["wait"] >= patience
            return EpochDecision(opt_state=new_state, stop=stop, status=status)

        train(
            lambda w, Xb, yb: jnp.mean(losses(w, Xb, yb)),
            self.weights,
            optimizer,
            (X_train, y_train),
            epochs=epochs,
            batch_size=batch_size,
            seed=self.seed if seed is None else seed,
            remainder="keep",
            after_epoch=after_epoch,
            progress=progress,
        )
        best_weights, self.best_epoch = best["weights"], best["epoch"]
        self.weights = best_weights
        self.fit_time = time.perf_counter() - start
        return self
