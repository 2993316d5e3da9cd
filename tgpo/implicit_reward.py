"""PRIME's implicit process reward (Cui et al. 2025, notes section 1.4).

Token reward r_t = beta * (log pi_phi(y_t) - log pi_ref(y_t)) of an online-updated reward model pi_phi;
pi_phi is trained with the cross-entropy loss BCE(sigmoid(beta * sum_t q_t), r) on outcome labels r,
q_t = log pi_phi - log pi_ref. Advantages: leave-one-out baselines, separately for the verifier reward
(at the last response token) and for the process rewards, each turned into a return-to-go (gamma = 1),
summed with weight prime_coef on the process part, then whitened over the batch's response tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from tgpo.advantages import leave_one_out_token_rewards


def implicit_process_rewards(
    rm_log_probs: Tensor, ref_log_probs: Tensor, beta: float, response_mask: Tensor
) -> Tensor:
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


def prime_advantages(
    scores: Tensor,
    implicit_rewards: Tensor,
    group_index: Tensor,
    response_mask: Tensor,
    process_coef: float,
) -> Tensor:
    """PRIME advantages [N, T] from verifier scores [N] and implicit token rewards [N, T]."""
    mask = response_mask.to(torch.float32)
    outcome_tokens = last_token_mask(mask)
    outcome = leave_one_out_token_rewards(scores.unsqueeze(-1) * outcome_tokens, outcome_tokens, group_index)
    process = leave_one_out_token_rewards(process_coef * implicit_rewards, mask, group_index)
    returns = return_to_go(outcome) + return_to_go(process)
    return masked_whiten(returns, mask) * mask
