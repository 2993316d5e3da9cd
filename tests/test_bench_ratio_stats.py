"""The benchmarks' last-line statistic (issue 18, item 17): median of paired ratios, spread, 95 % interval,
and whether 5 % is resolved (bench/ratio_stats.py); and the schedule's exact zero the teacher skip needs."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from tgpo.objectives.annealing import guidance_weight, teacher_idle

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("ratio_stats", ROOT / "bench" / "ratio_stats.py")
ratio_stats = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ratio_stats)


@pytest.mark.parametrize(("n", "ranks"), [(5, None), (6, (1, 6)), (10, (2, 9)), (12, (3, 10)), (20, (6, 15))])
def test_median_interval_ranks_are_the_binomial_order_statistics(n, ranks):
    assert ratio_stats.median_ci_ranks(n) == ranks
    if ranks:  # coverage of (x_(k), x_(n+1-k)) = 1 - 2 P(B < k) >= 95 %, and k + 1 would drop below it
        k = ranks[0]
        below = sum(math.comb(n, i) for i in range(k)) / 2**n
        assert 1 - 2 * below >= 0.95
        assert 1 - 2 * (below + math.comb(n, k) / 2**n) < 0.95


def test_tight_ratios_resolve_five_percent_and_spread_ones_do_not():
    tight = ratio_stats.ratio_summary([1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00, 1.02])
    spread = ratio_stats.ratio_summary([0.80, 1.20, 0.90, 1.10, 1.00, 0.85, 1.15, 0.95, 1.05, 1.00])
    few = ratio_stats.ratio_summary([1.0, 1.0, 1.0, 1.0, 1.0])
    assert tight["resolved"] and tight["ci"] == (0.99, 1.02)
    assert not spread["resolved"] and spread["ci"] == (0.85, 1.15)
    assert not few["resolved"] and few["ci"] is None  # too few pairs for any 95 % interval
    text = ratio_stats.summary_text("time_ratio", tight)
    assert text.startswith("time_ratio=1.000 (IQR ") and "95% CI 0.990-1.020" in text and "resolves_5pct=yes" in text


def test_a_rounding_residue_of_the_schedule_is_zero_so_the_teacher_is_skipped():
    # 0.1 - (0.1 / 19) * 19 = 1.4e-17 in floating point: the schedule's zero must read 0 exactly
    assert guidance_weight(19, 0.1, 0.1 / 19) == 0.0
    assert teacher_idle("argmax", "regulariser", {"w_init": 0.1, "delta": 0.1 / 19}, 19)
    assert guidance_weight(18, 0.1, 0.1 / 19) == pytest.approx(0.1 / 19)
