"""avg@k / pass@1 arithmetic against hand-computed cases, the bootstrap interval and summary.parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval.metrics import bootstrap_interval, correctness_matrix, score
from eval.summary import SUMMARY_COLUMNS, build_summary


def samples(grades: dict[str, list[int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"prompt_id": pid, "sample_index": j, "correct": bool(c)}
            for pid, row in grades.items()
            for j, c in enumerate(row)
        ]
    )


def test_avg_at_k_by_hand():
    # problem a: 3/4, b: 0/4, c: 4/4 -> (0.75 + 0 + 1) / 3 = 58.333...%
    matrix = correctness_matrix(samples({"a": [1, 1, 0, 1], "b": [0, 0, 0, 0], "c": [1, 1, 1, 1]}))
    assert matrix.shape == (3, 4)
    assert score(matrix) == pytest.approx(100 * 1.75 / 3)
    # pass@1: 2 of 5 problems right
    assert score(correctness_matrix(samples({p: [c] for p, c in zip("vwxyz", [1, 0, 0, 1, 0])}))) == pytest.approx(40.0)


def test_matrix_orders_samples_and_rejects_uneven_counts():
    frame = samples({"a": [1, 0], "b": [0, 1]}).iloc[[3, 0, 2, 1]]
    assert correctness_matrix(frame).tolist() == [[0.0, 1.0], [1.0, 0.0]]  # b first (first seen), by sample_index
    with pytest.raises(ValueError, match="different sample counts"):
        correctness_matrix(samples({"a": [1, 0], "b": [1]}))


def test_bootstrap_interval_is_seeded_and_covers_the_score():
    rng = np.random.default_rng(3)
    matrix = (rng.random((40, 8)) < 0.3).astype(float)
    low, high = bootstrap_interval(matrix, seed=0)
    assert low < score(matrix) < high
    assert (low, high) == bootstrap_interval(matrix, seed=0)
    assert (low, high) != bootstrap_interval(matrix, seed=1)
    problem_only = bootstrap_interval(matrix, seed=0, resample_samples=False)
    assert high - low > (problem_only[1] - problem_only[0]) * 0.9  # two-level is not narrower (up to noise)
    constant = np.ones((10, 1))
    assert bootstrap_interval(constant) == (100.0, 100.0)


def test_summary_from_eval_parquets(tmp_path):
    from tgpo.results.io import write_parquet

    def write(experiment, seed, benchmark, domain, metric, grades):
        frame = samples(grades)
        frame.attrs = {"benchmark": benchmark, "domain": domain, "metric": metric}
        write_parquet(tmp_path / "eval" / experiment / f"seed{seed}" / f"{benchmark}.parquet", frame)

    write("tgpo", 0, "aime24", "id", "avg@2", {"a": [1, 0], "b": [1, 1]})
    write("tgpo", 0, "math500", "id", "pass@1", {"a": [1], "b": [0], "c": [0], "d": [0]})
    write("tgpo", 0, "arc_c", "ood", "pass@1", {"a": [1], "b": [1]})
    write("grpo", 1, "aime24", "id", "avg@2", {"a": [0, 0], "b": [0, 1]})
    summary = build_summary(tmp_path, n_resamples=200)
    assert list(summary.columns) == SUMMARY_COLUMNS
    row = summary.set_index(["experiment", "benchmark", "seed"]).loc[("tgpo", "aime24", 0)]
    assert row["score"] == pytest.approx(75.0) and row["n_problems"] == 2 and row["n_samples"] == 4
    assert row["metric"] == "avg@2" and row["domain"] == "id" and row["ci_low"] <= 75.0 <= row["ci_high"]


def test_summary_rejects_files_without_metadata(tmp_path):
    path = tmp_path / "eval" / "x" / "seed0" / "amc.parquet"
    path.parent.mkdir(parents=True)
    samples({"a": [1]}).to_parquet(path, index=False)
    with pytest.raises(ValueError, match="metadata lacks"):
        build_summary(tmp_path)
