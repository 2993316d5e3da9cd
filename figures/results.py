"""Reading the pipeline's results for the tables and figures, refusing partial inputs.

Tables read `summary.parquet` (one row per experiment x benchmark x seed); figures read
`runs/<experiment>/seed<k>/metrics.jsonl` (one JSON object per training step). Whatever is missing is
collected first and reported in one `MissingResultsError` that names every missing experiment,
benchmark, seed, file and metric, so a table or figure is never drawn from part of its inputs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from figures.stats import Estimate, average_of_independent, over_seeds
from tgpo.results.layout import run_layout, seed_of_dir

SUMMARY_COLUMNS = (
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
)


class MissingResultsError(RuntimeError):
    """A table or figure lacks some of its inputs; the message lists every missing piece."""

    def __init__(self, output: str, source: str | Path, missing: Sequence[str]):
        self.output, self.source, self.missing = output, str(source), list(missing)
        lines = "\n  - ".join(self.missing)
        super().__init__(f"{output}: cannot render from {source}; missing results:\n  - {lines}")


# ---------------------------------------------------------------------------------------- summary.parquet
def load_summary(path: str | Path) -> pd.DataFrame:
    """summary.parquet with its columns checked (see docs/architecture.md, Results)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no summary.parquet (run the evaluation and `summarize` first)")
    frame = pd.read_parquet(path)
    absent = [column for column in SUMMARY_COLUMNS if column not in frame.columns]
    if absent:
        raise ValueError(f"{path}: summary.parquet lacks columns {absent} (has {list(frame.columns)})")
    return frame


def select_scores(
    summary: pd.DataFrame,
    output: str,
    source: str | Path,
    wanted: dict[str, tuple[int, ...] | None],
    benchmarks: Sequence[str],
) -> pd.DataFrame:
    """Rows of `summary` for the wanted experiments (-> their seeds, None = all) and benchmarks.

    Raises MissingResultsError naming experiments absent from the summary, and per experiment the
    benchmarks and seeds it lacks. Duplicate (experiment, benchmark, seed) rows are an error too.
    """
    missing = []
    chosen = []
    for experiment, seeds in wanted.items():
        rows = summary[summary["experiment"] == experiment]
        if rows.empty:
            missing.append(f"experiment {experiment!r} (no rows at all)")
            continue
        seeds_here = seeds if seeds is not None else tuple(sorted(int(seed) for seed in rows["seed"].unique()))
        for benchmark in benchmarks:
            cells = rows[rows["benchmark"] == benchmark]
            if cells.empty:
                missing.append(f"experiment {experiment!r}: benchmark {benchmark!r}")
                continue
            absent_seeds = [seed for seed in seeds_here if seed not in set(int(s) for s in cells["seed"])]
            if absent_seeds:
                missing.append(f"experiment {experiment!r}: benchmark {benchmark!r} seeds {absent_seeds}")
                continue
            cells = cells[cells["seed"].astype(int).isin(seeds_here)]
            duplicated = cells[cells.duplicated(["seed"], keep=False)]
            if not duplicated.empty:
                raise ValueError(
                    f"{source}: several rows for experiment {experiment!r}, benchmark "
                    f"{benchmark!r}, seeds {sorted(set(duplicated['seed']))} (metrics "
                    f"{sorted(set(duplicated['metric']))}); expected one per seed"
                )
            chosen.append(cells)
    if missing:
        raise MissingResultsError(output, source, missing)
    return pd.concat(chosen, ignore_index=True)


def estimate(scores: pd.DataFrame, experiment: str, benchmark: str) -> Estimate:
    """Mean over seeds of one cell, with its 95 % interval (see figures.stats)."""
    cells = scores[(scores["experiment"] == experiment) & (scores["benchmark"] == benchmark)].sort_values("seed")
    return over_seeds(
        [float(value) for value in cells["score"]],
        [(_float_or_none(low), _float_or_none(high)) for low, high in zip(cells["ci_low"], cells["ci_high"])],
    )


def average_estimate(scores: pd.DataFrame, experiment: str, benchmarks: Sequence[str]) -> Estimate:
    """Unweighted mean over `benchmarks` (the paper's Avg.): per seed, then over seeds."""
    rows = scores[(scores["experiment"] == experiment) & (scores["benchmark"].isin(benchmarks))]
    per_seed = rows.groupby("seed")["score"].mean().sort_index()
    if len(per_seed) > 1:
        return over_seeds([float(value) for value in per_seed], [(None, None)] * len(per_seed))
    return average_of_independent([estimate(scores, experiment, benchmark) for benchmark in benchmarks])


def benchmark_domains(summary: pd.DataFrame) -> dict[str, str]:
    """benchmark -> domain ("id" / "ood") as the evaluation recorded it."""
    return {
        str(benchmark): str(domain)
        for benchmark, domain in summary[["benchmark", "domain"]].drop_duplicates().itertuples(index=False)
    }


# ---------------------------------------------------------------------------------------- metrics.jsonl
def metrics_path(runs_dir: str | Path, experiment: str, seed: int) -> Path:
    return run_layout(runs_dir, experiment, seed).metrics


def discover_seeds(runs_dir: str | Path, experiment: str) -> tuple[int, ...]:
    """Seeds k with runs/<experiment>/seed<k>/metrics.jsonl on disk."""
    directory = Path(runs_dir) / experiment
    found = []
    for child in directory.glob("seed*"):
        seed = seed_of_dir(child.name)  # runs moved aside (seed<k>.stale-...) are not seeds
        if seed is not None and metrics_path(runs_dir, experiment, seed).exists():
            found.append(seed)
    return tuple(sorted(found))


def load_training_curves(
    output: str, runs_dir: str | Path, experiments: dict[str, tuple[int, ...] | None], metrics: Iterable[str]
) -> dict[str, pd.DataFrame]:
    """experiment -> long frame (step, seed, metric, value) with every wanted metric.

    Raises MissingResultsError naming missing experiments, seeds (metrics.jsonl files) and metrics.
    A metric must appear in at least one step of each seed; steps where it is absent are skipped.
    """
    metrics = list(metrics)
    missing, curves = [], {}
    for experiment, seeds in experiments.items():
        seeds = seeds if seeds is not None else discover_seeds(runs_dir, experiment)
        if not seeds:
            missing.append(f"experiment {experiment!r}: no {Path(runs_dir) / experiment}/seed<k>/metrics.jsonl")
            continue
        frames = []
        for seed in seeds:
            path = metrics_path(runs_dir, experiment, seed)
            if not path.exists():
                missing.append(f"experiment {experiment!r}: seed {seed} ({path})")
                continue
            records = _read_jsonl(path)
            if not records:
                missing.append(f"experiment {experiment!r}: seed {seed} ({path} is empty)")
                continue
            frame = pd.DataFrame.from_records(records)
            if "step" not in frame.columns:
                raise ValueError(f"{path}: records have no `step` key (keys: {sorted(frame.columns)})")
            absent = [metric for metric in metrics if metric not in frame.columns or frame[metric].isna().all()]
            if absent:
                missing.append(f"experiment {experiment!r}: seed {seed} metrics {absent} ({path})")
                continue
            long = frame[["step", *metrics]].melt(id_vars="step", var_name="metric", value_name="value")
            frames.append(long.dropna(subset=["value"]).assign(seed=seed))
        if frames:
            curves[experiment] = pd.concat(frames, ignore_index=True)
    if missing:
        raise MissingResultsError(output, runs_dir, missing)
    return curves


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{line_number}: not a JSON object ({error})") from error
    return records


def _float_or_none(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
