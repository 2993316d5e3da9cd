"""The statistic both verl benchmarks print on their last line: the median of paired TGPO / GRPO++ ratios,
their spread, and whether the median is resolved to 5 %.

Each ratio is one pairing of a TGPO measurement with the GRPO++ measurement next to it (one alternation:
the same update in the same process, or the same step index of the two runs), so load drift that hits a
pair hits both of its halves. The 95 % confidence interval of the median is distribution-free: the order
statistics (k, n + 1 - k) with k the largest index such that P(Binomial(n, 1/2) < k) <= 2.5 % (e.g.
Conover, Practical Nonparametric Statistics, 3rd ed., Sec. 3.2). The median counts as resolved to 5 %
when that interval lies within median x (1 +- 0.05). Ten pairs give at best the interval (x_(2), x_(9));
with fewer than six pairs no interval at 95 % exists and nothing is resolved.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

RESOLUTION = 0.05
CONFIDENCE = 0.95


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (k, n + 1 - k) of the distribution-free confidence interval of a median of n values;
    None when n is too small for any interval at this confidence."""
    alpha = (1 - confidence) / 2
    cumulative, k = 0.0, 0
    for i in range(n + 1):
        cumulative += math.comb(n, i) / 2**n  # P(B <= i)
        if cumulative > alpha:
            break
        k = i + 1  # P(B < k) = P(B <= i) <= alpha
    if k < 1:
        return None
    return k, n + 1 - k


def ratio_summary(ratios: Sequence[float]) -> dict:
    """median, quartiles, min, max, the 95 % CI of the median (or None) and `resolved` for paired ratios."""
    if not ratios:
        raise ValueError("ratio_summary: no ratios")
    values = sorted(float(r) for r in ratios)
    n = len(values)
    median = statistics.median(values)
    quartiles = statistics.quantiles(values, n=4) if n >= 2 else [values[0]] * 3
    ranks = median_ci_ranks(n)
    ci = (values[ranks[0] - 1], values[ranks[1] - 1]) if ranks else None
    resolved = ci is not None and ci[0] >= median * (1 - RESOLUTION) and ci[1] <= median * (1 + RESOLUTION)
    return {
        "n": n,
        "median": median,
        "q1": quartiles[0],
        "q3": quartiles[2],
        "min": values[0],
        "max": values[-1],
        "ci": ci,
        "resolved": resolved,
    }


def summary_text(name: str, summary: dict) -> str:
    """`<name>=<median> (IQR a-b, 95% CI c-d, n pairs, resolves 5 %: yes/no)`."""
    ci = f"{summary['ci'][0]:.3f}-{summary['ci'][1]:.3f}" if summary["ci"] else "none (n < 6)"
    return (
        f"{name}={summary['median']:.3f} (IQR {summary['q1']:.3f}-{summary['q3']:.3f}, 95% CI {ci}, "
        f"n={summary['n']}, resolves_5pct={'yes' if summary['resolved'] else 'no'})"
    )
