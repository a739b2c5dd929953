"""``xqml reproduce qpert-iris``: the QPert paper's Table 1 on its Iris model, from real runs.

It trains :class:`~pennylane_xqml.experiments.iris.IrisQCL` on the paper's split, explains the 30 test
instances with QPert, integrated gradients, exact Shapley values, KernelSHAP, LIME, feature
ablation and random scores, scores every method by insertion/deletion with the opposite-class
mean baseline (METHODS.md section 3), and prints the paper's Table 1 layout (AUCI, AUDC,
AUC-Diff, rank) next to the paper's published numbers. When the optional ``shap`` and ``lime``
packages are installed it also runs their ``KernelExplainer`` and ``LimeTabularExplainer`` on the
same model, as a check of our implementations. Figures: per-class and global saliency bars,
mean insertion/deletion curves per method, and QPert's phased loss curves.

Attributions of the class probability ``p_c = Σ_{k ≡ c (mod 3)} p_k`` are the sums of the
attributions of the 16 basis-state probabilities the QNode returns: every method here except
QPert and the random baseline is linear in the explained function, so each explanation runs once
for all 16 outputs and is folded into classes with :data:`~pennylane_xqml.experiments.iris.CLASS_MAP`.
Each instance is explained for the class the model predicts for it.

Choices (documented, not the paper's where the paper is silent): integrated gradients from the
training mean (64 Gauss-Legendre steps are not needed: the input gradients come from parameter
shift at 32 points); Shapley values and KernelSHAP interventional over 10 background rows drawn
(seeded) from the training set; LIME with 200 samples.

The six explanation stages are independent once the model is trained: :func:`run_stages` gives
them to ``workers`` spawned processes (the slowest first, see :data:`STAGES`) while this process
runs the ``shap``/``lime`` packages. A worker rebuilds the split and the QNode from the same
seeds and receives the trained weights and predicted classes, so every number equals the
one-process run's (``workers=1``) bit for bit.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from ... import metrics
from ...engine.inputs import enable_x64
from ...engine.validation import check_positive_int
from ...methods import perturbation
from ...methods.integrated_gradients import integrated_gradients
from ...methods.qpert import qpert_mask
from ..iris import CLASS_MAP, IrisQCL, class_probabilities, load_iris_split

PAPER_TABLE = {
    "SHAP": (0.529, 0.455, 0.074),
    "QPert": (0.496, 0.461, 0.035),
    "LIME": (0.479, 0.513, -0.034),
    "Random": (0.449, 0.502, -0.053),
}
"""The paper's Table 1 (AUCI, AUDC, AUC-Diff) on its Iris model: the only stored numbers."""

PAPER_ROW = {
    "KernelSHAP": "SHAP",
    "shap.KernelExplainer": "SHAP",
    "QPert": "QPert",
    "LIME": "LIME",
    "lime.LimeTabularExplainer": "LIME",
    "Random": "Random",
}
"""Which of the paper's rows each of our methods is compared with."""


def fold_classes(attributions16, classes):
    """``(n, 16, 4)`` basis-state attributions -> ``(n, 4)`` for each instance's class."""
    per_class = jnp.einsum("nkd,kc->ncd", attributions16, CLASS_MAP)
    return np.asarray(per_class[np.arange(len(classes)), classes])


def explain_all(explained, X, weights):
    """One explanation per row; ``jax.vmap`` over the rows of a method's ExplainedQNode."""
    return jax.vmap(explained, in_axes=(0, None))(jnp.asarray(X), weights)


def score_attributions(model, split, X, classes, attributions):
    """Insertion/deletion scores (AUCI, AUDC, AUC-Diff) of every method's ``(n, 4)``
    attributions: opposite-class mean baseline from the training rows, each instance tracked
    for its class in ``classes``."""
    return {
        name: metrics.evaluate_insertion_deletion(
            model.predict_proba,
            X,
            values,
            y=classes,
            X_background=split.X_train,
            y_background=split.y_train,
            target=classes,
        )
        for name, values in attributions.items()
    }


def _library_rows(model, split, background, classes, seed):
    """The real ``shap``/``lime`` packages on the same model, when installed (``shap`` with the
    same background rows as our Shapley values, so the two must agree)."""
    rows = {}
    try:
        import shap  # pylint: disable=import-outside-toplevel
    except ImportError:
        shap = None
    if shap is not None:
        explainer = shap.KernelExplainer(model.predict_proba, background)
        values = np.asarray(explainer.shap_values(split.X_test, nsamples=200, silent=True))
        # shap returns (n, d, classes) in recent versions, a list of (n, d) in older ones
        values = (
            values
            if values.ndim == 3 and values.shape[0] == len(classes)
            else np.moveaxis(values, 0, -1)
        )
        rows["shap.KernelExplainer"] = values[np.arange(len(classes)), :, classes]
    try:
        from lime.lime_tabular import LimeTabularExplainer  # pylint: disable=import-outside-toplevel
    except ImportError:
        LimeTabularExplainer = None
    if LimeTabularExplainer is not None:
        explainer = LimeTabularExplainer(
            split.X_train, mode="classification", discretize_continuous=False, random_state=seed
        )
        values = []
        for x, c in zip(split.X_test, classes):
            explanation = explainer.explain_instance(
                x, model.predict_proba, labels=(int(c),), num_features=4, num_samples=500
            )
            weights = dict(explanation.as_map()[int(c)])
            values.append([weights.get(i, 0.0) for i in range(4)])
        rows["lime.LimeTabularExplainer"] = np.asarray(values)
    return rows


def _figures(output_dir, attributions, scores, qpert_history, split, classes):
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    names = [n.replace(" (cm)", "") for n in split.feature_names]
    # per-class and global mean |saliency| of QPert and of every method
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
    qpert = attributions["QPert"]
    for c, ax in enumerate(axes[:3]):
        ax.bar(names, np.abs(qpert[classes == c]).mean(axis=0), color="tab:purple")
        ax.set_title(f"QPert saliency, class {split.class_names[c]}")
        ax.tick_params(axis="x", rotation=30)
    width = 0.8 / len(attributions)
    for j, (method, values) in enumerate(attributions.items()):
        mean = np.abs(values).mean(axis=0)
        axes[3].bar(np.arange(4) + j * width, mean / max(mean.sum(), 1e-12), width, label=method)
    axes[3].set_xticks(np.arange(4) + 0.4 - width / 2, names, rotation=30)
    axes[3].set_title("global mean |attribution| (normalised)")
    axes[3].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "qpert_iris_saliency.png"), dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, score in scores.items():
        axes[0].plot(score["fractions"], score["insertion_curve"], label=method)
        axes[1].plot(score["fractions"], score["deletion_curve"], label=method)
    for ax, title in zip(axes, ("insertion (higher is better)", "deletion (lower is better)")):
        ax.set_xlabel("fraction of features moved")
        ax.set_ylabel("probability of the predicted class")
        ax.set_title(title)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "qpert_iris_insertion_deletion.png"), dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for term, values in qpert_history.items():
        ax.plot(np.asarray(values).mean(axis=tuple(range(np.ndim(values) - 1))), label=term)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (mean over test instances)")
    ax.set_title("QPert phased loss terms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, "qpert_iris_losses.png"), dpi=120)
    plt.close(fig)


def format_table(scores):
    """Table 1's layout: ours ranked by AUC-Diff, the paper's numbers beside them."""
    ranked = sorted(scores, key=lambda m: -scores[m]["auc_difference"])
    lines = [
        (
            f"{'method':<26}{'AUCI':>7}{'AUDC':>7}{'AUC-Diff':>10}{'rank':>6}    "
            f"{'paper AUCI':>10}{'AUDC':>7}{'AUC-Diff':>10}"
        ),
        "-" * 90,
    ]
    for rank, method in enumerate(ranked, start=1):
        s = scores[method]
        paper = PAPER_TABLE.get(PAPER_ROW.get(method))
        ref = f"{paper[0]:>10.3f}{paper[1]:>7.3f}{paper[2]:>10.3f}" if paper else ""
        lines.append(
            f"{method:<26}{s['auci']:>7.3f}{s['audc']:>7.3f}{s['auc_difference']:>10.3f}{rank:>6}    {ref}"
        )
    return "\n".join(lines)


STAGES = ("KernelSHAP", "Shapley (exact)", "QPert", "LIME", "IG", "Ablation")
"""The explanation stages, the slowest first (the order in which worker processes take them)."""


def _background(split, quick, seed):
    """The seeded background rows of Shapley values and KernelSHAP."""
    rng = np.random.default_rng(seed)
    n_background = 4 if quick else 10
    return split.X_train[rng.choice(len(split.X_train), n_background, replace=False)]


def _explainer(name, qnode, split, background, quick, seed):
    """The explainer of one stage (a method applied to ``qnode``)."""
    if name == "IG":
        return integrated_gradients(
            qnode, baselines="mean", baseline_data=split.X_train, method="gausslegendre", n_steps=32
        )
    if name == "Shapley (exact)":
        return perturbation.shapley_values(qnode, background=background)
    if name == "KernelSHAP":
        return perturbation.kernel_shap(qnode, background=background, n_samples=64, seed=seed)
    if name == "LIME":
        return perturbation.lime(qnode, n_samples=200, seed=seed)
    if name == "Ablation":
        return perturbation.feature_ablation(qnode, baselines="mean", baseline_data=split.X_train)
    if name == "QPert":
        return qpert_mask(
            qnode,
            background=split.X_train,
            head=class_probabilities,
            n_iter=200 if quick else 1000,
            seed=seed,
        )
    raise ValueError(f"Unknown stage {name!r}; expected one of {STAGES}.")


def explain_stage(name, qnode, weights, split, classes, quick=False, seed=0):
    """One explanation stage: ``(attributions (n, 4), seconds, history)`` for the test rows.

    Every method but QPert explains all 16 outputs of ``qnode(x, weights)`` once per row
    (``jax.vmap`` over the rows) and is folded into each row's class in ``classes``; QPert
    explains the class probabilities and returns its loss ``history`` (``None`` for the others).
    """
    X = split.X_test
    explained = _explainer(name, qnode, split, _background(split, quick, seed), quick, seed)
    start = time.perf_counter()
    history = None
    if name == "QPert":
        result = explained.explain_batch(jnp.asarray(X), weights)
        values, history = np.asarray(result.saliency), jax.device_get(dict(result.history))
    else:
        values = fold_classes(explain_all(explained, X, weights), classes)
    return values, time.perf_counter() - start, history


def _stage_in_worker(name, weights, classes, quick, seed, x64):
    """:func:`explain_stage` in a worker process: JAX's 64-bit mode as in the parent (``x64``),
    the split and the QNode rebuilt from the same seeds, with the parent's trained ``weights``
    and predicted ``classes``."""
    if x64:
        enable_x64()
    qnode = IrisQCL(seed=seed).qnode
    split = load_iris_split(seed)
    return explain_stage(name, qnode, jnp.asarray(weights), split, classes, quick, seed)


def run_stages(
    model,
    split,
    classes,
    quick=False,
    seed=0,
    workers=1,
    while_waiting=None,
    stages=STAGES,
    pool=None,
):
    """The explanation ``stages`` (default: all of :data:`STAGES`) of the test rows:
    ``{name: (attributions, seconds, history)}`` (see :func:`explain_stage`), and the result of
    ``while_waiting()``.

    ``workers=1`` runs them one after the other in this process. With more, the stages are
    independent jobs for that many worker processes (``spawn``ed, so each one is a fresh
    JAX/PennyLane); each worker computes exactly what this process would (same code, same
    seeds, the trained weights passed), so the results are equal. ``while_waiting()`` runs in
    this process meanwhile (once; its result is returned as the second value). ``pool``: a
    started :func:`worker_pool` to use instead of starting ``workers`` processes here.
    """
    check_positive_int(workers, "workers")
    unknown = [name for name in stages if name not in STAGES]
    if unknown:
        raise ValueError(f"Unknown stages {unknown}; expected names from {STAGES}.")
    if workers == 1 and pool is None:
        extra = while_waiting() if while_waiting is not None else None
        return {
            n: explain_stage(n, model.qnode, model.weights, split, classes, quick, seed)
            for n in stages
        }, extra
    weights, x64 = np.asarray(model.weights), bool(jax.config.jax_enable_x64)
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(worker_pool(workers))
        futures = {
            n: pool.submit(_stage_in_worker, n, weights, classes, quick, seed, x64) for n in stages
        }
        extra = while_waiting() if while_waiting is not None else None
        return {n: futures[n].result() for n in stages}, extra


def _ready():
    """A worker's first job: importing this module (JAX, PennyLane) is the work."""
    return os.getpid()


def worker_pool(workers):
    """``workers`` ``spawn``ed worker processes (a :class:`ProcessPoolExecutor`), each given a
    first job so that it starts importing JAX, PennyLane and this package at once (while the
    model trains) rather than when the first stage is submitted."""
    pool = ProcessPoolExecutor(
        max_workers=check_positive_int(workers, "workers"),
        mp_context=multiprocessing.get_context("spawn"),
    )
    for _ in range(workers):
        pool.submit(_ready)
    return pool


def run(output_dir="xqml_output", quick=False, progress=True, workers=1):
    """Run the reproduction; returns ``{"accuracy", "scores", "attributions", "table"}``.

    ``quick=True`` uses fewer QPert iterations and a smaller background (for tests).
    ``workers`` is the number of worker processes the explanation stages are spread over
    (default ``1``: everything runs in this process); the numbers do not depend on it. With
    broadcasting the whole run takes about a minute in one process on 2 cores, and two workers
    were slower there (their imports and compilations are repeated), so one is the default.
    """
    workers = check_positive_int(workers, "workers")
    enable_x64()
    os.makedirs(output_dir, exist_ok=True)
    with contextlib.ExitStack() as stack:
        # the workers start (and import JAX and PennyLane) while the model trains
        pool = stack.enter_context(worker_pool(workers)) if workers > 1 else None
        seed = 0
        split = load_iris_split(seed)
        model = IrisQCL(seed=seed)
        start = time.perf_counter()
        model.fit(split.X_train, split.y_train, split.X_val, split.y_val, progress=progress)
        accuracy = model.score(split.X_test, split.y_test)
        X = split.X_test
        classes = np.asarray(model.predict(X))
        print(
            f"IrisQCL: test accuracy {accuracy:.3f} (trained in {time.perf_counter() - start:.1f} s)"
        )
        background = _background(split, quick, seed)
        stages, library = run_stages(
            model,
            split,
            classes,
            quick=quick,
            seed=seed,
            workers=workers,
            while_waiting=lambda: _library_rows(model, split, background, classes, seed),
            pool=pool,
        )
    order = ("IG", "Shapley (exact)", "KernelSHAP", "LIME", "Ablation", "QPert")
    attributions = {name: stages[name][0] for name in order}
    timings = {name: stages[name][1] for name in order}
    qpert_history = stages["QPert"][2]
    attributions["Random"] = np.random.default_rng(seed).uniform(size=X.shape)
    for name, values in library.items():
        attributions[name] = values
    if "shap.KernelExplainer" in attributions:
        gap = np.abs(attributions["shap.KernelExplainer"] - attributions["Shapley (exact)"]).max()
        print(f"max |shap.KernelExplainer - our exact Shapley| = {gap:.2e} (same background rows)")

    scores = score_attributions(model, split, X, classes, attributions)
    table = format_table(scores)
    print(table)
    print(
        "explanation time for the 30 test instances: "
        + ", ".join(f"{m} {t:.1f} s" for m, t in timings.items())
        + (f" ({workers} worker processes)" if workers > 1 else "")
    )
    _figures(output_dir, attributions, scores, qpert_history, split, classes)
    print(f"figures written to {output_dir}/qpert_iris_*.png")
    return {"accuracy": accuracy, "scores": scores, "attributions": attributions, "table": table}
