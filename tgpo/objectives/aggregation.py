"""Aggregation of a per-token loss [B, T] into the scalar that is back-propagated.

Eq. 4 normalises by Z = sum_i |y_i|, the number of response tokens of the whole (mini-)batch
(`token-mean`); Dr.GRPO (Oat-Zero) sums each sequence and divides by a constant
(`seq-mean-token-sum-norm` with loss_scale_factor = max response length). Modes and values follow
verl's `core_algos.agg_loss`. `total_tokens` / `total_sequences` are the totals of the mini-batch, so
the losses of its micro-batches add up to the loss of the mini-batch (gradient accumulation is exact).
"""

from __future__ import annotations

from torch import Tensor

AGG_MODES = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def aggregate(
    loss_per_token: Tensor,
    mask: Tensor,
    mode: str,
    *,
    total_tokens: float | Tensor | None = None,
    total_sequences: float | Tensor | None = None,
    loss_scale_factor: float | None = None,
) -> Tensor:
    """Scalar loss from loss_per_token [B, T] and mask [B, T] (1 on response tokens).

    total_tokens: response tokens in the mini-batch (default: this mask's sum) - token-mean.
    total_sequences: non-empty sequences in the mini-batch (default: this batch's) - seq-mean-* modes.
    loss_scale_factor: the constant divisor of seq-mean-token-sum-norm (default: T, verl's default).
    """
    if mode not in AGG_MODES:
        raise ValueError(f"aggregate: unknown loss_agg_mode {mode!r}; expected one of {AGG_MODES}")
    if loss_per_token.shape != mask.shape:
        raise ValueError(f"aggregate: loss_per_token {tuple(loss_per_token.shape)} and mask {tuple(mask.shape)} differ")
    mask = mask.to(loss_per_token.dtype)
    masked = loss_per_token * mask
    if mode == "token-mean":
        denominator = mask.sum() if total_tokens is None else total_tokens
        return masked.sum() / denominator
    if mode == "token-sum":
        return masked.sum()
    tokens_per_sequence = mask.sum(-1)
    non_empty = (tokens_per_sequence > 0).to(loss_per_token.dtype)
    sequences = non_empty.sum() if total_sequences is None else total_sequences
    if mode == "seq-mean-token-mean":
        sequence_losses = masked.sum(-1) / (tokens_per_sequence + 1e-8)
        return (sequence_losses * non_empty).sum() / sequences
    sequence_losses = masked.sum(-1)
    loss = (sequence_losses * non_empty).sum() / sequences
    if mode == "seq-mean-token-sum-norm":
        loss = loss / (mask.shape[-1] if loss_scale_factor is None else loss_scale_factor)
    return loss


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of values [B, T] over mask [B, T] (0 when the mask is empty); for metrics."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)
