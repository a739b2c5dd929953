"""``xqml reproduce tfim-phases``: explanations of quantum data, the phases of the Ising ring.

Ground states of ``H = -J Σ Z_i Z_{i+1} - h Σ X_i`` on a ring (:mod:`..tfim`; ``J = 1``) by
exact diagonalisation in the even parity sector, checked against the free-fermion energy;
a classifier ``StatePrep -> StronglyEntanglingLayers -> ⟨Z_0⟩`` trained to tell the ordered
phase (``h < 1``) from the disordered one; exact amplitude integrated gradients (zero baseline,
one Hadamard-test circuit per explanation) of its ordered score on the test states, summed by
the number of domain walls of each basis configuration.

Choices (documented):

* **Fields**: ``h`` on a uniform grid of 40 values in ``[0.2, 2.0]`` (20 in quick mode), even
  indices for training, odd for testing, the same grid for every size, so that the test fields
  nearest ``h = 1`` are the same for 8 and 10 spins.
* **Model**: 2 layers of ``StronglyEntanglingLayers``, 200 full-batch Adam steps (learning
  rate 0.05) from seeds 0, 1, 2; the seed with the lowest final *training* loss is kept (one
  model per size; the cross-entropy has local minima whose boundary sits well below h = 1).
  Quick mode: 6 and 8 spins, 60 steps, seed 0 only.
* **Masses** per number of domain walls ``k`` (0, 2, ..., N on a ring), averaged over the test
  states of each phase: the signed attribution (the ``k`` columns sum to the score ``f``), the
  share of ``Σ|IG|``, and the state's own probability ``Σ a_b²`` for comparison. "Mean wall
  density" is ``Σ_k (k/N) × share``.
* **Z2 pairs**: ``Σ_b |IG_b - IG_b̄| / Σ_b |IG_b|`` measures how unevenly the model splits a
  configuration and its global flip, which the (symmetric) data cannot determine.
* **h\\***: where the test scores cross 0, by linear interpolation (the model's finite-size
  estimate of the transition).
"""

from __future__ import annotations

import csv
import os
import time

import numpy as np

from ... import integrated_gradients
from ...engine.inputs import enable_x64
from ..tfim import (
    PhaseClassifier,
    attribution_masses,
    closed_form_energy,
    ground_state,
)

J = 1.0


def _crossing(h, scores):
    """First ``h`` where the scores change sign from + to -, interpolated (NaN if none)."""
    for i in range(len(h) - 1):
        if scores[i] > 0 >= scores[i + 1]:
            return float(h[i] + (h[i + 1] - h[i]) * scores[i] / (scores[i] - scores[i + 1]))
    return float("nan")


def _circuit_counts(model, x):
    """Circuits of one explanation: ``hadamard_all`` (one per Pauli word) and HATTRIQ's
    per-feature Hadamard tests (``2**n`` per word), read from the plans (nothing runs)."""
    counts = {}
    for rule in ("hadamard_all", "hadamard"):
        explained = integrated_gradients(model.qnode, method="exact", gradient=rule)
        counts[rule] = len(explained.plan(x, model.weights).tapes)
    return counts


def study(n_spins, h_train, h_test, steps, n_seeds=1, n_layers=2, progress=True):
    """Everything for one chain length: data, energies, model, attributions, masses."""
    start = time.perf_counter()
    h_all = np.concatenate([h_train, h_test])
    ed = [ground_state(n_spins, h, J) for h in h_all]
    energy_error = max(abs(e - closed_form_energy(n_spins, h, J)) for (e, _), h in zip(ed, h_all))
    h_low = float(h_all.min())
    splitting = ground_state(n_spins, h_low, J, parity=-1)[0] - ground_state(n_spins, h_low, J)[0]
    states = np.stack([s for _, s in ed])
    X_train, X_test = states[: len(h_train)], states[len(h_train) :]
    y_train, y_test = (h_train < J).astype(np.int64), (h_test < J).astype(np.int64)

    # a few initialisations, the lowest final training loss kept (selection on training data)
    models = [PhaseClassifier(n_spins, n_layers=n_layers, seed=seed) for seed in range(n_seeds)]
    losses = [m.fit(X_train, y_train, steps=steps).history[-1] for m in models]
    model = models[int(np.argmin(losses))]
    scores_test = model.scores(X_test)
    t0 = time.perf_counter()
    attributions = model.explain(X_test)
    explain_seconds = time.perf_counter() - t0
    masses = attribution_masses(attributions, X_test, n_spins)
    flip = np.arange(2**n_spins) ^ (2**n_spins - 1)
    asymmetry = np.abs(attributions - attributions[:, flip]).sum(1) / np.abs(attributions).sum(1)
    result = {
        "n_spins": n_spins,
        "h_train": h_train,
        "h_test": h_test,
        "energy_error": float(energy_error),
        "splitting": float(splitting),
        "h_split": h_low,
        "train_accuracy": model.accuracy(X_train, y_train),
        "test_accuracy": model.accuracy(X_test, y_test),
        "final_loss": model.history[-1],
        "seed_losses": losses,
        "seed": int(np.argmin(losses)),
        "scores_train": model.scores(X_train),
        "scores_test": scores_test,
        "h_star": _crossing(h_test, scores_test),
        "attributions": attributions,
        "completeness": float(np.max(np.abs(attributions.sum(1) - scores_test))),
        "masses": masses,
        "z2_asymmetry": float(asymmetry.mean()),
        "circuits": _circuit_counts(model, X_test[0]),
        "explain_seconds": explain_seconds,
        "model": model,
    }
    result["phases"] = {}
    for phase, mask in (("ordered", h_test < J), ("disordered", h_test >= J)):
        share = masses["absolute"][mask].mean(0)
        probability = masses["probability"][mask].mean(0)
        density = masses["walls"] / n_spins
        result["phases"][phase] = {
            "signed": masses["signed"][mask].mean(0),
            "absolute": share,
            "probability": probability,
            "wall_density_attribution": float(density @ share),
            "wall_density_probability": float(density @ probability),
        }
    below = int(np.argmax(np.where(h_test < J, h_test, -np.inf)))
    above = int(np.argmin(np.where(h_test >= J, h_test, np.inf)))
    result["critical"] = {
        float(h_test[i]): {
            "score": float(scores_test[i]),
            "signed": masses["signed"][i],
            "absolute": masses["absolute"][i],
            "probability": masses["probability"][i],
            "wall_density_attribution": float(masses["walls"] / n_spins @ masses["absolute"][i]),
        }
        for i in (below, above)
    }
    result["seconds"] = time.perf_counter() - start
    if progress:
        print(f"  N = {n_spins}: {result['seconds']:.1f} s (explanations {explain_seconds:.1f} s)")
    return result


def _row(values, width=7):
    return "".join(f"{v:>{width}.3f}" for v in values)


def format_table(results):
    """The printed and saved table."""
    first = results[0]
    n_h = len(first["h_train"]) + len(first["h_test"])
    lines = [
        (
            f"Transverse-field Ising ring (periodic), J = 1, {n_h} fields h in [0.2, 2.0], "
            f"{len(first['h_train'])} train / {len(first['h_test'])} test, interleaved"
        ),
        "",
        (
            f"{'N':>3}{'|E_ED-E_ff|':>13}{'E_odd-E_even':>14}{'seed':>5}{'loss':>7}"
            f"{'train':>7}{'test':>7}{'h*':>7}{'|ΣIG-f|':>10}{'Z2 split':>10}"
            f"{'circuits/expl.':>22}"
        ),
    ]
    for r in results:
        c = r["circuits"]
        lines.append(
            f"{r['n_spins']:>3}{r['energy_error']:>13.1e}{r['splitting']:>14.1e}"
            f"{r['seed']:>5}{r['final_loss']:>7.3f}{r['train_accuracy']:>7.3f}"
            f"{r['test_accuracy']:>7.3f}{r['h_star']:>7.3f}{r['completeness']:>10.1e}"
            f"{r['z2_asymmetry']:>10.3f}"
            f"{c['hadamard_all']:>6} (vs {c['hadamard']:>4}/feature)"
        )
    lines += [
        (
            f"(E_odd-E_even at h = {first['h_split']:.2f}; seed, loss: the initialisation kept "
            "and its final training loss; h*: the test scores cross 0; Z2 split: "
            "Σ|IG_b - IG_flip(b)| / Σ|IG_b|; circuits: one Hadamard test per Pauli word vs 2^N)"
        ),
        "",
        (
            "Attribution by number of domain walls k (test states, mean per phase): signed IG "
            "(sums to the score f), share of Σ|IG|, and the state's probability"
        ),
    ]
    for r in results:
        n = r["n_spins"]
        walls = r["masses"]["walls"]
        lines.append(f"N = {n:<2}{'k =':>25}" + "".join(f"{k:>7d}" for k in walls))
        for phase, p in r["phases"].items():
            lines.append(f"  {phase:<11}{'signed IG':<16}" + _row(p["signed"]))
            lines.append(f"  {'':<11}{'|IG| share':<16}" + _row(p["absolute"]))
            lines.append(f"  {'':<11}{'probability':<16}" + _row(p["probability"]))
            lines.append(
                f"  {'':<11}mean wall density: |IG| {p['wall_density_attribution']:.3f}, "
                f"probability {p['wall_density_probability']:.3f}"
            )
        for h, c in r["critical"].items():
            lines.append(f"  h = {h:<7.3f}{'signed IG':<16}" + _row(c["signed"]))
            lines.append(
                f"  {'':<11}{'|IG| share':<16}"
                + _row(c["absolute"])
                + f"   (f = {c['score']:+.3f},"
                f" |IG| wall density {c['wall_density_attribution']:.3f})"
            )
    return "\n".join(lines)


def _write_csv(path, results):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["n_spins", "h", "phase", "score", "walls", "signed", "abs_share", "prob"])
        for r in results:
            m = r["masses"]
            for i, h in enumerate(r["h_test"]):
                phase = "ordered" if h < J else "disordered"
                for j, k in enumerate(m["walls"]):
                    writer.writerow(
                        [r["n_spins"], f"{h:.6f}", phase, f"{r['scores_test'][i]:.6f}", int(k)]
                        + [f"{m[q][i, j]:.6e}" for q in ("signed", "absolute", "probability")]
                    )


def _figure(path, results):
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    colors = {"ordered": "tab:blue", "disordered": "tab:red"}
    styles = ["o-", "s--", "^:"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    ax = axes[0, 0]
    for r, style in zip(results, styles):
        ax.plot(r["h_test"], r["scores_test"], style, label=f"N = {r['n_spins']} test", ms=4)
        ax.plot(r["h_train"], r["scores_train"], style[0], mfc="none", color="grey", ms=4)
    ax.axvline(1, color="k", lw=0.8)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="transverse field h", ylabel="ordered score f = ⟨Z₀⟩ after the circuit")
    ax.set_title("classifier (open grey: training fields)")
    ax.legend(fontsize=8)

    width = 0.8 / (2 * len(results))
    for col, (key, title) in enumerate(
        (("signed", "signed IG by domain walls (sums to f)"), ("absolute", "share of Σ|IG|"))
    ):
        ax = axes[0, 1 + col]
        j = 0
        for phase in ("ordered", "disordered"):
            for r, hatch in zip(results, ("", "//", "..")):
                values = r["phases"][phase][key]
                positions = np.arange(len(values)) + (j - len(results)) * width + width / 2
                ax.bar(positions, values, width, color=colors[phase], hatch=hatch, alpha=0.8,
                       label=f"{phase}, N = {r['n_spins']}", edgecolor="white")  # fmt: skip
                if key == "absolute":
                    ax.plot(positions, r["phases"][phase]["probability"], "k_", ms=8, mew=2)
                j += 1
        longest = max(results, key=lambda r: r["n_spins"])
        x = np.arange(len(longest["masses"]["walls"]))
        ax.set_xticks(x, [str(k) for k in longest["masses"]["walls"]])
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel="domain walls k", title=title)
        if key == "absolute":
            ax.text(0.98, 0.95, "black bars: the state's probability", transform=ax.transAxes,
                    ha="right", va="top", fontsize=8)  # fmt: skip
        ax.legend(fontsize=7)

    for ax, r in zip(axes[1, :2], results[-2:]):
        signed = r["masses"]["signed"]
        limit = np.abs(signed).max()
        extent = (r["h_test"][0], r["h_test"][-1], -1, r["n_spins"] + 1)
        image = ax.imshow(signed.T, aspect="auto", origin="lower", cmap="RdBu_r",
                          vmin=-limit, vmax=limit, extent=extent)  # fmt: skip
        ax.axvline(1, color="k", lw=0.8)
        ax.set_yticks(r["masses"]["walls"])
        ax.set(xlabel="transverse field h (test)", ylabel="domain walls k",
               title=f"N = {r['n_spins']}: signed IG per k (red: ordered evidence)")  # fmt: skip
        fig.colorbar(image, ax=ax, fraction=0.05)

    ax = axes[1, 2]
    for r, style in zip(results, styles):
        for (h, c), color in zip(r["critical"].items(), ("tab:blue", "tab:red")):
            density = r["masses"]["walls"] / r["n_spins"]
            ax.plot(density, c["signed"], style, color=color, ms=4,
                    label=f"N = {r['n_spins']}, h = {h:.3f} (f = {c['score']:+.2f})")  # fmt: skip
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="domain-wall density k/N", ylabel="signed IG",
           title="near the critical point h = 1")  # fmt: skip
    ax.legend(fontsize=7)
    fig.suptitle(
        "What a quantum classifier of Ising ground states attends to: exact amplitude IG "
        "grouped by domain walls"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(output_dir="xqml_output", quick=False, progress=True):
    """Run the study; returns ``{"table", "results", "seconds", "files"}`` where ``results``
    has one dict per chain length (see :func:`study`). ``quick=True``: 6 and 8 spins, 20
    fields, 60 training steps, one seed (tests)."""
    enable_x64()
    start = time.perf_counter()
    os.makedirs(output_dir, exist_ok=True)
    sizes, n_h, steps, n_seeds, n_layers = (
        ((6, 8), 20, 60, 1, 2) if quick else ((8, 10), 40, 200, 3, 2)
    )
    h = np.linspace(0.2, 2.0, n_h)
    results = [study(n, h[0::2], h[1::2], steps, n_seeds, n_layers, progress) for n in sizes]
    table = format_table(results)
    print(table)
    files = {
        "table": os.path.join(output_dir, "tfim_phases_table.txt"),
        "csv": os.path.join(output_dir, "tfim_phases_masses.csv"),
        "figure": os.path.join(output_dir, "tfim_phases.png"),
    }
    with open(files["table"], "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    _write_csv(files["csv"], results)
    _figure(files["figure"], results)
    seconds = time.perf_counter() - start
    print(f"written: {', '.join(files.values())} ({seconds:.1f} s)")
    return {"table": table, "results": results, "seconds": seconds, "files": files}
