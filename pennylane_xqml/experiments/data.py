"""Small image data sets for amplitude-embedded classifiers (no downloads, ever).

Everything here returns plain ``numpy`` arrays: ``bars_and_stripes`` generates its
patterns, ``load_digits_pair`` uses the 8x8 digits shipped with scikit-learn, and
``load_idx`` / ``load_mnist_like`` read MNIST-style files the user already has.
"""

import gzip
import itertools
import math
import struct
import zipfile

import numpy as np

__all__ = [
    "amplitude_vectors",
    "bars_and_stripes",
    "downsample",
    "load_digits_pair",
    "load_idx",
    "load_mnist_like",
]

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def bars_and_stripes(size=4, n_samples=None, noise=0.0, seed=None):
    """Bars (label 0, vertical lines) and stripes (label 1, horizontal lines).

    Returns every pattern of a ``size`` x ``size`` grid except the ambiguous
    all-zero and all-one images, flattened row-major to shape ``(N, size**2)``
    with ``N = 2 * (2**size - 2)``. With ``n_samples`` that many patterns are
    drawn with replacement; ``noise`` adds Gaussian noise of that standard
    deviation. ``seed`` seeds both.

    >>> X, y = bars_and_stripes(3)
    >>> X.shape, int(y.sum())
    ((12, 9), 6)
    """
    if size < 2:
        raise ValueError(f"size must be at least 2; got {size}.")
    if noise < 0:
        raise ValueError(f"noise must be non-negative; got {noise}.")
    lines = np.array(list(itertools.product((0.0, 1.0), repeat=size))[1:-1])
    bars = np.repeat(lines[:, None, :], size, axis=1)
    stripes = np.repeat(lines[:, :, None], size, axis=2)
    X = np.concatenate([bars, stripes]).reshape(-1, size * size)
    y = np.repeat([0, 1], len(lines))
    rng = np.random.default_rng(seed)
    if n_samples is not None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be positive; got {n_samples}.")
        idx = rng.integers(len(X), size=n_samples)
        X, y = X[idx], y[idx]
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X, y


def load_digits_pair(digits=(0, 1), return_images=False):
    """Two classes of scikit-learn's shipped 8x8 digits, scaled to ``[0, 1]``.

    ``X`` has shape ``(N, 64)`` (or ``(N, 8, 8)`` with ``return_images=True``);
    ``y`` is 0 for ``digits[0]`` and 1 for ``digits[1]``.

    >>> X, y = load_digits_pair((3, 8))
    >>> X.shape[1], sorted(set(y.tolist()))
    (64, [0, 1])
    """
    digits = tuple(digits)
    if (
        len(digits) != 2
        or not all(isinstance(d, (int, np.integer)) and 0 <= d <= 9 for d in digits)
        or digits[0] == digits[1]
    ):
        raise ValueError(f"digits must be two distinct integers in 0..9; got {digits}.")
    from sklearn.datasets import load_digits

    data = load_digits()
    mask = np.isin(data.target, digits)
    X = (data.images if return_images else data.data)[mask].astype(np.float64) / 16.0
    y = (data.target[mask] == digits[1]).astype(np.int64)
    return X, y


def amplitude_vectors(X, n_qubits=None, pad_with=0.0):
    """The state vectors ``qml.AmplitudeEmbedding(x, pad_with=pad_with, normalize=True)``
    prepares for each row ``x`` of ``X``.

    Rows are padded with ``pad_with`` to length ``2**n_qubits`` (default: the
    smallest power of two that fits) and L2-normalised.

    >>> amplitude_vectors([[3.0, 4.0, 0.0]])
    array([[0.6, 0.8, 0. , 0. ]])
    """
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 1-D or 2-D array; got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.complexfloating):
        X = X.astype(np.float64)
    d = X.shape[1]
    n_qubits = max(1, math.ceil(math.log2(d))) if n_qubits is None else n_qubits
    dim = 2**n_qubits
    if d > dim:
        raise ValueError(f"Rows of length {d} do not fit into {n_qubits} qubits (at most {dim}).")
    if not np.all(np.isfinite(X)) or not np.isfinite(pad_with):
        raise ValueError("X contains NaN or infinite values.")
    padded = np.concatenate([X, np.full((len(X), dim - d), pad_with, dtype=X.dtype)], axis=1)
    norms = np.linalg.norm(padded, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise ValueError(f"Rows {zero.tolist()} are all zero and cannot be amplitude-embedded.")
    return padded / norms


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt gzip stream ({err}).") from err
    return raw


def load_idx(path):
    """Read an (optionally gzipped) MNIST/FashionMNIST IDX file into a numpy array.

    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.idx")
    >>> _ = open(p, "wb").write(bytes([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 2, 7, 9]))
    >>> load_idx(p)
    array([[7, 9]], dtype=uint8)
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()}).")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data has {len(raw) - header} bytes; shape {shape} needs {expected}."
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def load_mnist_like(images_path, labels_path=None):
    """Load MNIST-like images as float64 in ``[0, 1]`` with shape ``(N, H, W)`` and int labels.

    Accepts an IDX images file plus an IDX labels file, or a single ``.npz`` with
    keys ``x_train``/``y_train`` (Keras' ``mnist.npz``) or ``images``/``labels``.
    Integer images are divided by 255; float images must already lie in ``[0, 1]``.

    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> np.savez(p, images=np.full((2, 4, 4), 255, np.uint8), labels=[3, 5])
    >>> images, labels = load_mnist_like(p)
    >>> images.shape, float(images.max()), labels.tolist()
    ((2, 4, 4), 1.0, [3, 5])
    """
    if zipfile.is_zipfile(images_path):
        if labels_path is not None:
            raise ValueError("labels_path must be None when images_path is an .npz file.")
        with np.load(images_path) as npz:
            keys = ("x_train", "y_train") if "x_train" in npz.files else ("images", "labels")
            if not set(keys) <= set(npz.files):
                raise ValueError(
                    f"{images_path}: expected keys x_train/y_train or images/labels; got {npz.files}."
                )
            images, labels = npz[keys[0]], npz[keys[1]]
    else:
        if labels_path is None:
            raise ValueError("labels_path is required for an IDX images file.")
        images, labels = load_idx(images_path), load_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W); got {images.shape}.")
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    scaled = (
        images / 255.0 if np.issubdtype(images.dtype, np.integer) else images.astype(np.float64)
    )
    if not np.all((scaled >= 0) & (scaled <= 1)):
        raise ValueError("image values must lie in [0, 255] (integers) or [0, 1] (floats).")
    return scaled, labels.astype(np.int64)


def downsample(images, size):
    """Average-pool ``(N, H, W)`` images to ``(N, size, size)``; ``H`` and ``W`` must be multiples of ``size``.

    >>> downsample(np.arange(16.0).reshape(1, 4, 4), 2)
    array([[[ 2.5,  4.5],
            [10.5, 12.5]]])
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W); got {images.shape}.")
    n, h, w = images.shape
    if size < 1 or h % size or w % size:
        raise ValueError(f"Image size {h}x{w} is not divisible by {size}.")
    return images.reshape(n, size, h // size, size, w // size).mean(axis=(2, 4))
