"""Table 1: in-distribution and out-of-distribution scores of every method (Qwen2.5-Math-7B student).

Columns and the marking rule come from paper_numbers.yaml (table1); rows from the config's
`report.table1`. See figures.tables for the modes and figures.cli for the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from figures.cli import table_main
from figures.tables import make_table

NAME = "table1"


def make(
    *,
    out_dir: str | Path,
    mode: str = "reproduced",
    summary: str | Path | None = None,
    spec: Mapping | None = None,
    show_ci: bool = True,
) -> dict[str, Path]:
    """Write table1.{md,tex,csv} to `out_dir`; returns the paths by format."""
    return make_table(NAME, out_dir=out_dir, mode=mode, summary=summary, spec=spec, show_ci=show_ci)


def main(argv: list[str] | None = None) -> int:
    return table_main(NAME, argv)


if __name__ == "__main__":
    sys.exit(main())
