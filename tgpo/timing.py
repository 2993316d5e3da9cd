"""`python -m tgpo timing --results results/mini`: the slowest pipeline jobs, from Snakemake's
`benchmark:` files (one TSV per job under results/<name>/benchmarks/), and the total CPU time per rule."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def read_benchmarks(results: Path) -> pd.DataFrame:
    """One row per job: rule, job (the path under benchmarks/), wall seconds, CPU seconds, max RSS (MB)."""
    root = results / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        relative = path.relative_to(root).with_suffix("")
        rows.append(
            {
                "rule": relative.parts[0] if len(relative.parts) > 1 else relative.name,
                "job": str(relative),
                "wall_s": float(table["s"].iloc[-1]),
                "cpu_s": float(table["cpu_time"].iloc[-1]) if "cpu_time" in table else float("nan"),
                "max_rss_mb": float(table["max_rss"].iloc[-1]) if "max_rss" in table else float("nan"),
            }
        )
    if not rows:
        raise FileNotFoundError(f"no benchmark files under {root} (run the pipeline first)")
    return pd.DataFrame(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=Path("results/mini"), help="results/<name>")
    parser.add_argument("--top", type=int, default=10, help="how many of the slowest jobs to list")


def run(args: argparse.Namespace) -> int:
    jobs = read_benchmarks(args.results)
    print(f"slowest {args.top} jobs (wall s, CPU s, max RSS MB):")
    print(jobs.sort_values("wall_s", ascending=False).head(args.top).to_string(index=False, float_format="%.1f"))
    per_rule = jobs.groupby("rule").agg(jobs=("job", "count"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"))
    print("\nper rule (sums over jobs):")
    print(per_rule.sort_values("wall_s", ascending=False).to_string(float_format="%.1f"))
    return 0
