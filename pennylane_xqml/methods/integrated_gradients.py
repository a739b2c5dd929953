"""Integrated gradients for QNodes, exact for amplitude embeddings (HATTRIQ and beyond)."""

from __future__ import annotations

import pennylane as qml

from ..engine.baselines import resolve_baseline
from ..engine.core import Attribution, safe_unit
from ..engine.encodings import conj
from ..engine.quadrature import METHODS, path_points
from ..engine.transform import attribution_transform
from ..engine.validation import check_finite, check_positive_int

IG_METHODS = ("auto", "exact") + METHODS


class IntegratedGradients:
    """The method object behind :func:`integrated_gradients` (validated hyper-parameters)."""

    public_name = "integrated_gradients"
    has_convergence_delta = True

    def __init__(self, baselines=None, n_steps=50, method="auto", baseline_data=None):
        if method not in IG_METHODS:
            raise ValueError(f"Unknown method={method!r}; expected one of {IG_METHODS}.")
        if method not in ("auto", "exact"):
            path_points(method, n_steps)  # validates n_steps
        else:
            check_positive_int(n_steps, "n_steps")
        if isinstance(baselines, str) and baselines != "mean":
            raise ValueError(f'Unknown baselines={baselines!r}; use a scalar, an array or "mean".')
        self.baselines, self.baseline_data = baselines, baseline_data
        self.n_steps, self.method = n_steps, method

    def build(self, engine, delta=False):
        call = engine.call
        method = self.method
        closed_form = call.kind == "amplitude" and call.straight
        if method == "auto":
            method = "exact" if closed_form else "gausslegendre"
        if method == "exact" and not closed_form:
            raise ValueError(
                'method="exact" is the closed form for inputs that go straight into an amplitude '
                "embedding; angle-encoded models, and QNodes that transform their input before "
                'the embedding, need a quadrature such as "gausslegendre".'
            )
        baseline = resolve_baseline(call.x, self.baselines, self.baseline_data)
        if call.kind == "amplitude" and not call.straight:
            # F(x) = f(a(x)) with a normalising embedding: ∂F/∂x grows like 1/‖x‖, so the path
            # integral diverges at a baseline the embedding cannot normalise.
            check_finite(
                call.amplitude_of(baseline),
                "The amplitude vector of the baseline (the QNode normalises a zero vector: the "
                "integral diverges there; give a non-zero baseline)",
            )
        x, x0 = engine.point, engine.to_point(baseline)
        diff = x - x0
        if method == "exact":
            get = self._exact(engine, x, x0)
        else:
            get = self._quadrature(engine, x0, diff, method)
        if delta:
            f_x, f_0 = engine.forward_at(x), engine.forward_at(x0)

        def finish(lookup):
            values, variance = get(lookup)
            gap = None
            if delta:
                gap = qml.math.sum(values, axis=-1) - (f_x(lookup)[0] - f_0(lookup)[0])
            return Attribution(values, variance, gap)

        return finish

    @staticmethod
    def _exact(engine, x, x0):
        """``IG = ‖x-x'‖ ‖x+x'‖ Re K(u, v)``: one circuit per Pauli word (DESIGN.md)."""
        u, n_diff = safe_unit(x - x0)
        v, n_sum = safe_unit(x + x0)
        handle = engine.kernel([(u, v)])
        scale = n_diff * n_sum

        def get(lookup):
            kv = lookup(handle)
            return scale * kv.real[0], scale**2 * kv.real_variance[0]

        return get

    def _quadrature(self, engine, x0, diff, method):
        alphas, weights = path_points(method, self.n_steps)
        gradients = engine.gradient([x0 + alpha * diff for alpha in alphas])
        conj_diff = conj(diff)

        def get(lookup):
            grads, variances = gradients(lookup)  # (n_steps, K, d)
            w = qml.math.asarray(weights)[:, None, None]
            values = qml.math.real(conj_diff * qml.math.sum(w * grads, axis=0))
            variance = qml.math.abs(diff) ** 2 * qml.math.sum(w**2 * variances, axis=0)
            return values, variance

        return get


_DOC = r"""Integrated gradients of a QNode's output with respect to its input.

A ``qml.transform``: use it as a decorator (``@integrated_gradients(baselines=0.0)`` above
``@qml.qnode``) or call ``integrated_gradients(qnode, ...)``; the result is an
:class:`~pennylane_xqml.engine.transform.ExplainedQNode`, a callable with the QNode's signature.
Applied to a tape that starts with an amplitude embedding it returns ``(tapes, postprocessing)``
(hardware rule ``"hadamard_all"`` by default).

.. math:: \mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1 \partial_i f(x' + \alpha (x - x'))\, d\alpha

Args:
    qnode (QNode): the model (omit to get a decorator).
    baselines: the reference input ``x'``: a scalar, an array shaped like the input, or
        ``"mean"`` with ``baseline_data``. Default 0. For amplitude embeddings a zero
        baseline is the zero *amplitude* vector (HATTRIQ's choice); any other baseline is
        embedded like the input (padded, normalised).
    baseline_data (array): rows shaped like the input, for ``baselines="mean"``.
    n_steps (int): quadrature points for the numerical methods (>= 1).
    method (str): ``"auto"`` (``"exact"`` for amplitude embeddings, else
        ``"gausslegendre"``), ``"exact"``, ``"gausslegendre"``, ``"riemann_left"``,
        ``"riemann_right"``, ``"riemann_middle"``, ``"riemann_trapezoid"``.
    target (int): which output to explain (an index into the concatenated outputs:
        expectation values, then probabilities). ``None`` explains every output, on a
        leading axis, when the QNode has several.
    argnums (int): the QNode argument that holds the input. Default 0.
    gradient (str): how input gradients are measured: ``"auto"``, ``"hadamard_all"``,
        ``"hadamard"``, ``"adjoint"``, ``"backprop"``, ``"parameter-shift"``
        (see :func:`~pennylane_xqml.engine.core.resolve_gradient` for what ``"auto"`` picks).
    ancilla: a free wire for the Hadamard tests (default: found or added automatically).
    return_convergence_delta (bool): also return ``Σ attr - (f(x) - f(x'))``.
    return_stderr (bool): also return the standard error of each attribution (shots).

Returns:
    callable: ``explained(*args, **kwargs)`` giving attributions shaped like the input.

**Amplitude space.** For ``AmplitudeEmbedding``/``StatePrep`` inputs the model is the
quadratic form ``f(a) = a† U† O U a`` of the prepared (padded, normalised) vector ``a``, and
attributions are given per entry of ``a`` (length ``2**n``; equal to the input's shape when
no padding is used). Raw features are *not* attributed: ``f(x/‖x‖)`` is constant along the
ray from the zero baseline, so raw-feature IG from 0 would sum to 0. In amplitude space IG is
exact in closed form, ``IG_i = (a - a')_i Re(M (a + a'))_i``, and ``method="exact"``
measures all ``2**n`` components with one circuit per Pauli word of the observable.

**Example**

>>> import pennylane as qml, numpy as np
>>> import pennylane_xqml as xqml
>>> dev = qml.device("default.qubit", wires=2)
>>> @xqml.integrated_gradients(return_convergence_delta=True)
... @qml.qnode(dev)
... def model(x, w):
...     qml.AmplitudeEmbedding(x, wires=range(2), normalize=True)
...     qml.RY(w, wires=0)
...     qml.CNOT(wires=[0, 1])
...     return qml.expval(qml.Z(1))
>>> attributions, delta = model(np.array([1.0, 2.0, 0.5, 0.3]), 0.4)
>>> attributions.shape, bool(abs(delta) < 1e-10)
((4,), True)
"""

integrated_gradients = attribution_transform(IntegratedGradients, _DOC)
__test__ = {"integrated_gradients": _DOC}
