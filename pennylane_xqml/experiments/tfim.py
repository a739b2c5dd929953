r"""Quantum data: ground states of the transverse-field Ising chain, a phase classifier that
takes them through ``StatePrep``, and their exact amplitude attributions.

The chain is a **ring** (periodic boundary conditions, wire ``N`` is wire ``0``):

.. math:: H = -J \sum_{i=0}^{N-1} Z_i Z_{i+1} - h \sum_{i=0}^{N-1} X_i .

Periodic rather than open because the free-fermion closed form of the ground-state energy is
then a plain sum (with open ends the fermion momenta solve a transcendental equation). The
Jordan-Wigner map turns the ring into free fermions whose boundary condition depends on the
parity ``P = Π_i X_i``, which commutes with ``H`` (the global Z2 symmetry ``Z_i -> -Z_i``):

* even sector (``P = +1``, antiperiodic fermions, ``k = π(2m+1)/N``):
  ``E_even = -Σ_k sqrt(J² + h² - 2 J h cos k)``;
* odd sector (``P = -1``, periodic fermions, ``k = 2πm/N``, the unpaired modes ``k = 0`` and
  ``k = π`` fixed by the odd fermion number): ``E_odd = -Σ_{k ≠ 0, π} sqrt(...) - 2J``
  (even ``N``).

For ``J > 0`` and ``h > 0`` the ground state is in the even sector and is unique for every
finite ``N``; in the ordered phase (``h < J``) the odd sector's lowest level lies only
``~ (h/J)^N`` above it (``1.1e-6`` at ``h = 0.2`` for ``N = 8``, ``3.7e-8`` for
``N = 10``; ``4e-14`` at ``h = 0.05``). A Lanczos solver on the full space then returns
the symmetric state only if it resolves that splitting. Measured with ``eigsh`` from random
starts on ``N = 10``: ``tol=1e-6`` at ``h = 0.2`` gave ``|⟨Z_0⟩| = 0.99`` (a symmetry-broken
mixture), and even the default ``tol=0`` at ``h = 0.05`` gave ``|⟨Z_0⟩|`` of 0.12-0.20. So
:func:`ground_state` diagonalises **within the even sector**: the state is exactly the
symmetric "cat" ``a_b = a_{b̄}`` (``b̄`` the configuration with every spin flipped), close to
``(|0…0⟩ + |1…1⟩)/√2`` for small ``h``, and its amplitudes are all positive (``H`` is
stoquastic in the Z basis; the sign is fixed by that).

Consequences for a classifier of these states (:class:`PhaseClassifier`): every single-spin
``⟨Z_i⟩`` is 0 on both sides of the transition, so the model has to read correlations
(``⟨Z_i Z_j⟩``) or the transverse magnetisation (``⟨X_i⟩``); and its amplitude
attributions split each Z2 pair ``(b, b̄)`` in a way the data cannot fix (only ``M + P M P``
is seen on symmetric states), while every quantity summed over a pair, such as the mass per
number of domain walls (:func:`domain_walls` is flip-invariant), is determined.

Computational basis: index ``b`` has wire 0 as its most significant bit (PennyLane's order),
spin ``s_i = 1 - 2 b_i``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pennylane as qml
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from .. import integrated_gradients
from .training import train

__all__ = [
    "PhaseClassifier",
    "attribution_masses",
    "bits",
    "closed_form_energy",
    "domain_walls",
    "ground_state",
    "hamiltonian",
    "phase_dataset",
    "sector_basis",
]


def bits(n_spins):
    """``(2**n, n)`` array of the bits of every basis index, wire 0 first."""
    index = np.arange(2**n_spins)
    return (index[:, None] >> (n_spins - 1 - np.arange(n_spins))) & 1


def domain_walls(n_spins):
    """Number of domain walls ``#{i : b_i ≠ b_{i+1 mod n}}`` of every basis configuration
    (even on a ring: 0, 2, ..., n; unchanged when every spin is flipped)."""
    b = bits(n_spins)
    return np.sum(b != np.roll(b, -1, axis=1), axis=1)


def hamiltonian(n_spins, h, J=1.0):
    """The ring's ``H`` as a sparse ``(2**n, 2**n)`` CSR matrix in float64."""
    if n_spins < 2:
        raise ValueError(f"n_spins must be at least 2; got {n_spins}.")
    dim = 2**n_spins
    diagonal = -J * (n_spins - 2.0 * domain_walls(n_spins))  # Σ s_i s_{i+1} = n - 2 (walls)
    index = np.arange(dim)
    rows = np.concatenate([index] * n_spins)
    cols = np.concatenate([index ^ (1 << (n_spins - 1 - i)) for i in range(n_spins)])
    flips = sp.csr_matrix((np.full(rows.size, -float(h)), (rows, cols)), shape=(dim, dim))
    return (sp.diags(diagonal) + flips).tocsr()


def sector_basis(n_spins, parity=+1):
    """Isometry ``V`` (sparse, ``(2**n, 2**(n-1))``) onto the sector ``Π X_i = parity``: column
    ``r`` (a configuration with ``b_0 = 0``) is ``(|r⟩ + parity |r̄⟩)/√2``."""
    if parity not in (1, -1):
        raise ValueError(f"parity must be +1 or -1; got {parity!r}.")
    half = 2 ** (n_spins - 1)
    reps = np.arange(half)
    flipped = reps ^ (2**n_spins - 1)
    rows = np.concatenate([reps, flipped])
    cols = np.concatenate([reps, reps])
    data = np.concatenate([np.ones(half), parity * np.ones(half)]) / np.sqrt(2.0)
    return sp.csr_matrix((data, (rows, cols)), shape=(2**n_spins, half))


def ground_state(n_spins, h, J=1.0, parity=+1):
    """``(energy, state)``: the lowest level of ``H`` in a parity sector, by Lanczos
    (:func:`scipy.sparse.linalg.eigsh`) on the sector's ``2**(n-1)``-dimensional block. The
    state is a real float64 vector of length ``2**n``, normalised; for ``parity=+1`` (the
    ground state) its amplitudes are positive."""
    V = sector_basis(n_spins, parity)
    block = (V.T @ hamiltonian(n_spins, h, J) @ V).tocsr()
    v0 = np.ones(block.shape[0])  # a start overlapping the positive ground state
    energies, vectors = eigsh(block, k=1, which="SA", v0=v0, tol=0)
    state = V @ vectors[:, 0]
    state = state / np.linalg.norm(state)
    if state.sum() < 0:
        state = -state
    return float(energies[0]), state


def closed_form_energy(n_spins, h, J=1.0, parity=+1):
    """Free-fermion lowest energy of the ring in a parity sector (``n`` even for ``parity=-1``);
    ``parity=+1`` is the ground-state energy."""
    if parity == 1:
        k = np.pi * (2 * np.arange(n_spins) + 1) / n_spins
        return float(-np.sum(np.sqrt(J**2 + h**2 - 2 * J * h * np.cos(k))))
    if parity == -1:
        if n_spins % 2:
            raise ValueError("the odd-sector formula here is for an even number of spins.")
        m = np.arange(n_spins)
        k = 2 * np.pi * m[(m != 0) & (m != n_spins // 2)] / n_spins
        return float(-np.sum(np.sqrt(J**2 + h**2 - 2 * J * h * np.cos(k))) - 2 * J)
    raise ValueError(f"parity must be +1 or -1; got {parity!r}.")


def phase_dataset(n_spins, h_values, J=1.0):
    """``(states, labels)`` for the given fields: ground states ``(len(h), 2**n)`` and labels
    1 for the ordered phase (``h < J``), 0 for the disordered one."""
    h_values = np.asarray(h_values, dtype=np.float64)
    states = np.stack([ground_state(n_spins, h, J)[1] for h in h_values])
    return states, (h_values < J).astype(np.int64)


class PhaseClassifier:
    """``StatePrep(ground state)`` -> ``StronglyEntanglingLayers`` -> ``f = ⟨Z_0⟩``, with
    ``P(ordered) = (1 + f)/2``: ``f`` is the *ordered score*, positive on the ordered side.

    ``qnode(x, weights)`` is a JAX QNode that attribution transforms wrap directly;
    :meth:`fit` trains ``weights`` with Adam on the cross-entropy (full batch, one jitted step).
    """

    def __init__(self, n_spins, n_layers=2, seed=0, device=None):
        self.n_spins, self.n_layers = n_spins, n_layers
        wires = list(range(n_spins))
        device = device or qml.device("default.qubit", wires=n_spins)

        @qml.qnode(device, interface="jax")
        def qnode(x, weights):
            qml.StatePrep(x, wires=wires)
            qml.StronglyEntanglingLayers(weights, wires=wires)
            return qml.expval(qml.Z(0))

        self.qnode = qnode
        shape = qml.StronglyEntanglingLayers.shape(n_layers=n_layers, n_wires=n_spins)
        self.weights = jax.random.uniform(jax.random.PRNGKey(seed), shape, maxval=2 * jnp.pi)
        self.history = []
        self._forward = jax.jit(qnode)  # StatePrep broadcasts over rows: scores of a batch

    def _loss(self, weights, X, y):
        # StatePrep broadcasts over the rows of X (cheaper to compile than a vmap)
        p = jnp.clip((1 + self.qnode(X, weights)) / 2, 1e-7, 1 - 1e-7)
        return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

    def fit(self, X, y, steps=150, learning_rate=0.05):
        """Adam, full batch, ``steps`` steps from the current weights; returns ``self``."""
        X = jnp.asarray(X)
        y = jnp.asarray(y).astype(X.dtype)
        result = train(
            lambda w: self._loss(w, X, y), self.weights, optax.adam(learning_rate), (), epochs=steps
        )
        self.history.extend(result.history)
        weights = result.params
        self.weights = weights
        return self

    def scores(self, X):
        """The ordered score ``f = ⟨Z_0⟩`` of each row."""
        return np.asarray(self._forward(jnp.atleast_2d(jnp.asarray(X)), self.weights)).reshape(-1)

    def accuracy(self, X, y):
        """Fraction of rows whose label (1: ordered) the sign of the score gets right."""
        return float(np.mean((self.scores(X) > 0).astype(np.int64) == np.asarray(y)))

    def explain(self, X, gradient="hadamard_all"):
        """Exact amplitude integrated gradients (zero baseline) of the ordered score for each
        row: ``(n_rows, 2**n)``, summing to ``f(x)`` (``f(0) = 0``). ``gradient`` is the rule
        of :func:`~pennylane_xqml.integrated_gradients`: ``"hadamard_all"`` measures all
        ``2**n`` components with one Hadamard-test circuit per Pauli word."""
        explained = jax.jit(integrated_gradients(self.qnode, method="exact", gradient=gradient))
        # a jitted call per row compiles once and is faster to compile than a vmap of it
        return np.stack([np.asarray(explained(x, self.weights)) for x in jnp.asarray(X)])


def attribution_masses(attributions, states, n_spins):
    """Per number of domain walls ``k = 0, 2, ..., n`` (rows of the inputs summed over the
    configurations with ``k`` walls): ``{"walls", "signed", "absolute", "probability"}``, each
    ``(n_rows, n_k)``: the signed attribution, the absolute attribution as a fraction of
    ``Σ_b |IG_b|``, and the state's probability ``Σ a_b²``."""
    attributions, states = np.atleast_2d(attributions), np.atleast_2d(states)
    walls = domain_walls(n_spins)
    levels = np.arange(0, n_spins + 1, 2)
    onehot = (walls[:, None] == levels[None, :]).astype(np.float64)
    absolute = np.abs(attributions)
    return {
        "walls": levels,
        "signed": attributions @ onehot,
        "absolute": (absolute @ onehot) / absolute.sum(axis=1, keepdims=True),
        "probability": (states**2) @ onehot,
    }
