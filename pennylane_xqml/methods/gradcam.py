"""QGrad-CAM: Grad-CAM for hybrid CNN–VQC models, the VQC differentiated by parameter shift.

For class ``ℓ`` and the activation maps ``A^k`` (``k = 1 … K``, each ``W × H``) of a CNN layer,

    ``w_k^ℓ = (1/WH) Σ_ij ∂f^ℓ/∂A^k_ij``,    ``CAM^ℓ = ReLU(Σ_k w_k^ℓ A^k)``,

upsampled (bilinearly, :func:`jax.image.resize`) to the input image (Lin et al., "Quantum
Gradient Class Activation Map for Model Interpretability", arXiv:2408.05899).

The model is ``f = readout(circuit(θ(A)))``: a classical map ``θ(A)`` from the layer's maps to
the encoding angles (the rest of the CNN, pooling, squashing), the circuit, and an affine
readout. The derivative factorises along it::

    ∂f/∂A = R · D · J_g · ∂θ/∂A,     w = R · D · J_g · M,   M_pk = (1/WH) Σ_ij ∂θ_p/∂A^k_ij

* ``D = ∂⟨O⟩/∂φ`` (circuit outputs × encoding-gate parameters ``φ``) is the **quantum part**:
  parameter-shift circuits (:func:`~.angle_gradient.shift_tapes`) of the head's tape, expanded
  so that every encoding gate has a shift rule, at each image's angles. The tapes of all
  images (and, for ``target=None``, the unshifted tapes that give the predicted class) run in
  **one** :func:`qml.execute` call. Exact on simulators, and it is what hardware runs.
* ``J_g = ∂φ/∂θ`` (classical, JAX) maps the angles to the gate parameters they feed, and
  ``M`` is the spatially averaged Jacobian of ``θ(A)``: JAX autodiff through the pooling (and,
  for an earlier layer, the rest of the CNN). Averaging before the product is exact because
  the product is linear in ``∂θ/∂A``, so only ``K`` numbers per angle leave JAX.
* ``R = ∂f/∂⟨O⟩`` is the readout's (constant) Jacobian; the readout must be affine.

With shots, each shifted circuit is an independent estimate with variance
``(1 - ⟨P⟩²)/shots`` per Pauli word, so ``Var w = R² · Var D · (J_g M)²`` (words treated as
independent, as everywhere in this package; exact for :class:`~.hybrid.HybridCNNVQC`, whose
class scores each read one Pauli word). ``gradient="backprop"`` is the reference: plain
``jax.jacrev`` of ``model.head`` through the simulator.

**The model protocol** (implemented by :class:`~.hybrid.HybridCNNVQC`): ``layers`` (names),
``n_classes``, ``image_shape``, ``shots``, ``check_images(images) -> (images (N, H, W),
single)``, ``activations(params, images, layer) -> (N, K, H', W')``, ``angles(params, A,
layer) -> (N, P)``, ``qnode(angles, params["vqc"])`` (a JAX QNode whose outputs are
``expval``/``probs``), ``readout(params, outputs)`` (affine) and ``head(params, A, layer)``.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pennylane as qml

from ..engine.angle_gradient import expand_for_shifts, shift_tapes
from ..engine.cost import check_cost_options, gate_counts, make_report, random_results
from ..engine.encodings import flatten_outputs, input_parameter_indices, output_sentences
from ..engine.execution import concrete_tapes, executed_batch, shots_of
from ..engine.plan import Plan, execute_plan
from ..engine.torch_bridge import call_with_torch, has_torch
from ..engine.validation import check_bool, check_no_program_capture, is_tracer

__all__ = ["CAMWeights", "GradCAM", "grad_cam", "grad_cam_cost"]

GRADIENTS = ("parameter-shift", "backprop")

# Compiled classical parts and encoding-gate indices, per model (while it lives) and layer, so
# that new grad_cam(...) callables (other targets, options) do not recompile.
_CACHE = weakref.WeakKeyDictionary()


def _model_cache(model):
    try:
        return _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: cache on nothing
        return {}


class CAMWeights(NamedTuple):
    """Grad-CAM channel weights ``w_k`` and their standard errors (zero when analytic).

    ``values``/``stderr`` have shape ``(N, K)`` (the target class of each image) or
    ``(N, n_classes, K)`` (every class); ``target`` is the class of each image, ``(N,)``.
    """

    values: object
    stderr: object
    target: object


def _tape_of(model, angles, weights):
    """The head's tape at ``angles``, expanded until every gate has a shift rule."""
    tape = qml.workflow.construct_tape(model.qnode, level="user")(angles, weights)
    return expand_for_shifts(tape)


def _input_indices(model, cache, angles, weights):
    """Positions of the encoding-gate parameters in the expanded tape (found once per model)."""
    if "indices" not in cache:
        tape_of = lambda a, w: _tape_of(model, a, w)
        indices = input_parameter_indices(tape_of, (angles, weights), {}, 0)
        if not indices:
            raise ValueError("No gate parameter of the model's circuit depends on the angles.")
        cache["indices"] = indices
    return cache["indices"]


# The compiled functions below hold the model weakly, so that the cache does not keep it alive.


def _classical_fn(model_ref, cache, layer):
    def classical(params, A):
        model = model_ref()
        weights = params["vqc"]
        angles = model.angles(params, A, layer)  # (N, P)

        def angles_of(a):
            return model.angles(params, a[None], layer)[0]

        mean_jac = jnp.mean(jax.vmap(jax.jacrev(angles_of))(A), axis=(-2, -1))  # (N, P, K)
        indices = _input_indices(model, cache, angles[0], weights)

        def gate_params(a):
            values = _tape_of(model, a, weights).get_parameters(trainable_only=False)
            return jnp.stack([jnp.reshape(values[i], ()) for i in indices])

        gate_jac = jax.vmap(jax.jacobian(gate_params))(angles)  # (N, G, P)
        return angles, gate_jac @ mean_jac  # (N, P), (N, G, K)

    return classical


def _backprop_fn(model_ref, layer):
    def backprop(params, A):
        model = model_ref()

        def scores(a):
            return model.head(params, a[None], layer)[0]

        values = jnp.mean(jax.vmap(jax.jacrev(scores))(A), axis=(-2, -1))  # (N, C, K)
        return values, model.head(params, A, layer)

    return backprop


class GradCAM:
    """The callable returned by :func:`grad_cam`: ``cam(params, images)``.

    Calling it returns the CAMs (and, with ``return_stderr=True``, the standard errors of the
    weights); :meth:`weights` returns the channel weights themselves.
    """

    def __init__(self, model, layer="conv2", target=None, gradient="parameter-shift", upsample=True,
                 return_stderr=False):  # fmt: skip
        layers = tuple(getattr(model, "layers", ()))
        if not layers or not hasattr(model, "head"):
            raise TypeError(
                "grad_cam needs a hybrid model such as HybridCNNVQC (with layers, activations, "
                f"angles, qnode, readout and head); got {type(model).__name__}."
            )
        if layer not in layers:
            raise ValueError(f"Unknown layer {layer!r}; the model's layers are {layers}.")
        if gradient not in GRADIENTS:
            raise ValueError(f"Unknown gradient={gradient!r}; expected one of {GRADIENTS}.")
        if gradient == "backprop" and getattr(model, "shots", None) is not None:
            raise ValueError(
                'gradient="backprop" differentiates an analytic simulator; the model runs with '
                f'shots={model.shots}. Use gradient="parameter-shift" (which also gives standard '
                "errors) or model.with_shots(None)."
            )
        check_bool(upsample, "upsample")
        check_bool(return_stderr, "return_stderr")
        self.model, self.layer, self.gradient = model, layer, gradient
        self.upsample, self.return_stderr = upsample, return_stderr
        self.target = self._check_target(target)
        self._cache = _model_cache(model)

    # -- validation -----------------------------------------------------------------------------

    def _check_target(self, target, n_images=None):
        n_classes = self.model.n_classes
        if target is None or is_tracer(target):
            return target
        if isinstance(target, (bool, np.bool_)):
            raise TypeError(
                f"target must be None, a class index or an array of them; got {target!r}."
            )
        values = np.asarray(target)
        if not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"target must hold integer class indices; got {target!r}.")
        if values.ndim > 1:
            raise ValueError(f"target must be an integer or a 1-D array; got shape {values.shape}.")
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(
                f"target {values.tolist()} is out of range: the model has {n_classes} classes "
                f"(0..{n_classes - 1})."
            )
        if n_images is not None and values.ndim == 1 and values.shape != (n_images,):
            raise ValueError(f"target has {values.shape[0]} entries for {n_images} images.")
        return int(values) if values.ndim == 0 else values

    # -- the weights ----------------------------------------------------------------------------

    def _tape_of(self, angles, weights):
        return _tape_of(self.model, angles, weights)

    def _input_indices(self, angles, weights):
        return _input_indices(self.model, self._cache, angles, weights)

    def _classical_parts(self, params, A):
        """The classical factors of ``w = R · D · (J_g M)``, in one compiled function: the
        angles ``(N, P)`` and ``J_g M`` ``(N, G, K)``."""
        key = ("classical", self.layer)
        if key not in self._cache:
            self._cache[key] = jax.jit(
                _classical_fn(weakref.ref(self.model), self._cache, self.layer)
            )
        return self._cache[key](params, A)

    def vqc_plan(self, params, A, shots=None) -> Plan:
        """The :class:`~.plan.Plan` of the quantum part ``D`` of ``w = R · D · (J_g M)`` for the
        activation maps ``A`` ``(N, K, H', W')``: the parameter-shift circuits of every image
        (and, for ``target=None``, the unshifted ones that give the predicted class), in one
        batch. Its processing function returns ``(w, variance, logits)`` of every class (logits
        only for ``target=None``). ``shots`` overrides the head's shots in the tapes (the cost
        report uses ``shots=1`` for the variance of one shot)."""
        check_no_program_capture("grad_cam")
        model = self.model
        weights = params["vqc"]
        angles, chains = self._classical_parts(params, A)
        indices = self._input_indices(angles[0], weights)

        tapes, requests, forward = [], [], []
        sentences = None
        for n in range(A.shape[0]):
            tape = self._tape_of(angles[n], weights)
            if shots is not None:
                tape = tape.copy(shots=shots)
            if sentences is None:
                sentences = output_sentences(tape)
                shots_of(tape)  # refuses shot vectors before anything runs
            shifted, fn = shift_tapes(tape, indices, sentences)
            requests.append((len(tapes), len(shifted), fn))
            tapes.extend(shifted)
            if self.target is None:
                forward.append((len(tapes), tape))
                tapes.append(tape)
        readout_jac = jax.jacfwd(lambda o: model.readout(params, o))(
            jnp.zeros(len(sentences))
        )  # (C, O)

        def processing_fn(results, _simulator_values):
            values, variances = [], []
            for (start, size, fn), chain in zip(requests, chains):
                shift = fn(results[start : start + size])  # (O, G); chain: (G, K)
                values.append(readout_jac @ shift.value @ chain)
                variances.append(readout_jac**2 @ shift.variance @ chain**2)
            logits = None
            if forward:
                outputs = jnp.stack([flatten_outputs(results[i], tape) for i, tape in forward])
                logits = model.readout(params, outputs)
            return jnp.stack(values), jnp.stack(variances), logits

        return Plan(
            method="grad_cam",
            embedding="angle",
            rule="parameter-shift",
            tapes=tuple(concrete_tapes(tapes)),
            device=model.qnode.device,
            diff_method=None,
            simulator_requests=(),
            processing_fn=processing_fn,
        )

    def _shift_weights(self, params, A):
        """``(w, variance, logits)`` of every class by parameter shift; logits only if needed."""
        return execute_plan(self.vqc_plan(params, A))

    def _backprop_weights(self, params, A):
        key = ("backprop", self.layer)
        if key not in self._cache:  # compiled once per shape, not op by op
            self._cache[key] = jax.jit(_backprop_fn(weakref.ref(self.model), self.layer))
        values, logits = self._cache[key](params, A)
        return values, jnp.zeros_like(values), logits

    def _compute(self, params, images):
        check_no_program_capture("grad_cam")
        model = self.model
        images, single = model.check_images(images)
        n_images = images.shape[0]
        if n_images == 0:
            raise ValueError("images is empty; give at least one image.")
        target = self._check_target(self.target, n_images)
        A = model.activations(params, images, self.layer)
        if self.gradient == "parameter-shift":
            values, variances, logits = self._shift_weights(params, A)
        else:
            values, variances, logits = self._backprop_weights(params, A)
        if target is None:
            target = jnp.argmax(logits, axis=-1)
        target = jnp.broadcast_to(jnp.asarray(target), (n_images,))
        return A, values, jnp.sqrt(variances), target, single

    def weights(self, params, images, all_classes=False):
        """The channel weights ``w_k`` of each image's target class (or of every class).

        Args:
            params (dict): the model's parameters.
            images (array): ``(N, H, W)`` or one ``(H, W)`` image.
            all_classes (bool): return the weights of every class, ``(N, n_classes, K)``.

        Returns:
            CAMWeights: ``values``, ``stderr`` (``(N, K)``, or ``(N, n_classes, K)``) and the
            ``target`` class of each image; without the leading ``N`` for a single image.
            Torch tensors give torch tensors, as in :meth:`__call__`.
        """
        if has_torch(params, images):
            return call_with_torch(
                lambda p, i: self.weights(p, i, all_classes), (params, images), {}, x=images
            )
        _, values, stderr, target, single = self._compute(params, images)
        if not all_classes:
            values = jnp.take_along_axis(values, target[:, None, None], axis=1)[:, 0]
            stderr = jnp.take_along_axis(stderr, target[:, None, None], axis=1)[:, 0]
        if single:
            return CAMWeights(values[0], stderr[0], target[0])
        return CAMWeights(values, stderr, target)

    def cost(self, params, images, target_stderr=None, gate_set=None):
        r"""The cost of ``self(params, images)``, without running its circuits
        (:class:`~pennylane_xqml.engine.cost.CostReport`).

        The tapes are those of :meth:`vqc_plan`: ``n_images × 2 × n_angles`` shifted circuits,
        plus one forward circuit per image for ``target=None``, in one batch. The shot bound is
        for the **channel weights** ``w_k`` of every class (the CAM ``ReLU(Σ_k w_k A^k)`` is not
        linear in the results; ReLU is 1-Lipschitz, so a CAM pixel's error is at most
        ``Σ_k |A^k_ij| · |δw_k|``). ``w = R · D · (J_g M)`` is linear in the results of the
        shifted circuits, with the classical factors fixed by ``params`` and ``images``. With
        shots each circuit measures ``qml.probs`` of its qubit-wise commuting words
        (:func:`~.estimation.estimate_outputs`), so Grad-CAM's own propagated variance at one
        shot is the exact multinomial variance. It depends on the unknown results and is
        evaluated at uniform outcome probabilities (expectations 0), at one shot: an estimate
        of the shots needed, not a guarantee. ``gradient="backprop"`` runs no circuits (one simulator request).

        >>> import jax.numpy as jnp, pennylane_xqml as xqml
        >>> from pennylane_xqml.experiments.hybrid import HybridCNNVQC
        >>> model = HybridCNNVQC(n_classes=2, n_channels=2, n_qubits=2, n_layers=1, n_hidden=2,
        ...                      image_shape=(5, 5))
        >>> images = jnp.linspace(0, 1, 50).reshape(2, 5, 5)
        >>> report = xqml.grad_cam(model).cost(model.params, images, target_stderr=0.05)
        >>> report.n_circuits  # 2 images x (2 shifts x 2 angles + 1 forward)
        10
        >>> report.total_shots == report.shots_per_circuit * report.n_measurement_groups
        True
        """
        check_no_program_capture("grad_cam")
        gate_set = check_cost_options(target_stderr, gate_set)
        model = self.model
        checked, _ = model.check_images(images)
        if checked.shape[0] == 0:
            raise ValueError("images is empty; give at least one image.")
        self._check_target(self.target, checked.shape[0])
        device = model.qnode.device
        if self.gradient == "backprop":
            note = 'gradient="backprop" is simulator-only (jax.jacrev): shots do not apply.'
            return make_report("grad_cam", self.gradient, [], gate_counts([], device, gate_set),
                               n_simulator_requests=1, notes=[note])  # fmt: skip
        A = model.activations(params, checked, self.layer)
        plan = self.vqc_plan(params, A, shots=1)  # variances of one shot
        _, variances, _ = plan.processing_fn(random_results(plan.tapes), ())
        tapes = [t.copy(shots=model.qnode.shots) for t in plan.tapes]
        notes = [
            "the shot bound is for the channel weights w_k of every class, not the ReLU'd CAM."
        ]
        executed, _, _ = executed_batch(tapes, device, plan.diff_method, plan.broadcast)
        return make_report("grad_cam", self.gradient, tapes, gate_counts(tapes, device, gate_set),
                           variance=float(np.max(variances)), target_stderr=target_stderr,
                           notes=notes, n_executed_tapes=len(executed))  # fmt: skip

    def __call__(self, params, images):
        """The class activation maps of ``images`` for the target classes.

        Args:
            params (dict): the model's parameters.
            images (array): ``(N, H, W)`` or one ``(H, W)`` image.

        Returns:
            array or tuple: CAMs ``(N, H, W)`` (the input size; the layer's ``(N, H', W')``
            with ``upsample=False``), and with ``return_stderr=True`` also the standard errors
            of the weights ``(N, K)``. A single image gives ``(H, W)`` and ``(K,)``. Torch
            tensors (images, or parameters) give torch tensors of the images' dtype and device,
            computed as the same call with JAX arrays and differentiable with
            ``torch.autograd`` (:mod:`~pennylane_xqml.engine.torch_bridge`).
        """
        if has_torch(params, images):
            return call_with_torch(self, (params, images), {}, x=images)
        A, values, stderr, target, single = self._compute(params, images)
        w = jnp.take_along_axis(values, target[:, None, None], axis=1)[:, 0]  # (N, K)
        se = jnp.take_along_axis(stderr, target[:, None, None], axis=1)[:, 0]
        cams = jax.nn.relu(jnp.einsum("nk,nkhw->nhw", w, A))
        if self.upsample:
            cams = jax.image.resize(
                cams, (cams.shape[0], *self.model.image_shape), method="bilinear"
            )
        if single:
            cams, se = cams[0], se[0]
        return (cams, se) if self.return_stderr else cams


def grad_cam(model, layer="conv2", target=None, gradient="parameter-shift", upsample=True,
             return_stderr=False):  # fmt: skip
    """QGrad-CAM of a hybrid CNN–VQC model: ``cam(params, images)`` -> class activation maps.

    ``w_k^ℓ = (1/WH) Σ_ij ∂f^ℓ/∂A^k_ij`` and ``CAM^ℓ = ReLU(Σ_k w_k^ℓ A^k)``, upsampled to the
    input; the VQC's derivative by parameter shift on the encoding gates (all images' circuits
    in one batch), chained with JAX through the classical layers (see the module docstring).
    Works under ``jax.jit`` and ``jax.vmap`` (over images, e.g.
    ``jax.vmap(cam, in_axes=(None, 0))``). Layer, target, gradient and image shape are checked
    before any circuit runs.

    Args:
        model: a :class:`~.hybrid.HybridCNNVQC` (or a model with the same protocol).
        layer (str): the layer whose activation maps are weighted (``"conv2"``, or ``"conv1"``).
        target (None, int or array): the class explained: ``None`` for each image's predicted
            class, an index for all images, or one index per image.
        gradient (str): ``"parameter-shift"`` (circuits; with shots, standard errors) or
            ``"backprop"`` (``jax.jacrev`` through an analytic simulator, the reference).
        upsample (bool): resize the CAMs bilinearly to the input image size.
        return_stderr (bool): also return the standard errors of the weights ``w_k``
            (``sqrt`` of the propagated shot variance; zero when analytic).

    Returns:
        GradCAM: the callable ``cam(params, images)``; ``cam.weights(params, images)`` gives
        the weights ``w_k`` (:class:`CAMWeights`).

    Example:
        >>> from pennylane_xqml.experiments.hybrid import HybridCNNVQC
        >>> model = HybridCNNVQC(n_classes=4)
        >>> images = jnp.linspace(0, 1, 128).reshape(2, 8, 8)
        >>> cam = grad_cam(model, target=1)
        >>> cam(model.params, images).shape
        (2, 8, 8)
        >>> cam.weights(model.params, images).values.shape  # w_k of class 1, K = 4 channels
        (2, 4)
    """
    return GradCAM(model, layer, target, gradient, upsample, return_stderr)


def grad_cam_cost(cam, params, images, *, target_stderr=None, gate_set=None):
    """The cost of ``cam(params, images)`` without running its circuits: ``cam.cost(...)``
    (see :meth:`GradCAM.cost`)."""
    if not isinstance(cam, GradCAM):
        raise TypeError(
            f"grad_cam_cost takes a GradCAM (xqml.grad_cam(model)), got {type(cam).__name__}."
        )
    return cam.cost(params, images, target_stderr=target_stderr, gate_set=gate_set)
