import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from pennylane_xqml.experiments.data import bars_and_stripes, load_digits_pair
from pennylane_xqml.experiments.models import AmplitudeClassifier
from pennylane_xqml.testing import assert_close


def _train(X, y, n_qubits):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    clf = AmplitudeClassifier(n_qubits).fit(X_train, y_train)
    return clf, X_test, y_test


@pytest.fixture(scope="module")
def bars():
    return _train(*bars_and_stripes(4, n_samples=1000, noise=0.05, seed=0), n_qubits=4)


@pytest.fixture(scope="module")
def digits():
    return _train(*load_digits_pair((0, 1)), n_qubits=6)


@pytest.mark.slow
@pytest.mark.parametrize("trained", ["bars", "digits"])
def test_accuracy_and_loss_history(trained, request):
    clf, X_test, y_test = request.getfixturevalue(trained)
    assert clf.score(X_test, y_test) >= 0.9
    history = np.array(clf.history)
    assert len(history) == 30
    assert history[-1] < 0.8 * history[0]
    assert history[-5:].mean() < history[:5].mean()


def test_predictions_match_qnode(digits):
    clf, X_test, _ = digits
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test),) and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(clf.predict(X_test), (proba > 0.5).astype(int))
    expected = [(1 - clf.qnode(x, clf.weights)) / 2 for x in X_test[:3]]
    assert_close(proba[:3], expected, rtol64=1e-7, atol64=1e-10)


def test_weights_and_device():
    clf = AmplitudeClassifier(3, n_layers=2, device="default.qubit", seed=1)
    assert clf.weights.shape == (2, 3, 3)
    np.testing.assert_array_equal(clf.weights, AmplitudeClassifier(3, n_layers=2, seed=1).weights)
    assert not np.allclose(clf.weights, AmplitudeClassifier(3, n_layers=2, seed=2).weights)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.ones(4), [1], "2-D"),
        (np.ones((2, 5)), [0, 1], "do not fit"),
        (np.zeros((2, 4)), [0, 1], "all zero"),
        ([[1.0, np.nan, 0, 0], [1, 0, 0, 0]], [0, 1], "NaN"),
        (np.ones((2, 4)), [0, 1, 1], "shape"),
        (np.ones((2, 4)), [0, 2], "only 0 and 1"),
    ],
)
def test_validation(X, y, match):
    clf = AmplitudeClassifier(2, n_layers=1)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    with pytest.raises(ValueError, match=match):
        clf.score(X, y)


def test_predict_validation():
    clf = AmplitudeClassifier(2, n_layers=1)
    with pytest.raises(ValueError, match="do not fit"):
        clf.predict(np.ones((1, 8)))
    with pytest.raises(ValueError, match="positive"):
        AmplitudeClassifier(0)
