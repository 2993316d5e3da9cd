"""Figure 5: ablation of the guidance-weight schedules (Section 5.3).

Left: training reward `critic/score/mean` of each schedule (constant, aggressive, continuous, ours).
Right, a narrow panel beside it (an inset would cover curves wherever they run): the guidance weight
w_t = max(w_init - delta * t, 0) as logged (`tgpo/guidance_weight`, unsmoothed). Series: the config's
`report.fig5.series`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt

from figures import style
from figures.cli import figure_main
from figures.curves import GUIDANCE_WEIGHT, SCORE, add_note, draw, load_series_curves, save

NAME = "fig5"
WIDTH_RATIOS = (2.6, 1.0)  # reward panel : weight panel


def make(*, spec: Mapping, runs_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write fig5.pdf and fig5.png to `out_dir`; returns the paths by format."""
    per_series = load_series_curves(NAME, spec, runs_dir, (SCORE, GUIDANCE_WEIGHT))
    style.apply_style()
    figure, (ax, weight_ax) = plt.subplots(
        1, 2, figsize=(style.COLUMN_WIDTH_IN, 2.9), gridspec_kw={"width_ratios": WIDTH_RATIOS}
    )
    draw(ax, [curves[SCORE.metric] for curves in per_series], SCORE)
    ax.set_title("")
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    figure.legend(handles, labels, loc="upper center", ncol=2, frameon=False, borderaxespad=0.2)
    for curves in per_series:
        weight = curves[GUIDANCE_WEIGHT.metric]
        weight_ax.plot(weight.steps, weight.mean, color=style.colour_of(weight.label), linewidth=1.2)
    weight_ax.set_title("Guidance weight $w_t$", fontsize=8, pad=3)
    weight_ax.set_xlabel("Training step")
    weight_ax.tick_params(labelsize=7)
    weight_ax.ticklabel_format(axis="y", style="plain")
    weight_ax.grid(alpha=0.2)
    weight_ax.margins(x=0)
    figure.tight_layout(rect=(0, 0, 1, 0.86))
    add_note(figure, spec)
    return save(figure, out_dir, NAME)


def main(argv: list[str] | None = None) -> int:
    return figure_main(NAME, make, argv)


if __name__ == "__main__":
    sys.exit(main())
