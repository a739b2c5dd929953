r"""QPert: learned perturbation masks for quantum classifiers (METHODS.md section 2).

For one instance ``x`` QPert optimises ``K`` masks ``m_k = sigmoid(θ_k) ∈ (0, 1)^d``, each paired
with a background row ``b_k``, and blends the instance with the background:

* ``mode="preserve"`` (default, the paper's appendix): ``x̃_k = m_k ⊙ x + (1 - m_k) ⊙ b_k``, the
  mask marks what must be *kept* for the prediction to survive;
* ``mode="delete"`` (the paper's method section): ``x̃_k = (1 - m_k) ⊙ x + m_k ⊙ b_k``, the mask
  marks what must be *removed* to suppress the prediction.

In both modes a large mask entry means an important feature. The loss is a sum of small pure
loss terms weighted by a phased schedule (:func:`schedule_weights`)

.. math:: L(t) = \sum_j c_j [t \ge s_j] L_j, \qquad
    j \in \{\text{target}, \text{l1}, \text{fidelity}, \text{entanglement}, \text{superposition}\}

(:func:`target_loss`, :func:`l1_loss`, :func:`fidelity_loss` / :func:`js_divergence`,
:func:`entanglement_loss`, :func:`superposition_loss`), minimised by an optax optimiser (Adam by
default) inside one ``jax.lax.scan``; the saliency is the mask averaged over its ``K`` copies and
normalised to sum 1. The whole explanation of one instance is one jit-compiled pure function,
and :meth:`QPertExplainer.explain_batch` ``vmap``\ s it over instances.

The fidelity term runs the *compute-uncompute* circuit on the QNode's own device (the model's
operations at ``x̃`` followed by the adjoint of its operations at ``x``; the probability of all
zeros is ``|<ψ(x)|ψ(x̃)>|²``), built from the QNode's tapes and executed with ``qml.execute``,
so it works on any device, with shots, and under ``jax.jit``. ``fidelity="js"`` replaces it by
the Jensen-Shannon divergence of the predicted class distributions (the paper's fallback when
the state is not accessible).

Differentiation goes through the QNode's own ``diff_method``: ``default.qubit`` with backprop is
the fast path; ``lightning.qubit`` works with ``diff_method="adjoint"`` for expectation-value
models (the fidelity circuit then measures the projector on ``|0...0>`` instead of
``qml.probs``, which adjoint differentiation does not support); QNodes with shots need
``diff_method="parameter-shift"`` (every iteration then runs ``O(d)`` shifted circuits per mask,
through a callback: correct but much slower).

Speed (measured on 2 shared CPU cores, float64, the paper's trained Iris model
``IrisQCL(n_layers=3)`` on ``default.qubit`` with backprop, ``head=class_probabilities``, 4 masks
per instance, the paper's schedule and coefficients): explaining the 30 Iris test instances with
1000 iterations each (one ``explain_batch`` call, 120 masks) runs in about 3 s (2.6 s of CPU)
with the compute-uncompute fidelity and about 1 s (0.8 s of CPU) with ``fidelity="js"``. The
first call also compiles: about 20 s of CPU (25-40 s of wall time on busy cores), 15 s with
``"js"``; most of it is XLA compiling the gradient of ``default.qubit``'s simulation. Later
calls with new weights or other instances of the same shape reuse the compiled code, and JAX's
persistent cache (``jax.config.update("jax_compilation_cache_dir", path)``) keeps it across
sessions (a new session then starts in about 5 s).
"""

from .explainer import QPertExplainer, qpert_cost, qpert_mask
from .fidelity import circuit_fidelity, compute_uncompute_tape, state_fidelity
from .losses import (
    DEFAULT_COEFFICIENTS,
    LOSS_TERMS,
    MODES,
    SCHEDULE_FRACTIONS,
    default_schedule,
    entanglement_loss,
    fidelity_loss,
    js_divergence,
    l1_loss,
    perturb,
    schedule_weights,
    shannon_entropy,
    superposition_loss,
    target_loss,
    total_loss,
)
from .optimise import QPertResult, saliency_from_masks
from .options import FIDELITY_OPTIONS, resolve_coefficients, resolve_schedule
from .search import PAPER_GRID, hyperparameter_search

__all__ = [
    "DEFAULT_COEFFICIENTS",
    "FIDELITY_OPTIONS",
    "LOSS_TERMS",
    "MODES",
    "PAPER_GRID",
    "SCHEDULE_FRACTIONS",
    "QPertExplainer",
    "QPertResult",
    "circuit_fidelity",
    "compute_uncompute_tape",
    "default_schedule",
    "entanglement_loss",
    "fidelity_loss",
    "hyperparameter_search",
    "js_divergence",
    "l1_loss",
    "perturb",
    "qpert_cost",
    "qpert_mask",
    "resolve_coefficients",
    "resolve_schedule",
    "saliency_from_masks",
    "schedule_weights",
    "shannon_entropy",
    "state_fidelity",
    "superposition_loss",
    "target_loss",
    "total_loss",
]
