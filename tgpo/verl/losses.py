"""TGPO (Eq. 6) and TGPO_R (Eq. 5) as top-1 distillation loss modes of verl 0.9.1's built-in teacher.

verl's teacher pool (vLLM, `distillation.*`) returns, per position of the student's sequence, the
teacher's top-k ids ranked by the teacher's raw logits; with `distillation_loss.topk=1`,
`teacher_ids[..., 0]` is the teacher's argmax y_t^T on the student's prefix. Two pieces go in:

1. `teacher_top1_outputs` replaces `verl.trainer.distillation.losses.compute_topk_loss` for our modes.
   It runs inside the engine's logits processor while the full-vocabulary logits are alive and returns
   per packed token the logit gap z[y_t^T] - z[y_t] between the teacher's id and the sampled id and a
   validity mask, 0 where the teacher's id is not a token of the student's tokenizer. The gap's
   gradient, 1[y^T] - 1[y] (2 entries per row), is written in place into the dense logits gradient
   that verl's own backward builds (`_SparseLogitCorrection`).
2. Two registered distillation losses read those tensors back in response layout [B, T] and form
       log pi_theta(y_t^T) = log pi_theta(y_t) + (z[y_t^T] - z[y_t]),
   with log pi_theta(y_t) = z[y_t] - logsumexp(z) the sampled-token log-prob verl's engine computes
   anyway (`model_output["log_probs"]`). The teacher-token log-prob thus shares verl's one logsumexp pass
   over the vocabulary (tgpo.objectives.token_log_probs does the same on the local engine): no second
   log-softmax / cross-entropy over the [N, V] logits, nothing of size [N, V] saved for backward or
   allocated in it. Gradients agree: d/dz log p(y^T) = 1[y^T] - p = (1[y] - p) + (1[y^T] - 1[y]).
   Nothing of ours reads the logits in backward, so verl's in-place cross-entropy backward
   (flash-attn, `inplace_backward=True` when entropy is off) cannot corrupt the teacher term.
   - "tgpo_d": w_t * J_Guidance, with J_Guidance = -log pi_theta(y_t^T) per token (tgpo.objectives.guidance,
               Eq. 3), aggregated by verl with the actor's loss_agg_mode and added to the PPO loss.
   - "tgpo_r": no extra term; the advantages of the micro-batch are replaced by
               A + lambda_t * sg[pi_theta(y_t^T)] or A + lambda_t * sg[log pi_theta(y_t^T)]
               (tgpo.objectives.guidance.shaped_advantages, Eq. 5, `tgpo_shaping_signal`) before
               verl's `distillation_ppo_loss` calls `ppo_loss`, so the clipped loss sees the shaped
               advantage exactly (not PPO(A) + PPO(shaping), which differs once clipping is active).

The sampled ids are the engine's labels: the packed input ids rolled by one position
(`verl/workers/engine/fsdp/transformer_impl.py`, `prepare_model_inputs`), sliced like the teacher ids
under Ulysses sequence parallelism. Rows that predict response tokens never cross a sequence boundary.

Per-step scalars arrive as non-tensor data of the micro-batch, set by `tgpo.verl.trainer`:
`tgpo_coef` (w_t), `tgpo_shaping_lambda` (lambda_t), `tgpo_shaping_signal` and `tgpo_student_vocab_size`.
"""

from __future__ import annotations

from typing import Any

import torch
import verl.trainer.distillation.losses as verl_distillation_losses
from tensordict import TensorDict
from verl.trainer.distillation.losses import DistillationLossSettings, register_distillation_loss
from verl.utils import tensordict_utils as tu
from verl.utils.ulysses import get_ulysses_sequence_parallel_world_size, slice_input_tensor
from verl.workers.utils.padding import no_padding_2_padding, response_to_nested

from tgpo.objectives.guidance import guidance_loss_per_token, shaped_advantages

TGPO_LOSS_MODES = ("tgpo_d", "tgpo_r")
TEACHER_LOGIT_GAP_KEY = "tgpo_teacher_logit_gap"
TEACHER_VALID_KEY = "tgpo_teacher_valid"

# Names of the per-step non-tensor entries the trainer puts into batch.extra_info.
COEF_KEY = "tgpo_coef"
SHAPING_LAMBDA_KEY = "tgpo_shaping_lambda"
SHAPING_SIGNAL_KEY = "tgpo_shaping_signal"
STUDENT_VOCAB_KEY = "tgpo_student_vocab_size"


def _required_scalar(data: TensorDict, key: str) -> Any:
    value = tu.get_non_tensor_data(data=data, key=key, default=None)
    if value is None:
        raise KeyError(
            f"tgpo verl plugin: micro-batch has no '{key}'; run with trainer.v1.trainer_mode=tgpo_sync "
            f"(tgpo.verl.trainer sets it per step)"
        )
    return value


def sampled_token_ids(data: TensorDict) -> torch.Tensor:
    """[1, N] the engine's labels for the packed logits rows: packed input ids rolled left by one.

    As verl 0.9.1's `prepare_model_inputs` builds `input_ids_rmpad_rolled` (before its Ulysses slice).
    """
    return torch.roll(data["input_ids"].values(), shifts=-1, dims=0).unsqueeze(0)


def _gathered_gaps(logits: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
    """logits[..., pair[..., 0]] - logits[..., pair[..., 1]], subtracted in float32 (or float64) for bf16 logits."""
    logits_at_pair = torch.gather(logits, -1, pair).to(torch.promote_types(logits.dtype, torch.float32))
    return logits_at_pair[..., 0] - logits_at_pair[..., 1]


class _SparseLogitCorrection:
    """Adds sum_j g_j * (1[first id_j] - 1[second id_j]) in place into the logits' accumulated gradient.

    Registered as a pre-hook of the autograd node that produced the packed logits `logits_rmpad`: that node
    runs once every consumer of the logits has delivered its gradient (verl's sampled-token log-prob, the
    entropy, and `_LogitGap`, which only records g), so its incoming gradient is the full dense [N, V]
    sum, a buffer autograd allocated for this backward and owns alone. The correction writes 2N entries
    into it with `index_put_(accumulate=True)`: O(N) work, no [N, V] allocation. (A plain gather's
    backward allocates a zero-filled [N, V] tensor and adds it; a sparse gradient cannot pass the view
    node between the processor's `logits_rmpad.unsqueeze(0)` and `logits_rmpad`, and at the view's root
    PyTorch adds it out of place: torch/csrc/autograd/input_buffer.cpp, `accumulate`.)
    """

    def __init__(self, pair: torch.Tensor):
        self.pair = pair.reshape(-1, 2)  # [N, 2] (first, second) id per row of logits_rmpad
        self.grad_gap: torch.Tensor | None = None  # [N], set by _LogitGap.backward

    def __call__(self, grad_outputs):
        if self.grad_gap is None:
            return None
        (grad_logits,) = grad_outputs
        if grad_logits is None:
            raise RuntimeError(
                "tgpo verl plugin: no dense gradient reached the packed logits; the teacher-token log-prob is "
                "verl's sampled-token log-prob plus a logit gap, so that log-prob must be part of the loss"
            )
        grad_rows = grad_logits.view(-1, grad_logits.shape[-1])  # [N, V], same storage
        if grad_rows.shape[0] != self.pair.shape[0]:
            raise RuntimeError(
                f"tgpo verl plugin: logits gradient {tuple(grad_logits.shape)} vs {self.pair.shape[0]} rows of ids"
            )
        rows = torch.arange(self.pair.shape[0], device=self.pair.device)
        grad_gap = self.grad_gap.reshape(-1).to(grad_logits.dtype)
        grad_rows.index_put_((rows, self.pair[:, 0]), grad_gap, accumulate=True)
        grad_rows.index_put_((rows, self.pair[:, 1]), grad_gap.neg(), accumulate=True)
        self.grad_gap = None
        return (grad_logits,)


class _LogitGap(torch.autograd.Function):
    """z[first id] - z[second id] per row; backward hands the incoming gradient to a _SparseLogitCorrection.

    forward(student_logits [1, N, V], pair [1, N, 2], correction) -> [1, N]. backward returns no gradient
    for the logits itself (the correction adds it where the dense logits gradient is complete); being a
    consumer of `student_logits` makes autograd run this backward before that node.
    """

    @staticmethod
    def forward(ctx, student_logits: torch.Tensor, pair: torch.Tensor, correction: _SparseLogitCorrection):
        ctx.correction = correction
        return _gathered_gaps(student_logits.detach(), pair)

    @staticmethod
    def backward(ctx, grad_gap: torch.Tensor):
        ctx.correction.grad_gap = grad_gap
        return None, None, None


def logit_gaps(student_logits: torch.Tensor, pair: torch.Tensor) -> torch.Tensor:
    """z[pair[..., 0]] - z[pair[..., 1]] per row of student_logits [1, N, V]; pair [1, N, 2] -> [1, N].

    Differentiable when the logits require grad, without any [N, V] buffer (see _SparseLogitCorrection).
    verl 0.9.1 hands the logits processor `logits_rmpad.unsqueeze(0)` (transformer_impl.py,
    `prepare_model_outputs`); the correction hooks the node that produced `logits_rmpad`.
    """
    if not (torch.is_grad_enabled() and student_logits.requires_grad):
        return _gathered_gaps(student_logits.detach(), pair)
    view_node = student_logits.grad_fn
    if view_node is None or view_node.name() != "UnsqueezeBackward0" or view_node.next_functions[0][0] is None:
        raise ValueError(
            "tgpo verl plugin: the logits processor's logits must be `logits_rmpad.unsqueeze(0)` with "
            f"logits_rmpad computed by autograd (verl 0.9.1); got grad_fn {view_node!r}"
        )
    correction = _SparseLogitCorrection(pair)
    view_node.next_functions[0][0].register_prehook(correction)
    return _LogitGap.apply(student_logits, pair, correction)


def teacher_logit_gaps(
    student_logits: torch.Tensor,
    teacher_top1_ids: torch.Tensor,
    sampled_ids: torch.Tensor,
    student_vocab_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """z[teacher id] - z[sampled id] per row, and the teacher id's validity mask.

    student_logits: [1, N, V] packed logits (already divided by the temperature); teacher_top1_ids,
    sampled_ids: [1, N]. Returns (gaps [1, N], valid [1, N]) in float32 (float64 for float64 logits):
    valid = 1 where 0 <= id < student_vocab_size; invalid positions use the sampled id (gap 0) and are
    masked downstream.
    """
    valid = (teacher_top1_ids >= 0) & (teacher_top1_ids < min(student_vocab_size, student_logits.shape[-1]))
    sampled_ids = sampled_ids.long()
    safe_teacher_ids = torch.where(valid, teacher_top1_ids.long(), sampled_ids)
    gaps = logit_gaps(student_logits, torch.stack([safe_teacher_ids, sampled_ids], dim=-1))
    return gaps, valid.to(gaps.dtype)


def teacher_top1_outputs(config, distillation_config, data: TensorDict, student_logits: torch.Tensor, data_format: str):
    """Logits-processor outputs for the TGPO modes: {TEACHER_LOGIT_GAP_KEY, TEACHER_VALID_KEY}, each [1, N]."""
    if tu.get_non_tensor_data(data=data, key="distillation_only", default=False):
        raise ValueError(
            "tgpo verl plugin: distillation_only=True (use_task_rewards=False and use_policy_gradient=False) "
            "skips verl's sampled-token log-prob, which TGPO's teacher-token log-prob is built on; "
            "set distillation.distillation_loss.use_task_rewards=True"
        )
    teacher_ids = data["teacher_ids"]  # nested (bsz, seq_len, topk), aligned with the packed logits rows
    if not teacher_ids.is_nested:
        raise ValueError("tgpo verl plugin: expected nested teacher_ids (verl 0.9.1 remove-padding path)")
    top1_ids = teacher_ids.values()[..., 0].unsqueeze(0)  # (1, total_nnz)
    sampled_ids = sampled_token_ids(data)
    if get_ulysses_sequence_parallel_world_size() > 1:
        top1_ids = slice_input_tensor(top1_ids, dim=1)
        sampled_ids = slice_input_tensor(sampled_ids, dim=1)
    if top1_ids.shape != student_logits.shape[:2] or sampled_ids.shape != student_logits.shape[:2]:
        raise ValueError(
            f"tgpo verl plugin: teacher ids {tuple(top1_ids.shape)} / sampled ids {tuple(sampled_ids.shape)} "
            f"vs logits {tuple(student_logits.shape)}"
        )
    vocab_size = int(_required_scalar(data, STUDENT_VOCAB_KEY))
    needs_gradient = distillation_config.distillation_loss.loss_mode != "tgpo_r"  # Eq. 5 uses sg[log pi(y^T)]
    with torch.set_grad_enabled(torch.is_grad_enabled() and needs_gradient):
        gaps, valid = teacher_logit_gaps(student_logits, top1_ids, sampled_ids, vocab_size)
    return {TEACHER_LOGIT_GAP_KEY: gaps, TEACHER_VALID_KEY: valid}


_verl_compute_topk_loss = getattr(
    verl_distillation_losses.compute_topk_loss, "verl_original", verl_distillation_losses.compute_topk_loss
)


def compute_topk_loss(config, distillation_config, data, student_logits, data_format):
    """verl's compute_topk_loss, except for the TGPO loss modes (dispatch on the loss name)."""
    if distillation_config.distillation_loss.loss_mode in TGPO_LOSS_MODES:
        return teacher_top1_outputs(config, distillation_config, data, student_logits, data_format)
    return _verl_compute_topk_loss(config, distillation_config, data, student_logits, data_format)


compute_topk_loss.tgpo_patch = True  # marker checked by assert_registered
compute_topk_loss.verl_original = _verl_compute_topk_loss


def _response_layout(model_output: dict, data: TensorDict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(teacher-token log-probs, valid mask, response mask), each [B, T] padded.

    log pi(y^T) = log pi(y) + (z[y^T] - z[y]): verl's sampled-token log-probs plus the processor's gaps.
    """
    if "log_probs" not in model_output:
        raise KeyError("tgpo verl plugin: model_output has no 'log_probs' (verl's sampled-token log-probs)")
    sampled_log_probs = no_padding_2_padding(model_output["log_probs"], data)
    gaps = no_padding_2_padding(model_output[TEACHER_LOGIT_GAP_KEY], data)
    valid = no_padding_2_padding(model_output[TEACHER_VALID_KEY], data)
    response_mask = data["response_mask"]
    response_mask = response_mask.to_padded_tensor(0) if response_mask.is_nested else response_mask
    log_probs = sampled_log_probs + gaps
    return log_probs, valid.to(log_probs.dtype), response_mask.to(log_probs.dtype)


def _oov_metrics(valid: torch.Tensor, response_mask: torch.Tensor) -> dict[str, float]:
    n_tokens = response_mask.sum().clamp_min(1)
    oov = ((1 - valid) * response_mask).sum()
    return {"tgpo/teacher_oov_frac": (oov / n_tokens).item(), "tgpo/teacher_oov_tokens": oov.item()}


def tgpo_guidance_loss(config, distillation_config, model_output: dict, data: TensorDict):
    """Per-token w_t * (-log pi_theta(y_t^T)) [B, T] (Eq. 6's guidance term); verl aggregates it."""
    log_probs, valid, response_mask = _response_layout(model_output, data)
    weight = float(_required_scalar(data, COEF_KEY))
    guidance = guidance_loss_per_token(log_probs, valid)
    metrics = {
        "tgpo/guidance_weight": weight,
        "tgpo/guidance_loss": ((guidance * response_mask).sum() / response_mask.sum().clamp_min(1)).item(),
        **_oov_metrics(valid, response_mask),
    }
    return weight * guidance, metrics


def tgpo_r_shaping(config, distillation_config, model_output: dict, data: TensorDict):
    """Eq. 5: replace the micro-batch advantages by A + lambda * sg[log pi_theta(y_t^T)]; zero extra loss.

    verl's distillation_ppo_loss calls this before ppo_loss on the same `data`, so ppo_loss (clipped,
    Eq. 4) runs on the shaped advantages. The key is rebound, not written in place, so the mini-batch the
    micro-batch was split from keeps the unshaped advantages for further epochs.
    """
    log_probs, valid, response_mask = _response_layout(model_output, data)
    shaping_lambda = float(_required_scalar(data, SHAPING_LAMBDA_KEY))
    advantages = data["advantages"]
    nested = advantages.is_nested
    padded = advantages.to_padded_tensor(0.0) if nested else advantages
    signal = str(_required_scalar(data, SHAPING_SIGNAL_KEY))
    shaped = shaped_advantages(padded, log_probs, shaping_lambda, valid, signal=signal)
    data["advantages"] = response_to_nested(shaped, data["response_mask"]) if nested else shaped
    metrics = {
        "tgpo/shaping_lambda": shaping_lambda,
        "tgpo/guidance_loss": ((-log_probs * valid * response_mask).sum() / response_mask.sum().clamp_min(1)).item(),
        **_oov_metrics(valid, response_mask),
    }
    return torch.zeros_like(log_probs), metrics


_LOSSES = {"tgpo_d": tgpo_guidance_loss, "tgpo_r": tgpo_r_shaping}


def register() -> None:
    """Register the two loss modes and patch compute_topk_loss (idempotent: safe to import twice)."""
    registry = verl_distillation_losses.DISTILLATION_LOSS_REGISTRY
    for name, function in _LOSSES.items():
        existing = registry.get(name)
        if existing is None:
            register_distillation_loss(DistillationLossSettings(names=[name], use_topk=True))(function)
        elif getattr(existing, "__qualname__", None) != function.__qualname__:
            raise ValueError(f"tgpo verl plugin: distillation loss '{name}' is already registered to {existing!r}")
    if not getattr(verl_distillation_losses.compute_topk_loss, "tgpo_patch", False):
        verl_distillation_losses.compute_topk_loss = compute_topk_loss
