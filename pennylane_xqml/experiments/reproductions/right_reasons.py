"""``xqml reproduce right-reasons``: training with explanations (Ross et al., 2017) on digits.

Ross, Hughes and Doshi-Velez, "Right for the Right Reasons" (IJCAI 2017), train with a penalty on
the input gradients of regions annotated as irrelevant, and show on "decoy MNIST" that a model
trained so ignores a shortcut that a plainly trained model learns. Here the same experiment runs
on the amplitude-embedded classifier (:class:`~pennylane_xqml.experiments.models.AmplitudeClassifier`,
6 qubits, 8x8 digits from scikit-learn), with the penalty computed from the package's own
differentiable explanation, exact amplitude integrated gradients
(:func:`~pennylane_xqml.attribution_penalty`).

Choices (documented):

* **Data.** Two digit classes of scikit-learn's shipped 8x8 digits (:data:`DIGITS`: 3 and 8),
  split into training and test images by the seed (stratified, 30% test). Why 3 vs 8: on 0 vs 1
  the plain classifier separates the digits themselves and ignores the marker (seed 0, 15
  epochs: 0.96 accuracy on flipped-marker training images), so there is no shortcut to remove.
* **Shortcut.** A 2x2 marker in the top-left corner (:data:`MARKER`, painted over the image;
  those pixels are blank in 78% of these digits) whose brightness is ``SHADES[y]``
  (:data:`SHADES`, pixel values before the embedding normalises the image): on training images
  it predicts the label perfectly. On test images the shade is drawn at random, independent of the
  label. "Flipped" training images carry the other class's shade.
* **Penalty.** ``strength * Σ_marker IG_i²`` (``norm="l2"``), integrated gradients from the zero
  amplitude baseline, ``IG_i = a_i Re(M a)_i`` (exact), averaged over each mini-batch and added to
  the binary cross-entropy inside :meth:`AmplitudeClassifier.fit` (one training loop,
  :func:`~pennylane_xqml.experiments.training.train`).
* **Marker attribution mass**: the share of the absolute IG attribution on the 4 marker pixels,
  ``Σ_marker |IG_i| / Σ_i |IG_i|``, averaged over the training images (4/64 = 0.0625 would be a
  uniform share). Both models start from the same weights and see the same mini-batches.
* **Reference** (full run only): the plain model trained on the same images without a marker,
  evaluated like the others: how well this classifier does on these digits with no shortcut.
* **Compilation.** Every seed trains the same programs (plain and penalised steps); when JAX has no persistent
  compilation cache configured, the run sets one in ``output_dir/.jax_cache`` so that later seeds
  (and later runs) reuse the compiled steps.
"""

from __future__ import annotations

import contextlib
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ... import attribution_penalty, integrated_gradients
from ...engine.inputs import enable_x64
from ..data import load_digits_pair
from ..models import AmplitudeClassifier

#: The two digit classes (label 0, label 1).
DIGITS = (3, 8)
#: Pixels (row, column) of the corner marker.
MARKER = ((0, 0), (0, 1), (1, 0), (1, 1))
#: Marker brightness for label 0 and label 1 (pixel values lie in [0, 1]).
SHADES = (0.35, 1.0)
#: Strength of the penalty on the marker's squared integrated gradients.
STRENGTH = 30.0
#: ``(seeds, epochs, training images)`` of the full and the quick run.
FULL = (5, 15, None)
QUICK = (1, 6, 120)
#: ``StronglyEntanglingLayers`` of the classifier.
N_LAYERS = 2

#: The models of every seed: trained on the shortcut images, without and with the penalty.
VARIANTS = ("plain", "penalised")
#: The full run's reference: the plain model trained on the same images without any marker.
REFERENCE = "no marker"
COLUMNS = {
    "train_acc": "train acc",
    "test_acc": "test acc (random marker)",
    "clean_acc": "test acc (no marker)",
    "flipped_acc": "train acc (flipped marker)",
    "marker_mass": "IG mass on marker",
}
#: ``(images, labels)`` of the accuracy columns, in their order.
SETS = (("train", "train"), ("test", "test"), ("clean", "test"), ("flipped", "train"))


def marker_mask(image_shape=(8, 8)) -> np.ndarray:
    """The boolean pixel mask of :data:`MARKER`, flattened row-major."""
    mask = np.zeros(image_shape, dtype=bool)
    for r, c in MARKER:
        mask[r, c] = True
    return mask.reshape(-1)


def with_marker(X, shades) -> np.ndarray:
    """Copies of the flattened images ``X`` with the marker painted at ``shades`` (one per row)."""
    X = np.array(X, dtype=np.float64)
    X[:, marker_mask()] = np.asarray(shades, dtype=np.float64)[:, None]
    return X


def shortcut_digits(seed=0, n_train=None, digits=DIGITS):
    """The shortcut data set of one seed: ``{"X_unmarked", "X_train", "y_train", "X_flipped",
    "X_test", "X_clean", "y_test"}`` (flattened 8x8 images in [0, 1]).

    Training images carry the marker of their label's shade; ``X_flipped`` are the same images
    with the other label's shade; ``X_test`` carry a random shade (independent of the label) and
    ``X_clean`` no marker; ``X_unmarked`` are the training images without a marker.
    ``n_train`` keeps only that many training images (quick runs).
    """
    from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel

    X, y = load_digits_pair(digits)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    if n_train is not None:
        X_tr, y_tr = X_tr[:n_train], y_tr[:n_train]
    shades = np.asarray(SHADES)
    random_shade = np.random.default_rng(seed).integers(0, 2, size=len(y_te))
    return {
        "X_unmarked": X_tr,
        "X_train": with_marker(X_tr, shades[y_tr]),
        "y_train": y_tr,
        "X_flipped": with_marker(X_tr, shades[1 - y_tr]),
        "X_test": with_marker(X_te, shades[random_shade]),
        "X_clean": X_te,
        "y_test": y_te,
    }


@contextlib.contextmanager
def _compilation_cache(output_dir):
    """JAX's persistent compilation cache in ``output_dir/.jax_cache`` for the block, unless the
    user configured one; the setting is restored afterwards. (JAX reads it when it first
    compiles: in a process that compiled before, such as a test session, it has no effect.)"""
    previous = jax.config.jax_compilation_cache_dir
    if previous is None:
        jax.config.update("jax_compilation_cache_dir", os.path.join(output_dir, ".jax_cache"))
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)


class _Evaluator:
    """Predictions and IG attributions of any weights of one architecture, compiled once."""

    def __init__(self, qnode):
        self.forward = jax.jit(jax.vmap(qnode, in_axes=(0, None)))
        self.explain = jax.jit(jax.vmap(integrated_gradients(qnode), in_axes=(0, None)))

    def accuracies(self, sets, weights):
        """``[accuracy on (X, y) for (X, y) in sets]``, in one compiled call (one shape)."""
        expvals = np.asarray(self.forward(jnp.asarray(np.vstack([X for X, _ in sets])), weights))
        bounds = np.cumsum([0] + [len(y) for _, y in sets])
        predicted = expvals < 0  # P(1) = (1 - <Z>) / 2 > 1/2
        return [
            float(np.mean(predicted[a:b] == y)) for (_, y), a, b in zip(sets, bounds, bounds[1:])
        ]

    def attributions(self, X, weights):
        return np.asarray(self.explain(jnp.asarray(X), weights))


def marker_mass(attributions) -> np.ndarray:
    """``Σ_marker |A_i| / Σ_i |A_i|`` for each row of ``attributions``."""
    magnitude = np.abs(attributions)
    return magnitude[:, marker_mask()].sum(axis=1) / magnitude.sum(axis=1)


def format_table(summary, n_seeds):
    variants = list(summary)
    width = 36
    lines = [
        f"{'metric (mean ± std over ' + str(n_seeds) + ' seeds)':<{width}}"
        + "".join(f"{v:>20}" for v in variants),
        "-" * (width + 20 * len(variants)),
    ]
    for key, label in COLUMNS.items():
        cells = "".join(
            f"{summary[v][key][0]:>13.3f} ± {summary[v][key][1]:<4.3f}" for v in variants
        )
        lines.append(f"{label:<{width}}{cells}")
    return "\n".join(lines)


def _figure(output_dir, images, maps, labels, rows_of_seed):
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    from matplotlib.patches import Rectangle  # pylint: disable=import-outside-toplevel

    n = len(images)
    panels = [("input; the marker\n(orange) predicts the label", images, "gray_r")] + [
        (
            (
                f"IG, {v} training\ntest acc {rows_of_seed[v]['test_acc']:.2f}, "
                f"flipped {rows_of_seed[v]['flipped_acc']:.2f}"
            ),
            maps[v],
            "RdBu_r",
        )
        for v in VARIANTS
    ]
    scale = max(np.abs(maps[v]).max() for v in VARIANTS)
    fig, axes = plt.subplots(3, n, figsize=(1.9 * n + 1.6, 6.6), squeeze=False)
    for r, (title, values, cmap) in enumerate(panels):
        for j in range(n):
            ax = axes[r, j]
            limits = {"vmin": 0, "vmax": 1} if r == 0 else {"vmin": -scale, "vmax": scale}
            im = ax.imshow(values[j].reshape(8, 8), cmap=cmap, **limits)
            ax.add_patch(Rectangle((-0.5, -0.5), 2, 2, fill=False, ec="tab:orange", lw=2))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"digit {DIGITS[labels[j]]} (label {labels[j]})", fontsize=9)
            else:
                share = marker_mass(values[j][None])[0]
                ax.set_xlabel(f"{share:.0%} of |IG| on the marker", fontsize=8)
            if j == 0:
                ax.set_ylabel(title, fontsize=8)
        if r > 0:
            fig.colorbar(
                im,
                ax=axes[r, :].tolist(),
                shrink=0.85,
                label=f"IG of <Z>\n(red: {DIGITS[0]}, blue: {DIGITS[1]})",
            )
    fig.suptitle(
        f"Right for the right reasons: digits {DIGITS[0]} vs {DIGITS[1]}, seed 0, training images",
        fontsize=10,
    )
    path = os.path.join(output_dir, "right_reasons_attributions.png")
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def train_models(data, seed, epochs, variants=VARIANTS, strength=STRENGTH, progress=False):
    """The classifiers of one seed, ``{variant: model}`` (same initial weights and mini-batches),
    and the seconds each took to train. ``"penalised"`` adds ``strength`` times the marker's
    squared IG to the loss; :data:`REFERENCE` trains on the images without a marker."""
    models, seconds = {}, {}
    for variant in variants:
        model = AmplitudeClassifier(n_qubits=6, n_layers=N_LAYERS, seed=seed)
        penalty = None
        if variant == "penalised":
            fn = attribution_penalty(integrated_gradients(model.qnode), marker_mask())
            penalty = (fn, strength)
        start = time.perf_counter()
        model.fit(
            data["X_unmarked" if variant == REFERENCE else "X_train"],
            data["y_train"],
            epochs=epochs,
            batch_size=16,
            seed=seed,
            penalty=penalty,
            progress=progress,
        )
        seconds[variant] = time.perf_counter() - start
        models[variant] = model
    return models, seconds


def run(output_dir="xqml_output", quick=False, progress=True):
    """Train with and without the penalty over the seeds; returns ``{"table", "summary",
    "per_seed", "seconds"}``. ``quick=True``: one seed, 6 epochs, 120 training images and no
    reference model (the full run also trains :data:`REFERENCE` on images without a marker)."""
    start = time.perf_counter()
    enable_x64()
    os.makedirs(output_dir, exist_ok=True)
    n_seeds, epochs, n_train = QUICK if quick else FULL
    variants = VARIANTS if quick else (*VARIANTS, REFERENCE)
    per_seed = {v: {k: [] for k in COLUMNS} for v in variants}
    evaluator, figure_data = None, None
    with _compilation_cache(output_dir):
        for seed in range(n_seeds):
            data = shortcut_digits(seed, n_train)
            models, fit_seconds = train_models(data, seed, epochs, variants, progress=progress)
            evaluator = evaluator or _Evaluator(models["plain"].qnode)
            maps, rows = {}, {}
            for variant, model in models.items():
                w = model.weights
                attributions = evaluator.attributions(data["X_train"], w)
                maps[variant] = attributions
                sets = [(data[f"X_{name}"], data[f"y_{labels}"]) for name, labels in SETS]
                row = dict(zip(COLUMNS, evaluator.accuracies(sets, w)))
                row["marker_mass"] = float(marker_mass(attributions).mean())
                rows[variant] = row
                for key, value in row.items():
                    per_seed[variant][key].append(value)
                print(
                    f"seed {seed} {variant:>9}: trained in {fit_seconds[variant]:.1f} s, "
                    + ", ".join(f"{k} {v:.3f}" for k, v in row.items())
                )
            if seed == 0:
                y = data["y_train"]
                picks = np.concatenate([np.flatnonzero(y == 0)[:2], np.flatnonzero(y == 1)[:2]])
                figure_data = (
                    data["X_train"][picks],
                    {v: maps[v][picks] for v in VARIANTS},
                    y[picks],
                    rows,
                )
    summary = {
        v: {k: (float(np.mean(vals)), float(np.std(vals))) for k, vals in per_seed[v].items()}
        for v in variants
    }
    table = format_table(summary, n_seeds)
    seconds = time.perf_counter() - start
    print(table)
    print(
        f"(digits {DIGITS[0]} vs {DIGITS[1]}, marker shades {SHADES}, penalty strength {STRENGTH}, "
        f"{epochs} epochs; a uniform share of attribution on the marker would be "
        f"{marker_mask().mean():.4f}; {seconds:.0f} s)"
    )
    figure = _figure(output_dir, *figure_data)
    table_path = os.path.join(output_dir, "right_reasons_table.txt")
    with open(table_path, "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print(f"figure written to {figure}; table written to {table_path}")
    return {"table": table, "summary": summary, "per_seed": per_seed, "seconds": seconds}
