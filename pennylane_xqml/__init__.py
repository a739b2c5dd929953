"""pennylane-xqml: explanations (attributions) for PennyLane QNodes."""

from .core import ModelCall
from .gradients import input_x_gradient, saliency, smoothgrad
from .integrated_gradients import integrated_gradients
from .transform import ExplainedQNode

__version__ = "0.1.0"

__all__ = [
    "ExplainedQNode",
    "ModelCall",
    "input_x_gradient",
    "integrated_gradients",
    "saliency",
    "smoothgrad",
]
