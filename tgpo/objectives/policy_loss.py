"""Clipped token-level policy loss (Eq. 4), as verl's `compute_policy_loss_vanilla` (dual-clip PPO).

rho_t = exp(clamp(log pi - log pi_old, -20, 20)); loss_t = max(-A_t rho_t, -A_t clip(rho_t, 1-eps_low, 1+eps_high)),
and for A_t < 0 additionally min(., -A_t * clip_ratio_c) (dual clip; clip_ratio_c=None disables it, as in
Oat-Zero's and LUFFY's recipes). clip_low = clip_high = None removes the PPO clip as well: loss_t = -A_t rho_t
(LUFFY's `loss_remove_clip=True`, ElliottYan/LUFFY luffy/verl/verl/mix_src/mix_core_alg.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tgpo.objectives.aggregation import masked_mean


def clipped_policy_loss(
    log_probs: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    clip_low: float | None,
    clip_high: float | None,
    *,
    clip_ratio_c: float | None = 3.0,
    response_mask: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Per-token clipped surrogate loss [B, T] (to minimise) and metrics.

    log_probs [B, T] (differentiable), old_log_probs [B, T] (rollout policy, detached), advantages [B, T].
    clip_low / clip_high: the PPO clip range [1 - clip_low, 1 + clip_high]; both None = no clipping.
    metrics (masked means over response_mask, or over all tokens if None): actor/pg_clipfrac,
    actor/ppo_kl, actor/pg_clipfrac_lower.
    """
    if clip_ratio_c is not None and clip_ratio_c <= 1.0:
        raise ValueError(f"clipped_policy_loss: clip_ratio_c must be > 1 (dual clip), got {clip_ratio_c}")
    if (clip_low is None) != (clip_high is None):
        raise ValueError(f"clipped_policy_loss: clip_low={clip_low}, clip_high={clip_high}; give both or neither")
    log_ratio = torch.clamp(log_probs - old_log_probs.detach(), min=-20.0, max=20.0)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    if clip_low is None:
        clipped = unclipped
    else:
        clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    mask = torch.ones_like(log_probs) if response_mask is None else response_mask.to(log_probs.dtype)
    metrics = {
        "actor/pg_clipfrac": float(masked_mean(torch.gt(clipped, unclipped).float(), mask)),
        "actor/ppo_kl": float(masked_mean(-log_ratio.detach(), mask)),
        "actor/pg_clipfrac_lower": 0.0,
    }
    if clip_ratio_c is not None:
        lower_bound = -advantages * clip_ratio_c
        metrics["actor/pg_clipfrac_lower"] = float(
            masked_mean((torch.gt(loss, lower_bound) & (advantages < 0)).float(), mask)
        )
        loss = torch.where(advantages < 0, torch.minimum(loss, lower_bound), loss)
    return loss, metrics
