"""Noisy devices and zero-noise extrapolation (pennylane_xqml.noise) and the CI-sized noise study
(``xqml reproduce noise-study --quick``): noiseless limits to 1e-10, degradation with the noise
strength, ZNE against depolarising noise, the fake IBM backend end to end, bad input."""

import json
import os

import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import random_weights
from pennylane_xqml import noise
from pennylane_xqml.experiments.reproductions import load, noise_study

pytest.importorskip(
    "qiskit_ibm_runtime", reason="install the optional extra: pip install .[qiskit]"
)

N = 2


def _amplitude_circuit(x, w):
    qml.AmplitudeEmbedding(x, wires=range(N), normalize=True)
    qml.StronglyEntanglingLayers(w, wires=range(N))
    return qml.expval(qml.PauliZ(0) + 0.5 * qml.PauliX(1))


def _angle_circuit(x, w):
    qml.AngleEmbedding(x, wires=range(N), rotation="Y")
    qml.CNOT([0, 1])
    qml.RX(w, 1)
    return qml.expval(qml.PauliZ(1))


# ---------------------------------------------------------------------------------------------
# noiseless limits: the device-level machinery changes nothing at p = 0
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zne", [None, noise.ZNE()])
def test_zero_noise_reproduces_default_qubit(zne, rng):
    x, w = rng.normal(size=4), random_weights(rng, N)
    exact = xqml.integrated_gradients(
        qml.QNode(_amplitude_circuit, qml.device("default.qubit", wires=N))
    )
    noisy = qml.QNode(_amplitude_circuit, noise.depolarizing_device(N + 1, 0.0, zne=zne))
    ig = xqml.integrated_gradients(noisy, gradient="hadamard_all")(x, w)
    assert np.allclose(ig, exact(x, w), atol=1e-10, rtol=0)

    xa = np.array([0.4, -0.9])
    exact_sal = xqml.saliency(
        qml.QNode(_angle_circuit, qml.device("default.qubit", wires=N)), abs=False
    )
    noisy_sal = qml.QNode(_angle_circuit, noise.depolarizing_device(N, 0.0, zne=zne))
    assert np.allclose(xqml.saliency(noisy_sal, abs=False)(xa, 0.3), exact_sal(xa, 0.3), atol=1e-10)


def test_depolarizing_device_noise_lands_on_generated_circuits():
    """A single RY: every generated shift circuit has one noisy gate, so the parameter-shift
    gradient of <Z> = cos(x) shrinks by exactly (1 - 4p/3)."""

    def circuit(x):
        qml.RY(x[0], 0)
        return qml.expval(qml.Z(0))

    p, x = 0.05, np.array([0.7])
    noisy = qml.QNode(circuit, noise.depolarizing_device(1, p))
    grad = xqml.saliency(noisy, abs=False, gradient="parameter-shift")(x)
    assert np.allclose(grad, -(1 - 4 * p / 3) * np.sin(x), atol=1e-12)


def test_zne_recovers_single_gate_decay():
    """One gate with depolarising noise scaled by folding: <Z> after X is -(1-4p/3)^λ; a
    Richardson fit through λ = 1, 3, 5 of an exponential is close to the noiseless -1."""

    def circuit():
        qml.X(0)
        return qml.expval(qml.Z(0))

    p = 0.02
    plain = qml.QNode(circuit, noise.depolarizing_device(1, p))()
    mitigated = qml.QNode(circuit, noise.depolarizing_device(1, p, zne=noise.ZNE()))()
    assert np.isclose(plain, -(1 - 4 * p / 3), atol=1e-12)
    assert abs(mitigated + 1) < 1e-3 < abs(plain + 1)


# ---------------------------------------------------------------------------------------------
# the CI-sized study
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return noise_study.run(str(tmp_path_factory.mktemp("noise")), quick=True, progress=False)


def _rows(study, **match):
    return [r for r in study["rows"] if all(r[k] == v for k, v in match.items())]


@pytest.mark.slow
def test_study_writes_its_table_and_figure(study):
    assert os.path.getsize(study["figure"]) > 0
    with open(study["json"], encoding="utf-8") as handle:
        assert json.load(handle) == json.loads(json.dumps(study["rows"]))
    with open(study["csv"], encoding="utf-8") as handle:
        assert len(handle.readlines()) == len(study["rows"]) + 1
    for row in study["rows"]:
        assert np.isfinite(row["spearman"]) and np.isfinite(row["rel_error"])
    assert load("noise-study") is noise_study.run


@pytest.mark.slow
def test_every_method_runs_on_depolarizing_noise_and_keeps_its_ranking(study):
    """At p = 0.01 every method still ranks the features almost as without noise."""
    rows = _rows(study, backend="default.mixed", p=0.01, shots=None, zne=False)
    assert len(rows) == 8  # 2 amplitude methods + 6 angle methods
    for row in rows:
        assert row["spearman"] >= 0.9, row
        assert 0 < row["rel_error"] < 0.5, row


@pytest.mark.slow
def test_attribution_error_grows_with_noise(study):
    weak = _rows(study, backend="default.mixed", p=0.01, shots=None, zne=False)
    strong = _rows(study, backend="default.mixed", p=0.04, shots=None, zne=False)
    for a, b in zip(weak, strong):
        assert (a["model"], a["method"]) == (b["model"], b["method"])
        assert b["rel_error"] > 1.5 * a["rel_error"], (a, b)


@pytest.mark.slow
def test_zne_reduces_the_error_of_depolarising_noise(study):
    plain = _rows(study, backend="default.mixed", p=0.01, shots=None, zne=False)
    mitigated = _rows(study, backend="default.mixed", p=0.01, shots=None, zne=True)
    assert {r["method"] for r in mitigated} == set(noise_study.QUICK_METHODS)
    for row in mitigated:
        [base] = [r for r in plain if (r["model"], r["method"]) == (row["model"], row["method"])]
        assert row["rel_error"] < 0.5 * base["rel_error"], (row, base)


@pytest.mark.slow
def test_fake_backend_runs_end_to_end(study):
    """FakeManilaV2's noise (gates, readout, routing) costs accuracy but keeps the ranking of
    the amplitude IG; the values stay within 60% of the noiseless ones."""
    rows = _rows(study, backend=noise_study.FAKE_BACKEND, zne=False)
    assert {r["method"] for r in rows} == set(noise_study.QUICK_METHODS)
    [ig] = [r for r in rows if r["method"] == "IG (Hadamard test)"]
    assert ig["spearman"] >= 0.8
    for row in rows:
        assert 0 < row["rel_error"] < 0.6, row


def test_fake_backend_is_reproducible_with_a_seed(rng):
    x, w = rng.normal(size=4), random_weights(rng, N)

    def explain(seed):
        model = qml.QNode(_amplitude_circuit, qml.device("default.qubit", wires=N))
        qnode = noise.on_device(model, noise.fake_backend_device(N + 1, seed=seed), shots=2000)
        return xqml.integrated_gradients(qnode, gradient="hadamard_all")(x, w)

    assert np.array_equal(explain(5), explain(5))


# ---------------------------------------------------------------------------------------------
# bad input: clear errors before anything runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.1", True, np.nan])
def test_depolarizing_device_rejects_bad_p(p):
    with pytest.raises(ValueError, match="p must be a probability"):
        noise.depolarizing_device(2, p)


@pytest.mark.parametrize("wires, error", [(0, ValueError), (True, TypeError), ("ab", TypeError)])
def test_devices_reject_bad_wires(wires, error):
    with pytest.raises(error, match="wires must be"):
        noise.depolarizing_device(wires, 0.01)
    with pytest.raises(error, match="wires must be"):
        noise.fake_backend_device(wires)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale_factors": (1,)}, "at least two distinct"),
        ({"scale_factors": (1, 1)}, "at least two distinct"),
        ({"scale_factors": (0.5, 1)}, "numbers >= 1"),
        ({"scale_factors": 3}, "scale_factors"),
        ({"extrapolation": "cubic"}, "Unknown extrapolation='cubic'"),
    ],
)
def test_zne_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        noise.ZNE(**kwargs)


def test_zne_refuses_devices_that_already_add_noise():
    with pytest.raises(ValueError, match="apply ZNE to the noiseless device"):
        noise.ZNE().apply(noise.depolarizing_device(1, 0.01))
    with pytest.raises(TypeError, match="ZNE applies to a PennyLane device"):
        noise.ZNE().apply("default.mixed")
    with pytest.raises(TypeError, match="zne must be None or a ZNE"):
        noise.depolarizing_device(1, 0.01, zne=True)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"backend": "FakeNowhereV2"}, ValueError, "name of a fake IBM backend"),
        ({"wires": 6}, ValueError, "but fake_manila has 5"),
        ({"optimization_level": 4}, ValueError, "optimization_level must be"),
        ({"readout_error": "no"}, TypeError, "readout_error must be"),
        ({"zne": "richardson"}, TypeError, "zne must be None"),
    ],
)
def test_fake_backend_device_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        noise.fake_backend_device(**{"wires": 3, **kwargs})


def test_on_device_rejects_bad_input():
    qnode = qml.QNode(_angle_circuit, qml.device("default.qubit", wires=N))
    dev = noise.depolarizing_device(N, 0.01)
    with pytest.raises(TypeError, match="on_device copies a qml.QNode"):
        noise.on_device(_angle_circuit, dev)
    with pytest.raises(TypeError, match="device must be a PennyLane device"):
        noise.on_device(qnode, "default.mixed")
    with pytest.raises(ValueError, match="shots must be None"):
        noise.on_device(qnode, dev, shots=0)


@pytest.mark.slow
def test_zne_on_the_fake_backend_keeps_single_expectation_results(rng):
    """qiskit.remote returns a 1-tuple for a circuit with one expectation value; ZNE must keep
    it (plain mitigate_with_zne squeezes it and pennylane-qiskit's regrouping then fails)."""
    model = qml.QNode(_amplitude_circuit_single, qml.device("default.qubit", wires=N))
    x, w = rng.normal(size=4), random_weights(rng, N)
    device = noise.fake_backend_device(N + 1, zne=noise.ZNE(), seed=1, readout_error=False)
    values = xqml.feature_ablation(noise.on_device(model, device, shots=4000))(x, w)
    assert values.shape == (4,)
    assert np.allclose(values, xqml.feature_ablation(model)(x, w), atol=0.15)


def _amplitude_circuit_single(x, w):
    qml.AmplitudeEmbedding(x, wires=range(N), normalize=True)
    qml.StronglyEntanglingLayers(w, wires=range(N))
    return qml.expval(qml.PauliZ(0))
