"""Guidance-weight schedule of TGPO-annealing (Section 3.2): w_t = max(w_init - delta * t, 0).

`step` counts from 0 (the first update uses w_init), which matches the authors' code
lambda_t = max(lambda_0 - (t - 1) * delta, 0) with their 1-based t; delta = 0 gives the constant-weight
TGPO. The verl plugin passes `trainer.global_steps - 1` (verl's steps start at 1).
"""

from __future__ import annotations


def guidance_weight(step: int, w_init: float, delta: float) -> float:
    """Weight of the guidance term at update `step` (0-based): max(w_init - delta * step, 0)."""
    if step < 0:
        raise ValueError(f"guidance_weight: step must be >= 0 (0-based), got {step}")
    if w_init < 0 or delta < 0:
        raise ValueError(f"guidance_weight: w_init and delta must be >= 0, got w_init={w_init}, delta={delta}")
    return max(w_init - delta * step, 0.0)
