"""Teacher guidance on the student's own trajectory (Eq. 3) and its two integrations.

Eq. 3: J_Guidance = -(1/|y|) sum_t log pi_theta(y_t^T | x, y_<t), with y_t^T the teacher's argmax on the
student's prefix. TGPO (Eq. 6) adds w_t * J_Guidance to the GRPO loss as a differentiable regulariser;
TGPO_R (Eq. 5) instead shapes the advantage, A_hat_{i,t} = A_i + lambda * sg[log pi_theta(y_{i,t}^T | .)],
inside the clipped loss, so the teacher log-prob carries no gradient. The shaping signal is either Eq. 5's
log-prob ("log_prob", <= 0, unbounded below) or the probability pi_theta(y^T) in [0, 1] ("prob") that the
authors' reward-shaping code adds (helldog-star/TGPO luffy/verl/verl/mix_src/mix_core_alg.py,
compute_tipo_advantage adds teacher_coef times the exponential of the teacher-token log-prob), for which
their lambda = 0.02 was chosen (tgpo.methods.tgpo_family).
Positions whose teacher id is not in the student's vocabulary (teacher_valid_mask = 0) carry no teacher
information: they add nothing to the guidance loss, and in TGPO_R they get their sequence's mean shaping
over its valid positions, so they are neither favoured nor penalised relative to the rest of their
sequence (a shaping of 0 there would be the maximum of lambda * log pi <= 0, i.e. favour them).
"""

from __future__ import annotations

import torch
from torch import Tensor

SHAPING_SIGNALS = ("log_prob", "prob")


def guidance_loss_per_token(teacher_token_log_probs: Tensor, teacher_valid_mask: Tensor | None = None) -> Tensor:
    """-log pi_theta(y_t^T) per token [B, T], zero where the teacher id is invalid (Eq. 3 summand).

    teacher_token_log_probs: [B, T] student log-prob of the teacher's argmax id (differentiable).
    teacher_valid_mask: [B, T] 1 where the teacher id exists in the student's vocabulary (None = all).
    Aggregate it with the response mask and the method's loss_agg_mode (token-mean for TGPO).
    """
    loss = -teacher_token_log_probs
    if teacher_valid_mask is not None:
        loss = loss * teacher_valid_mask.to(loss.dtype)
    return loss


def shaped_advantages(
    advantages: Tensor,
    teacher_token_log_probs: Tensor,
    shaping_lambda: float,
    teacher_valid_mask: Tensor | None = None,
    *,
    response_mask: Tensor | None = None,
    signal: str = "log_prob",
) -> Tensor:
    """Eq. 5: A_hat_{i,t} = A_{i,t} + lambda * sg[s_t], [B, T], with no gradient path; s_t is
    log pi_theta(y_t^T) (signal "log_prob", Eq. 5 as printed) or pi_theta(y_t^T) (signal "prob", the
    authors' code).

    advantages: [B, T]; teacher_token_log_probs: [B, T] (detached here); teacher_valid_mask: [B, T], 1 where
    the student can represent the teacher's id; response_mask: [B, T] (None: teacher_valid_mask is already
    0 outside the response). A masked position gets the mean bonus of its row's valid response positions
    (0 in a row without any).
    """
    if signal not in SHAPING_SIGNALS:
        raise ValueError(f"shaped_advantages: signal must be one of {SHAPING_SIGNALS}, got {signal!r}")
    bonus = teacher_token_log_probs.detach()
    if signal == "prob":
        bonus = bonus.exp()
    if teacher_valid_mask is not None:
        valid = teacher_valid_mask.to(bonus.dtype)
        if response_mask is not None:
            valid = valid * response_mask.to(bonus.dtype)
        bonus = bonus * valid  # masked positions may hold anything (gathered id 0); never read them
        row_mean = bonus.sum(-1, keepdim=True) / valid.sum(-1, keepdim=True).clamp(min=1)
        bonus = torch.where(valid > 0, bonus, row_mean.expand_as(bonus))
    return advantages.detach() + shaping_lambda * bonus
