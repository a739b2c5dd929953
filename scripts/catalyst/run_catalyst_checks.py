"""What of pennylane-xqml runs under PennyLane's compiler Catalyst (``qml.qjit``), checked.

Run in the Catalyst environment (``bash scripts/catalyst/setup_venv.sh`` first)::

    /tmp/catalyst-venv/bin/python scripts/catalyst/run_catalyst_checks.py

Models (lightning.qubit, 3 qubits, two ``StronglyEntanglingLayers``, fixed seed):

* amplitude: ``AmplitudeEmbedding`` (8 features, normalised), observable
  ``0.7 Z0 + 0.4 X1 Y2`` (two Pauli words, so the word sum is exercised);
* angle: ``AngleEmbedding`` (3 features, RX), same observable.

Checked against the package's own (un-compiled) result *and* an independent reference
(``qml.matrix`` closed forms, JAX autodiff, Gauss-Legendre sums of it and brute-force Shapley
sums on default.qubit), to 1e-10:

1. hand-written ``qml.qjit`` programs that run the same circuits the package generates
   (Hadamard test for exact IG, parameter-shift evaluations, coalition evaluations mapped with
   ``catalyst.vmap``) and ``catalyst.grad`` of the model inside ``qml.qjit``;
2. ``qml.qjit(explained_qnode)`` directly, and the decorator stack
   ``@qml.qjit @xqml.saliency(...) @qml.qnode(dev)``: exact IG (Hadamard tests and the
   state-vector rule), parameter-shift saliency and IG by quadrature, feature ablation and
   Shapley values on amplitude and angle models (one with a non-linear input map);
3. the refusals: each case ``qml.qjit`` does not compile raises a ``ValueError`` naming the
   fix while Catalyst traces, with nothing captured or compiled (and, on default.qubit, no
   circuit executed);
4. PennyLane's program capture (``qml.capture.enable()``, which needs this jax): every public
   entry point raises ``NotImplementedError`` naming ``qml.capture.disable()`` before any
   circuit runs, and explanations decorated while it was on compute their references after;
5. the docstring examples of ``pennylane_xqml.catalyst`` and ``pennylane_xqml.engine.compiled``.

Times: "first" is the first call (tracing + compilation), "steady" the median of 20 calls
after it (3 for the slow rows: the package's ``jax.jit`` and ``catalyst.grad``); "package
jax.jit" is ``jax.jit(explained)`` in the same process, for comparison.
Nothing is asserted on timings; agreement failures make the exit status 1.
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import catalyst
import jax.numpy as jnp
import numpy as np
import pennylane as qml

import pennylane_xqml as xqml
from pennylane_xqml.catalyst import qjit_explanation

N = 3
WIRES = list(range(N))
WORDS = [
    (0.7, lambda wires: qml.Z(wires[0])),
    (0.4, lambda wires: qml.X(wires[1]) @ qml.Y(wires[2])),
]
TOLERANCE = 1e-10


def observable(wires):
    return qml.sum(*[c * word(wires) for c, word in WORDS])


def make_models(device_name):
    dev = qml.device(device_name, wires=N)

    @qml.qnode(dev)
    def amplitude_model(x, w):
        qml.AmplitudeEmbedding(x, wires=WIRES, normalize=True)
        qml.StronglyEntanglingLayers(w, wires=WIRES)
        return qml.expval(observable(WIRES))

    @qml.qnode(dev)
    def angle_model(x, w):
        qml.AngleEmbedding(x, wires=WIRES)
        qml.StronglyEntanglingLayers(w, wires=WIRES)
        return qml.expval(observable(WIRES))

    return amplitude_model, angle_model


AMPLITUDE_MODEL, ANGLE_MODEL = make_models("lightning.qubit")
REF_AMPLITUDE, REF_ANGLE = make_models("default.qubit")

rng = np.random.default_rng(2026)
X_AMP = jnp.asarray(rng.normal(size=2**N))
X_ANG = jnp.asarray(rng.normal(size=N))
W = jnp.asarray(rng.normal(size=qml.StronglyEntanglingLayers.shape(2, N)))


# ---------------------------------------------------------------------------------------------
# independent references
# ---------------------------------------------------------------------------------------------


def exact_ig(x, w):
    """Zero-baseline IG in amplitude space: ``IG_i = a_i Re(M a)_i``, ``M = U† O U``."""
    u = qml.matrix(qml.StronglyEntanglingLayers(w, wires=WIRES), wire_order=WIRES)
    m = u.conj().T @ qml.matrix(observable(WIRES), wire_order=WIRES) @ u
    a = np.asarray(x) / np.linalg.norm(x)
    return a * np.real(m @ a)


def amplitude_gradient(x, w):
    """``∂f/∂a = 2 Re(M) a`` of ``f(a) = a^T Re(M) a`` at the prepared amplitudes ``a``."""
    a = np.asarray(x) / np.linalg.norm(x)
    return 2 * amplitude_form(w, WIRES, observable(WIRES)) @ a


def autodiff_gradient(x, w):
    return jax.grad(REF_ANGLE)(x, w)


def shapley_sum(value, d):
    """The textbook Shapley sum ``phi_i = sum_S |S|!(d-|S|-1)!/d! (v(S+i) - v(S))``."""
    phi = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for size in range(d):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
                phi[i] += weight * (value(set(subset) | {i}) - value(set(subset)))
    return phi


def brute_force_shapley(x, w):
    """Shapley values of the angle model with a zero baseline, on default.qubit."""

    def value(subset):
        return float(
            REF_ANGLE(jnp.asarray([x[i] if i in subset else 0.0 for i in range(len(x))]), w)
        )

    return shapley_sum(value, len(x))


def amplitude_form(w, wires, obs):
    """``Re(U† O U)``: an amplitude model is ``f(a) = a^T Re(M) a`` for real ``a`` (also at the
    unnormalised, perturbed vectors of the perturbation methods)."""
    u = qml.matrix(qml.StronglyEntanglingLayers(w, wires=wires), wire_order=wires)
    return np.real(u.conj().T @ qml.matrix(obs, wire_order=wires) @ u)


def amplitude_perturbation_refs(x, w, wires, obs):
    """Feature ablation and exact Shapley values (zero baseline) of an amplitude model in
    amplitude space, from the quadratic form."""
    m = amplitude_form(w, wires, obs)
    a = np.asarray(x) / np.linalg.norm(x)
    d = len(a)

    def value(subset):
        b = np.array([a[i] if i in subset else 0.0 for i in range(d)])
        return float(b @ m @ b)

    everything = set(range(d))
    ablation = np.array([value(everything) - value(everything - {i}) for i in range(d)])
    return ablation, shapley_sum(value, d)


# ---------------------------------------------------------------------------------------------
# hand-written Catalyst programs (the circuits the package generates)
# ---------------------------------------------------------------------------------------------

HT_DEVICE = qml.device("lightning.qubit", wires=N + 1)  # ancilla 0, data wires 1..N
DATA = list(range(1, N + 1))


def _hadamard_test(word):
    @qml.qnode(HT_DEVICE)
    def circuit(joint_state, w):
        qml.StatePrep(joint_state, wires=[0, *DATA])  # (|0>|u> + |1>|v>)/sqrt2
        qml.StronglyEntanglingLayers(w, wires=DATA)
        qml.ctrl(word(DATA), control=0)
        qml.adjoint(qml.StronglyEntanglingLayers(w, wires=DATA))
        qml.Hadamard(0)
        return qml.probs(wires=[0, *DATA])

    return circuit


HADAMARD_TESTS = [(c, _hadamard_test(word)) for c, word in WORDS]


@qml.qjit
def qjit_exact_ig(x, w):
    """Exact IG from a zero baseline: ``u = v = a``, ``IG = Σ_w c_w (P(0,i) - P(1,i))``."""
    a = x / jnp.linalg.norm(x)
    joint = jnp.concatenate([a, a]) / jnp.sqrt(2.0)
    total = jnp.zeros_like(a)
    for c, circuit in HADAMARD_TESTS:
        probs = jnp.reshape(circuit(joint, w), (2, -1))
        total = total + c * (probs[0] - probs[1])
    return total


@qml.qnode(qml.device("lightning.qubit", wires=N))
def angle_words(x, w):
    """The angle model measuring each Pauli word separately: under ``qml.qjit`` an ``expval``
    of a ``Sum`` observable costs ~20 ms per circuit here, one ``expval`` per word ~0.6 ms."""
    qml.AngleEmbedding(x, wires=WIRES)
    qml.StronglyEntanglingLayers(w, wires=WIRES)
    return tuple(qml.expval(word(WIRES)) for _, word in WORDS)


def word_sum(expectations):
    return sum(c * e for (c, _), e in zip(WORDS, expectations))


def angle_model_values(inputs, w):
    """The angle model at each row of ``inputs`` (one compiled circuit, ``catalyst.vmap``)."""
    return word_sum(catalyst.vmap(angle_words, in_axes=(0, None))(inputs, w))


@qml.qjit
def qjit_shift_gradient(x, w):
    """``∂f/∂x_i = (f(x + π/2 e_i) - f(x - π/2 e_i)) / 2`` (RX encoding), 2d circuits."""
    shifts = jnp.concatenate([jnp.eye(N), -jnp.eye(N)]) * (jnp.pi / 2)
    values = angle_model_values(x + shifts, w)
    return (values[:N] - values[N:]) / 2


def _grad_program(diff_method, per_word=False):
    """``catalyst.grad`` of the model (``expval(Sum)``), or of the word sum of
    :func:`angle_words` (``per_word``: crashes Catalyst 0.15's Enzyme pass, see docs)."""
    if per_word:
        words = qml.QNode(angle_words.func, angle_words.device, diff_method=diff_method)
        return qml.qjit(catalyst.grad(lambda x, w: word_sum(words(x, w)), argnums=0))
    qnode = qml.QNode(ANGLE_MODEL.func, ANGLE_MODEL.device, diff_method=diff_method)
    return qml.qjit(catalyst.grad(qnode, argnums=0))


COALITIONS = np.array(list(itertools.product([0, 1], repeat=N)), dtype=float)
SHAPLEY_WEIGHTS = np.zeros((N, len(COALITIONS)))  # phi = SHAPLEY_WEIGHTS @ v(coalitions)
for _k, _z in enumerate(COALITIONS):
    _size = int(_z.sum())
    for _i in range(N):
        if _z[_i]:  # v(S ∪ i) with S = z \ i
            SHAPLEY_WEIGHTS[_i, _k] += (
                math.factorial(_size - 1) * math.factorial(N - _size) / math.factorial(N)
            )
        else:  # -v(S) with S = z
            SHAPLEY_WEIGHTS[_i, _k] -= (
                math.factorial(_size) * math.factorial(N - _size - 1) / math.factorial(N)
            )


@qml.qjit
def qjit_shapley(x, w):
    """Exact Shapley values (zero baseline): the model on all 2^d coalitions, ``catalyst.vmap``."""
    values = angle_model_values(COALITIONS * x, w)
    return jnp.asarray(SHAPLEY_WEIGHTS) @ values


@qml.qjit
def qjit_ablation(x, w):
    """Feature ablation (zero baseline): ``f(x) - f(x with x_i = 0)``, d + 1 circuits."""
    inputs = jnp.concatenate([x[None, :], x * (1 - jnp.eye(N))])
    values = angle_model_values(inputs, w)
    return values[0] - values[1:]


# ---------------------------------------------------------------------------------------------
# running and reporting
# ---------------------------------------------------------------------------------------------


def flat(tree):
    """Every leaf of ``tree`` (an attribution, or a tuple with deltas and standard errors)."""
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(tree)])


def timed(fn, *args, repeats=20):
    """``(result, first-call seconds, median steady-state seconds)``."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return flat(result), first, statistics.median(times)


ROWS = []
FAILURES = []


def check(name, fn, args, package, reference, repeats=20):
    """Run ``fn(*args)`` and compare it to the package's result and the reference (``repeats``
    timed calls after the first)."""
    try:
        got, first, steady = timed(fn, *args, repeats=repeats)
    except Exception as error:  # noqa: BLE001 - the report is the point
        message = str(error).strip().splitlines()
        ROWS.append(
            (name, "FAILS", f"{type(error).__name__}: {' | '.join(message[:3])[:300]}", "", "")
        )
        return
    err_package = float(np.max(np.abs(got - flat(package))))
    err_reference = float(np.max(np.abs(got - flat(reference))))
    ok = max(err_package, err_reference) < TOLERANCE
    if not ok:
        FAILURES.append(name)
    ROWS.append((name, "ok" if ok else "WRONG", f"{err_package:.1e} / {err_reference:.1e}",
                 f"{first:.2f} s", f"{steady * 1e3:.2f} ms"))  # fmt: skip


def expect_failure(name, fn, args):
    """Record a documented limitation: its error, or that it no longer fails."""
    try:
        fn(*args)
    except Exception as error:  # noqa: BLE001
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = next((line for line in lines if "error:" in line), lines[0] if lines else "")
        ROWS.append((name, "fails (known)", f"{type(error).__name__}: {detail[:200]}", "", ""))
        return
    ROWS.append(
        (name, "RUNS NOW", "a documented limitation is gone: update docs/catalyst.md", "", "")
    )


# ---------------------------------------------------------------------------------------------
# qml.qjit applied directly to explained QNodes
# ---------------------------------------------------------------------------------------------

SMALL = [0, 1]  # a 2-qubit amplitude model: exact Shapley over 4 features (16 coalitions)
SMALL_OBS = qml.sum(0.7 * qml.Z(0), 0.4 * qml.X(0) @ qml.Y(1))
W_SMALL = jnp.asarray(rng.normal(size=qml.StronglyEntanglingLayers.shape(2, 2)))
X_SMALL = jnp.asarray(rng.normal(size=4))


@qml.qnode(qml.device("lightning.qubit", wires=2))
def small_amplitude_model(x, w):
    qml.AmplitudeEmbedding(x, wires=SMALL, normalize=True)
    qml.StronglyEntanglingLayers(w, wires=SMALL)
    return qml.expval(SMALL_OBS)


def mapped_angle_circuit(x, w):
    """An angle model whose input map JAX traces: non-linear, a product, an input used twice."""
    qml.RX(2 * jnp.tanh(x[0]), wires=0)
    qml.RY(x[1] * x[2], wires=1)
    qml.RX(x[2], wires=2)
    qml.RZ(0.5 * x[0], wires=2)
    qml.StronglyEntanglingLayers(w, wires=WIRES)
    return qml.expval(observable(WIRES))


MAPPED_MODEL = qml.QNode(mapped_angle_circuit, qml.device("lightning.qubit", wires=N))
REF_MAPPED = qml.QNode(mapped_angle_circuit, qml.device("default.qubit", wires=N))


def direct_checks(amp, ang, ig_ref, grad_ref, ablation_ref, shapley_ref):
    """``qml.qjit(explained)`` against the uncompiled explanation and an independent reference."""

    @qml.qjit
    @xqml.saliency(gradient="parameter-shift", abs=False)
    @qml.qnode(qml.device("lightning.qubit", wires=N))
    def stacked_saliency(x, w):  # the decorator stack
        qml.AngleEmbedding(x, wires=WIRES)
        qml.StronglyEntanglingLayers(w, wires=WIRES)
        return qml.expval(observable(WIRES))

    small = (X_SMALL, W_SMALL)
    amp_ablation_ref, _ = amplitude_perturbation_refs(X_AMP, W, WIRES, observable(WIRES))
    small_ablation_ref, small_shapley_ref = amplitude_perturbation_refs(*small, SMALL, SMALL_OBS)
    mapped_grad_ref = jax.grad(REF_MAPPED)(*ang)
    mapped_shapley_ref = shapley_sum(
        lambda subset: float(
            REF_MAPPED(jnp.asarray([X_ANG[i] if i in subset else 0.0 for i in range(N)]), W)
        ),
        N,
    )
    ig_angle = xqml.integrated_gradients(ANGLE_MODEL, gradient="parameter-shift", n_steps=8)
    ig_angle_ref = gauss_legendre_ig(*ang, n_steps=8)
    uncompiled_saliency = xqml.saliency(ANGLE_MODEL, gradient="parameter-shift", abs=False)

    for name, explained, args, ref in [
        ("qjit(IG), gradient=hadamard_all", xqml.integrated_gradients(AMPLITUDE_MODEL, gradient="hadamard_all"), amp, ig_ref),
        ("qjit(IG), gradient=hadamard", xqml.integrated_gradients(AMPLITUDE_MODEL, gradient="hadamard"), amp, ig_ref),
        ("qjit(IG), gradient=auto (adjoint, state)", xqml.integrated_gradients(AMPLITUDE_MODEL), amp, ig_ref),
        ("qjit(IG gausslegendre 4), hadamard_all", xqml.integrated_gradients(AMPLITUDE_MODEL, gradient="hadamard_all", method="gausslegendre", n_steps=4), amp, ig_ref),
        ("qjit(saliency), amplitude, hadamard_all", xqml.saliency(AMPLITUDE_MODEL, gradient="hadamard_all", abs=False), amp, amplitude_gradient(*amp)),
        ("qjit(saliency), parameter-shift", uncompiled_saliency, ang, grad_ref),
        ("qjit(saliency), parameter-shift, traced map", xqml.saliency(MAPPED_MODEL, gradient="parameter-shift", abs=False), ang, mapped_grad_ref),
        ("qjit(IG gausslegendre 8), parameter-shift", ig_angle, ang, ig_angle_ref),
        ("qjit(feature_ablation), angle", xqml.feature_ablation(ANGLE_MODEL), ang, ablation_ref),
        ("qjit(shapley_values), angle", xqml.shapley_values(ANGLE_MODEL), ang, shapley_ref),
        ("qjit(shapley_values), angle, traced map", xqml.shapley_values(MAPPED_MODEL), ang, mapped_shapley_ref),
        ("qjit(feature_ablation), amplitude 8", xqml.feature_ablation(AMPLITUDE_MODEL), amp, amp_ablation_ref),
        ("qjit(feature_ablation), amplitude 4", xqml.feature_ablation(small_amplitude_model), small, small_ablation_ref),
        ("qjit(shapley_values), amplitude 4", xqml.shapley_values(small_amplitude_model), small, small_shapley_ref),
    ]:  # fmt: skip
        check(name, qml.qjit(explained), args, explained(*args), ref)
    multi_output_checks(ang)
    check("@qml.qjit @saliency @qnode (stack)", stacked_saliency, ang,
          uncompiled_saliency(*ang), grad_ref)  # fmt: skip
    explained = xqml.integrated_gradients(AMPLITUDE_MODEL, gradient="hadamard_all")
    check("qjit_explanation(IG hadamard_all)", qjit_explanation(explained), amp,
          explained(*amp), ig_ref)  # fmt: skip


def two_outputs(x, w):
    qml.AngleEmbedding(x, wires=WIRES)
    qml.StronglyEntanglingLayers(w, wires=WIRES)
    return qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Y(2))


def multi_output_checks(ang):
    """Two outputs, ``target``, ``return_stderr`` and ``return_convergence_delta``."""
    model = qml.QNode(two_outputs, qml.device("lightning.qubit", wires=N))
    reference = qml.QNode(two_outputs, qml.device("default.qubit", wires=N))
    x, w = ang

    def output(k):
        return lambda x, w: reference(x, w)[k]

    shapley_ref = [
        shapley_sum(
            lambda subset, k=k: float(
                reference(jnp.asarray([x[i] if i in subset else 0.0 for i in range(N)]), w)[k]
            ),
            N,
        )
        for k in range(2)
    ]
    ig_ref = gauss_legendre_ig(x, w, 8, output(1))
    delta_ref = np.sum(ig_ref) - (output(1)(x, w) - output(1)(jnp.zeros(N), w))
    for name, explained, ref in [
        ("qjit(shapley_values), two outputs", xqml.shapley_values(model), shapley_ref),
        ("qjit(saliency), target=1, return_stderr", xqml.saliency(model, gradient="parameter-shift", abs=False, target=1, return_stderr=True), (jax.grad(output(1))(x, w), np.zeros(N))),
        ("qjit(IG), target=1, return_convergence_delta", xqml.integrated_gradients(model, gradient="parameter-shift", n_steps=8, target=1, return_convergence_delta=True), (ig_ref, delta_ref)),
    ]:  # fmt: skip
        check(name, qml.qjit(explained), ang, explained(*ang), ref)


def gauss_legendre_ig(x, w, n_steps, model=None):
    """IG of the angle model (or of ``model``) by an ``n_steps``-point Gauss-Legendre rule on
    ``jax.grad`` of the plain QNode on default.qubit (zero baseline)."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    grad = jax.grad(REF_ANGLE if model is None else model)
    total = sum(wt / 2 * np.asarray(grad((t + 1) / 2 * x, w)) for t, wt in zip(nodes, weights))
    return np.asarray(x) * total


def refused(name, build, args, fragment, device=None, error_type=ValueError, **qjit_options):
    """``build()`` under ``qml.qjit`` must raise ``error_type`` naming ``fragment`` while
    tracing: nothing captured or compiled (and, on ``device``, no circuit executed)."""
    compiled = None
    tracker = qml.Tracker(device) if device is not None else None
    try:
        compiled = qml.qjit(build(), **qjit_options)
        if tracker is not None:
            with tracker:
                compiled(*args)
        else:
            compiled(*args)
    except error_type as error:
        # AutoGraph converts at qml.qjit(...) already: then there is no QJIT object at all
        untouched = compiled is None or (compiled.jaxpr is None and compiled.mlir_module is None)
        ran = tracker.totals.get("executions", 0) if tracker is not None else 0
        if fragment in str(error) and untouched and not ran:
            ROWS.append((name, "refused (expected)", str(error)[:90], "", ""))
            return
        ROWS.append((name, "WRONG REFUSAL", f"{untouched=} {ran=}: {str(error)[:70]}", "", ""))
    except Exception as error:  # noqa: BLE001 - any other failure is the finding
        ROWS.append((name, "WRONG ERROR", f"{type(error).__name__}: {str(error)[:70]}", "", ""))
    else:
        ROWS.append((name, "UNEXPECTEDLY RAN", "", "", ""))
    FAILURES.append(name)


def refusal_checks():
    """Every case ``qml.qjit`` does not compile is refused with a message naming the fix."""
    ang, amp = (X_ANG, W), (X_AMP, W)
    default_dev = qml.device("default.qubit", wires=N)
    on_default = qml.QNode(ANGLE_MODEL.func, default_dev)

    @qml.qnode(qml.device("lightning.qubit", wires=N))
    def numpy_map(x, w):  # plain NumPy on the input: JAX cannot trace it
        qml.AngleEmbedding(np.tanh(x), wires=WIRES)
        qml.StronglyEntanglingLayers(w, wires=WIRES)
        return qml.expval(observable(WIRES))

    for name, build, args, fragment, device in [
        ("refuse: angle saliency, gradient=auto (adjoint)", lambda: xqml.saliency(ANGLE_MODEL), ang, "differentiates the simulator", None),
        ("refuse: lime", lambda: xqml.lime(ANGLE_MODEL, n_samples=8, seed=1), ang, "qml.qjit compiles the explanations of", None),
        ("refuse: shapley_value_sampling", lambda: xqml.shapley_value_sampling(ANGLE_MODEL, n_samples=4, seed=1), ang, "is not one of them", None),
        ("refuse: smoothgrad", lambda: xqml.smoothgrad(ANGLE_MODEL, gradient="parameter-shift", seed=1), ang, "is not one of them", None),
        ("refuse: taylor_fourier", lambda: xqml.taylor_fourier(AMPLITUDE_MODEL), amp, "is not one of them", None),
        ("refuse: default.qubit (no circuit ran)", lambda: xqml.feature_ablation(on_default), ang, "needs a Catalyst device", default_dev),
        ("refuse: shots", lambda: xqml.feature_ablation(qml.set_shots(ANGLE_MODEL, shots=100)), ang, "analytic circuits only", None),
        ("refuse: NumPy input map", lambda: xqml.feature_ablation(numpy_map), ang, "must be written with jax.numpy", None),
    ]:  # fmt: skip
        refused(name, build, args, fragment, device)
    refused("refuse: autograph=True", lambda: xqml.feature_ablation(ANGLE_MODEL), ang,
            "without autograph", error_type=AttributeError, autograph=True)  # fmt: skip


CAPTURE_METHODS = {
    "integrated_gradients": {"method": "gausslegendre", "n_steps": 4},
    "saliency": {"abs": False},
    "input_x_gradient": {},
    "smoothgrad": {"nt_samples": 2, "stdevs": 0.1, "seed": 3},
    "feature_ablation": {},
    "shapley_values": {},
    "shapley_value_sampling": {"n_samples": 2, "seed": 1},
    "kernel_shap": {"n_samples": 6, "seed": 2},
    "lime": {"n_samples": 6, "seed": 2},
    "taylor_fourier": {"root": np.zeros(N)},
    "qlrp": {},
    "random_attribution": {},
}


def refused_under_capture(name, call, device):
    """``call()`` with program capture on must raise ``NotImplementedError`` naming
    ``qml.capture.disable()`` with no circuit executed on ``device``."""
    tracker = qml.Tracker(device)
    try:
        with tracker:
            call()
    except NotImplementedError as error:
        ran = tracker.totals.get("executions", 0)
        if "qml.capture.disable()" in str(error) and not ran:
            ROWS.append((name, "refused (expected)", str(error)[:90], "", ""))
            return
        ROWS.append((name, "WRONG REFUSAL", f"{ran=}: {str(error)[:70]}", "", ""))
    except Exception as error:  # noqa: BLE001 - any other failure is the finding
        ROWS.append((name, "WRONG ERROR", f"{type(error).__name__}: {str(error)[:70]}", "", ""))
    else:
        ROWS.append((name, "UNEXPECTEDLY RAN", "an empty or wrong result is possible", "", ""))
    FAILURES.append(name)


def capture_checks():
    """With PennyLane's program capture on (``qml.capture.enable()``, which this jax allows),
    every public entry point is refused before any circuit runs (counted on default.qubit) with
    a message naming ``qml.capture.disable()``; explanations decorated while capture is on
    compute, once it is off, what they compute without it."""
    from pennylane_xqml.experiments.hybrid import (  # pylint: disable=import-outside-toplevel
        HybridCNNVQC,
    )

    dev = qml.device("default.qubit", wires=N)
    amplitude = qml.QNode(AMPLITUDE_MODEL.func, dev)
    angle = qml.QNode(ANGLE_MODEL.func, dev)
    amp, ang = (np.asarray(X_AMP), np.asarray(W)), (np.asarray(X_ANG), np.asarray(W))
    references = {
        name: np.asarray(getattr(xqml, name)(angle, **options)(*ang))
        for name, options in CAPTURE_METHODS.items()
    }
    hybrid = HybridCNNVQC(n_classes=4, seed=1)
    images = jnp.linspace(0, 1, 128).reshape(2, 8, 8)
    cam = xqml.grad_cam(hybrid, target=1)
    saliency = xqml.saliency(angle, abs=False)
    qpert = xqml.qpert_mask(angle, background=np.zeros((2, N)), n_iter=2, n_masks=1)
    shapley = xqml.gate_shapley(angle)
    tape = qml.workflow.construct_tape(amplitude)(*amp)
    qml.capture.enable()
    try:
        decorated = {
            name: getattr(xqml, name)(angle, **options) for name, options in CAPTURE_METHODS.items()
        }
        for name, explained in decorated.items():
            refused_under_capture(f"capture: {name}", lambda e=explained: e(*ang), dev)
        vjp_model = xqml.hadamard_vjp(amplitude)
        searched = xqml.taylor_fourier(angle, root="search")
        calls = {
            "plan": lambda: saliency.plan(*ang),
            "prepared_plan": lambda: saliency.prepared_plan(*ang),
            "construct_batch": lambda: saliency.construct_batch(*ang),
            "draw": lambda: saliency.draw(*ang),
            "cost": lambda: saliency.cost(*ang),
            "cost_report": lambda: xqml.cost_report(saliency, *ang),
            "prepare (root search)": lambda: searched.prepare(*ang),
            "tape transform": lambda: xqml.saliency(tape),
            "explain_batch": lambda: xqml.explain_batch(saliency, np.stack([ang[0]] * 2), W),
            "input_vjp": lambda: xqml.input_vjp(amplitude, amp, 1.0),
            "hadamard_vjp": lambda: vjp_model(*amp),
            "gate_shapley": lambda: shapley(*ang),
            "gate_shapley.plan": lambda: shapley.plan(*ang),
            "qpert_mask": lambda: qpert(*ang),
            "qpert_cost": lambda: xqml.qpert_cost(qpert, *ang),
        }
        for name, call in calls.items():
            refused_under_capture(f"capture: {name}", call, dev)
        for name, call in {
            "grad_cam": lambda: cam(hybrid.params, images),
            "grad_cam_cost": lambda: xqml.grad_cam_cost(cam, hybrid.params, images),
        }.items():
            refused_under_capture(f"capture: {name}", call, hybrid.device)
    finally:
        qml.capture.disable()
    for name, explained in decorated.items():  # made while capture was on, called after it
        check(f"capture off again: {name}", explained, ang, references[name],
              references[name], repeats=1)  # fmt: skip


def main():
    from importlib.metadata import version  # pylint: disable=import-outside-toplevel

    print("versions:", ", ".join(f"{p} {version(p)}" for p in
                                 ["pennylane-catalyst", "pennylane", "pennylane-lightning", "jax"]))  # fmt: skip
    start = time.perf_counter()

    ig = xqml.integrated_gradients(AMPLITUDE_MODEL, gradient="hadamard_all")
    saliency = xqml.saliency(ANGLE_MODEL, gradient="parameter-shift", abs=False)
    ablation = xqml.feature_ablation(ANGLE_MODEL)
    shapley = xqml.shapley_values(ANGLE_MODEL)

    amp, ang = (X_AMP, W), (X_ANG, W)
    ig_ref, grad_ref, shapley_ref = (
        exact_ig(*amp),
        autodiff_gradient(*ang),
        brute_force_shapley(*ang),
    )
    ablation_ref = [float(REF_ANGLE(*ang) - REF_ANGLE(X_ANG * (1 - e), W)) for e in np.eye(N)]

    # package reference rows (jax.jit of the explanation, same process)
    for name, explained, args, ref in [
        ("package jax.jit: IG hadamard_all", ig, amp, ig_ref),
        ("package jax.jit: saliency parameter-shift", saliency, ang, grad_ref),
        ("package jax.jit: feature_ablation", ablation, ang, ablation_ref),
        ("package jax.jit: shapley_values", shapley, ang, shapley_ref),
    ]:
        check(name, jax.jit(explained), args, explained(*args), ref, repeats=3)  # slow calls

    # 1. hand-written Catalyst programs of the circuits the package generates
    model_value = REF_ANGLE(*ang)
    check(
        "qjit model alone, expval(Sum)", qml.qjit(ANGLE_MODEL), ang, ANGLE_MODEL(*ang), model_value
    )
    check("qjit model alone, expval per word", qml.qjit(lambda x, w: word_sum(angle_words(x, w))),
          ang, ANGLE_MODEL(*ang), model_value)  # fmt: skip
    check("qjit hand-written: exact IG (Hadamard tests)", qjit_exact_ig, amp, ig(*amp), ig_ref)
    check(
        "qjit hand-written: parameter-shift gradient",
        qjit_shift_gradient,
        ang,
        saliency(*ang),
        grad_ref,
    )
    for method in ("parameter-shift", "adjoint"):
        check(f"qjit catalyst.grad, {method}", _grad_program(method), ang, saliency(*ang), grad_ref,
              repeats=3)  # fmt: skip
    expect_failure("qjit catalyst.grad of a word sum", _grad_program("adjoint", per_word=True), ang)
    check(
        "qjit hand-written: feature ablation (vmap)",
        qjit_ablation,
        ang,
        ablation(*ang),
        ablation_ref,
    )
    check("qjit hand-written: exact Shapley (vmap)", qjit_shapley, ang, shapley(*ang), shapley_ref)

    # 2. qml.qjit applied directly to explained QNodes (and the decorator stack)
    direct_checks(amp, ang, ig_ref, grad_ref, ablation_ref, shapley_ref)

    # 3. what qml.qjit refuses, while tracing and before anything is compiled or run
    refusal_checks()

    # 4. program capture (qml.capture.enable()): refused before anything runs
    capture_checks()

    # 5. the docstring examples of the Catalyst modules (they cannot run in the main environment)
    import doctest  # pylint: disable=import-outside-toplevel

    import pennylane_xqml.catalyst  # pylint: disable=import-outside-toplevel
    import pennylane_xqml.engine.compiled  # pylint: disable=import-outside-toplevel

    for module in (pennylane_xqml.catalyst, pennylane_xqml.engine.compiled):
        doctests = doctest.testmod(module)
        passed = f"{doctests.attempted - doctests.failed}/{doctests.attempted} passed"
        ROWS.append((f"doctests of {module.__name__}", passed, "", "", ""))
        if doctests.failed or not doctests.attempted:
            FAILURES.append(f"doctests of {module.__name__}")

    header = ("check", "status", "max|diff| package / reference", "first call", "steady")
    widths = [max(len(str(r[i])) for r in [*ROWS, header]) for i in range(5)]
    widths[2] = min(widths[2], 90)
    for row in [header, *ROWS]:
        print("  ".join(str(c)[: widths[i]].ljust(widths[i]) for i, c in enumerate(row)))
    print(f"total {time.perf_counter() - start:.1f} s; tolerance {TOLERANCE:g}")
    if FAILURES:
        print("FAILED:", ", ".join(FAILURES))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
