"""Per-token log-probabilities and entropy from the student's logits.

log pi(v | x, y_<t) = z_t[v] - logsumexp_u z_t[u]. The sampled token y_t (Eq. 4's ratio) and the
teacher's argmax token y_t^T (Eq. 3's guidance term) share one logsumexp over the vocabulary: the
logits [B, T, V] are read once, several ids are gathered, and the backward pass materialises a single
[B, T, V] gradient buffer (softmax * sum_k g_k, minus the one-hot scatter of each g_k). No second
[B, T, V] log-softmax is ever built, which is what keeps TGPO's update as cheap as GRPO's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

# Elements of the [N, V] view processed at once in the entropy pass (rows = this // V, at least 1): bounds
# its temporaries to about 16M floats (64 MiB in fp32) instead of further full [B, T, V] tensors.
_ELEMENTS_PER_CHUNK = 1 << 24


def _rows_per_chunk(vocab_size: int) -> int:
    return max(1, _ELEMENTS_PER_CHUNK // vocab_size)


class _GatheredLogProbs(torch.autograd.Function):
    """log_softmax(logits)[..., ids] for K ids per position, with a one-buffer backward.

    forward(logits [..., V], ids [..., K]) -> [..., K]. Saves the logits (alive anyway), the ids and
    the per-row logsumexp [...]. backward: d/dz_v sum_k g_k log p(id_k) = sum_k g_k (1[v = id_k] - p_v).
    """

    @staticmethod
    def forward(ctx, logits: Tensor, ids: Tensor) -> Tensor:
        log_normaliser = torch.logsumexp(logits, dim=-1, keepdim=True)
        gathered = torch.gather(logits, -1, ids) - log_normaliser
        ctx.save_for_backward(logits, ids, log_normaliser)
        return gathered

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        logits, ids, log_normaliser = ctx.saved_tensors
        grad_logits = torch.sub(logits, log_normaliser).exp_()
        grad_logits.mul_(grad_output.sum(dim=-1, keepdim=True).neg())
        grad_logits.scatter_add_(-1, ids, grad_output.to(grad_logits.dtype))
        return grad_logits, None


def gather_token_log_probs(logits: Tensor, token_ids: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Log-probabilities of several token ids per position from one logsumexp over the vocabulary.

    logits: [B, T, V] (already divided by the sampling temperature).
    token_ids: name -> LongTensor [B, T], e.g. {"response": sampled ids, "teacher": teacher argmax ids}.
        Every id must lie in [0, V); mask invalid positions downstream (replace them by any valid id).
    Returns name -> [B, T] float tensor, differentiable w.r.t. logits.
    """
    if not token_ids:
        raise ValueError("gather_token_log_probs: token_ids is empty; pass at least one name -> [B, T] ids")
    names = list(token_ids)
    vocab_size = logits.shape[-1]
    for name in names:
        ids = token_ids[name]
        if ids.shape != logits.shape[:-1]:
            raise ValueError(
                f"gather_token_log_probs: token_ids[{name!r}] has shape {tuple(ids.shape)}, "
                f"expected {tuple(logits.shape[:-1])} (the logits' [B, T])"
            )
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
            raise ValueError(
                f"gather_token_log_probs: token_ids[{name!r}] has ids outside [0, {vocab_size}); "
                "replace out-of-vocabulary ids by a valid id and mask them"
            )
    stacked_ids = torch.stack([token_ids[name].long() for name in names], dim=-1)
    gathered = _GatheredLogProbs.apply(logits, stacked_ids)
    return {name: gathered[..., k] for k, name in enumerate(names)}


class _Entropy(torch.autograd.Function):
    """H = logsumexp(z) - sum_v p_v z_v over the last dim, recomputing p in chunks in backward.

    dH/dz_v = -p_v (z_v - sum_u p_u z_u), so backward needs only the logits and two [...] statistics.
    """

    @staticmethod
    def forward(ctx, logits: Tensor) -> Tensor:
        flat = logits.reshape(-1, logits.shape[-1])
        log_normaliser = torch.empty(flat.shape[0], dtype=logits.dtype, device=logits.device)
        expected_logit = torch.empty_like(log_normaliser)
        chunk = _rows_per_chunk(flat.shape[-1])
        for start in range(0, flat.shape[0], chunk):
            rows = flat[start : start + chunk]
            chunk_lse = torch.logsumexp(rows, dim=-1)
            probs = torch.sub(rows, chunk_lse.unsqueeze(-1)).exp_()
            log_normaliser[start : start + chunk] = chunk_lse
            expected_logit[start : start + chunk] = probs.mul_(rows).sum(-1)
        ctx.save_for_backward(logits, log_normaliser, expected_logit)
        return (log_normaliser - expected_logit).reshape(logits.shape[:-1])

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        logits, log_normaliser, expected_logit = ctx.saved_tensors
        flat = logits.reshape(-1, logits.shape[-1])
        grad_flat = torch.empty_like(flat)
        grad_rows = grad_output.reshape(-1)
        chunk = _rows_per_chunk(flat.shape[-1])
        for start in range(0, flat.shape[0], chunk):
            stop = start + chunk
            rows = flat[start:stop]
            probs = torch.sub(rows, log_normaliser[start:stop].unsqueeze(-1)).exp_()
            centred = torch.sub(rows, expected_logit[start:stop].unsqueeze(-1))
            # dH/dz = -p (z - E_p[z]), times the incoming gradient
            torch.mul(probs.mul_(centred), grad_rows[start:stop].neg().unsqueeze(-1), out=grad_flat[start:stop])
        return grad_flat.reshape(logits.shape)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the softmax over the last dimension: logits [B, T, V] -> [B, T].

    Differentiable; computed in row chunks so that neither the forward nor the saved state holds a
    second [B, T, V] tensor (the backward writes exactly one gradient buffer).
    """
    return _Entropy.apply(logits)
