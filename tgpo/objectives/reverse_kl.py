"""Reverse-KL terms on student samples: KL(pi_student || pi_other) estimated per sampled token.

With s = log pi_student(y_t) - log pi_other(y_t) on y ~ pi_student (Eq. 1, Eq. 7), Schulman's estimators
are k1 = s, k2 = s^2 / 2, k3 = exp(-s) - 1 + s (clamped as verl's `kl_penalty`). Used as
- a loss to minimise: KL-to-reference of SimpleRL-Zero (k3) and KDRL's RKL regulariser (k2, teacher);
- a detached per-token advantage -s (OP Distill, "RKL log-ratio as the advantage");
- a sequence reward r(y) = -sum_t s_t (Section 2.1 / 2.3: RKL as the sole, intrinsic reward).
"""

from __future__ import annotations

import torch
from torch import Tensor

_ALIASES = {"k1": "k1", "kl": "k1", "k2": "k2", "mse": "k2", "k3": "k3", "low_var_kl": "k3"}
KL_ESTIMATORS = tuple(_ALIASES)


def kl_estimate(log_probs: Tensor, ref_log_probs: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimate [B, T] of KL(pi || pi_ref) from the sampled tokens' log-probs [B, T].

    Minimising it pulls pi towards pi_ref. estimator: k1|k2|k3 (verl names kl|mse|low_var_kl accepted).
    """
    if estimator not in _ALIASES:
        raise ValueError(f"kl_estimate: unknown estimator {estimator!r}; expected one of {KL_ESTIMATORS}")
    kind = _ALIASES[estimator]
    if kind == "k1":
        return log_probs - ref_log_probs
    if kind == "k2":
        return 0.5 * (log_probs - ref_log_probs).square()
    reverse_log_ratio = torch.clamp(ref_log_probs - log_probs, min=-20.0, max=20.0)
    return torch.clamp(torch.exp(reverse_log_ratio) - reverse_log_ratio - 1.0, min=-10.0, max=10.0)


def rkl_token_advantages(
    student_log_probs: Tensor, teacher_log_probs: Tensor, response_mask: Tensor, coef: float = 1.0
) -> Tensor:
    """OP Distill's per-token advantage [B, T]: -coef * (log pi_student - log pi_teacher), detached.

    student_log_probs: rollout-policy log-probs of the sampled tokens [B, T]; teacher_log_probs: [B, T].
    """
    log_ratio = student_log_probs.detach() - teacher_log_probs.detach()
    return -coef * log_ratio * response_mask.to(log_ratio.dtype)


def sequence_rkl_reward(student_log_probs: Tensor, teacher_log_probs: Tensor, response_mask: Tensor) -> Tensor:
    """Section 2.3's RKL-only reward per sequence [B]: r(y) = -sum_t (log pi_student - log pi_teacher)."""
    log_ratio = student_log_probs.detach() - teacher_log_probs.detach()
    return -(log_ratio * response_mask.to(log_ratio.dtype)).sum(-1)


def rkl_regulariser_per_token(
    log_probs: Tensor,
    teacher_log_probs: Tensor,
    estimator: str = "k2",
    keep_sequence: Tensor | None = None,
) -> Tensor:
    """KDRL's reverse-KL loss per token [B, T] (to minimise, i.e. + beta * KL(student || teacher)).

    log_probs: [B, T] differentiable student log-probs; teacher_log_probs: [B, T].
    keep_sequence: optional [B] 0/1, reward-guided masking (0 = a correct response, no KD on it).
    """
    loss = kl_estimate(log_probs, teacher_log_probs.detach(), estimator)
    if keep_sequence is not None:
        loss = loss * keep_sequence.to(loss.dtype).unsqueeze(-1)
    return loss
