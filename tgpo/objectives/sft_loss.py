"""Supervised fine-tuning on teacher traces: token-level NLL -log pi_theta(y_t | x, y_<t) (SFT baseline)."""

from __future__ import annotations

from torch import Tensor


def nll_per_token(log_probs: Tensor) -> Tensor:
    """Negative log-likelihood per token [B, T] of the trace tokens' log-probs [B, T]."""
    return -log_probs
