"""Confidence intervals for scores aggregated over seeds.

Several seeds: the Student-t interval of the mean, mean +- t_{0.975, n-1} * s / sqrt(n).
One seed: the interval the evaluation stored in summary.parquet (`ci_low`, `ci_high`, over problems and
samples). An average over benchmarks of one seed: the half-widths combined as for independent
benchmarks, sqrt(sum h_i^2) / m. The t quantile is computed here (closed-form CDF for integer degrees
of freedom, Abramowitz & Stegun 26.7.3-4, inverted by bisection) so the base install needs no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """A score in percent with its 95 % interval (`ci_low`, `ci_high` may be None: no interval known)."""

    score: float
    ci_low: float | None
    ci_high: float | None
    n_seeds: int

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2.0


def student_t_two_sided_probability(t: float, dof: int) -> float:
    """P(|T| < t) for Student's t with integer `dof` >= 1 (Abramowitz & Stegun 26.7.3, 26.7.4)."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    theta = math.atan(abs(t) / math.sqrt(dof))
    cos_theta, sin_theta = math.cos(theta), math.sin(theta)
    if dof % 2 == 1:
        series, term = 0.0, cos_theta
        if dof > 1:
            series = term
            for k in range(2, dof - 1, 2):  # coefficients 2/3, (2*4)/(3*5), ...
                term *= cos_theta**2 * k / (k + 1)
                series += term
        return (2.0 / math.pi) * (theta + sin_theta * series)
    series, term = 1.0, 1.0
    for k in range(1, dof - 2, 2):  # coefficients 1/2, (1*3)/(2*4), ...
        term *= cos_theta**2 * k / (k + 1)
        series += term
    return sin_theta * series


def student_t_quantile(confidence: float, dof: int) -> float:
    """The t with P(|T| < t) = `confidence` (e.g. 0.95 -> 12.706 for dof 1, 4.303 for dof 2)."""
    low, high = 0.0, 1.0
    while student_t_two_sided_probability(high, dof) < confidence:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if student_t_two_sided_probability(middle, dof) < confidence:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def over_seeds(
    scores: Sequence[float], intervals: Sequence[tuple[float | None, float | None]], confidence: float = 0.95
) -> Estimate:
    """Mean over seeds; t interval over seeds when there are several, else the stored interval."""
    if not scores:
        raise ValueError("no scores to aggregate")
    count = len(scores)
    mean = sum(scores) / count
    if count == 1:
        low, high = intervals[0]
        return Estimate(mean, _finite_or_none(low), _finite_or_none(high), 1)
    variance = sum((score - mean) ** 2 for score in scores) / (count - 1)
    half_width = student_t_quantile(confidence, count - 1) * math.sqrt(variance / count)
    return Estimate(mean, mean - half_width, mean + half_width, count)


def average_of_independent(estimates: Sequence[Estimate]) -> Estimate:
    """Mean of one seed's benchmark scores; half-width sqrt(sum h_i^2)/m if every interval is known."""
    mean = sum(estimate.score for estimate in estimates) / len(estimates)
    half_widths = [estimate.half_width for estimate in estimates]
    if any(width is None for width in half_widths):
        return Estimate(mean, None, None, 1)
    half_width = math.sqrt(sum(width**2 for width in half_widths)) / len(estimates)
    return Estimate(mean, mean - half_width, mean + half_width, 1)


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
