"""explain_batch: chunked, sharded and plain runs agree with per-row explanations."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from conftest import quadratic_form
from pennylane_xqml.engine.batching import clear_compiled_cache
from pennylane_xqml.engine.execution import execute_batch
from pennylane_xqml.testing import assert_close


def amplitude_model(device="default.qubit", wires=3, **options):
    dev = qml.device(device, wires=wires)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(3), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(3))
        return qml.expval(qml.Z(0) @ qml.Z(2)), qml.expval(qml.X(1))

    return xqml.integrated_gradients(model, return_convergence_delta=True, **options)


def angle_model():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(w, x):  # input second: explain_batch follows the explainer's argnums
        qml.AngleEmbedding(x, wires=range(2))
        qml.CNOT(wires=[0, 1])
        qml.RY(w, wires=1)
        return qml.expval(qml.Z(1))

    return xqml.saliency(model, argnums=1, abs=False)


RNG = np.random.default_rng(7)
WEIGHTS = jnp.asarray(RNG.uniform(0, 2 * np.pi, size=(2, 3, 3)))
X_AMP = RNG.uniform(0.05, 1.0, size=(11, 8))
X_ANGLE = RNG.uniform(-np.pi, np.pi, size=(9, 2))


def test_chunks_match_per_row_explanations():
    explained = amplitude_model()
    values, deltas = xqml.explain_batch(explained, X_AMP, WEIGHTS, internal_batch_size=4)
    assert values.shape == (11, 2, 8) and deltas.shape == (11, 2)
    assert isinstance(values, np.ndarray)
    for x, v, d in zip(X_AMP, values, deltas):
        expected, expected_delta = explained(x, WEIGHTS)  # eager, NumPy input: no jit, no vmap
        assert_close(v, expected, rtol64=1e-7, atol64=1e-12)
        assert_close(d, expected_delta, rtol64=1e-7, atol64=1e-12)
    assert_close(deltas, 0.0, atol64=1e-10)  # completeness holds for every row


@pytest.fixture(scope="module")
def unchunked():
    explained = amplitude_model()
    return explained, xqml.explain_batch(explained, X_AMP, WEIGHTS, internal_batch_size=11)[0]


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 4, 64])
def test_chunk_size_does_not_change_results(size, unchunked):
    explained, reference = unchunked
    values, _ = xqml.explain_batch(explained, X_AMP, WEIGHTS, internal_batch_size=size)
    assert_close(values, reference, rtol64=0, atol64=1e-12)


def test_angle_model_batched_over_its_argnums():
    explained = angle_model()
    values = xqml.explain_batch(explained, 0.3, X_ANGLE, internal_batch_size=4)
    assert values.shape == (9, 2)
    model = explained.qnode
    for x, v in zip(X_ANGLE, values):  # independent: JAX autodiff of the QNode
        expected = jax.grad(model, argnums=1)(0.3, jnp.asarray(x))
        assert_close(v, expected, rtol64=1e-7, atol64=1e-10)


def test_any_jax_function_can_be_batched():
    values = xqml.explain_batch(
        lambda x, scale: scale * jnp.sin(x), X_ANGLE, 2.0, internal_batch_size=4
    )
    assert_close(values, 2.0 * np.sin(X_ANGLE), rtol64=1e-7, atol64=1e-14)


def test_lightning_runs_on_one_device():
    explained = amplitude_model("lightning.qubit")
    values, _ = xqml.explain_batch(explained, X_AMP[:3], WEIGHTS, internal_batch_size=2)
    reference, _ = amplitude_model()(X_AMP[1], WEIGHTS)
    assert_close(values[1], reference, dtype=jnp.asarray(0.0).dtype)  # rows run as JAX arrays
    with pytest.raises(ValueError, match="host callbacks"):
        xqml.explain_batch(explained, X_AMP, WEIGHTS, devices=2)


def test_progress_bar_counts_rows(capfd):
    xqml.explain_batch(amplitude_model(), X_AMP, WEIGHTS, internal_batch_size=4, progress=True)
    assert "11/11" in capfd.readouterr().err


@pytest.mark.parametrize(
    "inputs, options, error, match",
    [
        (X_AMP, {"internal_batch_size": 0}, ValueError, "internal_batch_size"),
        (X_AMP, {"internal_batch_size": 2.5}, ValueError, "internal_batch_size"),
        (X_AMP, {"internal_batch_size": True}, ValueError, "internal_batch_size"),
        (X_AMP, {"argnums": 5}, ValueError, "argnums"),
        (X_AMP, {"argnums": (0,)}, TypeError, "argnums"),
        (X_AMP, {"devices": 0}, ValueError, "devices"),
        (X_AMP, {"devices": 99}, ValueError, "devices"),
        (X_AMP, {"devices": ["cpu"]}, ValueError, "devices"),
        (np.zeros((0, 8)), {}, ValueError, "at least one row"),
        (np.array(1.0), {}, ValueError, "leading batch axis"),
        (np.array([["a"] * 8]), {}, TypeError, "numeric"),
        (np.vstack([X_AMP[:2], np.full((1, 8), np.nan)]), {}, ValueError, r"rows \[2\].*NaN"),
        (np.vstack([X_AMP[:3], np.zeros((1, 8))]), {}, ValueError, r"rows \[3\].*all zero"),
        (X_AMP[:, :5], {}, ValueError, "shape"),
    ],
)
def test_bad_input_raises_before_any_circuit(inputs, options, error, match):
    explained = amplitude_model()
    with qml.Tracker(explained.qnode.device) as tracker, pytest.raises(error, match=match):
        xqml.explain_batch(explained, inputs, WEIGHTS, **options)
    assert tracker.totals.get("executions", 0) == 0


def test_explainer_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        xqml.explain_batch("integrated_gradients", X_AMP)


SHARDED_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, pennylane as qml
    jax.config.update("jax_enable_x64", True)
    import pennylane_xqml as xqml
    from pennylane_xqml.engine.batching import _compiled
    assert jax.device_count() == 2, jax.devices()
    rng = np.random.default_rng(3)
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev, interface="jax")
    def model(x, w):
        qml.AmplitudeEmbedding(x, wires=range(3), normalize=True)
        qml.StronglyEntanglingLayers(w, wires=range(3))
        return qml.expval(qml.Z(0) @ qml.Z(2))

    explained = xqml.integrated_gradients(model, return_convergence_delta=True)
    X = rng.uniform(0.05, 1.0, size=(13, 8))
    w = rng.uniform(0, 2 * np.pi, size=(2, 3, 3))
    sharded, _ = xqml.explain_batch(explained, X, w, internal_batch_size=4)
    single, _ = xqml.explain_batch(explained, X, w, internal_batch_size=4, devices=1)
    unchunked, _ = xqml.explain_batch(explained, X, w, internal_batch_size=13, devices=1)
    # the compiled chunk really is split over both devices
    out, _ = _compiled(explained, 2, 0, {}, jax.devices())(jax.numpy.asarray(X[:4]), w)
    print(len(out.sharding.device_set), np.abs(sharded - single).max(),
          np.abs(sharded - unchunked).max())
    """
)


@pytest.mark.slow
def test_sharded_over_two_cpu_devices_equals_unsharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    run = subprocess.run(
        [sys.executable, "-c", SHARDED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    n_devices, vs_single, vs_unchunked = run.stdout.split()[-3:]
    assert int(n_devices) == 2
    # the script runs in 64-bit whatever the suite's precision: the float64 tolerance applies
    assert_close([float(vs_single), float(vs_unchunked)], 0.0, atol64=1e-12)


def test_argnums_by_name_from_the_explainer_or_the_call():
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(w, x):
        qml.AngleEmbedding(x, wires=range(2))
        qml.RY(w, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    X = np.random.default_rng(3).uniform(-1, 1, size=(5, 2))
    explained = xqml.saliency(model, argnums="x", abs=False)
    by_name = xqml.explain_batch(explained, 0.4, X)
    by_position = xqml.explain_batch(xqml.saliency(model, argnums=1, abs=False), 0.4, X)
    assert_close(by_name, by_position)
    assert_close(by_name[2], explained(0.4, X[2]))
    assert_close(xqml.explain_batch(explained, 0.4, X, argnums="x"), by_position)
    with pytest.raises(ValueError, match="does not name an argument"):
        xqml.explain_batch(explained, 0.4, X, argnums="z")


def test_rows_passed_by_keyword_equal_rows_passed_by_position():
    """``explain_batch(explained, w, feat=X)`` (issue 26), for an explained QNode and a plain
    function, with the explained argument given by position or by name."""
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev, interface="jax")
    def model(w, feat):
        qml.AngleEmbedding(feat, wires=range(2))
        qml.RY(w, 0)
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    X = np.random.default_rng(4).uniform(-1, 1, size=(3, 2))
    for argnums in (1, "feat"):
        explained = xqml.integrated_gradients(model, argnums=argnums, n_steps=4)
        by_position = xqml.explain_batch(explained, 0.4, X)
        assert_close(xqml.explain_batch(explained, 0.4, feat=X), by_position)
        assert_close(xqml.explain_batch(explained, w=0.4, feat=X), by_position)
        assert_close(by_position[1], explained(0.4, X[1]))

    def scaled(w, feat):
        return w * feat

    assert_close(xqml.explain_batch(scaled, 2.0, feat=X, argnums=1), 2.0 * X)
    assert_close(xqml.explain_batch(scaled, feat=X, w=2.0, argnums="feat"), 2.0 * X)


def test_repeated_calls_reuse_the_compiled_program_and_stay_right():
    traces = []

    def double(x, scale):
        traces.append(1)  # runs once per trace, not per call
        return x * scale

    clear_compiled_cache()
    X = np.arange(12.0).reshape(6, 2)
    first = xqml.explain_batch(double, X, 2.0, internal_batch_size=4)
    again = xqml.explain_batch(
        double, X[::-1] + 1, 3.0, internal_batch_size=4
    )  # new rows, new scale
    assert len(traces) == 1  # traced (and compiled) once for both calls
    assert_close(first, X * 2.0)
    assert_close(again, (X[::-1] + 1) * 3.0)  # the shared argument is not stale

    def double_kw(x, *, scale):
        traces.append(1)
        return x * scale

    one = xqml.explain_batch(double_kw, X, scale=1.0, internal_batch_size=4)
    two = xqml.explain_batch(
        double_kw, X, scale=5.0, internal_batch_size=4
    )  # keyword: a new program
    assert len(traces) == 3
    assert_close(one, X)
    assert_close(two, 5 * X)


# ---------------------------------------------------------------------------------------------
# devices executed through host callbacks: one device execution per chunk of rows
# ---------------------------------------------------------------------------------------------


def per_row_path(explained, inputs, *rest, argnums=0):
    """The path every row took before (and default.qubit still takes): ``jit(vmap(explainer))``,
    where PennyLane runs one host callback, and one device execution, per row."""
    in_axes = tuple(0 if i == argnums else None for i in range(len(rest) + 1))
    args = rest[:argnums] + (jnp.asarray(inputs),) + rest[argnums:]
    return jax.tree_util.tree_map(np.asarray, jax.jit(jax.vmap(explained, in_axes=in_axes))(*args))


def assert_same_as_per_row(got, want, scale=None):
    """The acceptance bound against the per-row path: 1e-12 in float64; in float32 1e-5
    relative (to each value, or to ``scale``, by default the largest value, near 0: a
    completeness gap is a difference of values of order ``scale``)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if got.dtype.itemsize * (2 if got.dtype.kind == "f" else 1) >= 16:  # float64, complex128
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    else:
        scale = np.max(np.abs(want)) if scale is None else scale
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


def test_callback_device_runs_one_execution_per_chunk_and_equals_per_row_path(monkeypatch):
    # 4 wires for a 3-qubit model: the Hadamard tests' ancilla is a spare wire of the QNode's
    # own device, so its tracker sees every execution
    explained = amplitude_model("lightning.qubit", wires=4, gradient="hadamard_all")
    device = explained.qnode.device
    plans_built = []
    build_plan = explained.prepared_plan
    monkeypatch.setattr(
        explained, "prepared_plan", lambda *a, **k: plans_built.append(1) or build_plan(*a, **k)
    )
    rows = X_AMP[:7]
    with qml.Tracker(device) as tracker:
        values, deltas = xqml.explain_batch(explained, rows, WEIGHTS, internal_batch_size=4)
    assert tracker.totals["batches"] == 2  # 7 rows in chunks of 4: one execute per chunk
    n_tapes = len(explained.plan(rows[0], WEIGHTS).tapes)
    assert tracker.totals["executions"] == 8 * n_tapes  # the padded last chunk runs 4 rows
    # again, other rows and weights: the compiled program (and its tapes) is reused, and the
    # results are the new rows', not stale ones
    again, _ = xqml.explain_batch(explained, rows[::-1], 0.5 * WEIGHTS, internal_batch_size=4)
    assert len(plans_built) == 1  # the plan was built once, for the abstract row
    assert_close(again, per_row_path(explained, rows[::-1], 0.5 * WEIGHTS)[0], atol64=1e-12)
    with qml.Tracker(device) as tracker:
        expected, expected_deltas = per_row_path(explained, rows, WEIGHTS)
    assert tracker.totals["batches"] == 7  # the per-row path: one execute per row
    assert_same_as_per_row(values, expected)
    assert_same_as_per_row(deltas, expected_deltas, scale=np.max(np.abs(expected)))
    # independent: exact IG of a quadratic form, a ⊙ Re(M a) with M = U† O U (zero baseline)
    units = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    for k, observable in enumerate([qml.Z(0) @ qml.Z(2), qml.X(1)]):
        m = quadratic_form(np.asarray(WEIGHTS), 3, observable).real
        assert_close(values[:, k], units * (units @ m.T), atol64=1e-10)


def test_callback_device_broadcasts_a_chunk_unless_broadcast_is_false(monkeypatch):
    """Each plan tape runs as one broadcast tape of the chunk's rows (lightning expands it:
    its tracker counts one execution per row either way); ``broadcast=False`` builds a tape per
    row. Both give the per-row path's values."""
    from pennylane_xqml.engine import batching

    sent = []

    def spy(tapes, device, **options):
        sent.append([tape.batch_size for tape in tapes])
        return execute_batch(tapes, device, **options)

    monkeypatch.setattr(batching, "execute_batch", spy)
    merged = amplitude_model("lightning.qubit", wires=4, gradient="hadamard_all")
    separate = amplitude_model("lightning.qubit", wires=4, gradient="hadamard_all", broadcast=False)
    rows = X_AMP[:5]
    results = []
    for explained in (merged, separate):
        sent.clear()
        with qml.Tracker(explained.qnode.device) as tracker:
            results.append(xqml.explain_batch(explained, rows, WEIGHTS, internal_batch_size=5))
        n_tapes = len(explained.plan(rows[0], WEIGHTS).tapes)
        assert tracker.totals["batches"] == 1
        assert tracker.totals["executions"] == 5 * n_tapes
        assert sent == [[5] * n_tapes if explained is merged else [None] * (5 * n_tapes)]
    expected = per_row_path(merged, rows, WEIGHTS)
    for values, deltas in results:
        assert_same_as_per_row(values, expected[0])


def lightning_angle_model(method, device="lightning.qubit", **options):
    dev = qml.device(device, wires=2)

    @qml.qnode(dev, interface="jax")
    def model(w, x):
        qml.AngleEmbedding(x, wires=range(2))
        qml.CNOT(wires=[0, 1])
        qml.RY(w, wires=1)
        return qml.expval(qml.Z(1)), qml.expval(qml.X(0) @ qml.Z(1))

    return method(model, argnums=1, **options)


@pytest.mark.parametrize(
    "explained",
    [
        # several tapes per row (shifts), two outputs
        lightning_angle_model(xqml.saliency, abs=False, gradient="parameter-shift"),
        # the adjoint rule is a simulator request (JAX autodiff through lightning): it runs
        # as in a call of the explainer, next to the chunk's one execution of the forward tapes
        lightning_angle_model(xqml.integrated_gradients, n_steps=4, return_convergence_delta=True),
        # a plan of simulator requests only: no tapes, no callback
        lightning_angle_model(xqml.saliency, abs=False),
        # a preparation step (the Newton root search) runs as in a call, before the plan;
        # slow: in float32 the per-row reference alone takes over a minute (7 s in x64)
        pytest.param(
            lightning_angle_model(
                xqml.taylor_fourier,
                target=0,
                gradient="parameter-shift",
                root_steps=6,
                root_tol=1.0,
            ),
            marks=pytest.mark.slow,
        ),
        # state-returning tapes (amplitude inputs, the "adjoint" rule of "auto")
        amplitude_model("lightning.qubit"),
        # a mixed-state simulator (it ran inside XLA by backprop before; now one callback)
        lightning_angle_model(xqml.feature_ablation, device="default.mixed", baselines=0.1),
    ],
    ids=["shifts", "simulator-request", "no-tapes", "preparation", "states", "default.mixed"],
)
def test_callback_path_equals_per_row_path(explained):
    inputs, shared = (X_ANGLE[:5], (0.3,)) if explained.options.argnums == 1 else (X_AMP[:5], ())
    args = shared + (inputs,) if shared else (inputs, WEIGHTS)
    argnums = explained.options.argnums
    values = xqml.explain_batch(explained, *args, internal_batch_size=3)
    rest = args[:argnums] + args[argnums + 1 :]
    expected = per_row_path(explained, inputs, *rest, argnums=argnums)
    scale = np.max(np.abs(jax.tree_util.tree_leaves(expected)[0]))
    for got, want in zip(jax.tree_util.tree_leaves(values), jax.tree_util.tree_leaves(expected)):
        assert np.all(np.isfinite(got))
        assert_same_as_per_row(got, want, scale)


def test_callback_path_saliency_equals_autodiff():
    explained = lightning_angle_model(xqml.saliency, abs=False, gradient="parameter-shift")
    values = xqml.explain_batch(explained, 0.3, X_ANGLE, internal_batch_size=4)
    # independent: JAX autodiff of the same circuit on default.qubit
    model = qml.QNode(explained.qnode.func, qml.device("default.qubit", wires=2), interface="jax")
    jacobian = jax.jit(jax.vmap(jax.jacobian(model, argnums=1), in_axes=(None, 0)))
    expected = np.stack(jacobian(0.3, jnp.asarray(X_ANGLE)), axis=1)
    assert_close(values, expected, rtol64=1e-7, atol64=1e-10)


@pytest.mark.slow
@pytest.mark.qiskit
def test_callback_path_with_shots_on_qiskit_aer():
    # an angle model: amplitude embeddings of float32 rows do not pass qiskit's norm check (1e-10)
    pytest.importorskip("pennylane_qiskit")
    dev = qml.device("qiskit.aer", wires=2, seed=5)
    explained = lightning_angle_model(
        xqml.saliency, abs=False, gradient="parameter-shift", return_stderr=True
    )
    explained = qml.set_shots(explained.update(device=dev), shots=20_000)
    with qml.Tracker(dev) as tracker:
        values, stderr = xqml.explain_batch(explained, 0.3, X_ANGLE[:4], internal_batch_size=4)
    assert tracker.totals["batches"] == 1  # the whole chunk is one job
    model = qml.QNode(explained.qnode.func, qml.device("default.qubit", wires=2), interface="jax")
    for x, v, s in zip(X_ANGLE[:4], values, stderr):  # independent: autodiff, analytic
        exact = jnp.stack(jax.jacobian(model, argnums=1)(0.3, jnp.asarray(x)))
        assert np.all(s > 0)
        assert np.all(np.abs(v - exact) < 4 * s)
