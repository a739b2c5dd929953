"""Figures for attributions: heatmaps over images, bar charts, shot-noise studies (matplotlib).

Every function returns the :class:`matplotlib.figure.Figure` it draws and, given ``path``, also
saves it there (PNG, PDF, ... by the file's suffix). Without a display and without a backend
chosen by the user (``MPLBACKEND``, a notebook), matplotlib's non-interactive Agg backend is used.
"""

from __future__ import annotations

import os
import sys

import matplotlib
import numpy as np

if (
    "matplotlib.pyplot" not in sys.modules
    and not os.environ.get("MPLBACKEND")
    and sys.platform.startswith("linux")
    and not os.environ.get("DISPLAY")
    and not os.environ.get("WAYLAND_DISPLAY")
):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt

__all__ = [
    "plot_attribution_bars",
    "plot_attribution_grid",
    "plot_gate_shapley",
    "plot_shot_study",
]


def _save(fig, path):
    if path is not None:
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return fig


def _as_2d(values, name):
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim < 2:
        raise ValueError(
            f"{name} must hold one or more flat vectors or images; got shape {values.shape}."
        )
    return values.reshape(len(values), -1)


def plot_attribution_grid(
    images,
    attributions,
    image_shape,
    titles=None,
    path=None,
    cmap="RdBu_r",
    cbar_label="attribution",
    suptitle=None,
):
    """A row of input images above a row of their attribution heatmaps.

    The heatmaps share one colour scale, symmetric around 0 (so white means "no effect"), shown
    by a colourbar. Inputs are drawn in grey scale.

    Args:
        images (array): ``(n, *image_shape)`` or ``(n, prod(image_shape))`` inputs (one image
            may be given without the leading axis).
        attributions (array): the attributions, same layout as ``images``.
        image_shape (tuple[int, int]): height and width of an image.
        titles (list[str]): one title per column (optional).
        path (str): save the figure there (optional).
        cmap (str): colour map of the heatmaps (diverging).
        cbar_label (str): label of the colourbar.
        suptitle (str): a title over the whole figure (optional).

    Returns:
        matplotlib.figure.Figure

    >>> import numpy as np
    >>> images = np.eye(2).reshape(1, 2, 2)
    >>> fig = plot_attribution_grid(images, images - 0.5, (2, 2), titles=["diagonal"])
    >>> len(fig.axes)  # two panels and the colourbar
    3
    """
    image_shape = tuple(int(s) for s in image_shape)
    size = int(np.prod(image_shape))
    images, attributions = _as_2d(images, "images"), _as_2d(attributions, "attributions")
    if images.shape[1] != size or attributions.shape[1] != size:
        raise ValueError(
            f"image_shape={image_shape} needs {size} values per image; got images of "
            f"{images.shape[1]} and attributions of {attributions.shape[1]} values."
        )
    if len(images) != len(attributions):
        raise ValueError(f"{len(images)} images but {len(attributions)} attributions.")
    n = len(images)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have one entry per image ({n}); got {len(titles)}.")
    if np.iscomplexobj(attributions):
        attributions = attributions.real

    scale = float(np.max(np.abs(attributions))) or 1.0
    low, high = min(0.0, float(images.min())), float(images.max())
    fig, axes = plt.subplots(
        2, n, figsize=(1.9 * n + 1.2, 4.0), squeeze=False, layout="constrained"
    )
    for j in range(n):
        top, bottom = axes[0, j], axes[1, j]
        top.imshow(images[j].reshape(image_shape), cmap="gray_r", vmin=low, vmax=high or 1.0)
        heat = bottom.imshow(
            attributions[j].reshape(image_shape), cmap=cmap, vmin=-scale, vmax=scale
        )
        if titles is not None:
            top.set_title(titles[j], fontsize=9)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("attribution")
    # one colourbar beside the heatmap row; taking space from both rows keeps panels equal
    cbar = fig.colorbar(heat, ax=axes.ravel().tolist(), shrink=0.45, anchor=(0.0, 0.02), pad=0.02)
    cbar.set_label(cbar_label, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return _save(fig, path)


def plot_shot_study(shots, errors, predicted_stderr, path=None, title=None):
    """Measured attribution error against the number of shots, with the predicted standard error.

    Both axes are logarithmic; a dotted ``1 / sqrt(shots)`` guide (twice the predicted errors'
    fitted constant, so it does not hide them) shows the expected slope. Error bars are drawn when ``errors`` holds several repetitions per shot
    count (shape ``(len(shots), n_repeats)``: their mean and standard deviation are shown).

    Args:
        shots (array): shot counts.
        errors (array): measured error (e.g. RMS over features of attribution minus exact value)
            per shot count, or ``(len(shots), n_repeats)``.
        predicted_stderr (array): the standard error the estimator reports, per shot count.
        path (str): save the figure there (optional).
        title (str): axes title (optional).

    Returns:
        matplotlib.figure.Figure

    >>> fig = plot_shot_study([100, 1000, 10000], [0.1, 0.03, 0.01], [0.1, 0.032, 0.01])
    >>> fig.axes[0].get_xscale()
    'log'
    """
    shots = np.asarray(shots, dtype=float)
    errors = np.asarray(errors, dtype=float)
    predicted = np.asarray(predicted_stderr, dtype=float)
    if errors.shape[0] != len(shots) or predicted.shape != shots.shape:
        raise ValueError(
            f"errors and predicted_stderr need one entry per shot count ({len(shots)}); got "
            f"{errors.shape} and {predicted.shape}."
        )
    fig, ax = plt.subplots(figsize=(5.0, 3.8), layout="constrained")
    if errors.ndim == 2:
        mean, spread = errors.mean(axis=1), errors.std(axis=1)
        ax.errorbar(shots, mean, yerr=spread, fmt="o", capsize=3, label="measured error")
    else:
        ax.plot(shots, errors, "o", markersize=7, label="measured error")
    ax.plot(shots, predicted, "-", lw=2, alpha=0.8, label="reported standard error")
    grid = np.geomspace(shots.min(), shots.max(), 50)
    c = np.exp(np.mean(np.log(predicted * np.sqrt(shots))))
    ax.plot(grid, 2 * c / np.sqrt(grid), "k:", lw=1, alpha=0.6, label=r"slope $-1/2$ (guide)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("shots")
    ax.set_ylabel("attribution error (RMS)")
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: labels[k] != "measured error")
    ax.legend([handles[k] for k in order], [labels[k] for k in order], frameon=False)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_attribution_bars(attributions, feature_names=None, path=None, title=None):
    """Horizontal bars of one attribution vector (positive red, negative blue), first feature on top.

    Args:
        attributions (array): one attribution per feature (flattened if multi-dimensional).
        feature_names (list[str]): labels (default ``x0, x1, ...``).
        path (str): save the figure there (optional).
        title (str): axes title (optional).

    Returns:
        matplotlib.figure.Figure

    >>> fig = plot_attribution_bars([0.3, -0.1, 0.05], ["a", "b", "c"])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['a', 'b', 'c']
    """
    values = np.real(np.asarray(attributions)).reshape(-1)
    names = [f"x{i}" for i in range(len(values))] if feature_names is None else list(feature_names)
    if len(names) != len(values):
        raise ValueError(f"{len(values)} attributions but {len(names)} feature names.")
    colours = np.where(values >= 0, "#c0392b", "#2e6fb7")
    fig, ax = plt.subplots(figsize=(5.0, 0.8 + 0.28 * len(values)), layout="constrained")
    positions = np.arange(len(values))
    ax.barh(positions, values, color=colours)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel("attribution")
    ax.grid(True, axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_gate_shapley(result, output=None, path=None, title=None, cmap="RdBu_r"):
    """The circuit drawing (PennyLane's ``qml.drawer.MPLDrawer``) with each gate coloured by its
    Shapley value (:func:`~pennylane_xqml.methods.gate_shapley.gate_shapley`).

    Every gate of a group gets the group's value; operations that take the input are not
    players and are drawn grey. The colour scale is symmetric around 0 (white: no effect).

    Args:
        result (GateShapleyResult): the explanation.
        output (int): the component of a vector-valued value to show (required when each
            value is not a scalar).
        path (str): save the figure there (optional).
        title (str): axes title (optional).
        cmap (str): colour map (diverging).

    Returns:
        matplotlib.figure.Figure

    >>> import numpy as np, pennylane as qml
    >>> from pennylane_xqml.methods.gate_shapley import gate_shapley
    >>> @qml.qnode(qml.device("default.qubit", wires=2))
    ... def model(x, w):
    ...     qml.RY(x, wires=0)
    ...     qml.CNOT(wires=[0, 1])
    ...     qml.RX(w, wires=1)
    ...     return qml.expval(qml.Z(1))
    >>> fig = plot_gate_shapley(gate_shapley(model)(0.4, 0.3))
    >>> len(fig.axes)  # the circuit and the colourbar
    2
    """
    from pennylane.drawer import MPLDrawer  # pylint: disable=import-outside-toplevel
    from pennylane.drawer.drawable_layers import (  # pylint: disable=import-outside-toplevel
        drawable_layers,
    )

    values = np.real(np.asarray(result.values))
    if values.ndim > 1:
        if output is None:
            raise ValueError(
                f"The values have shape {values.shape}: give output=<index> to choose the "
                "component to show."
            )
        values = values.reshape(len(values), -1)[:, output]
    group_of = {p: j for j, members in enumerate(result.groups) for p in members}
    tape = result.tape
    player_at = {k: p for p, k in enumerate(result.positions)}
    wire_map = {w: i for i, w in enumerate(tape.wires)}
    layers = drawable_layers(tape.operations, wire_map=wire_map)
    layer_of = {id(op): i for i, ops in enumerate(layers) for op in ops}
    scale = float(np.max(np.abs(values))) or 1.0
    norm = matplotlib.colors.Normalize(-scale, scale)
    colours = plt.get_cmap(cmap)
    drawer = MPLDrawer(
        len(layers) + 1,
        wire_map,
        wire_options={"color": "black", "linewidth": 1},
        figsize=(1.0 + 0.62 * len(layers), 0.9 + 0.6 * len(wire_map)),
    )
    drawer.label([str(w) for w in wire_map])
    for k, op in enumerate(tape.operations):
        layer = layer_of[id(op)]
        if k in player_at:
            colour = colours(norm(values[group_of[player_at[k]]]))
        else:
            colour = "0.85"
        if op.name == "CNOT":
            drawer.CNOT(layer, list(op.wires), options={"color": colour, "linewidth": 3})
        else:
            drawer.box_gate(layer, list(op.wires), op.name, box_options={"facecolor": colour},
                            text_options={"fontsize": 9})  # fmt: skip
    measured = tape.measurements[0].wires if tape.measurements else tape.wires
    for mp in tape.measurements[1:]:
        measured = measured + mp.wires
    for wire in measured or tape.wires:
        drawer.measure(len(layers), wire_map[wire], box_options={"facecolor": "white"})
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=colours)
    drawer.fig.colorbar(mappable, ax=drawer.ax, label="Shapley value", shrink=0.8)
    drawer.ax.set_title(
        (title + "\n" if title else "") + "grey: operations that take the input (not players)",
        fontsize=10,
    )
    return _save(drawer.fig, path)
