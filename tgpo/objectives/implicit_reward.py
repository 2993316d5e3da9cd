"""PRIME's implicit process reward (Cui et al. 2025, arXiv 2502.01456).

Token reward r_t = beta * (log pi_phi(y_t) - log pi_ref(y_t)) of an online-updated reward model pi_phi;
pi_phi is trained with the cross-entropy loss BCE(sigmoid(beta * sum_t q_t), r) on outcome labels r,
q_t = log pi_phi - log pi_ref. The process rewards are batch-normalised (prime_norm=batch_norm: divided
by the largest |return-to-go| in the batch). Advantages: leave-one-out baselines, separately for the
verifier reward (at the last response token) and for the process rewards, each weighted (reward_gt_coef,
reward_dpo_coef: 5 and 5) and turned into a return-to-go (gamma = 1), summed, then whitened over the
batch's response tokens. Training uses only prompts whose group accuracy lies in [0.2, 0.8].
Sources: PRIME-RL/PRIME training/verl/workers/actor/dp_prime.py (implicit reward, batch_norm),
training/verl/trainer/ppo/core_algos.py (compute_ce_dpo_loss_rm, compute_rloo_returns); volcengine/verl
recipe/prime/config/prime_trainer.yaml (coefficients, accuracy filter, oversample_factor).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tgpo.objectives.advantages import leave_one_out_token_rewards


def implicit_process_rewards(rm_log_probs: Tensor, ref_log_probs: Tensor, beta: float, response_mask: Tensor) -> Tensor:
    """r_t = beta * (log pi_phi - log pi_ref) per token [B, T], zero outside the response (detached)."""
    log_ratio = rm_log_probs.detach() - ref_log_probs.detach()
    return beta * log_ratio * response_mask.to(log_ratio.dtype)


def reward_model_loss(
    rm_log_probs: Tensor, ref_log_probs: Tensor, response_mask: Tensor, outcome_labels: Tensor, beta: float
) -> Tensor:
    """Scalar BCE(sigmoid(beta * sum_t q_t), r) averaged over the batch; differentiable in rm_log_probs.

    rm_log_probs, ref_log_probs, response_mask: [B, T]; outcome_labels: [B] in [0, 1].
    """
    log_ratio = (rm_log_probs - ref_log_probs.detach()) * response_mask.to(rm_log_probs.dtype)
    sequence_logit = beta * log_ratio.sum(-1)
    return F.binary_cross_entropy_with_logits(sequence_logit, outcome_labels.to(sequence_logit.dtype))


def last_token_mask(response_mask: Tensor) -> Tensor:
    """[B, T] mask with a 1 on each row's last response token (rows without tokens stay 0)."""
    mask = response_mask.to(torch.float32)
    lengths = mask.sum(-1).long()
    last = torch.zeros_like(mask)
    has_tokens = lengths > 0
    rows = torch.nonzero(has_tokens).squeeze(-1)
    last[rows, lengths[rows] - 1] = 1.0
    return last


def return_to_go(token_rewards: Tensor) -> Tensor:
    """Undiscounted return sum_{s >= t} r_s per position [B, T]."""
    return torch.flip(torch.cumsum(torch.flip(token_rewards, dims=[-1]), dim=-1), dims=[-1])


def masked_whiten(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """(values - mean) / std over the masked entries (unbiased variance, as verl's masked_whiten)."""
    mask = mask.to(values.dtype)
    count = mask.sum()
    mean = (values * mask).sum() / count
    variance = (((values - mean) * mask) ** 2).sum() / (count - 1).clamp(min=1)
    return (values - mean) * torch.rsqrt(variance + eps)


def batch_norm_process_rewards(implicit_rewards: Tensor, response_mask: Tensor, eps: float = 1e-6) -> Tensor:
    """PRIME's prime_norm=batch_norm [N, T]: r / (max over the batch of |return-to-go of r| + eps).

    Keeps the rewards' relative values and bounds every process return to [-1, 1].
    """
    rewards = implicit_rewards * response_mask.to(implicit_rewards.dtype)
    return rewards / (return_to_go(rewards).abs().max() + eps)


def prime_advantages(
    scores: Tensor,
    implicit_rewards: Tensor,
    group_index: Tensor,
    response_mask: Tensor,
    process_coef: float,
    outcome_coef: float,
) -> Tensor:
    """PRIME advantages [N, T] from verifier scores [N] and implicit token rewards [N, T].

    process_coef / outcome_coef: the weights of the process and verifier rewards (reward_dpo_coef,
    reward_gt_coef); the process rewards are batch-normalised first.
    """
    mask = response_mask.to(torch.float32)
    outcome_tokens = last_token_mask(mask)
    outcome = leave_one_out_token_rewards(scores.unsqueeze(-1) * outcome_tokens, outcome_tokens, group_index)
    process = leave_one_out_token_rewards(batch_norm_process_rewards(implicit_rewards, mask), mask, group_index)
    returns = outcome_coef * return_to_go(outcome) + process_coef * return_to_go(process)
    return masked_whiten(returns, mask) * mask


def accuracy_filter(scores: Tensor, group_index: Tensor, low: float, high: float) -> Tensor:
    """[N] bool: rows whose group's mean verifier score lies in [low, high] (PRIME's filter_accuracy).

    scores: [N] verifier rewards in [0, 1]; group_index: [N] prompt of each response.
    """
    from tgpo.objectives.advantages import group_statistics

    group_mean, _, size = group_statistics(scores, group_index)
    # group_statistics gives singleton groups mean 0 (verl's convention); a singleton's accuracy is its score
    accuracy = torch.where(size > 1, group_mean, scores.to(group_mean.dtype))
    return (accuracy >= low) & (accuracy <= high)
