"""Explanations compiled by PennyLane's compiler, Catalyst (``qml.qjit``).

An optional extra: ``pennylane-catalyst`` 0.15 pins ``jax==0.7.1``, so it lives in its own
virtual environment (``bash scripts/catalyst/setup_venv.sh``; see ``docs/catalyst.md``). Nothing
here imports Catalyst until a compiled explanation runs; the examples are checked in that
environment by ``scripts/catalyst/run_catalyst_checks.py`` (from ``.ci/run``).

``qml.qjit`` applies **directly** to an explained QNode, as a function or as a decorator:

>>> import jax; jax.config.update("jax_enable_x64", True)
>>> import numpy as np, pennylane as qml, pennylane_xqml as xqml
>>> dev = qml.device("lightning.qubit", wires=2)
>>> @qml.qnode(dev)
... def model(x, w):
...     qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
...     qml.RY(w, wires=0)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.Z(1))
>>> ig = xqml.integrated_gradients(model, gradient="hadamard_all")
>>> x, w = np.array([1.0, 2.0, 0.5, 0.3]), 0.4
>>> bool(np.allclose(qml.qjit(ig)(x, w), ig(x, w), atol=1e-10))
True
>>> @qml.qjit
... @xqml.saliency(gradient="parameter-shift", abs=False)
... @qml.qnode(dev)
... def angle_model(x):
...     qml.RX(x[0], wires=0)
...     qml.RY(jax.numpy.tanh(x[1]), wires=1)
...     return qml.expval(qml.Z(0) @ qml.Z(1))
>>> x = np.array([0.3, -0.8])
>>> exact = [-np.sin(x[0]) * np.cos(np.tanh(x[1])),
...          -np.cos(x[0]) * np.sin(np.tanh(x[1])) / np.cosh(x[1]) ** 2]
>>> bool(np.allclose(angle_model(x), exact, atol=1e-10))
True

What compiles: integrated gradients, saliency, feature ablation and Shapley values
(:data:`COMPILED_METHODS`) with a circuit gradient rule, on lightning (:data:`CATALYST_DEVICES`),
analytic. The rest is refused while Catalyst traces, before anything is compiled or run:

>>> @qml.qnode(dev)
... def rx(x):
...     qml.RX(x[0], wires=0)
...     return qml.expval(qml.Z(0))
>>> qml.qjit(xqml.saliency(rx))(np.array([0.5]))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: saliency with gradient="adjoint" differentiates the simulator with JAX autodiff, ...

How: the explanation builds its plan as usual and runs its tapes as Catalyst QNodes
(:mod:`pennylane_xqml.engine.compiled`), one per circuit structure, ``catalyst.vmap``-ed over the
tapes that share it.
"""

from __future__ import annotations

import pennylane as qml

from .engine.compiled import CATALYST_DEVICES, COMPILED_METHODS, check_compilable

__all__ = ["CATALYST_DEVICES", "COMPILED_METHODS", "qjit_explanation"]


def qjit_explanation(explained, **qjit_options):
    """``qml.qjit(explained, **qjit_options)``, with the method and device checked now rather
    than at the first call (kept from before ``qml.qjit`` applied directly).

    Args:
        explained (ExplainedQNode): an explanation, e.g. ``xqml.shapley_values(qnode)``.
        **qjit_options: keyword arguments of :func:`qml.qjit`.

    Returns:
        catalyst.QJIT: the compiled explanation (compiled at its first call).

    Raises:
        ValueError: a method or device ``qml.qjit`` does not compile.
    """
    check_compilable(explained.method.public_name, explained.qnode.device)
    return qml.qjit(explained, **qjit_options)
