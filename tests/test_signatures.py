"""Every public method shows its options, with their defaults, to ``help()`` and
``inspect.signature``; the options listed are exactly the ones it accepts."""

import inspect
import pydoc

import numpy as np
import pennylane as qml
import pytest

import pennylane_xqml as xqml

SHARED = ["argnums", "target", "gradient", "ancilla", "return_stderr", "broadcast"]

METHODS = {
    "integrated_gradients": ["baselines", "n_steps", "method", "baseline_data"],
    "saliency": ["abs"],
    "input_x_gradient": [],
    "smoothgrad": ["nt_type", "nt_samples", "stdevs", "seed"],
    "feature_ablation": ["baselines", "baseline_data", "feature_mask"],
    "shapley_values": ["background", "baselines", "feature_mask"],
    "shapley_value_sampling": ["background", "baselines", "n_samples", "seed", "antithetic"],
    "kernel_shap": ["background", "baselines", "n_samples", "seed", "feature_mask"],
    "lime": ["n_samples", "kernel_width", "distance_mode", "alpha", "baselines", "seed"],
    "random_attribution": ["seed"],
    "taylor_fourier": ["root", "spectrum", "root_steps", "root_tol"],
    "qlrp": [
        "rule",
        "epsilon",
        "alpha",
        "beta",
        "contributions",
        "shared",
        "root",
        "spectrum",
        "root_steps",
        "root_tol",
    ],
}
WITH_DELTA = {
    "integrated_gradients",
    "shapley_values",
    "shapley_value_sampling",
    "kernel_shap",
    "taylor_fourier",
    "qlrp",
}


def _model():
    @qml.qnode(qml.device("default.qubit", wires=2))
    def model(x):
        qml.AngleEmbedding(x, wires=range(2))
        qml.CNOT([0, 1])
        return qml.expval(qml.Z(1))

    return model


@pytest.mark.parametrize("name", sorted(METHODS))
def test_signature_lists_every_option_with_its_default(name):
    method = getattr(xqml, name)
    params = inspect.signature(method).parameters
    assert next(iter(params)) == "qnode"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(params.values())[1:])
    for option in METHODS[name] + SHARED:
        assert option in params, (name, option)
    assert ("return_convergence_delta" in params) == (name in WITH_DELTA)
    text = pydoc.render_doc(method, renderer=pydoc.plaintext)
    for option in params:
        assert option in text, (name, option)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_listed_option_is_accepted_at_its_default(name):
    method = getattr(xqml, name)
    defaults = {
        k: p.default for k, p in inspect.signature(method).parameters.items() if k != "qnode"
    }
    explained = method(_model(), **defaults)
    assert isinstance(explained, xqml.ExplainedQNode)


@pytest.mark.parametrize("name", sorted(set(METHODS) - WITH_DELTA))
def test_methods_without_a_delta_refuse_it(name):
    with pytest.raises(ValueError, match="return_convergence_delta"):
        getattr(xqml, name)(_model(), return_convergence_delta=True)(np.array([0.1, 0.2]))
