"""Guidance-weight schedule of TGPO-annealing (Section 3.2): w_t = max(w_init - delta * t, 0).

`step` counts from 0 (the first update uses w_init), which matches the authors' code
lambda_t = max(lambda_0 - (t - 1) * delta, 0) with their 1-based t; delta = 0 gives the constant-weight
TGPO. The verl plugin passes `trainer.global_steps - 1` (verl's steps start at 1). `teacher_idle` says
when the teacher's argmax no longer enters the loss, so both engines skip the teacher's forward there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ZERO_TOLERANCE = 1e-9  # relative to w_init


def guidance_weight(step: int, w_init: float, delta: float) -> float:
    """Weight of the guidance term at update `step` (0-based): max(w_init - delta * step, 0)."""
    if step < 0:
        raise ValueError(f"guidance_weight: step must be >= 0 (0-based), got {step}")
    if w_init < 0 or delta < 0:
        raise ValueError(f"guidance_weight: w_init and delta must be >= 0, got w_init={w_init}, delta={delta}")
    weight = w_init - delta * step
    # a rounding residue (e.g. 0.1 - (0.1 / 10) * 10 = 1.4e-17) is the schedule's zero: the teacher is then
    # skipped (teacher_idle), so it must read exactly 0
    return weight if weight > ZERO_TOLERANCE * w_init else 0.0


def teacher_scale(guidance: str, hparams: Mapping[str, Any], step: int) -> float | None:
    """The weight the teacher's argmax enters the loss with at 0-based `step`: w_t of the regulariser
    (Eq. 6), lambda_t of reward shaping (Eq. 5, `delta` anneals it the same way); None for other guidance."""
    if guidance == "regulariser":
        return guidance_weight(step, float(hparams.get("w_init") or 0.0), float(hparams.get("delta") or 0.0))
    if guidance == "reward_shaping":
        return guidance_weight(step, float(hparams.get("shaping_lambda") or 0.0), float(hparams.get("delta") or 0.0))
    return None


def teacher_idle(teacher_signal: str, guidance: str, hparams: Mapping[str, Any], step: int) -> bool:
    """True when the teacher's output cannot change step `step` (0-based): the method uses the teacher only
    through its argmax (TGPO, TGPO-annealing, TGPO_R) and that term's weight is 0 from here on. TGPO-annealing
    reaches w = 0 at step 200 of 300, so the teacher pool need not score the last third of the run."""
    if teacher_signal != "argmax":
        return False
    return teacher_scale(guidance, hparams, step) == 0.0
