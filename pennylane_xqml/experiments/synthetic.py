r"""A synthetic Fourier-series task with a known ground-truth relevance (Taylor-Fourier paper style).

**Target.** On inputs ``x ∈ [-π, π]^d`` (``d = 4`` by default)

.. math:: g(x) = \sum_i a_i \sin(x_i - c_i) + b \sin(x_0) \sin(x_1),

with fixed, documented coefficients (:data:`DEFAULT_A`, :data:`DEFAULT_C`, :data:`DEFAULT_B`):
four single-feature waves of decreasing amplitude and one small pairwise (cross) term.

**Ground truth.** :func:`true_relevance` returns the single-feature differences of the *target*
around a reference point ``x̃``,

.. math:: R^\star_i(x) = g(\tilde x + \delta_i e_i) - g(\tilde x), \qquad \delta = x - \tilde x,

in closed form: ``a_i [sin(x_i - c_i) - sin(x̃_i - c_i)]`` plus, for ``i ∈ {0, 1}``, the pairwise
term's change along that axis alone (``b [sin x_0 - sin x̃_0] sin x̃_1`` for ``i = 0``). This is
exactly what Taylor-Fourier computes for the model, so a model that fits ``g`` well has
Taylor-Fourier relevances close to ``R^⋆``. ``Σ_i R^⋆_i`` misses ``g(x) - g(x̃)`` by the cross
part ``b (sin x_0 - sin x̃_0)(sin x_1 - sin x̃_1)`` (:func:`cross_residual`).

**Model.** :class:`FourierPQC`: per qubit ``i`` a trainable ``Rot`` then the encoding
``RY(x_i)`` (each feature enters **once**, with slope 1, so Taylor-Fourier's closed form applies
and ``f`` is a degree-1 trigonometric polynomial in each ``x_i``, like ``g``), then
``n_layers`` ``StronglyEntanglingLayers``; output ``⟨κ Σ_i s_i Z_i⟩`` with the fixed scale
``κ = (Σ|a_i| + |b|)/d`` and trainable read-out coefficients ``s_i`` (initialised to 1, so the
initial output range ``[-κ d, κ d]`` covers the target's). With fixed ``s_i = 1`` two layers
reach only a test MSE of about 0.15 (target variance 0.85); the trainable read-out brings it to
about 0.004. The weights are one flat vector (``3 d`` Rot angles, the ``n_layers × d × 3`` layer
angles, then the ``d`` read-out coefficients ``s_i``), so every
explanation method sees the call ``qnode(x, weights)``. Training (:meth:`FourierPQC.fit`,
optax Adam on the mean squared error, full batch, ``jax.jit``) differentiates an equivalent
pure-JAX state-vector simulation (:meth:`FourierPQC.simulate`; equal to the QNode to 1e-12, see
the tests), which compiles in about a second.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml

from .training import train

DEFAULT_A = (1.0, -0.7, 0.45, 0.2)
"""Amplitudes ``a_i`` of the single-feature waves (distinct magnitudes: a clear ranking)."""
DEFAULT_C = (0.3, -1.1, 2.0, 0.7)
"""Phases ``c_i``."""
DEFAULT_B = 0.35
"""Strength of the pairwise term ``b sin(x_0) sin(x_1)``."""


class SyntheticTask:
    """The target ``g`` with coefficients ``a`` (length ``d``), ``c`` and pairwise strength ``b``."""

    def __init__(self, d=4, a=None, c=None, b=DEFAULT_B):
        if d not in (2, 3, 4):
            raise ValueError(f"d must be 2, 3 or 4, got {d!r}.")
        self.d = d
        self.a = np.asarray(DEFAULT_A[:d] if a is None else a, dtype=float)
        self.c = np.asarray(DEFAULT_C[:d] if c is None else c, dtype=float)
        self.b = float(b)
        if self.a.shape != (d,) or self.c.shape != (d,):
            raise ValueError(f"a and c must have length d={d}.")

    @property
    def scale(self):
        """``Σ|a_i| + |b|``: a bound on ``|g|``."""
        return float(np.abs(self.a).sum() + abs(self.b))

    def __call__(self, X):
        """``g`` on rows ``X`` of shape ``(n, d)`` (or one row ``(d,)``)."""
        X = np.asarray(X, dtype=float)
        single = (self.a * np.sin(X - self.c)).sum(axis=-1)
        return single + self.b * np.sin(X[..., 0]) * np.sin(X[..., 1])

    def data(self, n, seed=0):
        """``n`` seeded rows uniform on ``[-π, π]^d`` and their targets."""
        X = np.random.default_rng(seed).uniform(-np.pi, np.pi, size=(n, self.d))
        return X, self(X)

    def true_relevance(self, x, root):
        """Ground truth ``R^⋆_i = g(x̃ + δ_i e_i) - g(x̃)`` of the target (closed form; rows ok)."""
        x, root = (
            np.asarray(x, dtype=float),
            np.broadcast_to(np.asarray(root, dtype=float), np.shape(x)),
        )
        rel = self.a * (np.sin(x - self.c) - np.sin(root - self.c))
        rel = np.array(rel, copy=True)
        rel[..., 0] += self.b * (np.sin(x[..., 0]) - np.sin(root[..., 0])) * np.sin(root[..., 1])
        rel[..., 1] += self.b * np.sin(root[..., 0]) * (np.sin(x[..., 1]) - np.sin(root[..., 1]))
        return rel

    def cross_residual(self, x, root):
        """``g(x) - g(x̃) - Σ_i R^⋆_i = b (sin x_0 - sin x̃_0)(sin x_1 - sin x̃_1)``."""
        x, root = (
            np.asarray(x, dtype=float),
            np.broadcast_to(np.asarray(root, dtype=float), np.shape(x)),
        )
        return (
            self.b
            * (np.sin(x[..., 0]) - np.sin(root[..., 0]))
            * (np.sin(x[..., 1]) - np.sin(root[..., 1]))
        )


def true_relevance(x, root, task=None):
    """Ground-truth relevance of the target of ``task`` (default :class:`SyntheticTask`\\ ()):
    ``R^⋆_i(x) = g(x̃ + (x_i - x̃_i) e_i) - g(x̃)``, the single-feature differences of the known
    ``g`` around ``root`` (closed form; see the module docstring)."""
    task = task or SyntheticTask(d=np.shape(x)[-1])
    return task.true_relevance(x, root)


class FourierPQC:
    """``f(x) = ⟨κ Σ_i s_i Z_i⟩`` after ``Rot(w_i)``, ``RY(x_i)`` per qubit and ``StronglyEntanglingLayers``.

    ``qnode(x, weights)`` is a ``default.qubit`` QNode (JAX interface) for the explanation
    methods; :meth:`simulate` is the same function in plain JAX, used for training.
    """

    def __init__(self, n_qubits=4, n_layers=2, seed=0, scale=None):
        self.n_qubits, self.n_layers, self.seed = n_qubits, n_layers, seed
        self.scale = float(SyntheticTask(d=n_qubits).scale if scale is None else scale) / n_qubits
        n_angles = 3 * n_qubits + 3 * n_layers * n_qubits
        self.n_weights = n_angles + n_qubits
        rng = np.random.default_rng(seed)
        angles = rng.uniform(0, 2 * np.pi, size=n_angles)
        self.weights = jnp.asarray(np.concatenate([angles, np.ones(n_qubits)]))
        self.history = []
        self.device = qml.device("default.qubit", wires=n_qubits)
        wires = list(range(n_qubits))
        n, layers, scale = n_qubits, n_layers, self.scale

        @qml.qnode(self.device, interface="jax")
        def qnode(x, weights):
            pre = weights[: 3 * n]
            for i in wires:
                qml.Rot(pre[3 * i], pre[3 * i + 1], pre[3 * i + 2], wires=i)
                qml.RY(x[i], wires=i)
            qml.StronglyEntanglingLayers(
                qml.math.reshape(weights[3 * n : -n], (layers, n, 3)), wires=wires
            )
            return qml.expval(qml.dot(scale * weights[-n:], [qml.Z(w) for w in wires]))

        self.qnode = qnode
        # eigenvalue of Z_i on each basis state (wire 0 is the most significant bit): (n, 2**n)
        self._z = jnp.asarray(
            [[1 - 2 * ((b >> (n - 1 - i)) & 1) for b in range(2**n)] for i in range(n)], dtype=float
        )

    # -- the pure-JAX twin ------------------------------------------------------------------------

    def simulate(self, X, weights=None):
        """``f`` on rows ``X`` (``(n, d)``) by a direct state-vector simulation in JAX."""
        weights = self.weights if weights is None else weights
        n = self.n_qubits
        pre = weights[: 3 * n].reshape(n, 3)
        diag = self.scale * weights[-n:] @ self._z
        unitary = qml.matrix(
            qml.StronglyEntanglingLayers(
                weights[3 * n : -n].reshape(self.n_layers, n, 3), wires=range(n)
            ),
            wire_order=range(n),
        )
        starts = [qml.Rot.compute_matrix(*pre[i])[:, 0] for i in range(n)]

        def one(x):
            state = jnp.ones((1,), dtype=unitary.dtype)
            for i in range(n):
                state = jnp.kron(state, qml.RY.compute_matrix(x[i]) @ starts[i])
            out = unitary @ state
            return jnp.real(jnp.sum(diag * jnp.abs(out) ** 2))

        return jax.vmap(one)(jnp.asarray(X))

    def __call__(self, X):
        X = np.asarray(X, dtype=float)
        return np.asarray(self.simulate(X.reshape(-1, self.n_qubits))).reshape(X.shape[:-1])

    def fit(self, X, y, steps=400, learning_rate=0.1, progress=False):
        """Full-batch Adam on the mean squared error (``jax.jit``); keeps the last weights.
        ``history`` holds the loss of every step. Returns ``self``."""
        X, y = jnp.asarray(X), jnp.asarray(y)

        def loss(w):  # the data are constants of the compiled step, as they always were
            return jnp.mean((self.simulate(X, w) - y) ** 2)

        def report(step, w, state, value):
            if progress and ((step - 1) % 100 == 0 or step == steps):
                print(f"  step {step - 1:4d}  mse {value:.4f}")

        start = time.perf_counter()
        result = train(
            loss, self.weights, optax.adam(learning_rate), (), epochs=steps, after_epoch=report
        )
        self.history.extend(result.history)
        w = result.params
        self.weights = w
        self.fit_seconds = time.perf_counter() - start
        return self

    def mse(self, X, y):
        return float(np.mean((self(X) - np.asarray(y)) ** 2))

    def find_root(self, start=None, steps=50, tol=1e-10):
        """A root ``x̃`` (``f(x̃) ≈ 0``) by the Newton iteration of ``taylor_fourier(root="search")``,
        ``x ← x - f(x) ∇f(x)/‖∇f(x)‖²`` (minimum-norm steps), from ``start`` (default 0)."""
        x = jnp.zeros(self.n_qubits) if start is None else jnp.asarray(start, dtype=float)
        f = lambda z: self.simulate(z[None])[0]
        value_and_grad = jax.jit(jax.value_and_grad(f))
        for _ in range(steps):
            value, grad = value_and_grad(x)
            if abs(float(value)) <= tol:
                return np.asarray(x)
            x = x - value * grad / jnp.maximum(jnp.sum(grad**2), 1e-24)
        raise ValueError(f"No root found from {start}: |f| = {abs(float(value)):.3g}.")
