"""``xqml reproduce gradcam-digits``: QGrad-CAM on the hybrid CNN–VQC digits model, scored.

It trains :class:`~pennylane_xqml.experiments.hybrid.HybridCNNVQC` on the scikit-learn digits 0–3
(:func:`~pennylane_xqml.experiments.hybrid.load_digits_images`, 540 train / 180 test images), computes
QGrad-CAMs of the ``conv2`` maps (:func:`~pennylane_xqml.methods.gradcam.grad_cam`, the VQC
differentiated by the **parameter-shift** rule) and

* draws a grid of test digits (``gradcam_digits_grid.png``): each image, its CAM for the
  predicted class and its CAM for the runner-up class (the second-highest logit) — two
  class-discriminative maps of the same image;
* scores the predicted-class CAMs by insertion/deletion
  (:func:`~pennylane_xqml.metrics.evaluate_insertion_deletion`) over the test images: the 64
  pixels are ranked by the CAM (bilinearly upsampled to 8x8), the tracked quantity is the
  softmax probability of the predicted class, one pixel per step.

Choices (documented): the **baseline is zeros**, i.e. the blank (black) image, which is what
"removing ink" means for these digits; the class-mean baselines of the tabular reproductions
would insert another digit's strokes. Pixels tied in the ranking (a CAM is ReLU'd, so many
pixels are exactly 0) keep their raster order, as in :func:`~pennylane_xqml.metrics.
insertion_deletion`. Reference rows: a random ranking (uniform scores, seeded), the plain
input-gradient saliency ``|∂f^c/∂x|`` (Simonyan et al.) and gradient × input, both by
``jax.grad`` of the predicted class's logit through the analytic simulator. The CAM lives at
the 6x6 ``conv2`` resolution, so it is a coarse ranking; the pixel-level gradients are the
stronger baselines to beat, and the table reports whatever the run gives.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ... import metrics
from ...engine.inputs import enable_x64
from ...methods.gradcam import grad_cam
from ..hybrid import HybridCNNVQC, load_digits_images


def _figure(output_dir, images, labels, predicted, second, cam_pred, cam_second, logits):
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.2))
    axes = np.asarray(axes).reshape(3, n)
    for i in range(n):
        axes[0, i].imshow(images[i], cmap="gray_r")
        axes[0, i].set_title(f"label {labels[i]}", fontsize=8)
        for row, cam, c in ((1, cam_pred, predicted), (2, cam_second, second)):
            axes[row, i].imshow(images[i], cmap="gray_r", alpha=0.35)
            axes[row, i].imshow(cam[i], cmap="jet", alpha=0.65)
            axes[row, i].set_title(f"CAM class {c[i]} (f={logits[i, c[i]]:.2f})", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1, 0].set_ylabel("predicted", fontsize=8)
    axes[2, 0].set_ylabel("runner-up", fontsize=8)
    fig.suptitle("QGrad-CAM (parameter shift) of the hybrid CNN-VQC, digits 0-3", fontsize=9)
    fig.tight_layout()
    path = os.path.join(output_dir, "gradcam_digits_grid.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_table(scores):
    """Methods ranked by AUC-Diff: AUCI (higher better), AUDC (lower better), AUC-Diff."""
    ranked = sorted(scores, key=lambda m: -scores[m]["auc_difference"])
    lines = [
        f"{'method':<26}{'AUCI':>7}{'AUDC':>7}{'AUC-Diff':>10}{'± std':>8}{'rank':>6}",
        "-" * 64,
    ]
    for rank, method in enumerate(ranked, start=1):
        s = scores[method]
        lines.append(
            f"{method:<26}{s['auci']:>7.3f}{s['audc']:>7.3f}{s['auc_difference']:>10.3f}"
            f"{s['auc_difference_std']:>8.3f}{rank:>6}"
        )
    return "\n".join(lines)


def run(output_dir="xqml_output", quick=False, progress=True, n_grid=8):
    """Run the reproduction.

    ``quick=True`` trains 25 instead of 40 epochs and scores 60 instead of all 180 test images.

    Returns:
        dict: ``accuracy``, ``scores`` (per method, from
        :func:`~pennylane_xqml.metrics.evaluate_insertion_deletion`), ``attributions``, the
        grid's ``images``, ``predicted``, ``second``, ``logits``, ``cam_predicted``,
        ``cam_second``, ``figure`` (path), ``table`` and ``timings``.
    """
    enable_x64()
    os.makedirs(output_dir, exist_ok=True)
    timings = {}
    X_train, X_test, y_train, y_test = load_digits_images(4, seed=0)
    model = HybridCNNVQC(n_classes=4, seed=0)
    start = time.perf_counter()
    model.fit(X_train, y_train, epochs=25 if quick else 40, verbose=False)
    timings["training"] = time.perf_counter() - start
    accuracy = model.score(X_test, y_test)
    if progress:
        print(
            f"HybridCNNVQC: test accuracy {accuracy:.3f} (trained in {timings['training']:.1f} s)"
        )
    params = model.params
    logits_fn = jax.jit(model.analytic_logits)

    def predict_proba(X):
        return np.asarray(jax.nn.softmax(logits_fn(params, jnp.asarray(X)), axis=-1))

    # -- the grid: two targets per image ------------------------------------------------------
    images = X_test[:n_grid]
    logits = np.asarray(logits_fn(params, jnp.asarray(images)))
    order = np.argsort(-logits, axis=1)
    predicted, second = order[:, 0], order[:, 1]
    start = time.perf_counter()
    cam_predicted = np.asarray(grad_cam(model, target=predicted)(params, images))
    cam_second = np.asarray(grad_cam(model, target=second)(params, images))
    timings["grid CAMs"] = time.perf_counter() - start
    figure = _figure(
        output_dir, images, y_test[:n_grid], predicted, second, cam_predicted, cam_second, logits
    )

    # -- insertion / deletion over test images ------------------------------------------------
    n_eval = 60 if quick else len(X_test)
    X = X_test[:n_eval]
    classes = np.argmax(np.asarray(logits_fn(params, jnp.asarray(X))), axis=1)
    start = time.perf_counter()
    cams = np.asarray(grad_cam(model, target=classes)(params, X))
    timings["CAMs (eval)"] = time.perf_counter() - start

    def logit_of(x, c):
        return model.analytic_logits(params, x[None])[0, c]

    start = time.perf_counter()
    gradients = np.asarray(
        jax.jit(jax.vmap(jax.grad(logit_of)))(jnp.asarray(X), jnp.asarray(classes))
    )
    timings["input gradients"] = time.perf_counter() - start
    attributions = {
        "QGrad-CAM (param. shift)": cams,
        "Saliency |grad|": np.abs(gradients),
        "Gradient x input": gradients * X,
        "Random": np.random.default_rng(0).uniform(size=X.shape),
    }
    start = time.perf_counter()
    scores = {
        name: metrics.evaluate_insertion_deletion(
            predict_proba, X, values, baseline="zeros", target=classes
        )
        for name, values in attributions.items()
    }
    timings["insertion/deletion"] = time.perf_counter() - start
    table = format_table(scores)
    if progress:
        print(
            f"insertion/deletion over {n_eval} test images, baseline zeros (blank image), "
            "pixels ranked by each attribution, probability of the predicted class:"
        )
        print(table)
        print("times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
        print(f"figure written to {figure}")
    return {
        "accuracy": accuracy, "scores": scores, "attributions": attributions, "images": images,
        "predicted": predicted, "second": second, "logits": logits, "cam_predicted": cam_predicted,
        "cam_second": cam_second, "figure": figure, "table": table, "timings": timings,
    }  # fmt: skip
