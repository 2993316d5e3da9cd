"""Verb `summarize`: every per-sample eval parquet of a results folder -> `summary.parquet`.

Reads `results/<name>/eval/<experiment>/seed<k>/<benchmark>.parquet` (written by the `eval` verb, which
stores the benchmark's domain and metric in the file's metadata) and writes one row per
experiment x benchmark x seed: experiment, benchmark, domain, metric, seed, score (percent), ci_low,
ci_high, n_problems, n_samples (eval.metrics has the formulas).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from eval.metrics import bootstrap_interval, correctness_matrix, score
from tgpo.results.layout import ResultsLayout, seed_of_dir

SUMMARY_COLUMNS = [
    "experiment",
    "benchmark",
    "domain",
    "metric",
    "seed",
    "score",
    "ci_low",
    "ci_high",
    "n_problems",
    "n_samples",
]
REQUIRED_METADATA = ("domain", "metric")


def summarize_file(path: Path, experiment: str, seed: int, *, n_resamples: int, bootstrap_seed: int) -> dict:
    samples = pd.read_parquet(path)
    metadata = samples.attrs or {}
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(f"{path}: metadata lacks {missing} (write it with `python -m tgpo eval`)")
    correct = correctness_matrix(samples, source=str(path))
    low, high = bootstrap_interval(correct, n_resamples=n_resamples, seed=bootstrap_seed)
    return {
        "experiment": experiment,
        "benchmark": path.stem,
        "domain": metadata["domain"],
        "metric": metadata["metric"],
        "seed": seed,
        "score": score(correct),
        "ci_low": low,
        "ci_high": high,
        "n_problems": int(correct.shape[0]),
        "n_samples": int(correct.size),
    }


def eval_files(results_dir: Path, only: list[Path] | None = None) -> list[tuple[str, int, Path]]:
    """(experiment, seed, file) for every eval/<experiment>/seed<k>/<benchmark>.parquet, sorted; with
    `only`, just those files (the pipeline passes its config's, so stale files of removed experiments
    never enter the summary)."""
    eval_dir = ResultsLayout(results_dir).evals
    if not eval_dir.is_dir():
        raise FileNotFoundError(f"{eval_dir} does not exist: run `python -m tgpo eval` first")
    found = []
    paths = sorted(eval_dir.glob("*/*/*.parquet")) if only is None else sorted(Path(p) for p in only)
    for path in paths:
        seed = seed_of_dir(path.parent.name)
        if seed is None:
            raise ValueError(f"{path}: expected eval/<experiment>/seed<k>/<benchmark>.parquet")
        found.append((path.parent.parent.name, seed, path))
    if not found:
        raise FileNotFoundError(f"{eval_dir}: no <experiment>/seed<k>/<benchmark>.parquet files")
    return found


def build_summary(
    results_dir: Path, *, n_resamples: int = 1000, bootstrap_seed: int = 0, only: list[Path] | None = None
) -> pd.DataFrame:
    from tqdm import tqdm

    rows = [
        summarize_file(path, experiment, seed, n_resamples=n_resamples, bootstrap_seed=bootstrap_seed)
        for experiment, seed, path in tqdm(eval_files(results_dir, only), desc="summarize", unit="file")
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, type=Path, help="results/<name> folder holding eval/")
    parser.add_argument("--out", type=Path, default=None, help="output parquet (default <results>/summary.parquet)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% interval")
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    parser.add_argument(
        "--files",
        nargs="+",
        type=Path,
        default=None,
        help="summarize only these eval parquets (default: every one under <results>/eval)",
    )


def run(args: argparse.Namespace) -> int:
    from tgpo.results.io import write_parquet

    summary = build_summary(
        args.results, n_resamples=args.bootstrap, bootstrap_seed=args.bootstrap_seed, only=args.files
    )
    out = args.out or ResultsLayout(args.results).summary
    write_parquet(out, summary)
    print(
        f"wrote {out}: {len(summary)} rows ({summary['experiment'].nunique()} experiments, "
        f"{summary['benchmark'].nunique()} benchmarks)"
    )
    return 0
