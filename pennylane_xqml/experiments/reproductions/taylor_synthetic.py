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
* **Conservation residual**: ``|Σ_i R_i - (f(x) - f(x̃))|`` for every method except QLRP, whose
  heatmap is meant to sum to ``f(x)`` itself (it has no reference point): for QLRP the residual
  is ``|f(x) - Σ_i R_i|``. Since ``f(x̃) ≈ 0`` the two targets agree to 1e-10 anyway.
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
from ...methods import integrated_gradients, perturbation, qlrp, taylor_fourier
from ..synthetic import FourierPQC, SyntheticTask

METHODS = ("Taylor-Fourier", "QLRP", "IG", "Saliency x (x - root)", "Shapley (exact)")


def _explainers(qnode, root):
    """``name -> (explained, how the residual is read)``."""
    return {
        "Taylor-Fourier": taylor_fourier(qnode, root=root, return_convergence_delta=True),
        "QLRP": qlrp(qnode, return_convergence_delta=True),
        "IG": integrated_gradients(qnode, baselines=root, return_convergence_delta=True),
        "Saliency x (x - root)": saliency(qnode, abs=False),
        "Shapley (exact)": perturbation.shapley_values(qnode, background=root[None]),
    }


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
    # QLRP explains f(x) with no reference point and its relevances can be an order of magnitude
    # larger (cancelling), so it gets its own panel
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
        ax2.set_title(f"QLRP (sums to f(x) = {attributions['QLRP'][index].sum():.3f})", fontsize=9)
    fig.tight_layout()
    path = os.path.join(output_dir, "taylor_synthetic_instance.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(output_dir="xqml_output", quick=False, progress=True):
    """Run the comparison; returns ``{"table", "rows", "attributions", "truth", "root", "X",
    "model", "task", "mse"}``. ``quick=True``: 8 instances and 300 training steps (tests)."""
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
    attributions, rows = {}, {}
    for name, explained in _explainers(model.qnode, jnp.asarray(root)).items():
        start = time.perf_counter()
        out = jax.vmap(explained, in_axes=(0, None))(X, weights)
        seconds = (time.perf_counter() - start) / len(X_test)
        values = np.asarray(out[0] if isinstance(out, tuple) else out)
        if name == "Saliency x (x - root)":
            values = values * (X_test - root)
        if name == "QLRP":
            residual, vs = np.abs(np.asarray(out[1])), "f(x)"
        else:
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
    return {
        "table": table, "rows": rows, "attributions": attributions, "truth": truth, "root": root,
        "X": X_test, "model": model, "task": task, "mse": mse, "cross_residual": cross,
    }  # fmt: skip
