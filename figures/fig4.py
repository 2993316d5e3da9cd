"""Figure 4: training dynamics of TGPO, RKL, KDRL, GRPO++ and LUFFY (Qwen2.5-Math-7B student, Section 5.2).

Panels as in the paper: training reward `critic/score/mean` (left), response length
`response_length/mean` (middle), gradient norm `actor/grad_norm` (right). Series: the config's
`report.fig4.series`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from figures.cli import figure_main
from figures.curves import GRAD_NORM, LENGTH, SCORE, panel_row_figure

NAME = "fig4"
PANELS = (SCORE, LENGTH, GRAD_NORM)


def make(*, spec: Mapping, runs_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write fig4.pdf and fig4.png to `out_dir`; returns the paths by format."""
    return panel_row_figure(NAME, spec, runs_dir, out_dir, PANELS)


def main(argv: list[str] | None = None) -> int:
    return figure_main(NAME, make, argv)


if __name__ == "__main__":
    sys.exit(main())
