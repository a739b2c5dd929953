"""pennylane-xqml: explanations (attributions) for PennyLane QNodes."""

from . import metrics
from .core import ModelCall
from .gradients import input_x_gradient, saliency, smoothgrad
from .integrated_gradients import integrated_gradients
from .perturbation import (
    feature_ablation,
    kernel_shap,
    lime,
    random_attribution,
    shapley_value_sampling,
    shapley_values,
)
from .transform import ExplainedQNode

__version__ = "0.1.0"

__all__ = [
    "ExplainedQNode",
    "ModelCall",
    "feature_ablation",
    "input_x_gradient",
    "metrics",
    "integrated_gradients",
    "kernel_shap",
    "lime",
    "random_attribution",
    "saliency",
    "shapley_value_sampling",
    "shapley_values",
    "smoothgrad",
]
