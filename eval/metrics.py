"""Benchmark scores and their uncertainty (paper Section 4, Table 1).

With c_{p,j} in {0, 1} the grade of sample j of problem p (P problems, k samples each):

    avg@k  = 100 / P * sum_p (1/k) sum_j c_{p,j}        (AIME24, AIME25, AMC: k = 32)
    pass@1 = 100 / P * sum_p c_{p,1}                    (the same formula with k = 1)

Table 1's "Avg." columns are unweighted means of the benchmark scores of a domain (ID: the six maths
sets, AIME24 and AIME25 counted separately; OOD: ARC-c, GPQA*, MMLU-Pro).

The 95 % interval is a seeded percentile bootstrap over problems; for k > 1 it resamples the k samples
of every drawn problem too (two-level), so it covers both the choice of problems and sampling noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SAMPLE_COLUMNS = ("prompt_id", "sample_index", "correct")


def correctness_matrix(samples: pd.DataFrame, *, source: str = "samples") -> np.ndarray:
    """[P, k] float matrix of grades, problems in order of first appearance, samples by sample_index.

    Every problem must have the same number of samples (the eval verb writes k per problem)."""
    missing = [column for column in SAMPLE_COLUMNS if column not in samples.columns]
    if missing:
        raise KeyError(f"{source}: missing column(s) {missing}; have {list(samples.columns)}")
    if samples.empty:
        raise ValueError(f"{source}: no samples")
    counts = samples.groupby("prompt_id", sort=False).size()
    if counts.nunique() != 1:
        uneven = counts[counts != counts.mode().iloc[0]]
        raise ValueError(f"{source}: problems have different sample counts, e.g. {uneven.head(5).to_dict()}")
    ordered = samples.sort_values(["prompt_id", "sample_index"], kind="stable")
    order = pd.unique(samples["prompt_id"])
    matrix = ordered.pivot(index="prompt_id", columns="sample_index", values="correct").loc[order]
    return matrix.to_numpy(dtype=float)


def score(correct: np.ndarray) -> float:
    """avg@k (= pass@1 for k = 1) in percent: mean over problems of the mean over samples. correct: [P, k]."""
    return float(100.0 * correct.mean(axis=1).mean())


def bootstrap_interval(
    correct: np.ndarray, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95, resample_samples: bool = True
) -> tuple[float, float]:
    """Percentile bootstrap interval of `score`, in percent. correct: [P, k].

    Resamples problems with replacement; with `resample_samples` and k > 1 also each drawn problem's k
    samples with replacement."""
    n_problems, k = correct.shape
    rng = np.random.default_rng(seed)
    problem_draws = rng.integers(n_problems, size=(n_resamples, n_problems))  # [R, P]
    if resample_samples and k > 1:
        sample_draws = rng.integers(k, size=(n_resamples, n_problems, k))  # [R, P, k]
        drawn = correct[problem_draws[..., None], sample_draws]  # [R, P, k]
        scores = 100.0 * drawn.mean(axis=2).mean(axis=1)
    else:
        scores = 100.0 * correct.mean(axis=1)[problem_draws].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(scores, [tail, 1.0 - tail])
    return float(low), float(high)
