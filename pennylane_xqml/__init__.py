"""pennylane-xqml: explanations (attributions) for PennyLane QNodes."""

from . import metrics
from .autodiff import HadamardVJP, hadamard_vjp, input_vjp
from .devices import DeviceReport, check_device
from .engine.batching import explain_batch
from .engine.core import ModelCall
from .engine.cost import CostReport, GateCounts, QPertCost, cost_report
from .engine.functions import FunctionModelError
from .engine.transform import ExplainedFunction, ExplainedQNode
from .methods import qpert
from .methods.gate_shapley import GateShapley, GateShapleyResult, gate_shapley
from .methods.gradcam import CAMWeights, GradCAM, grad_cam, grad_cam_cost
from .methods.gradients import input_x_gradient, saliency, smoothgrad
from .methods.integrated_gradients import integrated_gradients
from .methods.perturbation import (
    feature_ablation,
    kernel_shap,
    lime,
    random_attribution,
    shapley_value_sampling,
    shapley_values,
)
from .methods.qlrp import qlrp, qlrp_entries
from .methods.qpert import QPertExplainer, QPertResult, qpert_cost, qpert_mask
from .methods.taylor_fourier import taylor_fourier
from .penalties import attribution_penalty

__version__ = "0.1.0"

# Experiment and backend modules that are heavier to import load on first use
# (``xqml.hybrid``, ``xqml.noise``), so ``import pennylane_xqml`` stays light.
_LAZY_SUBMODULES = {"hybrid": ".experiments.hybrid", "noise": ".noise"}


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib  # pylint: disable=import-outside-toplevel

        return importlib.import_module(_LAZY_SUBMODULES[name], __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CAMWeights",
    "CostReport",
    "DeviceReport",
    "ExplainedFunction",
    "ExplainedQNode",
    "FunctionModelError",
    "GateCounts",
    "GateShapley",
    "GateShapleyResult",
    "GradCAM",
    "HadamardVJP",
    "ModelCall",
    "QPertCost",
    "QPertExplainer",
    "QPertResult",
    "attribution_penalty",
    "check_device",
    "cost_report",
    "explain_batch",
    "feature_ablation",
    "gate_shapley",
    "grad_cam",
    "grad_cam_cost",
    "hadamard_vjp",
    "hybrid",
    "input_vjp",
    "input_x_gradient",
    "integrated_gradients",
    "kernel_shap",
    "lime",
    "metrics",
    "noise",
    "qlrp",
    "qlrp_entries",
    "qpert",
    "qpert_cost",
    "qpert_mask",
    "random_attribution",
    "saliency",
    "shapley_value_sampling",
    "shapley_values",
    "smoothgrad",
    "taylor_fourier",
]
