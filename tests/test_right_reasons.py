"""``xqml reproduce right-reasons``: the shortcut data set, the penalised fit, and the quick run.

The quick run trains the plain and the penalised classifier on one seed; the test below checks
that the penalty lowers the marker's share of the attribution on the training images, against
the plain model of the same seed (same initial weights, same mini-batches).
"""

import os

import numpy as np
import pytest

from pennylane_xqml.experiments.models import AmplitudeClassifier
from pennylane_xqml.experiments.reproductions import REPRODUCTIONS, load
from pennylane_xqml.experiments.reproductions.right_reasons import (
    COLUMNS,
    SHADES,
    VARIANTS,
    marker_mask,
    marker_mass,
    run,
    shortcut_digits,
)


def test_marker_mask():
    mask = marker_mask().reshape(8, 8)
    assert mask.sum() == 4 and mask[:2, :2].all()


def test_shortcut_digits():
    data = shortcut_digits(seed=3)
    mask = marker_mask()
    y_train, y_test = data["y_train"], data["y_test"]
    shades = np.asarray(SHADES)
    # training images: the marker's shade is the label's; flipped images the other label's
    np.testing.assert_array_equal(data["X_train"][:, mask], np.repeat(shades[y_train, None], 4, 1))
    np.testing.assert_array_equal(
        data["X_flipped"][:, mask], np.repeat(shades[1 - y_train, None], 4, 1)
    )
    np.testing.assert_array_equal(data["X_train"][:, ~mask], data["X_flipped"][:, ~mask])
    # test images: the same digits with and without a marker whose shade ignores the label
    np.testing.assert_array_equal(data["X_test"][:, ~mask], data["X_clean"][:, ~mask])
    test_shade = data["X_test"][:, mask][:, 0]
    for label in (0, 1):
        seen = set(test_shade[y_test == label].tolist())
        assert seen == set(SHADES)  # both shades occur in both classes
    agreement = np.mean(test_shade == shades[y_test])
    assert 0.35 < agreement < 0.65  # independent of the label (measured 0.5 +- 0.05)
    assert abs(len(y_test) / (len(y_train) + len(y_test)) - 0.3) < 0.01


def test_marker_mass():
    attributions = np.zeros((2, 64))
    attributions[0, marker_mask()] = [1.0, -1.0, 0.0, 0.0]
    attributions[0, 10] = 2.0
    attributions[1, 5] = -3.0
    np.testing.assert_allclose(marker_mass(attributions), [0.5, 0.0])


def test_fit_refuses_a_bad_penalty():
    X, y = np.eye(4)[:2] + 0.1, np.array([0, 1])
    clf = AmplitudeClassifier(n_qubits=2, n_layers=1)
    with pytest.raises(ValueError, match="strength >= 0"):
        clf.fit(X, y, epochs=1, penalty=(lambda x, w: 0.0, -1.0))
    with pytest.raises(ValueError, match="strength >= 0"):
        clf.fit(X, y, epochs=1, penalty=("not callable", 1.0))
    with pytest.raises(ValueError, match="strength >= 0"):
        clf.fit(X, y, epochs=1, penalty=lambda x, w: 0.0)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    output = str(tmp_path_factory.mktemp("right_reasons"))
    return output, run(output, quick=True, progress=False)


@pytest.mark.slow
def test_penalised_training_lowers_the_marker_mass(quick):
    _, result = quick
    plain, penalised = (result["per_seed"][v]["marker_mass"] for v in VARIANTS)
    assert len(plain) == len(penalised) == 1  # one seed: the same initial weights and batches
    assert penalised[0] < 0.75 * plain[0]


@pytest.mark.slow
def test_quick_run_writes_its_table_and_figure(quick):
    output, result = quick
    assert REPRODUCTIONS["right-reasons"] == "right_reasons"
    assert load("right-reasons") is run
    for label in COLUMNS.values():
        assert label in result["table"]
    with open(os.path.join(output, "right_reasons_table.txt"), encoding="utf-8") as f:
        assert f.read().strip() == result["table"]
    assert os.path.getsize(os.path.join(output, "right_reasons_attributions.png")) > 10_000
    for variant in VARIANTS:
        for key in COLUMNS:
            value = result["summary"][variant][key][0]
            assert 0.0 <= value <= 1.0
