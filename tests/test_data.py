import gzip
import struct

import numpy as np
import pennylane as qml
import pytest

from pennylane_xqml.experiments.data import (
    amplitude_vectors,
    bars_and_stripes,
    downsample,
    load_digits_pair,
    load_idx,
    load_mnist_like,
)


@pytest.mark.parametrize("size", [3, 4])
def test_bars_and_stripes_patterns(size):
    X, y = bars_and_stripes(size)
    n = 2 * (2**size - 2)
    assert X.shape == (n, size * size) and X.dtype == np.float64
    assert y.shape == (n,) and np.bincount(y).tolist() == [n // 2, n // 2]
    assert set(np.unique(X)) == {0.0, 1.0}
    assert len(np.unique(X, axis=0)) == n
    for x, label in zip(X, y):
        img = x.reshape(size, size)
        assert 0 < img.sum() < size * size
        is_bars = np.all(img == img[0])  # every row equal: vertical lines
        is_stripes = np.all(img == img[:, :1])  # every column equal: horizontal lines
        assert (is_bars, is_stripes) == (label == 0, label == 1)


def test_bars_and_stripes_sampling_and_noise():
    X, y = bars_and_stripes(4, n_samples=500, noise=0.1, seed=3)
    X2, y2 = bars_and_stripes(4, n_samples=500, noise=0.1, seed=3)
    assert X.shape == (500, 16) and y.shape == (500,)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    residual = X - np.round(X)
    assert 0.09 < residual.std() < 0.11
    clean, labels = bars_and_stripes(4)
    nearest = np.argmin(((X[:, None, :] - clean[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(labels[nearest], y)
    with pytest.raises(ValueError):
        bars_and_stripes(4, noise=-1.0)


def test_load_digits_pair():
    from sklearn.datasets import load_digits

    target = load_digits().target
    X, y = load_digits_pair((3, 8))
    assert X.shape == (np.isin(target, (3, 8)).sum(), 64) and X.dtype == np.float64
    assert X.min() >= 0 and X.max() <= 1
    assert y.sum() == (target == 8).sum() and set(y.tolist()) == {0, 1}
    images, labels = load_digits_pair((0, 1), return_images=True)
    assert images.shape[1:] == (8, 8)
    np.testing.assert_array_equal(images.reshape(len(images), -1), load_digits_pair()[0])
    np.testing.assert_array_equal(labels, load_digits_pair()[1])


@pytest.mark.parametrize("digits", [(1, 1), (0, 10), (0, 1, 2), (-1, 3), (0.5, 1)])
def test_load_digits_pair_rejects_bad_digits(digits):
    with pytest.raises(ValueError, match="distinct"):
        load_digits_pair(digits)


def _embedded_state(x, n_qubits, pad_with):
    @qml.qnode(qml.device("default.qubit", wires=n_qubits))
    def circuit():
        qml.AmplitudeEmbedding(x, wires=range(n_qubits), normalize=True, pad_with=pad_with)
        return qml.state()

    return circuit()


@pytest.mark.parametrize(
    "d, n_qubits, pad_with",
    [(16, None, 0.0), (13, None, 0.0), (5, 4, 0.0), (6, None, 0.3), (64, 6, 0.0)],
)
def test_amplitude_vectors_match_pennylane(d, n_qubits, pad_with):
    X = np.random.default_rng(d).uniform(-1, 1, size=(3, d))
    V = amplitude_vectors(X, n_qubits, pad_with)
    n = n_qubits or int(np.ceil(np.log2(d)))
    assert V.shape == (3, 2**n)
    for x, v in zip(X, V):
        np.testing.assert_allclose(v, _embedded_state(x, n, pad_with), atol=1e-12)


@pytest.mark.parametrize(
    "X, match",
    [
        ([[1.0, 2.0], [0.0, 0.0]], "all zero"),
        ([[1.0, np.nan]], "NaN"),
        ([[1.0, np.inf]], "NaN"),
        (np.ones((2, 5)), "do not fit"),
    ],
)
def test_amplitude_vectors_errors(X, match):
    with pytest.raises(ValueError, match=match):
        amplitude_vectors(X, n_qubits=2)


def _idx_bytes(array, code):
    dtype = {0x08: ">u1", 0x0D: ">f4", 0x0B: ">i2"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.asarray(array, dtype=dtype).tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "array, code",
    [
        (np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4), 0x08),
        (np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2), 0x0D),
        (np.array([-300, 7, 32000], dtype=np.int16), 0x0B),
    ],
)
def test_load_idx_round_trip(tmp_path, array, code, compress):
    raw = _idx_bytes(array, code)
    path = tmp_path / "data.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    loaded = load_idx(path)
    assert loaded.shape == array.shape and loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x01\x00\x08\x01\x00\x00\x00\x02\x05\x06",  # bad magic
        b"\x00\x00\x07\x01\x00\x00\x00\x02\x05\x06",  # unknown dtype code
        b"\x00\x00\x08\x02\x00\x00\x00\x02",  # truncated header
        b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06",  # truncated data
        b"\x1f\x8b\x08\x00garbage",  # corrupt gzip
    ],
)
def test_load_idx_malformed(tmp_path, raw):
    path = tmp_path / "bad.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError):
        load_idx(path)


@pytest.fixture
def mnist_like():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 8, 8), dtype=np.uint8), rng.integers(0, 10, size=5).astype(
        np.uint8
    )


@pytest.mark.parametrize("keys", [("x_train", "y_train"), ("images", "labels")])
def test_load_mnist_like_npz(tmp_path, mnist_like, keys):
    images, labels = mnist_like
    path = tmp_path / "mnist.npz"
    np.savez(path, **{keys[0]: images, keys[1]: labels})
    X, y = load_mnist_like(path)
    assert X.dtype == np.float64 and X.shape == (5, 8, 8)
    np.testing.assert_allclose(X, images / 255.0)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_like_idx(tmp_path, mnist_like):
    images, labels = mnist_like
    (tmp_path / "img.idx.gz").write_bytes(gzip.compress(_idx_bytes(images, 0x08)))
    (tmp_path / "lbl.idx").write_bytes(_idx_bytes(labels, 0x08))
    X, y = load_mnist_like(tmp_path / "img.idx.gz", tmp_path / "lbl.idx")
    np.testing.assert_allclose(X, images / 255.0)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(ValueError, match="labels_path"):
        load_mnist_like(tmp_path / "img.idx.gz")
    (tmp_path / "short.idx").write_bytes(_idx_bytes(labels[:3], 0x08))
    with pytest.raises(ValueError, match="labels"):
        load_mnist_like(tmp_path / "img.idx.gz", tmp_path / "short.idx")


def test_load_mnist_like_npz_errors(tmp_path, mnist_like):
    images, labels = mnist_like
    np.savez(tmp_path / "bad_keys.npz", a=images, b=labels)
    with pytest.raises(ValueError, match="expected keys"):
        load_mnist_like(tmp_path / "bad_keys.npz")
    np.savez(tmp_path / "range.npz", images=images * 2.0, labels=labels)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_mnist_like(tmp_path / "range.npz")


def test_downsample():
    images = np.arange(2 * 6 * 6, dtype=float).reshape(2, 6, 6)
    small = downsample(images, 2)
    assert small.shape == (2, 2, 2)
    for n in range(2):
        for i in range(2):
            for j in range(2):
                assert small[n, i, j] == images[n, 3 * i : 3 * i + 3, 3 * j : 3 * j + 3].mean()
    assert downsample(images, 3)[0, 0, 0] == np.mean([0, 1, 6, 7])
    np.testing.assert_array_equal(downsample(images, 6), images)
    with pytest.raises(ValueError, match="divisible"):
        downsample(images, 4)
    with pytest.raises(ValueError):
        downsample(images[0], 2)
