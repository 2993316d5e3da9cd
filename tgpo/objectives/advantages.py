"""Group-relative advantages: one scalar per response, from the scores of its group.

GRPO (Eq. 4): A_i = (r_i - mean_g r) / (std_g r + eps), with the unbiased (N-1) std as verl's
`compute_grpo_outcome_advantage`; Dr.GRPO (Liu et al.): A_i = r_i - mean_g r; RLOO: A_i = r_i - mean of
the other members = (r_i - mean_g r) * n / (n - 1). A singleton group gets mean 0 (and std 1), as in verl.
"""

from __future__ import annotations

import torch
from torch import Tensor

ESTIMATORS = ("grpo", "drgrpo", "rloo")


def group_statistics(scores: Tensor, group_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-element group mean, unbiased group std and group size, each [N].

    scores: [N] float; group_index: [N] long (any ids; equal ids = same prompt).
    Singleton groups get mean 0 and std 1 (verl's convention).
    """
    if scores.dim() != 1 or group_index.shape != scores.shape:
        raise ValueError(
            f"group_statistics: expected scores [N] and group_index [N], got {tuple(scores.shape)} "
            f"and {tuple(group_index.shape)}"
        )
    scores = scores.detach().to(torch.float64)
    _, inverse = torch.unique(group_index, return_inverse=True)
    n_groups = int(inverse.max()) + 1 if inverse.numel() else 0
    size = torch.zeros(n_groups, dtype=torch.float64, device=scores.device).index_add_(
        0, inverse, torch.ones_like(scores)
    )
    total = torch.zeros_like(size).index_add_(0, inverse, scores)
    mean = total / size
    squared_deviation = (scores - mean[inverse]) ** 2
    sum_squares = torch.zeros_like(size).index_add_(0, inverse, squared_deviation)
    std = torch.sqrt(sum_squares / (size - 1).clamp(min=1))
    singleton = size == 1
    mean = torch.where(singleton, torch.zeros_like(mean), mean)
    std = torch.where(singleton, torch.ones_like(std), std)
    return mean[inverse], std[inverse], size[inverse]


def group_advantages(scores: Tensor, group_index: Tensor, estimator: str = "grpo", eps: float = 1e-6) -> Tensor:
    """Scalar advantage per response [N] (float32) from its group's scores.

    scores: [N]; group_index: [N] long, the prompt each response belongs to.
    estimator: "grpo" (std-normalised), "drgrpo" (mean-only), "rloo" (leave-one-out).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"group_advantages: unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    mean, std, size = group_statistics(scores, group_index)
    centred = scores.detach().to(torch.float64) - mean
    if estimator == "grpo":
        advantages = centred / (std + eps)
    elif estimator == "drgrpo":
        advantages = centred
    else:
        advantages = torch.where(size > 1, centred * size / (size - 1).clamp(min=1), centred)
    return advantages.to(torch.float32)


def broadcast_to_tokens(sequence_values: Tensor, response_mask: Tensor) -> Tensor:
    """[N] per-sequence values -> [N, T] per-token values, zero outside the response mask."""
    return sequence_values.unsqueeze(-1).to(torch.float32) * response_mask.to(torch.float32)


def leave_one_out_token_rewards(token_rewards: Tensor, reward_mask: Tensor, group_index: Tensor) -> Tensor:
    """Leave-one-out baseline for token-level rewards (PRIME-RL/PRIME training/verl/trainer/ppo/core_algos.py compute_rloo_returns).

    Each response's mean reward over its `reward_mask` tokens is its score; the baseline of response i
    is the mean score of the other members of its group, and every masked token reward of i becomes
    r_{i,t} * n / (n - 1) - sum_{j in g} score_j / (n - 1). Singleton groups are left unchanged.
    token_rewards, reward_mask: [N, T]; group_index: [N]. Returns [N, T], zero outside reward_mask.
    """
    mask = reward_mask.to(torch.float64)
    rewards = token_rewards.detach().to(torch.float64) * mask
    per_sequence = rewards.sum(-1) / mask.sum(-1).clamp(min=1)
    mean, _, size = group_statistics(per_sequence, group_index)
    group_sum = mean * size
    scale = torch.where(size > 1, size / (size - 1).clamp(min=1), torch.ones_like(size))
    baseline = torch.where(size > 1, group_sum / (size - 1).clamp(min=1), torch.zeros_like(size))
    adjusted = (rewards * scale.unsqueeze(-1) - baseline.unsqueeze(-1)) * mask
    return adjusted.to(torch.float32)
