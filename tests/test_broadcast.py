"""Parameter broadcasting in the executor: circuits that differ only in their parameters run as
one broadcast tape, and every attribution equals the per-tape path's (``broadcast=False``).

References: the per-tape path itself (the same plan, every tape executed on its own), and the
plain QNode (each merged row equals the QNode evaluated at that row's parameters).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pennylane_xqml as xqml
from pennylane_xqml.engine.execution import broadcast_tapes, execute_batch
from pennylane_xqml.testing import tolerances

X64 = jax.config.jax_enable_x64
RTOL = 1e-12 if X64 else 1e-5
ATOL = 1e-12 if X64 else 1e-5

N = 3

# method name -> options (every method whose plan has several circuits of one structure)
ANGLE_METHODS = {
    "integrated_gradients": {"gradient": "parameter-shift", "n_steps": 4},
    "saliency": {"gradient": "parameter-shift"},
    "smoothgrad": {"gradient": "parameter-shift", "nt_samples": 3, "seed": 1},
    "feature_ablation": {"baselines": 0.1},
    "shapley_values": {"background": np.linspace(0.1, 0.9, 2 * N).reshape(2, N)},
    "shapley_value_sampling": {"baselines": 0.2, "n_samples": 3, "seed": 2},
    "kernel_shap": {"baselines": 0.3, "n_samples": 12, "seed": 3},
    "lime": {"n_samples": 10, "seed": 4},
    "taylor_fourier": {"gradient": "parameter-shift", "root": np.zeros(N)},
    "input_x_gradient": {"gradient": "parameter-shift"},
    "qlrp": {"gradient": "parameter-shift"},
}
AMPLITUDE_METHODS = {
    "integrated_gradients": {"gradient": "hadamard_all", "method": "riemann_middle", "n_steps": 3},
    "saliency": {"gradient": "hadamard_all"},
    "shapley_values": {"baselines": 0.1},
    "feature_ablation": {"baselines": 0.05},
}


def angle_model(device, interface="auto"):
    @qml.qnode(device, interface=interface)
    def model(x, w):
        qml.AngleEmbedding(x, wires=range(N))
        qml.StronglyEntanglingLayers(w, wires=range(N))
        return qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Z(2))

    return model


def amplitude_model(device, interface="auto"):
    @qml.qnode(device, interface=interface)
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(2))
        return qml.expval(qml.Z(0))

    return model


def _close(a, b, rtol=RTOL, atol=ATOL):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _same_weight_gradients(merged, separate, x, w, output):
    """``jax.grad`` w.r.t. the weights of one output's attributions: both paths agree."""
    rtol, atol = tolerances(w.dtype)
    _close(
        jax.grad(lambda v: jnp.sum(merged(x, v)[output]))(w),
        jax.grad(lambda v: jnp.sum(separate(x, v)[output]))(w),
        rtol=rtol,
        atol=atol,
    )


def _device(name, wires):
    return qml.device(name, wires=wires)


def _count_tapes(device, fn):
    with qml.Tracker(device) as tracker:
        out = fn()
    return out, tracker.totals.get("simulations", tracker.totals.get("executions", 0))


SLOW = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(ANGLE_METHODS))
@pytest.mark.parametrize(
    "device_name",
    [
        "default.qubit",
        pytest.param("lightning.qubit", marks=SLOW),
        pytest.param("default.mixed", marks=SLOW),
    ],
)
def test_angle_methods_equal_the_per_tape_path(name, device_name):
    rng = np.random.default_rng(5)
    x = rng.uniform(0.1, 1.0, N)
    w = rng.normal(size=qml.StronglyEntanglingLayers.shape(1, N))
    model = angle_model(_device(device_name, N))
    options = ANGLE_METHODS[name]
    merged = getattr(xqml, name)(model, **options)
    separate = getattr(xqml, name)(model, **options, broadcast=False)
    _close(merged(x, w), separate(x, w))
    plan = separate.prepare(x, w).plan(x, w)
    report = merged.cost(x, w)
    assert report.n_circuits == len(plan.tapes)
    assert report.n_executed_tapes < report.n_circuits  # something was merged


@pytest.mark.parametrize("name", sorted(AMPLITUDE_METHODS))
@pytest.mark.parametrize(
    "device_name", ["default.qubit", pytest.param("lightning.qubit", marks=SLOW)]
)
def test_amplitude_methods_equal_the_per_tape_path(name, device_name):
    rng = np.random.default_rng(6)
    x = rng.uniform(0.1, 1.0, 4)
    w = rng.normal(size=qml.StronglyEntanglingLayers.shape(1, 2))
    model = amplitude_model(_device(device_name, 3))
    options = AMPLITUDE_METHODS[name]
    merged = getattr(xqml, name)(model, **options)
    separate = getattr(xqml, name)(model, **options, broadcast=False)
    _close(merged(x, w), separate(x, w))


def test_root_search_equals_the_per_tape_path():
    """Taylor-Fourier's root search runs its Newton steps as plans too (merged the same way)."""
    rng = np.random.default_rng(7)
    x = rng.uniform(0.1, 1.0, N)
    w = rng.normal(size=qml.StronglyEntanglingLayers.shape(1, N))
    model = angle_model(_device("default.qubit", N))
    options = {"gradient": "parameter-shift"}  # root=None: the root search
    merged = xqml.taylor_fourier(model, **options)
    separate = xqml.taylor_fourier(model, **options, broadcast=False)
    _close(merged(x, w), separate(x, w))


def test_fewer_device_tapes_and_the_same_circuit_count():
    """default.qubit simulates the merged circuits as one tape; the tracker's executions (the
    circuits hardware would run) are unchanged."""
    dev = _device("default.qubit", N)
    x, w = np.full(N, 0.4), np.full(qml.StronglyEntanglingLayers.shape(1, N), 0.3)
    explained = xqml.shapley_values(angle_model(dev), baselines=0.0)
    separate = xqml.shapley_values(angle_model(dev), baselines=0.0, broadcast=False)
    with qml.Tracker(dev) as merged_tracker:
        explained(x, w)
    with qml.Tracker(dev) as separate_tracker:
        separate(x, w)
    n_circuits = explained.cost(x, w).n_circuits
    assert n_circuits == 2**N
    assert separate_tracker.totals["simulations"] == n_circuits
    assert merged_tracker.totals["simulations"] == 1
    assert merged_tracker.totals["executions"] == separate_tracker.totals["executions"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=st.lists(st.floats(-3.0, 3.0), min_size=N, max_size=N),
    seed=st.integers(0, 2**16),
    name=st.sampled_from(["shapley_values", "integrated_gradients", "kernel_shap"]),
)
def test_random_inputs_equal_the_per_tape_path(x, seed, name):
    w = np.random.default_rng(seed).normal(size=qml.StronglyEntanglingLayers.shape(2, N))
    model = angle_model(_device("default.qubit", N), interface="jax")
    options = ANGLE_METHODS[name]
    merged = getattr(xqml, name)(model, **options)
    separate = getattr(xqml, name)(model, **options, broadcast=False)
    x = jnp.asarray(x)
    _close(merged(x, w), separate(x, w))


def test_eager_jax_calls_return_jax_arrays_in_jax_precision():
    model = angle_model(_device("default.qubit", N), interface="jax")
    explained = xqml.shapley_values(model, baselines=0.0)
    x = jnp.asarray([0.1, 0.2, 0.3])
    w = jnp.ones(qml.StronglyEntanglingLayers.shape(1, N))
    out = explained(x, w)
    assert isinstance(out, jax.Array)
    assert out.dtype == (jnp.float64 if X64 else jnp.float32)


@pytest.mark.slow
def test_jit_vmap_and_grad_equal_the_per_tape_path():
    model = angle_model(_device("default.qubit", N), interface="jax")
    rng = np.random.default_rng(8)
    X = jnp.asarray(rng.uniform(0, 1, (3, N)))
    w = jnp.asarray(rng.normal(size=qml.StronglyEntanglingLayers.shape(1, N)))
    merged = xqml.shapley_values(model, baselines=0.0)
    separate = xqml.shapley_values(model, baselines=0.0, broadcast=False)

    def batched(explained):
        return jax.jit(jax.vmap(explained, in_axes=(0, None)))(X, w)

    _close(batched(merged), batched(separate))

    def loss(explained):
        return jax.grad(lambda v: jnp.sum(explained(X[0], v)[0] ** 2))(w)

    rtol, atol = tolerances(w.dtype)
    _close(loss(merged), loss(separate), rtol=rtol, atol=atol)
    _close(jax.jit(jax.grad(lambda v: jnp.sum(merged(X[0], v)[0])))(w),
           jax.grad(lambda v: jnp.sum(separate(X[0], v)[0]))(w), rtol=rtol, atol=atol)  # fmt: skip


def test_gradients_on_lightning_keep_the_per_tape_path():
    """PennyLane's gradient transforms refuse trainable broadcast parameters: on lightning a
    differentiated explanation runs per tape, and its gradient is the per-tape path's."""
    model = angle_model(_device("lightning.qubit", N), interface="jax")
    x = jnp.asarray([0.3, 0.5, 0.7])
    w = jnp.asarray(np.random.default_rng(9).normal(size=qml.StronglyEntanglingLayers.shape(1, N)))
    merged = xqml.feature_ablation(model, baselines=0.0)
    separate = xqml.feature_ablation(model, baselines=0.0, broadcast=False)
    _same_weight_gradients(merged, separate, x, w, output=1)


@pytest.mark.slow
@pytest.mark.parametrize("device_name", ["default.qubit", "lightning.qubit"])
def test_broadcast_shift_circuits_are_differentiable(device_name):
    """Parameter-shift circuits of all path points form one broadcast tape in the plan; a
    differentiated call off backprop runs its rows as separate tapes (PennyLane's gradient
    transforms refuse broadcast trainable parameters) and gives the per-tape path's gradient."""
    model = angle_model(_device(device_name, N), interface="jax")
    x = jnp.asarray([0.3, 0.5, 0.7])
    w = jnp.asarray(np.random.default_rng(10).normal(size=qml.StronglyEntanglingLayers.shape(1, N)))
    options = {"gradient": "parameter-shift", "n_steps": 3}
    merged = xqml.integrated_gradients(model, **options)
    separate = xqml.integrated_gradients(model, **options, broadcast=False)
    (tape,) = merged.construct_batch(x, w)
    assert tape.batch_size == 3 * 2 * N  # points x (two shifts per input angle)
    assert len(separate.construct_batch(x, w)) == 3 * 2 * N
    _same_weight_gradients(merged, separate, x, w, output=0)


@pytest.mark.slow
def test_qiskit_aer_with_shots_within_four_standard_errors():
    pytest.importorskip("qiskit_aer")
    dev = qml.device("qiskit.aer", wires=N, shots=20_000, seed=11)
    model = angle_model(dev)
    x = np.array([0.2, 0.9, 1.4])
    w = np.random.default_rng(12).normal(size=qml.StronglyEntanglingLayers.shape(1, N))
    merged = xqml.shapley_values(model, baselines=0.0, return_stderr=True)
    separate = xqml.shapley_values(model, baselines=0.0, return_stderr=True, broadcast=False)
    (a, se_a), (b, se_b) = merged(x, w), separate(x, w)
    se = np.sqrt(np.asarray(se_a) ** 2 + np.asarray(se_b) ** 2)
    assert np.all(se > 0)
    assert np.all(np.abs(np.asarray(a) - np.asarray(b)) <= 4 * se)


def test_default_qubit_with_shots_within_four_standard_errors():
    dev = qml.device("default.qubit", wires=N, shots=20_000, seed=13)
    model = angle_model(dev)
    x = np.array([0.4, 1.1, 0.3])
    w = np.random.default_rng(14).normal(size=qml.StronglyEntanglingLayers.shape(1, N))
    merged = xqml.saliency(model, gradient="parameter-shift", return_stderr=True)
    separate = xqml.saliency(model, gradient="parameter-shift", return_stderr=True, broadcast=False)
    (a, se_a), (b, se_b) = merged(x, w), separate(x, w)
    se = np.sqrt(np.asarray(se_a) ** 2 + np.asarray(se_b) ** 2)
    assert np.all(np.abs(np.asarray(a) - np.asarray(b)) <= 4 * se)


# -- the merge itself ----------------------------------------------------------------------------


def _tape(angle, wires=(0,), op=qml.RX):
    return qml.tape.QuantumScript([op(angle, wires=wires[0])], [qml.expval(qml.Z(wires[0]))])


def test_broadcast_tapes_groups_by_structure_and_keeps_order():
    tapes = [_tape(0.1), _tape(0.2, op=qml.RY), _tape(0.3), _tape(0.4, wires=(1,)), _tape(0.5)]
    executed, slots = broadcast_tapes(tapes)
    assert len(executed) == 3  # RX on 0 (three rows), RY on 0, RX on 1
    assert executed[0].batch_size == 3
    dev = qml.device("default.qubit", wires=2)
    merged = execute_batch(tapes, dev)
    separate = execute_batch(tapes, dev, broadcast=False)
    expected = [np.cos(0.1), np.cos(0.2), np.cos(0.3), np.cos(0.4), np.cos(0.5)]
    np.testing.assert_allclose(merged, expected, atol=1e-12)
    np.testing.assert_allclose(separate, expected, atol=1e-12)
    assert [row for _, row in slots] == [0, None, 1, None, 2]


def test_shared_parameters_stay_unbatched_and_measurement_tuples_split():
    weight = np.array(0.7)
    tapes = [
        qml.tape.QuantumScript(
            [qml.RX(a, 0), qml.RY(weight, 0)], [qml.expval(qml.Z(0)), qml.probs(wires=0)]
        )
        for a in (0.1, 0.5, 0.9)
    ]
    executed, _ = broadcast_tapes(tapes)
    (merged,) = executed
    assert merged.operations[1].data[0] is weight
    dev = qml.device("default.qubit", wires=1)
    for got, tape in zip(execute_batch(tapes, dev), tapes):
        want = qml.execute([tape], dev)[0]
        np.testing.assert_allclose(got[0], want[0], atol=1e-12)
        np.testing.assert_allclose(got[1], want[1], atol=1e-12)


def test_operations_without_broadcasting_run_as_separate_tapes():
    """An operation that does not declare ``ndim_params`` takes its parameters' shapes as
    given: a stacked parameter gives no batch size, and the group runs tape by tape."""

    class NoBroadcast(qml.operation.Operation):
        num_wires = 1
        num_params = 1

        @staticmethod
        def compute_decomposition(angle, wires):
            return [qml.RX(angle, wires=wires)]

    odd = [
        qml.tape.QuantumScript([NoBroadcast(np.array(a), 0)], [qml.expval(qml.Z(0))])
        for a in (0.2, 0.4)
    ]
    executed, slots = broadcast_tapes(odd)
    assert len(executed) == 2 and all(row is None for _, row in slots)
    dev = qml.device("default.qubit", wires=1)
    np.testing.assert_allclose(execute_batch(odd, dev), np.cos([0.2, 0.4]), atol=1e-12)


def test_tapes_whose_observables_differ_are_not_merged():
    """PennyLane broadcasts gate parameters, not observables: tapes whose measured observables
    have different coefficients run separately; equal coefficients (new objects) still merge."""
    tapes = [
        qml.tape.QuantumScript([qml.RX(a, 0)], [qml.expval(c * qml.Z(0))])
        for a, c in ((0.1, 0.5), (0.2, 0.7))
    ]
    executed, _ = broadcast_tapes(tapes)
    assert len(executed) == 2
    same = [
        qml.tape.QuantumScript([qml.RX(a, 0)], [qml.expval(np.float64(0.5) * qml.Z(0))])
        for a in (0.1, 0.2)
    ]
    executed, _ = broadcast_tapes(same)
    assert len(executed) == 1 and executed[0].batch_size == 2
    dev = qml.device("default.qubit", wires=1)
    np.testing.assert_allclose(execute_batch(tapes, dev), [0.5 * np.cos(0.1), 0.7 * np.cos(0.2)])
    np.testing.assert_allclose(execute_batch(same, dev), 0.5 * np.cos([0.1, 0.2]))


@pytest.mark.parametrize("device_name", ["default.qubit", "lightning.qubit"])
@pytest.mark.parametrize("broadcast", [True, False])
def test_operators_that_cache_their_batch_size(device_name, broadcast):
    """``IQPEmbedding`` decomposes into ``qml.MultiRZ``, which keeps a cached batch size through
    ``bind_new_parameters``: broadcast shift tapes and their rows are rebuilt, so saliency by
    parameter shift equals ``jax.grad`` of the plain QNode, eagerly and through explain_batch."""

    @qml.qnode(_device(device_name, 3), interface="jax")
    def model(x):
        qml.IQPEmbedding(x, wires=[0, 1])
        qml.RY(0.4, wires=0)
        qml.CNOT([0, 1])
        return qml.expval(qml.X(0))

    X = jnp.asarray([[0.3, -0.7], [0.1, 0.9], [1.2, 0.4]])
    expected = np.stack([np.asarray(jax.grad(model)(x)) for x in X])
    explained = xqml.saliency(model, gradient="parameter-shift", abs=False, broadcast=broadcast)
    rtol, atol = tolerances(X.dtype)
    _close(np.stack([np.asarray(explained(x)) for x in X]), expected, rtol=rtol, atol=atol)
    _close(xqml.explain_batch(explained, X, internal_batch_size=2), expected, rtol=rtol, atol=atol)
