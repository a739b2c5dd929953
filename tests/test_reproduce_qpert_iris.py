"""`xqml reproduce qpert-iris` end to end (quick mode): real runs, no stored numbers but the paper's."""

import os

import jax
import numpy as np
import pytest

from pennylane_xqml.experiments.iris import IrisQCL, load_iris_split
from pennylane_xqml.experiments.reproductions import qpert_iris

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves this module out


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qpert_iris")
    return folder, qpert_iris.run(str(folder), quick=True, progress=False)


def test_model_and_methods(outcome):
    _, result = outcome
    assert result["accuracy"] >= 0.9
    expected = {"QPert", "IG", "Shapley (exact)", "KernelSHAP", "LIME", "Ablation", "Random"}
    assert expected <= set(result["scores"])
    for name, score in result["scores"].items():
        for key in ("auci", "audc"):
            assert 0.0 <= score[key] <= 1.0, name
        assert np.isclose(score["auc_difference"], score["auci"] - score["audc"])
        assert result["attributions"][name].shape == (30, 4)


def test_kernel_shap_enumerates_to_exact_shapley(outcome):
    _, result = outcome
    attributions = result["attributions"]
    np.testing.assert_allclose(
        attributions["KernelSHAP"], attributions["Shapley (exact)"], atol=1e-8
    )
    if "shap.KernelExplainer" in attributions:  # the optional extra validates our Shapley values
        np.testing.assert_allclose(
            attributions["shap.KernelExplainer"], attributions["Shapley (exact)"], atol=1e-6
        )


def test_table_and_figures(outcome):
    folder, result = outcome
    assert "0.529" in result["table"] and "0.496" in result["table"]  # the paper's reference rows
    for name in ("saliency", "insertion_deletion", "losses"):
        path = os.path.join(folder, f"qpert_iris_{name}.png")
        assert os.path.getsize(path) > 10_000


def test_worker_processes_compute_what_one_process_computes():
    """Stages spread over spawned worker processes give the in-process values exactly, and
    ablation's values are the class-probability differences computed from the model's own
    state-vector simulation (an independent route)."""
    split = load_iris_split(0)
    model = IrisQCL(seed=0)  # untrained: the comparison holds for any weights
    classes = np.asarray(model.predict(split.X_test))
    stages = ("Ablation", "LIME")
    here, _ = qpert_iris.run_stages(model, split, classes, quick=True, workers=1, stages=stages)
    there, waited = qpert_iris.run_stages(
        model, split, classes, quick=True, workers=2, stages=stages, while_waiting=lambda: "ok"
    )
    assert waited == "ok"
    for name in stages:
        np.testing.assert_array_equal(here[name][0], there[name][0])
        assert here[name][2] is None and there[name][2] is None
    X = split.X_test
    rows = np.arange(len(X))
    p = model.predict_proba(X)[rows, classes]
    expected = np.empty_like(X)
    for i in range(X.shape[1]):
        ablated = X.copy()
        ablated[:, i] = split.X_train[:, i].mean()
        expected[:, i] = p - model.predict_proba(ablated)[rows, classes]
    atol = 1e-10 if jax.config.jax_enable_x64 else 1e-5  # XQML_X64=0: float32 circuits
    np.testing.assert_allclose(here["Ablation"][0], expected, atol=atol)
