"""The Hadamard-test VJP inside JAX and PyTorch autodiff (``pennylane_xqml.autodiff``).

References are independent: ``diff_method="backprop"`` of the same circuit on default.qubit
(JAX and torch), and PennyLane's own parameter shift for the NaN contrast. With shots, the
estimate is compared with the exact value within 4 standard errors of the estimator's own
covariance (:func:`xqml.input_vjp` with ``covariance=True``).
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml
from pennylane_xqml.testing import assert_close, no_circuit_runs

torch = pytest.importorskip("torch", reason="install the optional extra: pip install .[torch]")

N_QUBITS = 3
D_INPUT = 7  # padded to 8 amplitudes


def circuit(x, w):
    qml.AmplitudeEmbedding(x, wires=range(N_QUBITS), normalize=True, pad_with=0.0)
    qml.StronglyEntanglingLayers(w, wires=range(N_QUBITS))
    # two outputs, three distinct Pauli words (Z0, X1 Y2, Z2), an identity term
    return qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Y(2) + 0.5 * qml.Z(2) + 0.25 * qml.I(0))


N_WORDS = 3


def qnodes(interface, shots=None, seed=None, spare=True):
    """The model with its hardware rule (parameter shift) and the backprop reference."""
    dev = qml.device("default.qubit", wires=N_QUBITS + int(spare), seed=seed)
    model = qml.QNode(circuit, dev, interface=interface, diff_method="parameter-shift")
    if shots is not None:
        model = qml.set_shots(model, shots=shots)
    reference = qml.QNode(circuit, qml.device("default.qubit"), interface=interface)
    return dev, model, reference


def loss(fn):
    """A scalar of both outputs (a cotangent that is not all ones)."""

    def scalar(x, w):
        first, second = fn(x, w)
        return qml.math.sum(0.7 * first - 1.3 * second)

    return scalar


@pytest.fixture
def data(rng):
    x = rng.normal(size=D_INPUT)
    x[[1, 4]] = 0.0  # exact zero amplitudes
    w = rng.normal(size=qml.StronglyEntanglingLayers.shape(1, N_QUBITS))
    return x, w


def dtype_of_jax():
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


class TestJax:
    @pytest.mark.parametrize("jit", [False, True])
    def test_matches_backprop(self, data, jit):
        x, w = (jnp.asarray(v, dtype=dtype_of_jax()) for v in data)
        _, model, reference = qnodes("jax-jit" if jit else "jax")
        grad = jax.grad(loss(xqml.hadamard_vjp(model)), argnums=(0, 1))
        grad = jax.jit(grad) if jit else grad
        gx, gw = grad(x, w)
        rx, rw = jax.jit(jax.grad(loss(reference), argnums=(0, 1)))(x, w)
        assert gx.dtype == x.dtype and np.all(np.isfinite(gx))
        assert_close(gx, rx, rtol64=0, atol64=1e-10)
        assert_close(gw, rw, rtol64=0, atol64=1e-10)

    def test_batched_input(self, rng, data):
        X = jnp.asarray(rng.normal(size=(3, D_INPUT)), dtype=dtype_of_jax())
        X = X.at[0, 2].set(0.0)
        w = jnp.asarray(data[1], dtype=dtype_of_jax())
        _, model, reference = qnodes("jax-jit")
        expected = jax.jit(jax.vmap(jax.grad(loss(reference)), in_axes=(0, None)))(X, w)
        broadcast = jax.grad(loss(xqml.hadamard_vjp(model)))(X, w)  # the QNode broadcasts
        assert_close(broadcast, expected, rtol64=0, atol64=1e-10)

    @pytest.mark.slow
    def test_vmap(self, rng, data):
        X = jnp.asarray(rng.normal(size=(3, D_INPUT)), dtype=dtype_of_jax())
        w = jnp.asarray(data[1], dtype=dtype_of_jax())
        _, model, reference = qnodes("jax-jit")
        expected = jax.jit(jax.vmap(jax.grad(loss(reference)), in_axes=(0, None)))(X, w)
        mapped = jax.vmap(jax.grad(loss(xqml.hadamard_vjp(model))), in_axes=(0, None))(X, w)
        assert_close(mapped, expected, rtol64=0, atol64=1e-10)

    def test_one_circuit_per_word(self, data):
        x, w = (jnp.asarray(v, dtype=dtype_of_jax()) for v in data)
        dev, model, _ = qnodes("jax")
        with qml.Tracker(dev) as tracker:
            jax.grad(loss(xqml.hadamard_vjp(model)))(x, w)  # input only: no weight shifts
        resources = tracker.history["resources"]
        assert len(resources) == 1 + N_WORDS  # the forward pass and one test per word
        assert sum("Hadamard" in r.gate_types for r in resources) == N_WORDS


class TestTorch:
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    def test_matches_backprop(self, data, dtype):
        _, model, reference = qnodes("torch")
        results = []
        for fn in (xqml.hadamard_vjp(model), reference):
            x, w = (torch.tensor(v, dtype=dtype, requires_grad=True) for v in data)
            loss(fn)(x, w).backward()
            results.append((x.grad, w.grad))
        (gx, gw), (rx, rw) = results
        assert gx.dtype == dtype and torch.all(torch.isfinite(gx))
        assert_close(gx.numpy(), rx.numpy(), rtol64=0, atol64=1e-10)
        assert_close(gw.numpy(), rw.numpy(), rtol64=0, atol64=1e-10)

    def test_batched_input(self, rng, data):
        X = rng.normal(size=(4, D_INPUT))
        X[1, 0] = 0.0
        _, model, reference = qnodes("torch")
        results = []
        for fn in (xqml.hadamard_vjp(model), reference):
            x = torch.tensor(X, requires_grad=True)
            w = torch.tensor(data[1], requires_grad=True)
            loss(fn)(x, w).backward()
            results.append((x.grad, w.grad))
        (gx, gw), (rx, rw) = results
        assert_close(gx.numpy(), rx.numpy(), rtol64=0, atol64=1e-10)
        assert_close(gw.numpy(), rw.numpy(), rtol64=0, atol64=1e-10)

    def test_probs_and_expval_outputs(self, rng, data):
        """``qml.probs`` outputs: each probability is a sum of Z words (4 words for 2 wires)."""

        def probs_circuit(x, w):
            qml.AmplitudeEmbedding(x, wires=range(N_QUBITS), normalize=True, pad_with=0.0)
            qml.StronglyEntanglingLayers(w, wires=range(N_QUBITS))
            return qml.probs(wires=[0, 2]), qml.expval(qml.X(1))

        dev = qml.device("default.qubit", wires=N_QUBITS + 1)
        model = qml.QNode(probs_circuit, dev, interface="torch", diff_method="parameter-shift")
        reference = qml.QNode(probs_circuit, qml.device("default.qubit"), interface="torch")
        X = rng.normal(size=(2, D_INPUT))
        X[0, 2] = 0.0
        c_probs, c_x = torch.tensor(rng.normal(size=(2, 4))), torch.tensor(rng.normal(size=2))
        results = []
        for fn in (xqml.hadamard_vjp(model), reference):
            x = torch.tensor(X, requires_grad=True)
            w = torch.tensor(data[1], requires_grad=True)
            probs, expval = fn(x, w)
            ((probs * c_probs).sum() + (expval * c_x).sum()).backward()
            results.append((x.grad, w.grad))
        (gx, gw), (rx, rw) = results
        assert_close(gx.numpy(), rx.numpy(), rtol64=0, atol64=1e-10)
        assert_close(gw.numpy(), rw.numpy(), rtol64=0, atol64=1e-10)

    def test_one_circuit_per_word_and_row(self, rng, data):
        X = torch.tensor(rng.normal(size=(2, D_INPUT)), requires_grad=True)
        w = torch.tensor(data[1])  # not trainable: no parameter-shift circuits
        dev, model, _ = qnodes("torch")
        with qml.Tracker(dev) as tracker:
            loss(xqml.hadamard_vjp(model))(X, w).backward()
        # (the executor may merge the rows' Hadamard tests into one broadcast tape: count the
        # circuits, "executions", of each tape the device ran)
        records = list(zip(tracker.history["resources"], tracker.history["executions"]))
        assert sum(n for r, n in records if "Hadamard" in r.gate_types) == 2 * N_WORDS
        assert sum("Hadamard" not in r.gate_types for r, _ in records) == 1  # broadcast forward


def test_no_nan_where_parameter_shift_gives_nan(data):
    """PennyLane differentiates StatePrep through its rotations: NaN at a zero amplitude."""
    _, model, reference = qnodes("torch")
    grads = {}
    for name, fn in [("shift", model), ("hadamard", xqml.hadamard_vjp(model)), ("bp", reference)]:
        x = torch.tensor(data[0], requires_grad=True)
        loss(fn)(x, torch.tensor(data[1])).backward()
        grads[name] = x.grad.numpy()
    assert np.isnan(grads["shift"]).any()
    assert np.all(np.isfinite(grads["hadamard"]))
    assert_close(grads["hadamard"], grads["bp"], rtol64=0, atol64=1e-10)


class TestShots:
    SHOTS = 40_000

    def exact(self, data, cotangent):
        x, w = data
        _, _, reference = qnodes("jax")
        x, w = jnp.asarray(x, dtype_of_jax()), jnp.asarray(w, dtype_of_jax())
        vjp = jax.jit(lambda x, c: jax.vjp(lambda x: reference(x, w), x)[1](c)[0])
        return np.asarray(vjp(x, cotangent))

    def test_input_vjp_within_four_standard_errors(self, data):
        cotangent = (np.float64(0.7), np.float64(-1.3))
        _, model, _ = qnodes("numpy", shots=self.SHOTS, seed=7)
        estimate, cov = xqml.input_vjp(model, data, cotangent, covariance=True)
        stderr = np.sqrt(np.diag(cov))
        expected = self.exact(data, tuple(jnp.asarray(c) for c in cotangent))
        assert np.all(stderr[[0, 2, 3]] > 0)
        assert np.all(np.abs(estimate - expected) <= 4 * stderr + 1e-12)

    def test_wrappers_with_shots(self, data):
        cotangent = (jnp.asarray(0.7), jnp.asarray(-1.3))
        expected = self.exact(data, cotangent)
        _, model, _ = qnodes("numpy", shots=self.SHOTS, seed=3)
        _, cov = xqml.input_vjp(model, data, (0.7, -1.3), covariance=True)
        stderr = np.sqrt(np.diag(cov))
        _, jax_model, _ = qnodes("jax", shots=self.SHOTS, seed=11)
        gx = jax.grad(loss(xqml.hadamard_vjp(jax_model)))(jnp.asarray(data[0]), data[1])
        _, torch_model, _ = qnodes("torch", shots=self.SHOTS, seed=13)
        x = torch.tensor(data[0], requires_grad=True)
        loss(xqml.hadamard_vjp(torch_model))(x, torch.tensor(data[1])).backward()
        for estimate in (np.asarray(gx), x.grad.numpy()):
            assert np.all(np.abs(estimate - expected) <= 4 * stderr + 1e-6)

    @pytest.mark.slow
    def test_covariance_matches_the_spread_of_repeated_runs(self, data):
        """The reported covariance is the estimator's: compare with 200 independent runs."""
        shots, runs = 2000, 200
        _, model, _ = qnodes("numpy", shots=shots, seed=5)
        samples, covs = zip(
            *(xqml.input_vjp(model, data, (0.7, -1.3), covariance=True) for _ in range(runs))
        )
        empirical = np.cov(np.stack(samples), rowvar=False)
        reported = np.mean(covs, axis=0)
        scale = np.sqrt(np.outer(np.diag(reported), np.diag(reported)))
        # sampling error of a variance estimated from 200 runs: about sqrt(2/200) = 10 %
        assert np.all(np.abs(empirical - reported) <= 0.35 * scale + 1e-12)

    @pytest.mark.slow
    @pytest.mark.qiskit
    def test_qiskit_aer(self, data):
        pytest.importorskip("pennylane_qiskit")
        aer = qml.set_shots(
            qml.QNode(circuit, qml.device("qiskit.aer", wires=N_QUBITS + 1, seed=17)), shots=20000
        )
        estimate, cov = xqml.input_vjp(aer, data, (0.7, -1.3), covariance=True)
        expected = self.exact(data, (jnp.asarray(0.7), jnp.asarray(-1.3)))
        assert np.all(np.abs(estimate - expected) <= 4 * np.sqrt(np.diag(cov)) + 1e-12)


class TestValidation:
    def test_angle_input_refused_before_any_circuit(self, data):
        dev = qml.device("default.qubit", wires=2)

        @qml.qnode(dev)
        def angles(x, w):
            qml.AngleEmbedding(x, wires=range(2))
            qml.RY(w, wires=0)
            return qml.expval(qml.Z(0))

        x = np.array([0.1, 0.2])
        with no_circuit_runs(dev):
            with pytest.raises(ValueError, match="amplitude"):
                xqml.input_vjp(angles, (x, 0.3), 1.0)
            for argument in (x, torch.tensor(x, requires_grad=True)):
                with pytest.raises(ValueError, match="AmplitudeEmbedding"):
                    xqml.hadamard_vjp(angles)(argument, 0.3)

    def test_bad_inputs_refused_before_any_circuit(self, data):
        dev, model, _ = qnodes("numpy")
        x, w = data
        with no_circuit_runs(dev):
            with pytest.raises(ValueError, match="all-zero"):
                xqml.input_vjp(model, (np.zeros(D_INPUT), w), (1.0, 1.0))
            with pytest.raises(ValueError, match="cotangent"):
                xqml.input_vjp(model, (x, w), 1.0)
            with pytest.raises(TypeError, match="real"):
                xqml.input_vjp(model, (x + 1j, w), (1.0, 1.0))
            with pytest.raises(TypeError, match="argnums"):
                xqml.input_vjp(model, (x, w), (1.0, 1.0), argnums=(0, 1))
            with pytest.raises(TypeError, match="QNode"):
                xqml.hadamard_vjp(circuit)

    def test_argnums_by_name(self, data):
        _, model, _ = qnodes("numpy")
        by_name = xqml.input_vjp(model, data, (0.7, -1.3), argnums="x")
        by_position = xqml.input_vjp(model, data, (0.7, -1.3))
        assert_close(by_name, by_position, rtol64=0, atol64=1e-14)

    def test_module_imports_without_torch(self):
        """torch is an optional extra: importing the package and the module never imports it."""
        import subprocess
        import sys

        code = (
            "import sys, pennylane_xqml, pennylane_xqml.autodiff; "
            "print(pennylane_xqml.hadamard_vjp is pennylane_xqml.autodiff.hadamard_vjp, "
            "'torch' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
        assert out.stdout.split() == ["True", "False"], out.stderr


class Hybrid(torch.nn.Module):
    """Classical layer -> amplitude-embedded quantum layer -> linear head (float64)."""

    def __init__(self, quantum, weights, n_in=4, n_classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.pre = torch.nn.Linear(n_in, D_INPUT, dtype=torch.float64)
        self.weights = torch.nn.Parameter(torch.tensor(weights))
        self.head = torch.nn.Linear(2, n_classes, dtype=torch.float64)
        self.quantum = quantum

    def hidden(self, x):
        return torch.tanh(self.pre(x))

    def forward(self, x):
        return self.head(torch.stack(self.quantum(self.hidden(x), self.weights), dim=-1))


class TestCaptumHybrid:
    """Captum's IntegratedGradients on the hybrid model: the wrapper against backprop."""

    N_STEPS = 6

    def attribute(self, model, x, target=1):
        captum = pytest.importorskip("captum.attr")
        ig = captum.IntegratedGradients(model)
        return ig.attribute(x, baselines=0.0, target=target, n_steps=self.N_STEPS,
                            method="riemann_middle").detach().numpy()  # fmt: skip

    def test_analytic(self, rng, data):
        dev, quantum, reference = qnodes("torch")
        x = torch.tensor(rng.normal(size=(2, 4)))
        model = Hybrid(xqml.hadamard_vjp(quantum), data[1])
        with qml.Tracker(dev) as tracker:
            attributions = self.attribute(model, x)
        model.quantum = reference
        expected = self.attribute(model, x)
        assert_close(attributions, expected, rtol64=0, atol64=1e-10)
        # the weights are trainable parameters, but Captum asks for input gradients only:
        # one broadcast forward pass and one Hadamard test per word and row, no shifts
        rows = 2 * self.N_STEPS
        records = list(zip(tracker.history["resources"], tracker.history["executions"]))
        assert sum(n for r, n in records if "Hadamard" in r.gate_types) == rows * N_WORDS
        assert sum("Hadamard" not in r.gate_types for r, _ in records) == 1

    def test_shots_within_four_standard_errors(self, rng, data):
        """Standard errors derived from the estimator: IG_i = x_i/m Σ_k (A_kᵀ g_k)_i with
        ``A_k = ∂h/∂x`` of the classical layer at step k and ``g_k`` the Hadamard-test VJP,
        whose covariance ``input_vjp`` reports; steps and rows are independent circuits."""
        shots, target = 40_000, 1
        _, quantum, reference = qnodes("torch", shots=shots, seed=23)
        x = torch.tensor(rng.normal(size=(2, 4)))
        model = Hybrid(xqml.hadamard_vjp(quantum), data[1])
        estimate = self.attribute(model, x, target)
        exact_model = Hybrid(reference, data[1])
        exact = self.attribute(exact_model, x, target)

        alphas = (np.arange(self.N_STEPS) + 0.5) / self.N_STEPS
        points = torch.cat([a * x for a in alphas])  # Captum's order: steps, then rows
        hidden = model.hidden(points).detach()
        head = model.head.weight.detach().numpy()[target]
        ones = np.ones(len(points))
        _, cov = xqml.input_vjp(
            quantum, (hidden.numpy(), data[1]), (head[0] * ones, head[1] * ones), covariance=True
        )
        pre = model.pre.weight.detach().numpy()  # (7, 4)
        jac = (1 - hidden.numpy() ** 2)[:, :, None] * pre  # ∂h/∂x per point: (points, 7, 4)
        per_point = np.einsum("pji,pjk,pki->pi", jac, cov, jac)
        variance = per_point.reshape(self.N_STEPS, 2, 4).sum(axis=0)
        stderr = np.abs(x.numpy()) / self.N_STEPS * np.sqrt(variance)
        assert np.all(stderr > 0)
        assert np.all(np.abs(estimate - exact) <= 4 * stderr)


def test_unit_norm_inputs_differentiate_the_normalised_map():
    """PennyLane's ``AmplitudeEmbedding(normalize=True)`` skips the division for a concrete
    input of norm 1, so eager backprop misses the normalisation's projection there while
    ``jax.jit`` (abstract input) keeps it. ``hadamard_vjp`` differentiates the normalised map:
    it equals the jitted backprop gradient, and the closed form ``(I - a aᵀ) 2 M a``."""
    dev = qml.device("default.qubit", wires=3)

    def make(diff_method):
        @qml.qnode(dev, interface="jax", diff_method=diff_method)
        def f(x, w):
            qml.AmplitudeEmbedding(x, wires=[0, 1], normalize=True)
            qml.RY(w, wires=0)
            return qml.expval(qml.Z(0))

        return f

    x = jnp.asarray([0.5, 0.5, 0.5, 0.5])
    got = jax.grad(xqml.hadamard_vjp(make("parameter-shift")))(x, 0.3)
    jitted = jax.jit(jax.grad(make("backprop")))(x, 0.3)
    u = qml.matrix(qml.RY(0.3, wires=0), wire_order=[0, 1])
    m = (u.conj().T @ qml.matrix(qml.Z(0), wire_order=[0, 1]) @ u).real
    a = np.asarray(x)
    closed = (np.eye(4) - np.outer(a, a)) @ (2 * m @ a)
    assert_close(got, jitted, rtol64=0, atol64=1e-10)
    assert_close(got, closed, rtol64=0, atol64=1e-10)


# ---------------------------------------------------------------------------------------------
# qml.qnn.TorchLayer on the hardware path (issue 22)
# ---------------------------------------------------------------------------------------------


def layer_circuit(inputs, weights):
    """``circuit`` with TorchLayer's argument names."""
    return circuit(inputs, weights)


WEIGHT_SHAPES = {"weights": qml.StronglyEntanglingLayers.shape(1, N_QUBITS)}


def _torch_layer(diff_method, init, how="wrap", dtype=torch.float64, shots=None, seed=None):
    """A TorchLayer of ``layer_circuit``: ``how="wrap"`` builds it around
    ``hadamard_vjp(qnode)``, ``"replace"`` swaps ``layer.qnode`` afterwards, ``None`` keeps
    the QNode as it is."""
    dev = qml.device("default.qubit", wires=N_QUBITS + 1, seed=seed)
    qnode = qml.QNode(layer_circuit, dev, interface="torch", diff_method=diff_method)
    if shots is not None:
        qnode = qml.set_shots(qnode, shots=shots)
    wrapped = xqml.hadamard_vjp(qnode) if how == "wrap" else qnode
    layer = qml.qnn.TorchLayer(wrapped, WEIGHT_SHAPES, init_method={"weights": init})
    if how == "replace":
        layer.qnode = xqml.hadamard_vjp(layer.qnode, argnums="inputs")
    return layer.to(dtype)


def _layer_gradients(layer, X, cotangent):
    """Outputs, input gradient and weight gradient of ``Σ cotangent * layer(X)``."""
    x = X.clone().requires_grad_(True)
    out = layer(x)
    (out * cotangent).sum().backward()
    return out.detach(), x.grad, layer.qnode_weights["weights"].grad


class TestTorchLayer:
    """``hadamard_vjp`` as (or inside) the QNode of a ``qml.qnn.TorchLayer``, which passes the
    input and the weights by keyword and broadcasts over batched inputs; the reference is the
    same TorchLayer differentiated by backprop."""

    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("how", ["wrap", "replace"])
    def test_equals_backprop_layer(self, data, rng, dtype, how):
        init = torch.tensor(data[1])
        X = torch.tensor(rng.normal(size=(3, D_INPUT)), dtype=dtype)
        X[:, [1, 4]] = 0.0  # zero amplitudes: PennyLane's parameter shift gives NaN there
        layer = _torch_layer("parameter-shift", init, how, dtype)
        assert isinstance(layer.qnode, xqml.HadamardVJP)
        reference = _torch_layer("backprop", init, None, dtype)
        out = reference(X)
        cotangent = torch.tensor(rng.normal(size=tuple(out.shape)), dtype=dtype)
        got = _layer_gradients(layer, X, cotangent)
        expected = _layer_gradients(reference, X, cotangent)
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        for g, e in zip(got, expected):
            assert g.dtype == dtype and bool(torch.all(torch.isfinite(g)))
            assert_close(g, e, dtype=np_dtype, rtol64=0, atol64=1e-10)
        # the contrast, on one row (PennyLane's parameter shift refuses batched inputs)
        shifted = _torch_layer("parameter-shift", init, None, dtype)
        assert bool(torch.isnan(_layer_gradients(shifted, X[0], 1.0)[1]).any())

    def test_one_unbatched_input_and_a_device_round_trip(self, data, rng):
        """One input row (no batch axis), the layer moved to float32 and back and to the CPU,
        tensors moved to the CPU: gradients live where the tensors do."""
        init = torch.tensor(data[1])
        layer = _torch_layer("parameter-shift", init).to(torch.float32).to(torch.float64)
        layer = layer.to("cpu")
        reference = _torch_layer("backprop", init)
        x = torch.tensor(rng.normal(size=D_INPUT)).to("cpu")
        cotangent = torch.tensor(rng.normal(size=tuple(reference(x).shape))).to("cpu")
        got = _layer_gradients(layer, x, cotangent)
        expected = _layer_gradients(reference, x, cotangent)
        for g, e in zip(got, expected):
            assert g.device == x.device and g.dtype == torch.float64
            # the float32 round trip rounded the weights: compare at float32 resolution
            assert_close(g, e, dtype=np.float32)

    def test_wrapper_stands_in_for_the_qnode(self, data):
        """The wrapper has the QNode's func, signature and attributes; attribution methods
        applied to it explain the QNode; calls by position and by keyword agree."""
        layer = _torch_layer("parameter-shift", torch.tensor(data[1]))
        wrapper = layer.qnode
        assert wrapper.func is wrapper.qnode.func and wrapper.interface == "torch"
        assert wrapper.device is wrapper.qnode.device
        assert list(inspect.signature(wrapper).parameters) == ["inputs", "weights"]
        explained = xqml.saliency(wrapper, abs=False)
        assert explained.qnode is wrapper.qnode
        x = torch.tensor(data[0])
        w = layer.qnode_weights["weights"].detach()
        by_keyword = wrapper(inputs=x, weights=w)
        by_position = wrapper(x, w)
        for a, b in zip(by_keyword, by_position):
            assert_close(a, b, rtol64=0, atol64=0)

    def test_refusals_run_no_circuit(self, data):
        dev = qml.device("default.qubit", wires=3)

        @qml.qnode(dev, interface="torch")
        def angles(inputs, weights):
            qml.AngleEmbedding(inputs, wires=range(2))
            qml.RY(weights[0], wires=0)
            return qml.expval(qml.Z(0))

        @qml.qnode(dev, interface="torch")
        def keyword_only(weights, *, inputs):
            qml.AmplitudeEmbedding(inputs, wires=range(2), normalize=True)
            qml.RY(weights[0], wires=0)
            return qml.expval(qml.Z(0))

        x = torch.tensor([0.1, 0.2], requires_grad=True)
        w = torch.tensor([0.3], requires_grad=True)
        with no_circuit_runs(dev):
            with pytest.raises(ValueError, match="does not name an argument"):
                xqml.hadamard_vjp(angles, argnums="data")
            layer = qml.qnn.TorchLayer(xqml.hadamard_vjp(angles), {"weights": (1,)})
            with pytest.raises(ValueError, match="AmplitudeEmbedding"):
                layer(x)
            with pytest.raises(ValueError, match="positional argument"):
                xqml.hadamard_vjp(keyword_only, argnums="inputs")(w, inputs=x)
            with pytest.raises(TypeError, match="signature"):
                xqml.hadamard_vjp(angles)(x, w, extra=1.0)

    def test_within_four_standard_errors_with_shots(self, rng):
        """Shots: input gradients within 4 standard errors of the Hadamard tests' own
        covariance (``input_vjp(covariance=True)``); weight gradients (parameter shift of RY
        gates, two circuits per weight and row) within 4 standard errors of that estimator,
        ``Var = Σ_b c_b² (Var f_b(θ+π/2) + Var f_b(θ-π/2)) / (4 shots)``."""
        shots = 20_000

        def ry_circuit(inputs, weights):
            qml.AmplitudeEmbedding(inputs, wires=range(N_QUBITS), normalize=True, pad_with=0.0)
            qml.BasicEntanglerLayers(weights, wires=range(N_QUBITS), rotation=qml.RY)
            return qml.expval(qml.Z(0))

        shapes = {"weights": (1, N_QUBITS)}
        init = torch.tensor(rng.normal(size=(1, N_QUBITS)))
        dev = qml.device("default.qubit", wires=N_QUBITS + 1, seed=21)
        noisy = qml.set_shots(
            qml.QNode(ry_circuit, dev, interface="torch", diff_method="parameter-shift"), shots
        )
        exact = qml.QNode(ry_circuit, qml.device("default.qubit"), interface="torch")
        X = torch.tensor(rng.normal(size=(2, D_INPUT)))
        cotangent = torch.tensor([0.8, -1.1])
        layer = qml.qnn.TorchLayer(xqml.hadamard_vjp(noisy), shapes, init_method={"weights": init})
        reference = qml.qnn.TorchLayer(exact, shapes, init_method={"weights": init})
        _, gx, gw = _layer_gradients(layer, X, cotangent)
        _, ex, ew = _layer_gradients(reference, X, cotangent)

        _, cov = xqml.input_vjp(
            qml.set_shots(noisy, shots), (X, init), cotangent.numpy(), covariance=True
        )
        x_stderr = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        assert np.all(x_stderr > 0)
        assert np.all(np.abs(gx.numpy() - ex.numpy()) <= 4 * x_stderr)

        variance = np.zeros(N_QUBITS)
        with torch.no_grad():
            for j in range(N_QUBITS):
                for sign in (1, -1):
                    shifted = init.clone()
                    shifted[0, j] += sign * np.pi / 2
                    f = exact(X, shifted).numpy()
                    variance[j] += np.sum(cotangent.numpy() ** 2 * (1 - f**2)) / (4 * shots)
        w_stderr = np.sqrt(variance)
        assert np.all(np.abs(gw.numpy()[0] - ew.numpy()[0]) <= 4 * w_stderr)


def test_captum_layer_integrated_gradients_at_the_quantum_layer(rng):
    """Captum's ``LayerIntegratedGradients`` at the quantum layer (attributing the layer's
    input: the path runs through the layer's VJP, here Hadamard tests) of a classical →
    quantum → classical model equals the same with a backprop layer, to 1e-10."""
    captum_attr = pytest.importorskip("captum.attr")

    def probs_circuit(inputs, weights):
        qml.AmplitudeEmbedding(inputs, wires=range(N_QUBITS), normalize=True, pad_with=0.0)
        qml.StronglyEntanglingLayers(weights, wires=range(N_QUBITS))
        return qml.probs(wires=[0, 1])

    init = torch.tensor(rng.normal(size=WEIGHT_SHAPES["weights"]))
    torch.manual_seed(4)
    pre, post = torch.nn.Linear(4, D_INPUT).double(), torch.nn.Linear(4, 2).double()

    def model(diff_method, wrap):
        dev = qml.device("default.qubit", wires=N_QUBITS + 1)
        qnode = qml.QNode(probs_circuit, dev, interface="torch", diff_method=diff_method)
        quantum = qml.qnn.TorchLayer(
            xqml.hadamard_vjp(qnode) if wrap else qnode,
            WEIGHT_SHAPES,
            init_method={"weights": init},
        )
        return torch.nn.Sequential(pre, quantum, post).double()

    inputs = torch.tensor(rng.normal(size=(2, 4)))
    results = []
    for diff_method, wrap in (("parameter-shift", True), ("backprop", False)):
        net = model(diff_method, wrap)
        lig = captum_attr.LayerIntegratedGradients(net, net[1])
        results.append(
            lig.attribute(
                inputs, target=1, n_steps=6, method="gausslegendre", attribute_to_layer_input=True
            )
        )
    got, expected = results
    assert got.shape == (2, D_INPUT)
    assert float(got.abs().max()) > 1e-3  # not trivially zero
    assert_close(got.detach(), expected.detach(), rtol64=0, atol64=1e-10)


def test_deep_copies_of_a_model_share_the_wrapped_qnode_and_device():
    import copy  # pylint: disable=import-outside-toplevel

    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev)
    def layer(x, w):
        qml.AmplitudeEmbedding(x, wires=[0, 1], normalize=True)
        qml.RY(w, wires=0)
        return qml.expval(qml.Z(0))

    wrapped = xqml.hadamard_vjp(layer)
    model = {"quantum": wrapped, "weights": np.array([0.3])}
    copied = copy.deepcopy(model)
    assert copied["quantum"] is wrapped and copied["quantum"].device is dev
    assert copied["weights"] is not model["weights"]
