"""The transverse-field Ising ring (pennylane_xqml.experiments.tfim) and ``xqml reproduce
tfim-phases``.

The exact diagonalisation is checked against the free-fermion closed forms and an independent
dense Hamiltonian (scipy/numpy in float64 whatever JAX's precision); the attributions against
``jax.grad`` of the plain QNode along the straight path and against completeness; the quick
reproduction end to end.
"""

import functools
import os
from math import comb

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from scipy.sparse.linalg import eigsh

from pennylane_xqml.experiments import tfim
from pennylane_xqml.testing import assert_close

FIELDS = (0.2, 0.5, 0.9, 0.99, 1.0, 1.01, 1.1, 1.5, 2.0)


@pytest.mark.parametrize("n", [8, 10])
@pytest.mark.parametrize("h", FIELDS)
def test_ground_energy_matches_free_fermions(n, h):
    energy, _ = tfim.ground_state(n, h)
    assert_close(energy, tfim.closed_form_energy(n, h), dtype=np.float64, rtol64=0, atol64=1e-8)


@pytest.mark.parametrize("n", [8, 10])
def test_full_space_and_odd_sector_match_free_fermions(n):
    """Without any sector projection, the lowest level of the full ``H`` is the even-sector
    formula; the odd sector's lowest level is the periodic-fermion formula."""
    for h, J in ((0.3, 1.0), (1.0, 1.0), (1.7, 0.8)):
        lowest = eigsh(tfim.hamiltonian(n, h, J), k=1, which="SA", tol=0)[0][0]
        assert_close(lowest, tfim.closed_form_energy(n, h, J), dtype=np.float64, atol64=1e-8)
        odd, _ = tfim.ground_state(n, h, J, parity=-1)
        expected = tfim.closed_form_energy(n, h, J, parity=-1)
        assert_close(odd, expected, dtype=np.float64, rtol64=0, atol64=1e-8)
        assert odd > lowest  # the ground state is in the even sector


def _dense_hamiltonian(n, h, J):
    """``H`` from Kronecker products of 2x2 Paulis (wire 0 the leftmost factor)."""
    X, Z, I2 = np.array([[0, 1], [1, 0]]), np.diag([1, -1]), np.eye(2)

    def site(ops):
        return functools.reduce(np.kron, [ops.get(i, I2) for i in range(n)])

    H = sum(-J * site({i: Z, (i + 1) % n: Z}) for i in range(n))
    return H + sum(-h * site({i: X}) for i in range(n))


@pytest.mark.parametrize("n", [3, 4, 5])
def test_hamiltonian_against_dense_constructions(n):
    h, J = 0.7, 1.3
    sparse = tfim.hamiltonian(n, h, J).toarray()
    np.testing.assert_allclose(sparse, _dense_hamiltonian(n, h, J), atol=1e-14)
    coeffs = [-J] * n + [-h] * n
    ops = [qml.Z(i) @ qml.Z((i + 1) % n) for i in range(n)] + [qml.X(i) for i in range(n)]
    pennylane_matrix = qml.matrix(qml.Hamiltonian(coeffs, ops), wire_order=range(n))
    np.testing.assert_allclose(sparse, np.real(pennylane_matrix), atol=1e-14)


@pytest.mark.parametrize("n", [6, 10])
def test_ground_state_is_the_symmetric_positive_eigenvector(n):
    flip = np.arange(2**n) ^ (2**n - 1)
    spins = 1 - 2 * tfim.bits(n)
    correlations = []
    for h in (0.05, 0.3, 1.0, 2.0):  # h = 0.05: even/odd splitting ~1e-14 at n = 10
        energy, state = tfim.ground_state(n, h)
        H = tfim.hamiltonian(n, h)
        assert np.linalg.norm(H @ state - energy * state) < 1e-8
        np.testing.assert_allclose(np.linalg.norm(state), 1.0, atol=1e-12)
        np.testing.assert_allclose(state[flip], state, atol=1e-12)  # Z2: the cat state
        assert state.min() > 0  # stoquastic H: Perron-Frobenius
        probability = state**2
        np.testing.assert_allclose(probability @ spins, 0.0, atol=1e-12)  # every <Z_i> is 0
        correlations.append(probability @ (spins[:, 0] * spins[:, n // 2]))
    assert correlations[0] > correlations[1] > 0.9 > correlations[2] > correlations[3]


@pytest.mark.parametrize("n", [4, 6, 7])
def test_domain_walls(n):
    walls = tfim.domain_walls(n)
    flip = np.arange(2**n) ^ (2**n - 1)
    np.testing.assert_array_equal(walls[flip], walls)
    for k in range(n + 1):
        assert np.sum(walls == k) == (2 * comb(n, k) if k % 2 == 0 else 0)
    spins = 1 - 2 * tfim.bits(n)
    np.testing.assert_array_equal(n - 2 * walls, np.sum(spins * np.roll(spins, -1, 1), axis=1))


def test_attribution_masses_bookkeeping(rng):
    n = 6
    attributions = rng.normal(size=(3, 2**n))
    states = rng.normal(size=(3, 2**n))
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    masses = tfim.attribution_masses(attributions, states, n)
    np.testing.assert_array_equal(masses["walls"], [0, 2, 4, 6])
    np.testing.assert_allclose(masses["signed"].sum(1), attributions.sum(1), atol=1e-12)
    np.testing.assert_allclose(masses["absolute"].sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(masses["probability"].sum(1), 1.0, atol=1e-12)
    only_zero_walls = tfim.domain_walls(n) == 0
    np.testing.assert_allclose(masses["signed"][:, 0], attributions[:, only_zero_walls].sum(1))


@pytest.fixture(scope="module")
def small_model():
    """4 spins, 1 layer, weights from a fixed seed (no training), states at three fields."""
    n = 4
    model = tfim.PhaseClassifier(n, n_layers=1, seed=3)
    states, _ = tfim.phase_dataset(n, [0.4, 1.0, 1.8])
    dtype = jnp.asarray(1.0).dtype
    return model, jnp.asarray(states, dtype=dtype), model.explain(states)


def test_attributions_against_jax_grad_along_the_path(small_model):
    """IG_i = x_i ∫ ∂f(αx)/∂x_i dα with ``jax.grad`` of a plain StatePrep QNode (no
    normalisation check) at Gauss-Legendre nodes; the integrand is linear in α here, so 3
    nodes are exact."""
    model, states, attributions = small_model
    n = model.n_spins
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="jax", diff_method="backprop")
    def plain(x, weights):
        qml.StatePrep(x, wires=range(n), validate_norm=False)
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return qml.expval(qml.Z(0))

    nodes, weights = np.polynomial.legendre.leggauss(3)
    alphas, weights = (nodes + 1) / 2, weights / 2
    # every (node, state) point as one broadcast batch (jitted: eager JAX is slower here)
    points = jnp.concatenate([a * states for a in alphas])
    grads = jax.jit(jax.grad(lambda p: jnp.sum(plain(p, model.weights))))(points)
    path = jnp.tensordot(
        jnp.asarray(weights, dtype=grads.dtype), grads.reshape(3, *states.shape), 1
    )
    assert_close(attributions, states * path)
    # completeness, f(0) = 0
    assert_close(attributions.sum(1), jax.jit(plain)(states, model.weights))
    assert_close(attributions.sum(1), model.scores(states))


def test_wall_masses_do_not_depend_on_how_a_flip_pair_is_split(small_model):
    """A model that flips every spin first sees the same symmetric data: its attribution of
    ``b`` is the original one of the flipped ``b̄``, and the masses per wall count agree."""
    model, states, attributions = small_model
    n = model.n_spins
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, interface="jax")
    def flipped(x, weights):
        qml.StatePrep(x, wires=range(n))
        for i in range(n):
            qml.X(i)
        qml.StronglyEntanglingLayers(weights, wires=range(n))
        return qml.expval(qml.Z(0))

    other = tfim.PhaseClassifier(n, n_layers=1)
    other.qnode, other.weights = flipped, model.weights
    flipped_attributions = other.explain(states)
    flip = np.arange(2**n) ^ (2**n - 1)
    assert_close(flipped_attributions, attributions[:, flip])
    masses = tfim.attribution_masses(attributions, np.asarray(states), n)
    flipped_masses = tfim.attribution_masses(flipped_attributions, np.asarray(states), n)
    assert_close(flipped_masses["signed"], masses["signed"])


@pytest.mark.slow
def test_quick_reproduction(tmp_path):
    from pennylane_xqml.experiments.reproductions import load

    result = load("tfim-phases")(str(tmp_path), quick=True, progress=False)
    for path in result["files"].values():
        assert os.path.getsize(path) > 500
    assert os.path.getsize(result["files"]["figure"]) > 30_000
    assert len(result["results"]) == 2
    for r in result["results"]:
        n = r["n_spins"]
        assert str(n) in result["table"]
        assert r["energy_error"] < 1e-8
        assert 0 < r["splitting"] < 1e-3  # the cat states' near-degeneracy at h = 0.2
        assert r["completeness"] < 1e-8
        assert r["circuits"] == {"hadamard_all": 1, "hadamard": 2**n}
        assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["train_accuracy"] <= 1.0
        for key in ("final_loss", "h_star", "z2_asymmetry", "splitting", "explain_seconds"):
            assert np.isfinite(r[key]), key  # h_star: the seeded quick models do cross 0
        assert all(np.all(np.isfinite(v)) for v in r["masses"].values())
        assert np.all(np.isfinite(r["attributions"]))
        assert r["attributions"].shape == (len(r["h_test"]), 2**n)
        np.testing.assert_allclose(r["attributions"].sum(1), r["scores_test"], atol=1e-8)
        for phase in r["phases"].values():
            np.testing.assert_allclose(phase["absolute"].sum(), 1.0, atol=1e-10)
            np.testing.assert_allclose(phase["probability"].sum(), 1.0, atol=1e-10)
        # physics of the data (not of the model): the ordered states live on few walls
        ordered, disordered = r["phases"]["ordered"], r["phases"]["disordered"]
        assert ordered["wall_density_probability"] < disordered["wall_density_probability"]
    with open(result["files"]["csv"], encoding="utf-8") as handle:
        rows = handle.read().splitlines()
    assert len(rows) == 1 + sum(
        len(r["h_test"]) * (r["n_spins"] // 2 + 1) for r in result["results"]
    )
