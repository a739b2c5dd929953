"""Property-based tests: random circuits, wire layouts, observables, input types, precisions and
PennyLane transforms, each explanation compared with an independent reference.

References never use this package's code:

* angle inputs: ``jax.jacobian`` of the plain QNode (64-bit), a 48-point Gauss-Legendre
  integral of it for integrated gradients, and brute-force Shapley values from QNode evaluations;
* amplitude inputs: the same on a reference QNode that prepares an arbitrary (unnormalised)
  vector with ``qml.StatePrep(..., validate_norm=False)``, whose output is the quadratic form
  ``v† M v`` the attributions are defined on.

Profiles (``XQML_HYPOTHESIS_PROFILE``): ``ci`` (default, derandomised, 210 draws in all) and
``thorough`` (3,000 draws per test, random).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pennylane import numpy as pnp

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close, jax_precision

settings.register_profile(
    "ci", max_examples=70, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
settings.register_profile(
    "thorough", max_examples=3000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
settings.load_profile(os.environ.get("XQML_HYPOTHESIS_PROFILE", "ci"))

# The draws include float32 cases (JAX inputs under jax_precision(x64=False)) and compare them
# with float64 references, so every test runs in 64-bit whatever the process's precision
# (XQML_X64=0 included) and switches to float32 for the float32 draws itself.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _float64_references():
    with jax_precision(x64=True):
        yield


LABEL_SETS = ([0, 1, 2], [2, 0, 1], ["a", "b", "c"], [5, "x", 1])
GATES = (qml.RX, qml.RY, qml.RZ)


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------


@st.composite
def circuits(draw, encoding):
    """A random model: wires, device, encoding, body, measurement, input type and precision."""
    labels = list(draw(st.sampled_from(LABEL_SETS)))
    labels = draw(st.permutations(labels))
    device = draw(st.sampled_from(["wires", "spare_wire", "no_wires"]))
    case = {"labels": labels, "device": device, "encoding": encoding}
    if encoding == "amplitude":
        case["embed_wires"] = draw(st.permutations(labels))[:2]
        case["n_features"] = 4
    else:
        n = draw(st.integers(1, 3))
        case["n_features"] = n
        case["angles"] = [
            (draw(st.sampled_from(range(3))), draw(st.sampled_from(labels)),
             draw(st.sampled_from([1.0, 0.5, -2.0])))
            for _ in range(n)
        ]  # fmt: skip
    case["body"] = [
        (draw(st.sampled_from(["rot", "cnot"])), draw(st.permutations(labels))[:2],
         draw(st.integers(0, 2)), draw(st.floats(-3, 3)))
        for _ in range(draw(st.integers(1, 4)))
    ]  # fmt: skip
    case["measurement"] = draw(st.sampled_from(["word", "hamiltonian", "probs", "probs_all"]))
    case["measured"] = draw(st.permutations(labels))[: draw(st.integers(1, 2))]
    case["letters"] = draw(st.lists(st.sampled_from("XYZ"), min_size=3, max_size=3))
    case["inputs"] = draw(st.sampled_from(["numpy", "jax", "autograd"]))
    case["float32"] = case["inputs"] == "jax" and draw(st.booleans())
    case["transform"] = draw(st.sampled_from([None, "merge_rotations", "compile"]))
    values = draw(
        st.lists(st.floats(-1.5, 1.5), min_size=case["n_features"], max_size=case["n_features"])
    )
    case["x"] = np.array(values) + np.where(np.array(values) >= 0, 0.1, -0.1)
    return case


def _device(case):
    labels = case["labels"]
    if case["device"] == "no_wires":
        return qml.device("default.qubit")
    if case["device"] == "spare_wire":
        return qml.device("default.qubit", wires=[*labels, "spare"])
    return qml.device("default.qubit", wires=labels)


def _measurement(case):
    letters, measured, labels = case["letters"], case["measured"], case["labels"]
    pauli = {"X": qml.X, "Y": qml.Y, "Z": qml.Z}
    if case["measurement"] == "word":
        return qml.expval(qml.prod(*[pauli[letters[i]](w) for i, w in enumerate(measured)]))
    if case["measurement"] == "hamiltonian":
        return qml.expval(0.7 * pauli[letters[0]](labels[0]) @ pauli[letters[1]](labels[1])
                          + 0.3 * pauli[letters[2]](labels[2]))  # fmt: skip
    if case["measurement"] == "probs":
        return qml.probs(wires=measured)
    return qml.probs()


def _body(case):
    for kind, (a, b), gate, angle in case["body"]:
        if kind == "rot":
            GATES[gate](angle, wires=a)
        else:
            qml.CNOT([a, b])


def _model(case, reference=False):
    """The model QNode (with the drawn transform), or the plain 64-bit reference."""

    def circuit(x):
        if case["encoding"] == "amplitude":
            if reference:
                qml.StatePrep(x, wires=case["embed_wires"], validate_norm=False)
            else:
                qml.AmplitudeEmbedding(x, wires=case["embed_wires"], normalize=True)
        else:
            for i, (gate, wire, scale) in enumerate(case["angles"]):
                GATES[gate](scale * x[i], wires=wire)
        # every wire takes part, so probs() covers all of them on a device without wires
        for wire in case["labels"]:
            qml.Identity(wire)
        _body(case)
        return _measurement(case)

    qnode = qml.QNode(circuit, _device(case))
    if reference or case["transform"] is None:
        return qnode
    return (
        qml.transforms.merge_rotations(qnode)
        if case["transform"] == "merge_rotations"
        else qml.compile(qnode)
    )


def _inputs(case, x):
    if case["inputs"] == "jax":
        return jnp.asarray(x, dtype=jnp.float32 if case["float32"] else jnp.float64)
    if case["inputs"] == "autograd":
        return pnp.array(x, requires_grad=False)
    return np.asarray(x)


def _explain(case, method, **options):
    model = _model(case)
    x = _inputs(case, case["x"])
    precision = jax_precision(x64=False) if case["float32"] else contextlib.nullcontext()
    with precision, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # models that ignore some inputs
        values = getattr(xqml, method)(model, **options)(x)
    assert np.all(np.isfinite(np.asarray(values)))
    return values


def _reference_fn(case):
    ref = _model(case, reference=True)
    return lambda v: jnp.reshape(ref(v), (-1,))


def _point(case):
    """Where attributions live: the unit amplitude vector, or the input."""
    x = case["x"]
    return x / np.linalg.norm(x) if case["encoding"] == "amplitude" else x


def _check(case, values, expected):
    expected = np.asarray(expected)
    values = np.asarray(values)
    if expected.shape[0] == 1:  # one output: the explanation is not stacked
        expected = expected[0]
    assert values.shape == expected.shape
    assert_close(values, expected, dtype=np.float32 if case["float32"] else np.float64)


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@given(st.sampled_from(["amplitude", "angle"]).flatmap(circuits))
def test_saliency_matches_autodiff_of_the_plain_qnode(case):
    expected = jax.jacobian(_reference_fn(case))(jnp.asarray(_point(case)))  # (K, d)
    _check(case, _explain(case, "saliency", abs=False), expected)


@given(st.sampled_from(["amplitude", "angle"]).flatmap(circuits))
def test_integrated_gradients_match_a_quadrature_of_the_plain_qnode(case):
    f = _reference_fn(case)
    point = _point(case)
    if case["encoding"] == "amplitude":
        baseline, options = np.zeros_like(point), {}
    else:
        baseline = np.full_like(point, 0.3)
        options = {"baselines": baseline, "n_steps": 24}
    nodes, weights = np.polynomial.legendre.leggauss(48)
    alphas, weights = (nodes + 1) / 2, weights / 2
    path = jnp.asarray(baseline + alphas[:, None] * (point - baseline))
    grads = jax.vmap(jax.jacobian(f))(path)  # (48, K, d)
    expected = np.einsum("s,skd->kd", weights, np.asarray(grads)) * (point - baseline)
    _check(case, _explain(case, "integrated_gradients", **options), expected)


@given(st.sampled_from(["amplitude", "angle"]).flatmap(circuits))
def test_shapley_values_match_brute_force_on_the_plain_qnode(case):
    f = _reference_fn(case)
    point = _point(case)
    d = len(point)
    baseline = np.full(d, 0.2)
    reference_baseline = (
        baseline / np.linalg.norm(baseline) if case["encoding"] == "amplitude" else baseline
    )
    value = {}
    for keep in itertools.product([0, 1], repeat=d):
        keep = np.array(keep, dtype=bool)
        value[tuple(keep)] = np.asarray(f(jnp.asarray(np.where(keep, point, reference_baseline))))
    expected = np.zeros((len(next(iter(value.values()))), d))
    for i in range(d):
        for keep, v in value.items():
            if keep[i]:
                continue
            size = sum(keep)
            weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
            with_i = tuple(k or j == i for j, k in enumerate(keep))
            expected[:, i] += weight * (value[with_i] - v)
    _check(case, _explain(case, "shapley_values", baselines=baseline), expected)


def test_profiles_give_at_least_200_draws_in_ci():
    profile = settings.get_profile(os.environ.get("XQML_HYPOTHESIS_PROFILE", "ci"))
    assert 3 * profile.max_examples >= 200
