"""The gradient family: saliency, input × gradient and the SmoothGrad noise tunnel."""

from __future__ import annotations

import numpy as np
import pennylane as qml

from ..engine.core import Attribution
from ..engine.encodings import is_complex
from ..engine.transform import attribution_transform
from ..engine.validation import check_bool, check_positive_int

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _real_part(values):
    return qml.math.real(values) if is_complex(values) else values


class Saliency:
    """``|∂f/∂x|`` (or the signed gradient with ``abs=False``)."""

    public_name = "saliency"
    has_convergence_delta = False

    def __init__(self, abs=True):  # pylint: disable=redefined-builtin
        check_bool(abs, "abs")
        self.abs = abs

    def build(self, engine, delta=False):
        _no_delta(delta, "saliency")
        get = engine.gradient([engine.point])

        def finish(lookup):
            grads, variances = get(lookup)
            values = qml.math.abs(grads[0]) if self.abs else grads[0]
            return Attribution(values, variances[0])

        return finish


class InputXGradient:
    """``x ⊙ ∂f/∂x`` (``Re(conj(a) ⊙ ∂f)`` for complex amplitudes)."""

    public_name = "input_x_gradient"
    has_convergence_delta = False

    def build(self, engine, delta=False):
        _no_delta(delta, "input_x_gradient")
        point = engine.point
        get = engine.gradient([point])

        def finish(lookup):
            grads, variances = get(lookup)
            values = _real_part(qml.math.conj(point) * grads[0])
            return Attribution(values, qml.math.abs(point) ** 2 * variances[0])

        return finish


class SmoothGrad:
    """Gradients averaged over Gaussian perturbations of the input (Captum's NoiseTunnel)."""

    public_name = "smoothgrad"
    has_convergence_delta = False

    def __init__(self, nt_type="smoothgrad", nt_samples=10, stdevs=0.1, seed=0):
        if nt_type not in NT_TYPES:
            raise ValueError(f"Unknown nt_type={nt_type!r}; expected one of {NT_TYPES}.")
        check_positive_int(nt_samples, "nt_samples")
        if not np.isscalar(stdevs) or not np.isfinite(stdevs) or stdevs < 0:
            raise ValueError(f"stdevs must be a finite number >= 0, got {stdevs!r}.")
        self.nt_type, self.nt_samples, self.stdevs, self.seed = nt_type, nt_samples, stdevs, seed

    def build(self, engine, delta=False):
        _no_delta(delta, "smoothgrad")
        point = engine.point
        dim = qml.math.shape(point)[0]
        noise = self.stdevs * np.random.default_rng(self.seed).normal(size=(self.nt_samples, dim))
        get = engine.gradient([point + eps for eps in noise])
        n = self.nt_samples

        def finish(lookup):
            grads, variances = get(lookup)  # (n, K, d)
            grads = _real_part(grads)
            mean = qml.math.mean(grads, axis=0)
            if self.nt_type == "smoothgrad":
                return Attribution(mean, qml.math.sum(variances, axis=0) / n**2)
            if self.nt_type == "smoothgrad_sq":
                values = qml.math.mean(grads**2, axis=0)
                return Attribution(
                    values, qml.math.sum((2 * grads) ** 2 * variances, axis=0) / n**2
                )
            values = qml.math.mean(grads**2, axis=0) - mean**2
            sensitivity = 2 * (grads - mean) / n
            return Attribution(values, qml.math.sum(sensitivity**2 * variances, axis=0))

        return finish


def _no_delta(delta, name):
    if delta:
        raise ValueError(f"return_convergence_delta applies to integrated gradients, not {name}.")


_SALIENCY_DOC = """Saliency map ``|∂f/∂x|`` of a QNode, from the same gradient engine as IG.

Args:
    qnode (QNode): the model (omit to get a decorator); or a tape (see :mod:`.transform`).
    abs (bool): absolute value of the gradient (default ``True``, as Captum).
    target, argnums, gradient, ancilla, return_stderr: as in
        :func:`~pennylane_xqml.methods.integrated_gradients`.

For amplitude embeddings the gradient is taken in amplitude space, ``2 Re(M a)``
(``2 M a`` as a complex number for complex amplitudes).

**Example**

>>> import pennylane as qml, numpy as np
>>> import pennylane_xqml as xqml
>>> dev = qml.device("default.qubit", wires=1)
>>> @xqml.saliency(abs=False)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     return qml.expval(qml.Z(0))
>>> round(float(model(np.array([0.5]))[0]), 6)  # -sin(0.5)
-0.479426
"""

saliency = attribution_transform(Saliency, _SALIENCY_DOC)


_INPUT_X_GRADIENT_DOC = """Input × gradient attribution of a QNode.

Takes the same options as :func:`saliency` (without ``abs``). For amplitude embeddings it
sums to ``2 f(a)`` (a quadratic form is homogeneous of degree 2).

**Example**

>>> import pennylane as qml, numpy as np
>>> import pennylane_xqml as xqml
>>> dev = qml.device("default.qubit", wires=1)
>>> @xqml.input_x_gradient
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     return qml.expval(qml.Z(0))
>>> round(float(model(np.array([0.5]))[0]), 6)  # 0.5 * -sin(0.5)
-0.239713
"""

input_x_gradient = attribution_transform(InputXGradient, _INPUT_X_GRADIENT_DOC)


_SMOOTHGRAD_DOC = """SmoothGrad family: gradients at ``nt_samples`` Gaussian perturbations of the input.

Args:
    qnode (QNode): the model (omit to get a decorator); or a tape (see :mod:`.transform`).
    nt_type (str): ``"smoothgrad"`` (mean gradient), ``"smoothgrad_sq"`` (mean squared
        gradient) or ``"vargrad"`` (variance of the gradients).
    nt_samples (int): number of perturbed inputs (default 10); all their gradient
        circuits run in one batch.
    stdevs (float): standard deviation of the noise (default 0.1; for amplitude
        embeddings the noise is added to the unit-norm amplitude vector).
    seed (int): seed of the noise (default 0), so explanations are reproducible.
    target, argnums, gradient, ancilla, return_stderr: as in
        :func:`~pennylane_xqml.methods.integrated_gradients`.

**Example**

>>> import pennylane as qml, numpy as np
>>> import pennylane_xqml as xqml
>>> dev = qml.device("default.qubit", wires=1)
>>> @xqml.smoothgrad(nt_samples=4, stdevs=0.0)
... @qml.qnode(dev)
... def model(x):
...     qml.RY(x[0], wires=0)
...     return qml.expval(qml.Z(0))
>>> round(float(model(np.array([0.5]))[0]), 6)  # no noise: the gradient
-0.479426
"""

smoothgrad = attribution_transform(SmoothGrad, _SMOOTHGRAD_DOC)

__test__ = {
    "saliency": _SALIENCY_DOC,
    "input_x_gradient": _INPUT_X_GRADIENT_DOC,
    "smoothgrad": _SMOOTHGRAD_DOC,
}
