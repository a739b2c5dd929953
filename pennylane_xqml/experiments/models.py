"""Reference amplitude-embedded binary classifier trained with JAX and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

from .data import amplitude_vectors
from .training import train

__all__ = ["AmplitudeClassifier"]

_EPS = 1e-7
_CHUNK = 256  # predictions run in fixed-size chunks so the vmapped QNode compiles once


class AmplitudeClassifier:
    """Binary classifier: ``AmplitudeEmbedding`` -> ``StronglyEntanglingLayers`` -> ``<Z_0>``.

    The probability of class 1 is ``(1 - <Z_0>) / 2``. Attributes: ``qnode(x, weights)``,
    a JAX-interface QNode that attribution transforms can wrap directly; ``weights``,
    the trainable ``StronglyEntanglingLayers`` angles; ``history``, per-epoch losses.

    >>> from pennylane_xqml.experiments.data import bars_and_stripes
    >>> X, y = bars_and_stripes(4)
    >>> clf = AmplitudeClassifier(n_qubits=4).fit(X, y, epochs=5)
    >>> clf.predict(X).shape
    (28,)
    """

    def __init__(self, n_qubits, n_layers=3, device=None, seed=0):
        if n_qubits < 1 or n_layers < 1:
            raise ValueError(f"n_qubits and n_layers must be positive; got {n_qubits}, {n_layers}.")
        self.n_qubits, self.n_layers = n_qubits, n_layers
        wires = range(n_qubits)
        if device is None or isinstance(device, str):
            device = qml.device(device or "default.qubit", wires=n_qubits)
        self.device = device

        @qml.qnode(device, interface="jax")
        def qnode(x, weights):
            qml.AmplitudeEmbedding(x, wires=wires, normalize=True, pad_with=0.0)
            qml.StronglyEntanglingLayers(weights, wires=wires)
            return qml.expval(qml.PauliZ(0))

        self.qnode = qnode
        shape = qml.StronglyEntanglingLayers.shape(n_layers=n_layers, n_wires=n_qubits)
        self.weights = jax.random.uniform(jax.random.PRNGKey(seed), shape, maxval=2 * jnp.pi)
        self.history = []
        self._batched = jax.jit(jax.vmap(qnode, in_axes=(0, None)))

    def _check_X(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(
                f"X must be a non-empty 2-D array (n_samples, n_features); got shape {X.shape}."
            )
        amplitude_vectors(X, self.n_qubits)  # raises on rows that cannot be embedded
        return X

    def _check_Xy(self, X, y):
        X = self._check_X(X)
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"y must have shape ({len(X)},); got {y.shape}.")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"y must contain only 0 and 1; got {np.unique(y).tolist()}.")
        return X, y.astype(np.float64)

    def _loss(self, weights, X, y, mask):
        p = jnp.clip((1 - self._batched(X, weights)) / 2, _EPS, 1 - _EPS)
        losses = -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))
        return jnp.sum(mask * losses) / jnp.sum(mask)

    def _penalised_loss(self, penalty):
        fn, strength = penalty if isinstance(penalty, tuple) and len(penalty) == 2 else (None, -1)
        if not callable(fn) or not np.isscalar(strength) or not strength >= 0:
            raise ValueError(f"penalty must be (fn(x, weights), strength >= 0); got {penalty!r}.")
        per_row = jax.vmap(fn, in_axes=(0, None))

        def loss(weights, X, y, mask):
            extra = jnp.sum(mask * per_row(X, weights)) / jnp.sum(mask)
            return self._loss(weights, X, y, mask) + strength * extra

        return loss

    def fit(
        self,
        X,
        y,
        epochs=30,
        batch_size=16,
        learning_rate=0.05,
        seed=0,
        progress=False,
        penalty=None,
    ):
        """Train ``weights`` (from their current values) with Adam on binary cross-entropy.

        The learning rate decays from ``learning_rate`` to 0 on a cosine schedule;
        mini-batches are reshuffled every epoch with ``seed``. The mean loss of each
        epoch is appended to ``history``. Returns ``self``.

        ``penalty=(fn, strength)`` adds ``strength`` times the mean of ``fn(x, weights)`` over
        each mini-batch's rows to the loss, for example an explanation penalty from
        :func:`pennylane_xqml.attribution_penalty` ("right for the right reasons").
        """
        X, y = self._check_Xy(X, y)
        if epochs < 0 or batch_size < 1:
            raise ValueError(f"Need epochs >= 0 and batch_size >= 1; got {epochs}, {batch_size}.")
        loss = self._loss if penalty is None else self._penalised_loss(penalty)
        n_batches = -(-len(X) // min(batch_size, len(X)))
        optimizer = optax.adam(
            optax.cosine_decay_schedule(learning_rate, max(1, epochs * n_batches))
        )
        # The last batch is topped up with rows of weight 0 so that the step compiles once.
        result = train(
            loss,
            self.weights,
            optimizer,
            (X, y),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            remainder="pad",
            weighted_loss=True,
            progress=progress,
        )
        self.history.extend(result.history)
        self.weights = result.params
        return self

    def predict_proba(self, X):
        """Probability of class 1 for each row of ``X``."""
        X = self._check_X(X)
        padded = np.pad(X, ((0, -len(X) % _CHUNK), (0, 0)), mode="edge")
        chunks = padded.reshape(-1, _CHUNK, X.shape[1])
        expvals = np.concatenate([self._batched(chunk, self.weights) for chunk in chunks])
        return (1 - expvals[: len(X)]) / 2

    def predict(self, X):
        """Predicted labels (0 or 1)."""
        return (self.predict_proba(X) > 0.5).astype(np.int64)

    def score(self, X, y):
        """Accuracy on ``(X, y)``."""
        X, y = self._check_Xy(X, y)
        return float(np.mean(self.predict(X) == y))
