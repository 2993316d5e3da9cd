"""The claims' rules (figures/claims.py): interval comparisons and the per-draw count."""

from __future__ import annotations

from figures.claims import Claim, compare, render
from figures.stats import Estimate


def est(score, half):
    return Estimate(score, score - half, score + half, 3)


def test_compare_needs_disjoint_intervals():
    assert compare(est(46.3, 5.3), est(36.6, 2.9)) == "above"
    assert compare(est(46.3, 5.3), est(43.5, 1.7)) == "ties"
    assert compare(est(6.3, 2.3), est(36.6, 2.9)) == "below"
    assert compare(Estimate(50.0, None, None, 1), est(10.0, 1.0)) == "ties"


def test_render_counts_the_draws_a_claim_holds_in():
    draws = {"mini": [Claim("b", "(b) x", True, "above y", "...")],
             "mini-build1": [Claim("b", "(b) x", False, "ties y", "...")]}
    text = render(draws)
    assert "| (b) x | 1 of 2 | above y | ties y |" in text
    assert "#### mini-build1" in text
