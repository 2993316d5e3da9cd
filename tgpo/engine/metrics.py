"""metrics.jsonl (one JSON object per step, verl's metric names) and the per-step log line.

The file is rewritten atomically (tgpo.results.io) after every step; on resume it is truncated to the line
count recorded in the checkpoint, so steps after the checkpoint are logged once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from tgpo.results.io import write_text
from tgpo.results.layout import RunLayout

# The names every step logs (docs/architecture.md); methods without a term log 0 for it.
STEP_METRICS = (
    "step",
    "critic/score/mean",
    "response_length/mean",
    "actor/grad_norm",
    "actor/pg_loss",
    "actor/entropy",
    "actor/pg_clipfrac",
    "actor/kl_loss",
    "tgpo/guidance_weight",
    "tgpo/guidance_loss",
    "tgpo/teacher_oov_frac",
    "timing_s/gen",
    "timing_s/teacher",
    "timing_s/update",
    "timing_s/step",
)

# Short names for the readable log line.
LOG_LINE_FIELDS = (
    ("score", "critic/score/mean"),
    ("len", "response_length/mean"),
    ("pg", "actor/pg_loss"),
    ("guide", "tgpo/guidance_loss"),
    ("w", "tgpo/guidance_weight"),
    ("gnorm", "actor/grad_norm"),
    ("s", "timing_s/step"),
)


class MetricsLog:
    """The lines of one run's metrics.jsonl, kept in memory and written atomically on each append."""

    def __init__(self, output_dir: Path, keep_lines: int = 0):
        self.path = RunLayout(Path(output_dir)).metrics
        lines: list[str] = []
        if keep_lines and self.path.exists():
            lines = [line for line in self.path.read_text().splitlines() if line.strip()]
            if len(lines) < keep_lines:
                raise RuntimeError(
                    f"{self.path}: has {len(lines)} lines but the checkpoint records {keep_lines}; the metrics "
                    "file does not belong to this checkpoint"
                )
        self.lines = lines[:keep_lines]
        self.flush()

    def __len__(self) -> int:
        return len(self.lines)

    def append(self, record: Mapping[str, float]) -> None:
        self.lines.append(json.dumps(dict(record), sort_keys=False, allow_nan=True))
        self.flush()

    def flush(self) -> None:
        write_text(self.path, "".join(line + "\n" for line in self.lines))

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]

    @staticmethod
    def read(output_dir: Path) -> list[dict]:
        """The records of an existing metrics.jsonl (without rewriting it)."""
        path = RunLayout(Path(output_dir)).metrics
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def mean_metrics(per_micro_batch: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each key over micro-batches (keys missing from some micro-batches average over the rest)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for metrics in per_micro_batch:
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}


# compute_loss reports these as the micro-batch's share of the mini-batch loss: they add up over
# micro-batches; every other metric is a per-micro-batch mean.
ADDITIVE_METRICS = frozenset(
    {"actor/pg_loss", "tgpo/guidance_loss", "actor/kl_loss", "tgpo/rkl_loss", "actor/sft_loss"}
)


def combine_micro_batch_metrics(per_micro_batch: list[Mapping[str, float]]) -> dict[str, float]:
    """One mini-batch's metrics: loss shares summed, the rest averaged over micro-batches."""
    combined = mean_metrics(per_micro_batch)
    for key in combined:
        if key in ADDITIVE_METRICS:
            combined[key] = sum(float(m[key]) for m in per_micro_batch if key in m)
    return combined


def non_finite_keys(metrics: Mapping[str, float]) -> list[str]:
    return [key for key, value in metrics.items() if isinstance(value, float) and not math.isfinite(value)]


def log_line(experiment: str, step: int, steps: int, record: Mapping[str, float]) -> str:
    parts = [f"{experiment} step {step}/{steps}"]
    for short, key in LOG_LINE_FIELDS:
        if key in record:
            parts.append(f"{short}={record[key]:.4g}")
    return " ".join(parts)
