"""Radar chart of the trust dimensions: dense and every variant on one picture, as in the paper.

Every registered dimension is an axis, so charts of different runs line up; a dimension the run
did not score is labelled "not run" and left empty rather than drawn as a zero.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

from trustgate.dimensions.registry import NAMES, REGISTRY

LABELS = {entry.name: entry.label for entry in REGISTRY}


def radar_png(scores: Mapping[str, Mapping[str, float]], title: str = "Trust dimensions (0-100)") -> bytes:
    """model -> dimension -> score (0-100) as a PNG. Dense is drawn first, in black."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI runners; never open a window
    import matplotlib.pyplot as plt

    angles = np.linspace(0, 2 * np.pi, len(NAMES), endpoint=False)
    figure, axes = plt.subplots(figsize=(7.5, 7.5), subplot_kw={"polar": True})
    axes.set_theta_offset(np.pi / 2)
    axes.set_theta_direction(-1)
    axes.set_ylim(0, 100)
    axes.set_yticks([20, 40, 60, 80, 100])
    axes.set_yticklabels(["20", "40", "60", "80", "100"], fontsize=8, color="grey")
    present = {d for row in scores.values() for d in row}
    axes.set_xticks(angles)
    axes.set_xticklabels([LABELS[d] if d in present else f"{LABELS[d]}\n(not run)" for d in NAMES], fontsize=10)
    for label, dimension in zip(axes.get_xticklabels(), NAMES, strict=True):
        if dimension not in present:
            label.set_color("lightgrey")
    colours = plt.get_cmap("tab10")
    for index, model in enumerate(sorted(scores, key=lambda m: (m != "dense", m))):
        row = scores[model]
        picked = [(a, row[d]) for a, d in zip(angles, NAMES, strict=True) if d in row]
        if not picked:
            continue
        theta = [a for a, _ in picked] + [picked[0][0]]
        radius = [v for _, v in picked] + [picked[0][1]]
        colour = "black" if model == "dense" else colours(index % 10)
        axes.plot(theta, radius, marker="o", linewidth=2 if model == "dense" else 1.5, color=colour, label=model)
        if len(picked) >= 3:
            axes.fill(theta, radius, color=colour, alpha=0.06)
    axes.set_title(title, pad=24, fontsize=12)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper right", bbox_to_anchor=(1.32, 1.12), fontsize=9, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
