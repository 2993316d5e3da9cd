"""Figure 5: ablation of the guidance-weight schedules (Section 5.3).

Main axes: training reward `critic/score/mean` of each schedule (constant, aggressive, continuous,
ours). Inset: the guidance weight w_t = max(w_init - delta * t, 0) as logged (`tgpo/guidance_weight`,
unsmoothed). Series: the config's `report.fig5.series`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt

from figures import style
from figures.cli import figure_main
from figures.curves import GUIDANCE_WEIGHT, SCORE, draw, load_series_curves, save

NAME = "fig5"
INSET_BOUNDS = (0.12, 0.6, 0.36, 0.3)  # axes fraction: upper left, above the early-training dip


def make(*, spec: Mapping, runs_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write fig5.pdf and fig5.png to `out_dir`; returns the paths by format."""
    per_series = load_series_curves(NAME, spec, runs_dir, (SCORE, GUIDANCE_WEIGHT))
    style.apply_style()
    figure, ax = plt.subplots(figsize=(style.COLUMN_WIDTH_IN, 2.9))
    draw(ax, [curves[SCORE.metric] for curves in per_series], SCORE)
    ax.set_title("")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, frameon=False, borderaxespad=0)
    inset = ax.inset_axes(INSET_BOUNDS, zorder=5)
    for curves in per_series:
        weight = curves[GUIDANCE_WEIGHT.metric]
        inset.plot(weight.steps, weight.mean, color=style.colour_of(weight.label), linewidth=1.0)
    inset.set_title("Guidance weight $w_t$", fontsize=6.5, pad=2)
    inset.set_xlabel("")
    inset.tick_params(labelsize=6, length=2, pad=1)
    inset.ticklabel_format(axis="y", style="plain")
    inset.set_facecolor("white")
    inset.grid(alpha=0.2)
    inset.margins(x=0)
    figure.tight_layout()
    return save(figure, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    return figure_main(NAME, make, argv)


if __name__ == "__main__":
    sys.exit(main())
