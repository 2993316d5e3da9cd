"""LUFFY's off-policy policy shaping (Yan et al. 2025): f(p) = p / (p + gamma), gamma = 0.1.

On off-policy (teacher-trace) tokens the loss is -A_i * f(pi_theta(y_t)), with no importance ratio and no
clipping (the behaviour probability is taken as 1); on-policy rows keep the clipped loss of Eq. 4.
d f(p) / d theta = gamma / (p + gamma)^2 * p * grad log p: low-probability trace tokens get larger weight.
"""

from __future__ import annotations

import torch
from torch import Tensor


def off_policy_shaping(log_probs: Tensor, gamma: float = 0.1) -> Tensor:
    """f(p) = p / (p + gamma) per token [B, T], with p = exp(log_probs)."""
    if gamma <= 0:
        raise ValueError(f"off_policy_shaping: luffy_gamma must be > 0, got {gamma}")
    probs = torch.exp(log_probs)
    return probs / (probs + gamma)


def off_policy_loss_per_token(log_probs: Tensor, advantages: Tensor, gamma: float = 0.1) -> Tensor:
    """-A_t * f(p_t) per token [B, T] for teacher-trace rows (no ratio, no clip)."""
    return -advantages * off_policy_shaping(log_probs, gamma)


def mix_on_off_policy(on_policy_loss: Tensor, off_policy_loss: Tensor, off_policy_mask: Tensor) -> Tensor:
    """Per-token loss [B, T] taking off-policy rows (off_policy_mask [B] = 1) from off_policy_loss."""
    row_is_off_policy = off_policy_mask.to(torch.bool).unsqueeze(-1)
    return torch.where(row_is_off_policy, off_policy_loss, on_policy_loss)
