"""JAX precision around explanations (:func:`pennylane_xqml.engine.inputs.x64_mode`).

NumPy/autograd inputs and 64-bit torch tensors are explained in JAX's 64-bit mode even when
the process runs JAX in float32. JAX keeps one canonical (device-ready) form of a NumPy array
while anything traced holds it, whatever mode it was made in, so a 64-bit trace kept after the
explanation broke the user's float32 code (``Executable(jit_dot) expected f32[2] ... got
f64[2]``), and a float32 trace of the user's broke a later 64-bit explanation (issue 26).

Each process below starts fresh, with JAX in float32 or in 64-bit mode, and explains one model
with every input type, each time before and after the user compiled their own QNode and JAX
function (which share the model's NumPy weights and PennyLane's constants). Explanations,
torch gradients of them and the user's functions are checked against closed forms, and JAX's
configuration, NumPy's print options, the warning filters and torch's default dtype must be
unchanged.
"""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pennylane as qml
import pytest

from pennylane_xqml.engine.inputs import private_jit, switched_precision, x64_mode
from pennylane_xqml.testing import assert_close, jax_precision

pytest.importorskip("torch")

SCRIPT = textwrap.dedent(
    """
    import gc, sys, warnings
    import jax, jax.numpy as jnp, numpy as np, pennylane as qml, torch
    import pennylane_xqml as xqml
    from pennylane_xqml.testing import assert_close

    W = np.array([1.3, 0.4])  # the model's weights, also used by the user's own functions
    X = np.array([0.7, -0.4])

    def body(x, w):
        angles = x * w
        qml.RX(angles[0], wires=0)
        qml.RY(angles[1], wires=0)
        return qml.expval(qml.PauliZ(0))

    # closed forms: f = cos(w0 x0) cos(w1 x1)
    def f(x):
        return np.cos(W[0] * x[0]) * np.cos(W[1] * x[1])

    def grad(x):
        a, b = W * x
        return np.array([-W[0] * np.sin(a) * np.cos(b), -W[1] * np.cos(a) * np.sin(b)])

    def ablation(x):
        return np.array([f(x) - f(np.array([0.0, x[1]])), f(x) - f(np.array([x[0], 0.0]))])

    def grad_w_of_saliency_0(x):  # d/dw of -w0 sin(w0 x0) cos(w1 x1)
        a, b = W * x
        return np.array([
            -np.sin(a) * np.cos(b) - W[0] * x[0] * np.cos(a) * np.cos(b),
            W[0] * x[1] * np.sin(a) * np.sin(b),
        ])

    def user_functions():
        qnode = qml.QNode(lambda v: body(v, W), qml.device("default.qubit", wires=1))
        eigvals = qml.PauliZ(0).eigvals()  # a constant PennyLane caches
        return {
            "qnode": qnode,
            "jit_qnode": jax.jit(qnode),
            "jit_grad": jax.jit(jax.grad(qnode)),
            "jit_fn": jax.jit(lambda v: jnp.dot(v, W) + jnp.dot(v, eigvals)),
        }

    def check_user(functions):
        v = jnp.array([0.3, -0.2])
        x = np.asarray(v, dtype=np.float64)
        expected = {"qnode": f(x), "jit_qnode": f(x), "jit_grad": grad(x),
                    "jit_fn": x @ W + x @ np.array([1.0, -1.0])}
        for name, function in functions.items():
            out = function(v)
            assert out.dtype == v.dtype, (name, out.dtype, v.dtype)
            assert_close(out, expected[name])
        assert jnp.asarray(W).dtype == jnp.zeros(1).dtype  # W's canonical form is the mode's

    def state():
        return (dict(jax.config.values), np.get_printoptions(), list(warnings.filters),
                torch.get_default_dtype())

    INPUTS = {
        "numpy": lambda: (X, W),
        "autograd": lambda: (qml.numpy.array(X), qml.numpy.array(W, requires_grad=False)),
        "jax": lambda: (jnp.asarray(X), jnp.asarray(W)),
        "torch32": lambda: (torch.tensor(X, dtype=torch.float32),
                            torch.tensor(W, dtype=torch.float32, requires_grad=True)),
        "torch64": lambda: (torch.tensor(X, dtype=torch.float64),
                            torch.tensor(W, dtype=torch.float64, requires_grad=True)),
    }
    model = qml.QNode(body, qml.device("default.qubit", wires=1))
    initial = state()

    def explain(kind):
        args = INPUTS[kind]()
        for method, reference in ((xqml.saliency(model, abs=False), grad),
                                  (xqml.feature_ablation(model), ablation)):
            out = method(*args)
            if isinstance(out, torch.Tensor):
                assert out.dtype == args[0].dtype
                out = out.detach().numpy()
            assert_close(out, reference(X))
        if kind.startswith("torch"):  # torch.autograd through the explanation
            xqml.saliency(model, abs=False)(*args)[0].backward()
            assert_close(args[1].grad.numpy(), grad_w_of_saliency_0(X))
        if kind == "numpy":
            rows = np.stack([X, 0.5 * X])
            batch = xqml.explain_batch(xqml.saliency(model, abs=False), rows, W)
            assert_close(batch, np.stack([grad(X), grad(0.5 * X)]))
        assert state() == initial, kind

    for kind in INPUTS:
        explain(kind)  # nothing of the user's compiled yet
        functions = user_functions()  # compiled after the explanation
        check_user(functions)
        explain(kind)  # the user's executables alive
        check_user(functions)  # compiled before the explanation
        check_user(user_functions())  # compiled after it
        del functions
        gc.collect()
    print("checked", jax.config.jax_enable_x64)
    """
)


@pytest.mark.slow  # two fresh processes (about 30 s); the README's full suite runs it
@pytest.mark.parametrize("x64", [False, True], ids=["float32-process", "x64-process"])
def test_explanations_leave_the_users_jax_as_they_found_it(x64):
    env = dict(os.environ, JAX_ENABLE_X64="1" if x64 else "0")
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.split()[-2:] == ["checked", str(x64)]


def test_x64_mode_marks_only_a_switched_precision():
    """``switched_precision`` is true exactly inside a context that changed the mode."""
    mode = bool(jax.config.jax_enable_x64)
    assert not switched_precision()
    with x64_mode(mode):
        assert not switched_precision()
        assert bool(jax.config.jax_enable_x64) == mode
    with x64_mode(not mode):
        assert switched_precision()
        assert bool(jax.config.jax_enable_x64) == (not mode)
        with x64_mode(not mode):
            assert switched_precision()
    assert not switched_precision()
    assert bool(jax.config.jax_enable_x64) == mode


def test_private_jit_keeps_no_array_of_the_caller_and_equals_jit():
    """Compiled in the other precision than the process's and kept, ``private_jit(fn)``
    leaves the canonical form of the NumPy arrays ``fn`` closes over to the process's
    precision; it computes ``jax.jit(fn)``'s values (per argument types, nested outputs)."""
    jnp = jax.numpy
    weights = np.array([0.3, -1.2, 2.0])

    def fn(x, pair):
        return {"dot": x @ weights, "scaled": pair[0] * weights + pair[1]}

    process_dtype = jnp.zeros(1).dtype
    kept = private_jit(fn)
    with x64_mode(not jax.config.jax_enable_x64):
        out = kept(jnp.ones(3), (jnp.asarray(2.0), jnp.ones(3)))
        assert out["dot"].dtype != process_dtype
    assert jnp.asarray(weights).dtype == process_dtype
    assert_close(jnp.dot(jnp.ones(3), weights), weights.sum())

    for dtype in (np.float32, np.float64):
        x = jnp.asarray(np.array([1.0, 2.0, 3.0], dtype=dtype))
        pair = (jnp.asarray(2.0), jnp.ones(3))
        out, expected = kept(x, pair), jax.jit(fn)(x, pair)
        assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(expected)
        for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(expected)):
            assert a.dtype == b.dtype
            assert_close(a, b)
    with x64_mode(not jax.config.jax_enable_x64):  # the process's float form is alive now
        out = kept(jnp.ones(3), (jnp.asarray(2.0), jnp.ones(3)))
    assert_close(out["dot"], weights.sum(), rtol64=1e-6, atol64=1e-6)


def test_numpy_arguments_are_traced_as_copies():
    """A NumPy-input explanation in a float32 process is traced in 64-bit with copies of the
    user's arrays: the user's own array objects never reach JAX in the switched mode."""
    import pennylane_xqml as xqml  # pylint: disable=import-outside-toplevel

    traced = []
    weights = np.array([1.3, 0.4])

    @qml.qnode(qml.device("default.qubit", wires=1))
    def model(x, w):
        if isinstance(x, jax.core.Tracer):
            traced.append((w is weights, switched_precision()))
        qml.RX(x[0] * w[0], wires=0)
        qml.RY(x[1] * w[1], wires=0)
        return qml.expval(qml.PauliZ(0))

    with jax_precision(x64=False):
        out = xqml.saliency(model, abs=False)(np.array([0.7, -0.4]), weights)
    a, b = weights * np.array([0.7, -0.4])
    expected = [-weights[0] * np.sin(a) * np.cos(b), -weights[1] * np.cos(a) * np.sin(b)]
    assert out.dtype == np.float64
    assert_close(out, np.array(expected), rtol64=1e-12, atol64=1e-12)
    assert traced and traced == [(False, True)] * len(traced)


SCALE = np.array([1.1, 0.9])  # read by the QNode below from outside its arguments


def _scaled(x, w):
    angles = x * w * SCALE
    qml.RX(angles[0], wires=0)
    qml.RY(angles[1], wires=0)
    return qml.expval(qml.PauliZ(0))


def test_a_global_array_the_users_float32_code_holds():
    """JAX keeps one canonical form of a NumPy array: a global array of the QNode that the
    user's compiled float32 code holds cannot enter a 64-bit JAX trace as float64. A NumPy call
    is then explained with autograd (exact), a 64-bit torch call is refused with a message."""
    import torch  # pylint: disable=import-outside-toplevel

    import pennylane_xqml as xqml  # pylint: disable=import-outside-toplevel

    jnp = jax.numpy
    weights, x = np.array([1.3, 0.4]), np.array([0.7, -0.4])
    model = qml.QNode(_scaled, qml.device("default.qubit", wires=1))
    a, b = weights * SCALE * x
    expected = -weights * SCALE * np.array([np.sin(a) * np.cos(b), np.cos(a) * np.sin(b)])
    with jax_precision(x64=False):
        users = jax.jit(lambda v: v * SCALE)  # the user's float32 code, compiled and kept
        assert_close(users(jnp.ones(2)), SCALE)
        out = xqml.saliency(model, abs=False)(x, weights)
        assert out.dtype == np.float64
        assert_close(out, expected, rtol64=1e-12, atol64=1e-12)
        tensors = [torch.tensor(v, dtype=torch.float64) for v in (x, weights)]
        with pytest.raises(ValueError, match="reads from outside its arguments"):
            xqml.saliency(model, abs=False)(*tensors)
        assert_close(users(jnp.ones(2)), SCALE)
