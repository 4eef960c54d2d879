"""Radar chart of the trust dimensions: dense and every variant on one picture, as in the paper.

Every registered dimension is an axis, so charts of different runs line up; a dimension the run
did not score is labelled "not run" and left empty rather than drawn as a zero. A model's score
resting on (almost) no answers is no point at all: the legend names it, and the axis label says
"no answers" with the model, so a model that answered nothing is never drawn as perfectly unbiased.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from trustgate.dimensions.registry import NAMES, REGISTRY

LABELS = {entry.name: entry.label for entry in REGISTRY}


def radar_png(
    scores: Mapping[str, Mapping[str, float]],
    title: str = "Trust dimensions (0-100)",
    no_answers: Mapping[str, Sequence[str]] | None = None,
) -> bytes:
    """model -> dimension -> score (0-100) as a PNG. Dense is drawn first, in black.
    `no_answers`: model -> the dimensions where it gave (almost) no scorable answer: no point there."""
    no_answers = {model: list(dims) for model, dims in (no_answers or {}).items() if dims}
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
    silent = {d: [m for m, dims in sorted(no_answers.items()) if d in dims] for d in NAMES}

    def label(dimension: str) -> str:
        if silent[dimension]:
            return f"{LABELS[dimension]}\n(no answers: {', '.join(silent[dimension])})"
        return LABELS[dimension] if dimension in present else f"{LABELS[dimension]}\n(not run)"

    axes.set_xticks(angles)
    axes.set_xticklabels([label(d) for d in NAMES], fontsize=10)
    for text, dimension in zip(axes.get_xticklabels(), NAMES, strict=True):
        if silent[dimension]:
            text.set_color("#b00000")
        elif dimension not in present:
            text.set_color("lightgrey")
    colours = plt.get_cmap("tab10")
    for index, model in enumerate(sorted(set(scores) | set(no_answers), key=lambda m: (m != "dense", m))):
        row = scores.get(model, {})
        picked = [(a, row[d]) for a, d in zip(angles, NAMES, strict=True) if d in row]
        name = f"{model} (no answers: {', '.join(no_answers[model])})" if model in no_answers else model
        if not picked:
            axes.plot([], [], marker="o", fillstyle="none", linestyle="none", color="grey", label=name)
            continue
        theta = [a for a, _ in picked] + [picked[0][0]]
        radius = [v for _, v in picked] + [picked[0][1]]
        colour = "black" if model == "dense" else colours(index % 10)
        axes.plot(theta, radius, marker="o", linewidth=2 if model == "dense" else 1.5, color=colour, label=name)
        if len(picked) >= 3:
            axes.fill(theta, radius, color=colour, alpha=0.06)
    axes.set_title(title, pad=24, fontsize=12)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper right", bbox_to_anchor=(1.32, 1.12), fontsize=9, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
