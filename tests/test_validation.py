"""Bad input raises a clear error before any circuit runs."""

import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import amplitude_model, random_weights

N = 2


@pytest.fixture
def device():
    return qml.device("default.qubit", wires=N)


@pytest.fixture
def model(device):
    return amplitude_model(device, N)


@pytest.fixture
def w(rng):
    return jnp.array(random_weights(rng, N))


def _raises_before_running(device, error, match, fn):
    with qml.Tracker(device) as tracker, pytest.raises(error, match=match):
        fn()
    assert tracker.totals.get("executions", 0) == 0


@pytest.mark.parametrize(
    "x, match",
    [
        (np.ones(5), "cannot be built with an input of shape"),  # too long for 2 qubits
        (np.array([1.0, np.nan, 0.0, 1.0]), "NaN or inf"),
        (np.array([1.0, np.inf, 0.0, 1.0]), "NaN or inf"),
        (np.zeros(4), "all-zero vector"),
    ],
)
def test_bad_amplitude_inputs(x, match, model, device, w):
    ig = xqml.integrated_gradients(model)
    _raises_before_running(device, ValueError, match, lambda: ig(jnp.array(x), w))


def test_non_numeric_input(model, device, w):
    _raises_before_running(
        device, TypeError, "numeric", lambda: xqml.saliency(model)(np.array(["a"] * 4), w)
    )


def test_baseline_of_wrong_shape(model, device, w):
    ig = xqml.integrated_gradients(model, baselines=np.ones(3))
    _raises_before_running(device, ValueError, "baseline has shape", lambda: ig(jnp.ones(4), w))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"baselines": "median"}, "Unknown baselines"),
        ({"baselines": "mean"}, "baseline_data"),
        ({"baselines": np.array([1.0, np.nan, 0.0, 0.0])}, "NaN or inf"),
    ],
)
def test_invalid_baselines(options, match, model, device, w):
    def run():
        xqml.integrated_gradients(model, **options)(jnp.ones(4), w)

    _raises_before_running(device, ValueError, match, run)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"n_steps": 2.5, "method": "riemann_left"}, ValueError, "n_steps"),
        ({"method": "simpson"}, ValueError, "Unknown method"),
        ({"gradient": "magic"}, ValueError, "Unknown gradient"),
        ({"target": "first"}, TypeError, "target"),
        ({"argnums": (0, 1)}, TypeError, "argnums"),
        ({"method": "riemann_trapezoid", "n_steps": 1}, ValueError, "n_steps >= 2"),
    ],
)
def test_invalid_hyper_parameters(options, error, match, model):
    with pytest.raises(error, match=match):
        xqml.integrated_gradients(model, **options)


@pytest.mark.parametrize(
    "factory, options, match",
    [
        (xqml.smoothgrad, {"nt_type": "blur"}, "nt_type"),
        (xqml.smoothgrad, {"nt_samples": 0}, "nt_samples"),
        (xqml.smoothgrad, {"stdevs": -1.0}, "stdevs"),
        (xqml.saliency, {"abs": "yes"}, "abs"),
        (xqml.saliency, {"return_convergence_delta": True}, "integrated gradients"),
    ],
)
def test_invalid_gradient_family_options(factory, options, match, model, device, w):
    def run():
        factory(model, **options)(jnp.ones(4), w)

    with pytest.raises((ValueError, TypeError), match=match):
        run()


def test_target_out_of_range(model, device, w):
    ig = xqml.integrated_gradients(model, target=3)
    _raises_before_running(device, ValueError, "out of range", lambda: ig(jnp.ones(4), w))


def test_argnums_out_of_range(model, device, w):
    ig = xqml.integrated_gradients(model, argnums=5)
    _raises_before_running(device, ValueError, "argnums", lambda: ig(jnp.ones(4), w))


@pytest.mark.parametrize("measurement", [qml.state, lambda: qml.var(qml.PauliZ(0))])
def test_unsupported_measurements(measurement, device, w):
    model = amplitude_model(device, N, measurements=measurement)
    _raises_before_running(
        device,
        ValueError,
        "Unsupported measurement",
        lambda: xqml.integrated_gradients(model)(jnp.ones(4), w),
    )


def test_state_with_shots_is_refused(w):
    device = qml.device("default.qubit", wires=N + 1, seed=1)
    model = qml.set_shots(amplitude_model(device, N, measurements=qml.state), shots=100)
    _raises_before_running(
        device,
        ValueError,
        "cannot return a state",
        lambda: xqml.integrated_gradients(model)(jnp.ones(4), w),
    )


def test_exact_method_refuses_angle_encoding(device):
    @qml.qnode(device)
    def model(x):
        qml.AngleEmbedding(x, wires=range(N))
        return qml.expval(qml.PauliZ(0))

    _raises_before_running(
        device,
        ValueError,
        "closed form",
        lambda: xqml.integrated_gradients(model, method="exact")(np.ones(2)),
    )


def test_rules_that_do_not_apply(device, w):
    @qml.qnode(device)
    def angle(x):
        qml.AngleEmbedding(x, wires=range(N))
        return qml.expval(qml.PauliZ(0))

    amp = amplitude_model(device, N)
    _raises_before_running(
        device,
        ValueError,
        "amplitude embeddings",
        lambda: xqml.saliency(angle, gradient="hadamard_all")(np.ones(2)),
    )
    _raises_before_running(
        device,
        ValueError,
        "does not apply",
        lambda: xqml.saliency(amp, gradient="parameter-shift")(jnp.ones(4), w),
    )
    shots = qml.set_shots(amp, shots=100)
    _raises_before_running(
        device,
        ValueError,
        "analytic",
        lambda: xqml.saliency(shots, gradient="adjoint")(jnp.ones(4), w),
    )


def test_input_not_used_by_circuit(device):
    """A model that ignores its input gets zeros (the exact attribution) and a warning that
    names argnums, from every method alike (see test_reliability for all methods)."""

    @qml.qnode(device)
    def model(x, w):
        qml.RY(w, 0)
        return qml.expval(qml.PauliZ(0))

    with qml.Tracker(device) as tracker, pytest.warns(UserWarning, match="argnums=0"):
        values = xqml.saliency(model, gradient="parameter-shift")(np.ones(2), 0.3)
    assert np.all(values == 0)
    assert tracker.totals.get("executions", 0) == 0


def test_not_a_qnode():
    # a function is a model (a function of QNodes); one that calls no QNode is refused at the
    # call, before anything runs; something that is not callable at all is refused at once
    explained = xqml.integrated_gradients(lambda x: x)
    with pytest.raises(xqml.FunctionModelError, match="calls no QNode"):
        explained(jnp.ones(2))
    with pytest.raises(TypeError):
        xqml.integrated_gradients(3)


def test_device_without_spare_wire_for_hadamard_test(w):
    device = qml.device("default.mixed", wires=N)
    model = amplitude_model(device, N)
    _raises_before_running(
        device,
        ValueError,
        "ancilla",
        lambda: xqml.integrated_gradients(model, gradient="hadamard_all")(jnp.ones(4), w),
    )


def test_torch_tensors_are_explained_like_numpy_arrays():
    torch = pytest.importorskip("torch")
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="torch")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        qml.RY(w, wires=0)
        return qml.expval(qml.Z(0))

    explained = xqml.integrated_gradients(model)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    got = explained(x, torch.tensor(0.3, dtype=torch.float64))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    values = explained(np.array([1.0, 2.0, 3.0, 4.0]), 0.3)
    assert np.allclose(got.numpy(), values)  # tests/test_torch.py checks more, at 1e-10
    assert np.isclose(values.sum(), model(x, 0.3).item())  # completeness
    # the engine's own entry points (ModelCall, explain_batch) still refuse torch, clearly
    with qml.Tracker(dev) as tracker, pytest.raises(TypeError, match="explained\\(x, weights\\)"):
        xqml.ModelCall(model, (x, 0.3), {}, 0)
    assert tracker.totals.get("executions", 0) == 0


class TestProgramCapture:
    """With PennyLane's program capture on, every public entry point is refused before
    anything is traced or run, with a message naming ``qml.capture.disable()`` (issue 26).

    Capture needs jax 0.7.1, which this environment does not have (``qml.capture.enable()``
    raises ImportError here), so PennyLane's switch is patched to report it on; the Catalyst
    environment (jax 0.7.1) runs the same refusals with capture really on
    (``scripts/catalyst/run_catalyst_checks.py``)."""

    @pytest.fixture
    def capture_on(self, monkeypatch):
        def on():
            monkeypatch.setattr(qml.capture, "enabled", lambda: True)

        return on

    @staticmethod
    def _refused(device, fn):
        match = r"qml\.capture\.disable\(\)"
        with qml.Tracker(device) as tracker, pytest.raises(NotImplementedError, match=match):
            fn()
        assert tracker.totals.get("executions", 0) == 0

    def test_explained_qnodes_and_their_views(self, capture_on, model, device, w):
        x = np.array([1.0, 0.5, -0.3, 0.2])
        explained = xqml.saliency(model)
        searched = xqml.taylor_fourier(model, root="search")
        tape = qml.workflow.construct_tape(model)(x, w)
        capture_on()
        for call in (
            lambda: explained(x, w),
            lambda: explained.explain(x, w),
            lambda: explained.plan(x, w),
            lambda: explained.prepared_plan(x, w),
            lambda: explained.construct_batch(x, w),
            lambda: explained.draw(x, w),
            lambda: explained.cost(x, w),
            lambda: xqml.cost_report(explained, x, w),
            lambda: searched.prepare(x, w),
            lambda: xqml.saliency(tape),
            lambda: xqml.explain_batch(explained, np.stack([x, 2 * x]), w),
        ):
            self._refused(device, call)

    def test_autodiff_and_the_other_explainers(self, capture_on, model, device, w):
        x = np.array([1.0, 0.5, -0.3, 0.2])
        vjp_model = xqml.hadamard_vjp(model)
        shapley = xqml.gate_shapley(model)
        qpert = xqml.qpert_mask(model, background=np.ones((2, 4)), n_iter=2, n_masks=1)
        capture_on()
        for call in (
            lambda: xqml.input_vjp(model, (x, w), 1.0),
            lambda: vjp_model(x, w),
            lambda: shapley(x, w),
            lambda: shapley.plan(x, w),
            lambda: shapley.cost(x, w),
            lambda: qpert(x, w),
            lambda: qpert.cost(x, w),
            lambda: xqml.qpert_cost(qpert, x, w),
        ):
            self._refused(device, call)

    def test_grad_cam(self, capture_on):
        from pennylane_xqml.experiments.hybrid import HybridCNNVQC

        hybrid = HybridCNNVQC(n_classes=4, seed=1)
        images = jnp.linspace(0, 1, 128).reshape(2, 8, 8)
        cam = xqml.grad_cam(hybrid, target=1)
        capture_on()
        for call in (
            lambda: cam(hybrid.params, images),
            lambda: cam.weights(hybrid.params, images),
            lambda: cam.cost(hybrid.params, images),
            lambda: xqml.grad_cam_cost(cam, hybrid.params, images),
            lambda: cam.vqc_plan(hybrid.params, jnp.ones((2, 4, 2, 2))),
        ):
            self._refused(hybrid.device, call)
