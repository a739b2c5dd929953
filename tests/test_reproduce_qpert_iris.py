"""`xqml reproduce qpert-iris` end to end (quick mode): real runs, no stored numbers but the paper's."""

import os

import numpy as np
import pytest

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
