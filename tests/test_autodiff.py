"""The Hadamard-test VJP inside JAX and PyTorch autodiff (``pennylane_xqml.autodiff``).

References are independent: ``diff_method="backprop"`` of the same circuit on default.qubit
(JAX and torch), and PennyLane's own parameter shift for the NaN contrast. With shots, the
estimate is compared with the exact value within 4 standard errors of the estimator's own
covariance (:func:`xqml.input_vjp` with ``covariance=True``).
"""

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
