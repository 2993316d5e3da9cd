"""Figure 2: RKL-only distillation (Section 2.3) with an in-family vs a cross-family teacher.

Panels as in the paper: training score `critic/score/mean` (left), gradient norm `actor/grad_norm`
(middle), response length `response_length/mean` (right). Series: the config's `report.fig2.series`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from figures.cli import figure_main
from figures.curves import GRAD_NORM, LENGTH, Panel, panel_row_figure

NAME = "fig2"
PANELS = (Panel("critic/score/mean", "Training score", "Mean verifier reward (0-1)"), GRAD_NORM, LENGTH)


def make(*, spec: Mapping, runs_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write fig2.pdf and fig2.png to `out_dir`; returns the paths by format."""
    return panel_row_figure(NAME, spec, runs_dir, out_dir, PANELS)


def main(argv: list[str] | None = None) -> int:
    return figure_main(NAME, make, argv)


if __name__ == "__main__":
    sys.exit(main())
