"""``xqml reproduce taylor-synthetic``: Taylor-Fourier vs other methods on a task with known truth.

Trains :class:`~pennylane_xqml.experiments.synthetic.FourierPQC` (4 qubits, 2 layers) on the synthetic target
``g(x) = Σ a_i sin(x_i - c_i) + b sin x_0 sin x_1`` (:mod:`pennylane_xqml.experiments.synthetic`), then
explains held-out test points with Taylor-Fourier, QLRP, integrated gradients, saliency and exact
Shapley values, and compares each with the ground truth ``R^⋆_i = g(x̃ + δ_i e_i) - g(x̃)`` of
the *target* (:meth:`~pennylane_xqml.experiments.synthetic.SyntheticTask.true_relevance`).

Choices (documented):

* **Root.** One shared root ``x̃`` for all instances: the Newton iteration of
  ``taylor_fourier(root="search")`` (``x ← x - f ∇f/‖∇f‖²``) started at the zero vector
  (:meth:`~pennylane_xqml.experiments.synthetic.FourierPQC.find_root`, ``|f(x̃)| < 1e-10``). The same point
  is Taylor-Fourier's root, IG's baseline, the single background row of the Shapley values and
  the reference point of the ground truth.
* **Saliency** is the raw signed gradient times ``(x - x̃)`` (gradient × input from the root),
  so that it is on the scale of the other attributions; its conservation is then a first-order
  Taylor approximation.
* **Conservation residual**: ``|Σ_i R_i - (f(x) - f(x̃))|`` for every method (QLRP's default
  rule, raw all-order terms around the root, is Taylor-Fourier by linearity: its residual is
  the cross terms too).
* **QLRP rules** (:data:`QLRP_RULES`): each rule around the same root, scored against the
  ground truth by mean Spearman, top-1 agreement (largest ``|R_i|`` on the truth's largest
  feature) and the mean ``|delta|`` of the rule's own conservation property, over
  :data:`N_SEEDS` models (training seeds 0-4, same data); quick mode scores
  :data:`QUICK_RULES` on one model. The full run also scores every rule by AUC-Difference on
  the Iris model (:func:`iris_auc_differences`; left out of quick mode: about 4 minutes).
* **Spearman**: :func:`~pennylane_xqml.metrics.spearman` of the signed relevances of the 4
  features against the signed ground truth, averaged over the instances.
* **Time per explanation**: wall time of explaining all instances (``jax.vmap`` over the rows,
  including JAX tracing/compilation, which dominates) divided by the number of instances.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from ... import metrics, saliency
from ...engine.inputs import enable_x64
from ...methods import perturbation
from ...methods.integrated_gradients import integrated_gradients
from ...methods.qlrp import DEFAULT_CONTRIBUTIONS, DEFAULT_RULE, qlrp
from ...methods.taylor_fourier import taylor_fourier
from ..synthetic import FourierPQC, SyntheticTask

METHODS = ("Taylor-Fourier", "QLRP", "IG", "Saliency x (x - root)", "Shapley (exact)")

QLRP_RULES = {
    "eps, x.grad (paper)": {"contributions": "gradient_x_input", "rule": "epsilon"},
    "z+, x.grad": {"contributions": "gradient_x_input", "rule": "alpha_beta"},
    "eps, all orders, change": {"contributions": "all_orders", "rule": "epsilon", "shared": "change"},
    "eps, all orders, entry": {"contributions": "all_orders", "rule": "epsilon", "shared": "entry"},
    "z+, all orders, change": {"contributions": "all_orders", "rule": "alpha_beta"},
    "z+, all orders, entry": {"contributions": "all_orders", "rule": "alpha_beta", "shared": "entry"},
    "a2b1, all orders, change": {
        "contributions": "all_orders", "rule": "alpha_beta", "alpha": 2.0, "beta": 1.0,
    },
    "eps, 1st order, change": {"contributions": "first_order", "rule": "epsilon", "shared": "change"},
    "z+, 1st order, change": {"contributions": "first_order", "rule": "alpha_beta"},
    "raw, all orders": {"contributions": "all_orders", "rule": "raw"},
    "raw, 1st order": {"contributions": "first_order", "rule": "raw"},
}  # fmt: skip
"""Every QLRP rule the reproduction measures (``qlrp`` options; root-based ones get the root).
``z+`` is ``alpha_beta`` with ``α = 1, β = 0``; ``a2b1`` is ``α = 2, β = 1``."""

QUICK_RULES = ("eps, x.grad (paper)", "eps, all orders, change", "raw, all orders")
"""The rules quick mode scores (each rule costs one JAX compilation of its batch, except
``raw, all orders``, QLRP's default, whose values are the main table's QLRP row)."""

N_SEEDS = 5
"""Models (training seeds) the QLRP rules are measured on in the full run (1 in quick mode)."""


def _explainers(qnode, root):
    """``name -> (explained, how the residual is read)``."""
    return {
        "Taylor-Fourier": taylor_fourier(qnode, root=root, return_convergence_delta=True),
        "QLRP": _qlrp(qnode, root, {}),
        "IG": integrated_gradients(qnode, baselines=root, return_convergence_delta=True),
        "Saliency x (x - root)": saliency(qnode, abs=False),
        "Shapley (exact)": perturbation.shapley_values(qnode, background=root[None]),
    }


def _qlrp(qnode, root, options):
    """``qlrp`` with ``options`` (the default rule for ``{}``), around ``root`` when the rule
    expands around one, with the convergence delta."""
    contributions = options.get("contributions", DEFAULT_CONTRIBUTIONS)
    rooted = {} if contributions == "gradient_x_input" else {"root": root}
    return qlrp(qnode, **options, **rooted, return_convergence_delta=True)


def _vmapped(explained, X, weights):
    return jax.vmap(explained, in_axes=(0, None))(jnp.asarray(X), weights)


def _top1(values, truth):
    """Fraction of rows whose largest ``|R_i|`` is the truth's largest ``|R^⋆_i|``."""
    return float(np.mean(np.argmax(np.abs(values), 1) == np.argmax(np.abs(truth), 1)))


def score_qlrp_rules(model, X, truth, root, rules=None, computed=None):
    """Every rule of :data:`QLRP_RULES` (or of ``rules``), and Taylor-Fourier as the reference,
    on one model: ``name -> {"spearman", "top1", "conservation", "seconds"}``;
    ``conservation`` is the mean ``|delta|`` of the rule's own property (for the raw rules: the
    cross terms it declares). ``computed``: ``name -> (values, delta, seconds)`` already
    measured (the main table's), not recomputed."""
    root = jnp.asarray(root)
    explainers = {
        "Taylor-Fourier": taylor_fourier(model.qnode, root=root, return_convergence_delta=True)
    }
    for name in QLRP_RULES if rules is None else rules:
        explainers[name] = _qlrp(model.qnode, root, QLRP_RULES[name])
    scores = {}
    for name, explained in explainers.items():
        start = time.perf_counter()
        if computed and name in computed:
            values, delta, seconds = computed[name]
        else:
            values, delta = (np.asarray(v) for v in _vmapped(explained, X, model.weights))
            seconds = (time.perf_counter() - start) / len(X)
        rho = [metrics.spearman(v, t) for v, t in zip(values, truth)]
        scores[name] = {
            "spearman": float(np.mean(rho)),
            "top1": _top1(values, truth),
            "conservation": float(np.mean(np.abs(delta))),
            "seconds": seconds,
        }
    return scores


def iris_auc_differences(quick=False, progress=True):
    """AUC-Difference of every QLRP rule on the Iris model, by ``qpert-iris``'s protocol
    (:func:`~.qpert_iris.score_attributions`: insertion/deletion, opposite-class mean
    baseline, each instance explained for its predicted class), with integrated gradients,
    Taylor-Fourier and random scores as references. The expansion point of the root-based
    rules (and of Taylor-Fourier, and IG's baseline) is the training mean, not a root: the
    class probabilities are non-negative, so ``f(x̃) = 0`` is only reached at their minimum.
    Each feature enters ``RY(π x_i) RZ(π x_i)``, so the frequencies are ``π`` and ``2π``
    (``spectrum=[π, 2π]``). Returns ``{"scores": name -> AUC-Diff, "accuracy", "seconds"}``."""
    from ..iris import IrisQCL, load_iris_split  # pylint: disable=import-outside-toplevel
    from . import qpert_iris  # pylint: disable=import-outside-toplevel

    split = load_iris_split(0)
    model = IrisQCL(seed=0)
    start = time.perf_counter()
    model.fit(split.X_train, split.y_train, split.X_val, split.y_val, progress=progress)
    X, weights = split.X_test[:10] if quick else split.X_test, model.weights
    classes = np.asarray(model.predict(X))
    mean = jnp.asarray(split.X_train.mean(axis=0))
    spectrum = [np.pi, 2 * np.pi]
    explainers = {
        "IG": integrated_gradients(model.qnode, baselines=mean, n_steps=32),
        "Taylor-Fourier": taylor_fourier(model.qnode, root=mean, spectrum=spectrum),
    }
    for name, options in QLRP_RULES.items():
        rooted = options.get("contributions") != "gradient_x_input"
        extra = {"root": mean, "spectrum": spectrum} if rooted else {}
        explainers[name] = qlrp(model.qnode, **options, **extra)
    attributions = {
        name: qpert_iris.fold_classes(qpert_iris.explain_all(ex, X, weights), classes)
        for name, ex in explainers.items()
    }
    attributions["Random"] = np.random.default_rng(0).uniform(size=X.shape)
    scores = qpert_iris.score_attributions(model, split, X, classes, attributions)
    return {
        "scores": {name: s["auc_difference"] for name, s in scores.items()},
        "accuracy": model.score(split.X_test, split.y_test),
        "seconds": time.perf_counter() - start,
    }


def format_rules_table(per_seed, auc=None):
    """Mean (std over models) of each rule's Spearman, top-1 agreement and conservation error,
    with its AUC-Difference on Iris when measured."""
    names = list(per_seed[0])
    head = f"{'QLRP rule':<26}{'Spearman':>9}{'(std)':>7}{'top-1':>7}{'|delta|':>10}"
    head += f"{'AUC-Diff':>10}" if auc else ""
    lines = [head, "-" * len(head)]
    for name in names:
        sp = np.array([s[name]["spearman"] for s in per_seed])
        top = np.mean([s[name]["top1"] for s in per_seed])
        cons = np.mean([s[name]["conservation"] for s in per_seed])
        line = f"{name:<26}{sp.mean():>9.3f}{sp.std():>7.3f}{top:>7.2f}{cons:>10.1e}"
        if auc:
            line += f"{auc[name]:>10.3f}" if name in auc else f"{'':>10}"
        lines.append(line)
    if auc:
        lines.append(f"{'(IG, Iris)':<59}{auc['IG']:>10.3f}")
        lines.append(f"{'(random, Iris)':<59}{auc['Random']:>10.3f}")
    return "\n".join(lines)


def format_table(rows):
    lines = [
        f"{'method':<24}{'Spearman':>10}{'(std)':>8}{'|residual|':>13}{'  vs':<14}{'s/expl.':>9}",
        "-" * 78,
    ]
    for name, r in rows.items():
        lines.append(
            f"{name:<24}{r['spearman']:>10.3f}{r['spearman_std']:>8.3f}{r['residual']:>13.2e}"
            f"  {r['residual_vs']:<12}{r['seconds']:>9.3f}"
        )
    return "\n".join(lines)


def _figure(output_dir, x, truth, attributions, index):
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    d = len(truth)
    # QLRP's default rule is Taylor-Fourier by linearity: it gets its own panel
    series = {
        "ground truth": truth,
        **{m: a[index] for m, a in attributions.items() if m != "QLRP"},
    }
    width = 0.8 / len(series)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1.4]})
    for j, (name, values) in enumerate(series.items()):
        ax.bar(np.arange(d) + j * width, values, width, label=name, color="k" if j == 0 else None)
    ax.set_xticks(np.arange(d) + 0.4 - width / 2, [f"x{i}" for i in range(d)])
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("relevance")
    ax.set_title("x = [" + ", ".join(f"{v:.2f}" for v in x) + "]")
    ax.legend(fontsize=7)
    if "QLRP" in attributions:
        ax2.bar([f"x{i}" for i in range(d)], attributions["QLRP"][index], color="tab:orange")
        ax2.axhline(0, color="grey", lw=0.5)
        ax2.set_title("QLRP (default rule: raw all-order terms)", fontsize=9)
    fig.tight_layout()
    path = os.path.join(output_dir, "taylor_synthetic_instance.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(output_dir="xqml_output", quick=False, progress=True, with_iris=None):
    """Run the comparison; returns ``{"table", "rows", "attributions", "truth", "root", "X",
    "model", "task", "mse", "qlrp_rules", "qlrp_table", "iris"}``. ``quick=True``: 8
    instances, 300 training steps and the QLRP rules on one model only (tests).
    ``with_iris`` (default: not ``quick``) adds every QLRP rule's AUC-Difference on the Iris
    model (about 3 minutes: JAX compiles each rule's batch once)."""
    enable_x64()
    os.makedirs(output_dir, exist_ok=True)
    task = SyntheticTask(d=4)
    X_train, y_train = task.data(200, seed=0)
    X_test, y_test = task.data(8 if quick else 20, seed=1)
    model = FourierPQC(n_qubits=4, n_layers=2, seed=0)
    model.fit(X_train, y_train, steps=300 if quick else 400, progress=progress)
    mse = {"train": model.mse(X_train, y_train), "test": model.mse(X_test, y_test)}
    print(
        f"FourierPQC: train MSE {mse['train']:.4f}, test MSE {mse['test']:.4f} "
        f"(target variance {np.var(y_train):.3f}; trained in {model.fit_seconds:.1f} s)"
    )
    root = model.find_root()
    f_root = float(model(root))
    print("root x~ = [" + ", ".join(f"{v:.3f}" for v in root) + f"], f(x~) = {f_root:.1e}")

    weights, X = model.weights, jnp.asarray(X_test)
    f_x = model(X_test)
    truth = task.true_relevance(X_test, root)
    attributions, rows, deltas = {}, {}, {}
    for name, explained in _explainers(model.qnode, jnp.asarray(root)).items():
        start = time.perf_counter()
        out = jax.vmap(explained, in_axes=(0, None))(X, weights)
        seconds = (time.perf_counter() - start) / len(X_test)
        values = np.asarray(out[0] if isinstance(out, tuple) else out)
        if isinstance(out, tuple):
            deltas[name] = (values, np.asarray(out[1]), seconds)
        if name == "Saliency x (x - root)":
            values = values * (X_test - root)
        residual, vs = np.abs(values.sum(axis=1) - (f_x - f_root)), "f(x) - f(x~)"
        rho = np.array([metrics.spearman(v, t) for v, t in zip(values, truth)])
        attributions[name] = values
        rows[name] = {
            "spearman": float(rho.mean()),
            "spearman_std": float(rho.std()),
            "residual": float(residual.mean()),
            "residual_vs": vs,
            "seconds": seconds,
        }
        if progress:
            print(f"  {name}: {seconds * len(X_test):.1f} s")
    cross = float(np.abs(task.cross_residual(X_test, root)).mean())
    table = format_table(rows)
    print(table)
    print(
        f"(reference: the target's own cross part |g(x) - g(x~) - Σ R*_i| has mean {cross:.2e}; "
        f"{len(X_test)} test instances)"
    )
    index = int(np.argmax(np.abs(truth).sum(axis=1)))
    path = _figure(output_dir, X_test[index], truth[index], attributions, index)
    print(f"figure written to {path}")

    start = time.perf_counter()
    computed = {"Taylor-Fourier": deltas["Taylor-Fourier"]}
    if QLRP_RULES["raw, all orders"] == {
        "contributions": DEFAULT_CONTRIBUTIONS,
        "rule": DEFAULT_RULE,
    }:
        computed["raw, all orders"] = deltas["QLRP"]  # the main table's QLRP row is this rule
    rules = QUICK_RULES if quick else None
    per_seed = [score_qlrp_rules(model, X_test, truth, root, rules, computed)]
    for seed in range(1, 1 if quick else N_SEEDS):
        other = FourierPQC(n_qubits=4, n_layers=2, seed=seed)
        other.fit(X_train, y_train, steps=400, progress=False)
        other_root = other.find_root()
        other_truth = task.true_relevance(X_test, other_root)
        per_seed.append(score_qlrp_rules(other, X_test, other_truth, other_root))
    rules_seconds = time.perf_counter() - start
    iris = None
    if not quick if with_iris is None else with_iris:
        iris = iris_auc_differences(quick=quick, progress=progress)
    rules_table = format_rules_table(per_seed, iris["scores"] if iris else None)
    print(
        f"\nQLRP rules against the ground truth: mean over {len(per_seed)} model seed(s) x "
        f"{len(X_test)} instances ({rules_seconds:.0f} s)"
        + (
            f"; AUC-Difference on the Iris model (qpert-iris protocol, test accuracy "
            f"{iris['accuracy']:.3f}, {iris['seconds']:.0f} s)"
            if iris
            else ""
        )
    )
    print(rules_table)
    return {
        "table": table, "rows": rows, "attributions": attributions, "truth": truth, "root": root,
        "X": X_test, "model": model, "task": task, "mse": mse, "cross_residual": cross,
        "qlrp_rules": per_seed, "qlrp_table": rules_table, "iris": iris,
    }  # fmt: skip
