"""TGPO (Eq. 6) and TGPO_R (Eq. 5) as top-1 distillation loss modes of verl 0.9.1's built-in teacher.

verl's teacher pool (vLLM, `distillation.*`) returns, per position of the student's sequence, the
teacher's top-k ids ranked by the teacher's raw logits; with `distillation_loss.topk=1`,
`teacher_ids[..., 0]` is the teacher's argmax y_t^T on the student's prefix. Two pieces go in:

1. `teacher_top1_outputs` replaces `verl.trainer.distillation.losses.compute_topk_loss` for our modes.
   It runs inside the engine's logits processor while the full-vocabulary logits are alive and returns
   per packed token: the student's log pi_theta(y_t^T) (differentiable, `inplace_backward=False`,
   because verl's own log-prob cross-entropy may overwrite the logits in its backward) and a validity
   mask, 0 where the teacher's id is not a token of the student's tokenizer.
2. Two registered distillation losses read those tensors back in response layout [B, T]:
   - "tgpo_d": w_t * J_Guidance, with J_Guidance = -log pi_theta(y_t^T) per token (tgpo.guidance,
               Eq. 3), aggregated by verl with the actor's loss_agg_mode and added to the PPO loss.
   - "tgpo_r": no extra term; the advantages of the micro-batch are replaced by
               A + lambda * sg[log pi_theta(y_t^T)] (tgpo.guidance.shaped_advantages, Eq. 5) before
               verl's `distillation_ppo_loss` calls `ppo_loss`, so the clipped loss sees the shaped
               advantage exactly (not PPO(A) + PPO(shaping), which differs once clipping is active).

Per-step scalars arrive as non-tensor data of the micro-batch, set by `tgpo.verl.trainer`:
`tgpo_coef` (w_t), `tgpo_shaping_lambda` and `tgpo_student_vocab_size`.
"""

from __future__ import annotations

from typing import Any

import torch
import verl.trainer.distillation.losses as verl_distillation_losses
from tensordict import TensorDict
from verl.trainer.distillation.losses import DistillationLossSettings, register_distillation_loss
from verl.utils import tensordict_utils as tu
from verl.utils.torch_functional import logprobs_from_logits
from verl.utils.ulysses import get_ulysses_sequence_parallel_world_size, slice_input_tensor
from verl.workers.utils.padding import no_padding_2_padding, response_to_nested

from tgpo.guidance import guidance_loss_per_token, shaped_advantages

TGPO_LOSS_MODES = ("tgpo_d", "tgpo_r")
TEACHER_LOG_PROB_KEY = "tgpo_teacher_log_prob"
TEACHER_VALID_KEY = "tgpo_teacher_valid"

# Names of the per-step non-tensor entries the trainer puts into batch.extra_info.
COEF_KEY = "tgpo_coef"
SHAPING_LAMBDA_KEY = "tgpo_shaping_lambda"
STUDENT_VOCAB_KEY = "tgpo_student_vocab_size"


def _required_scalar(data: TensorDict, key: str) -> Any:
    value = tu.get_non_tensor_data(data=data, key=key, default=None)
    if value is None:
        raise KeyError(
            f"tgpo verl plugin: micro-batch has no '{key}'; run with trainer.v1.trainer_mode=tgpo_sync "
            f"(tgpo.verl.trainer sets it per step)"
        )
    return value


def teacher_top1_log_probs(
    student_logits: torch.Tensor, teacher_top1_ids: torch.Tensor, student_vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Student log-prob of the teacher's argmax id, and its validity mask.

    student_logits: [1, N, V] packed logits (already divided by the temperature); teacher_top1_ids: [1, N].
    Returns (log_probs [1, N], valid [1, N] float): valid = 1 where 0 <= id < student_vocab_size;
    invalid positions gather id 0 and are zeroed by the mask downstream.
    """
    valid = (teacher_top1_ids >= 0) & (teacher_top1_ids < min(student_vocab_size, student_logits.shape[-1]))
    safe_ids = torch.where(valid, teacher_top1_ids, torch.zeros_like(teacher_top1_ids)).long()
    log_probs = logprobs_from_logits(
        logits=student_logits.reshape(-1, student_logits.shape[-1]),
        labels=safe_ids.reshape(-1),
        inplace_backward=False,
    ).reshape(safe_ids.shape)
    return log_probs, valid.to(log_probs.dtype)


def teacher_top1_outputs(config, distillation_config, data: TensorDict, student_logits: torch.Tensor, data_format: str):
    """Logits-processor outputs for the TGPO modes: {TEACHER_LOG_PROB_KEY, TEACHER_VALID_KEY}, each [1, N]."""
    teacher_ids = data["teacher_ids"]  # nested (bsz, seq_len, topk), aligned with the packed logits rows
    if not teacher_ids.is_nested:
        raise ValueError("tgpo verl plugin: expected nested teacher_ids (verl 0.9.1 remove-padding path)")
    top1_ids = teacher_ids.values()[..., 0].unsqueeze(0)  # (1, total_nnz)
    if get_ulysses_sequence_parallel_world_size() > 1:
        top1_ids = slice_input_tensor(top1_ids, dim=1)
    if top1_ids.shape != student_logits.shape[:2]:
        raise ValueError(f"tgpo verl plugin: teacher ids {tuple(top1_ids.shape)} vs logits {tuple(student_logits.shape)}")
    vocab_size = int(_required_scalar(data, STUDENT_VOCAB_KEY))
    log_probs, valid = teacher_top1_log_probs(student_logits, top1_ids, vocab_size)
    return {TEACHER_LOG_PROB_KEY: log_probs, TEACHER_VALID_KEY: valid}


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
    """(teacher log-probs, valid mask, response mask), each [B, T] padded."""
    log_probs = no_padding_2_padding(model_output[TEACHER_LOG_PROB_KEY], data)
    valid = no_padding_2_padding(model_output[TEACHER_VALID_KEY], data)
    response_mask = data["response_mask"]
    response_mask = response_mask.to_padded_tensor(0) if response_mask.is_nested else response_mask
    return log_probs, valid, response_mask.to(log_probs.dtype)


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
    shaped = shaped_advantages(padded, log_probs, shaping_lambda, valid)
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
