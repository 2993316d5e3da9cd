"""The training objective of every registered method, composed from the term modules.

compute_advantages: per-token advantages [N, T] from the rollout batch (group-relative, Eq. 4; RKL
rewards, Section 2; OP Distill's token advantage; PRIME's implicit process rewards).
compute_loss: for one (micro-)batch, loss = policy term (clipped Eq. 4 / LUFFY mix / SFT NLL)
  + w_t * guidance (Eq. 6, TGPO) or shaped advantages (Eq. 5, TGPO_R)
  + rkl_coef * RKL regulariser (KDRL) + kl_coef * KL-to-reference (SimpleRL-Zero) - entropy_coef * entropy,
every term aggregated with the method's loss_agg_mode and the mini-batch totals, so micro-batch losses
sum to the mini-batch loss. The student's log-probs of the sampled and teacher tokens come from one
pass over the logits (tgpo.objectives.token_log_probs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor

from tgpo.methods import MethodSpec, resolve_hparams
from tgpo.objectives.advantages import broadcast_to_tokens, group_advantages
from tgpo.objectives.aggregation import aggregate, masked_mean
from tgpo.objectives.annealing import guidance_weight
from tgpo.objectives.guidance import guidance_loss_per_token, shaped_advantages
from tgpo.objectives.implicit_reward import prime_advantages
from tgpo.objectives.off_policy import mix_on_off_policy, off_policy_loss_per_token
from tgpo.objectives.policy_loss import clipped_policy_loss
from tgpo.objectives.reverse_kl import kl_estimate, rkl_regulariser_per_token, rkl_token_advantages, sequence_rkl_reward
from tgpo.objectives.sft_loss import nll_per_token
from tgpo.objectives.token_log_probs import entropy_from_logits, gather_token_log_probs


@dataclass
class LossInputs:
    """One (micro-)batch for compute_loss; shapes [B, T] unless noted (see docs/architecture.md)."""

    logits: Tensor  # [B, T, V] student logits at response positions (row t predicts token t), / temperature
    response_ids: Tensor  # [B, T] tokens whose probability is optimised (sampled or trace tokens)
    response_mask: Tensor  # [B, T] 1 on response tokens
    old_log_probs: Tensor  # [B, T] rollout-policy log-probs of response_ids (detached)
    advantages: Tensor  # [B, T] from compute_advantages
    teacher_token_ids: Tensor | None = None  # [B, T] teacher argmax on the student's prefix (TGPO family)
    teacher_valid_mask: Tensor | None = None  # [B, T] 0 where the teacher id is not in the student's vocabulary
    teacher_log_probs: Tensor | None = None  # [B, T] teacher log-prob of response_ids (RKL family)
    ref_log_probs: Tensor | None = None  # [B, T] reference-model log-prob of response_ids
    off_policy_mask: Tensor | None = None  # [B] 1 for teacher-trace rows (LUFFY)
    sequence_scores: Tensor | None = None  # [B] verifier reward; KDRL's reward-guided masking only


def _optional_float(value: Any) -> float | None:
    """A clip setting: None (the recipe has no such clip) or its float value."""
    return None if value is None else float(value)


def _require(value: Any, what: str, method: MethodSpec) -> Any:
    if value is None:
        raise ValueError(f"method {method.name!r} needs {what}, but it was None")
    return value


def compute_advantages(
    method: MethodSpec,
    hparams: Mapping[str, Any],
    scores: Tensor,
    group_index: Tensor,
    response_mask: Tensor,
    *,
    old_log_probs: Tensor | None = None,
    teacher_log_probs: Tensor | None = None,
    implicit_rewards: Tensor | None = None,
) -> Tensor:
    """Per-token advantages [N, T] (float32, zero outside response_mask, detached).

    scores: [N] verifier rewards; group_index: [N] prompt of each response; response_mask: [N, T].
    old_log_probs / teacher_log_probs: [N, T] sampled-token log-probs (RKL family);
    implicit_rewards: [N, T] PRIME's beta * (log pi_phi - log pi_ref) (tgpo.objectives.implicit_reward).
    """
    hp = resolve_hparams(method, hparams)
    mask = response_mask.to(torch.float32)
    if method.reward_source == "verifier+implicit_prm":
        rewards = _require(implicit_rewards, "implicit_rewards (PRIME process rewards)", method)
        return prime_advantages(
            scores, rewards, group_index, mask, float(hp["prime_coef"]), float(hp["prime_outcome_coef"])
        )
    if method.rkl == "token_advantage":
        student = _require(old_log_probs, "old_log_probs", method)
        teacher = _require(teacher_log_probs, "teacher_log_probs", method)
        return rkl_token_advantages(student, teacher, mask, float(hp.get("rkl_coef", 1.0)))
    if method.reward_source == "none":
        return torch.zeros_like(mask)
    if method.reward_source == "sequence_rkl":
        student = _require(old_log_probs, "old_log_probs", method)
        teacher = _require(teacher_log_probs, "teacher_log_probs", method)
        scores = sequence_rkl_reward(student, teacher, mask)
    if method.advantage_estimator == "none":
        # REINFORCE with the raw reward (App. A, Eq. 9): no baseline, no normalisation, so an unbounded
        # RKL penalty stays unbounded (Eq. 10-12)
        return broadcast_to_tokens(scores, mask)
    return broadcast_to_tokens(group_advantages(scores, group_index, method.advantage_estimator), mask)


def _token_ids(method: MethodSpec, inputs: LossInputs) -> tuple[dict[str, Tensor], Tensor | None]:
    """Ids to gather ({response, teacher?}) and the teacher validity mask [B, T] (float) if any."""
    ids = {"response": inputs.response_ids}
    if method.teacher_signal != "argmax":
        return ids, None
    teacher_ids = _require(inputs.teacher_token_ids, "teacher_token_ids", method)
    valid = inputs.teacher_valid_mask
    valid = torch.ones_like(teacher_ids, dtype=torch.float32) if valid is None else valid.to(torch.float32)
    ids["teacher"] = torch.where(valid > 0, teacher_ids, torch.zeros_like(teacher_ids))
    return ids, valid


def _policy_term(
    method: MethodSpec,
    inputs: LossInputs,
    log_probs: Mapping[str, Tensor],
    teacher_valid: Tensor | None,
    hp: Mapping[str, Any],
    agg: Callable[[Tensor], Tensor],
    metrics: dict[str, float],
    step: int = 0,
) -> Tensor:
    """The policy-gradient (or NLL) part of the loss, aggregated (step: 0-based, TGPO_R's lambda schedule)."""
    response_log_probs = log_probs["response"]
    mask = inputs.response_mask
    if method.policy_loss == "nll":
        loss = agg(nll_per_token(response_log_probs))
        metrics["actor/sft_loss"] = float(loss.detach())
        return loss
    advantages = inputs.advantages
    if method.guidance == "reward_shaping":
        shaping_lambda = guidance_weight(step, float(hp["shaping_lambda"]), float(hp.get("delta") or 0.0))
        advantages = shaped_advantages(
            advantages,
            log_probs["teacher"],
            shaping_lambda,
            teacher_valid,
            response_mask=mask,
            signal=hp.get("shaping_signal", "log_prob"),
        )
        metrics["tgpo/shaping_lambda"] = shaping_lambda
    on_policy_mask = mask
    if method.policy_loss == "off_policy_mix":
        off_rows = _require(inputs.off_policy_mask, "off_policy_mask", method).to(mask.dtype)
        on_policy_mask = mask * (1 - off_rows).unsqueeze(-1)
    per_token, clip_metrics = clipped_policy_loss(
        response_log_probs,
        inputs.old_log_probs,
        advantages,
        _optional_float(hp["clip_ratio_low"]),
        _optional_float(hp["clip_ratio_high"]),
        clip_ratio_c=_optional_float(hp.get("clip_ratio_c")),
        response_mask=on_policy_mask,
    )
    metrics.update(clip_metrics)
    if method.policy_loss == "off_policy_mix":
        off_policy = off_policy_loss_per_token(response_log_probs, advantages, float(hp["luffy_gamma"]))
        per_token = mix_on_off_policy(per_token, off_policy, inputs.off_policy_mask)
    loss = agg(per_token)
    metrics["actor/pg_loss"] = float(loss.detach())
    return loss


def compute_loss(
    method: MethodSpec,
    inputs: LossInputs,
    hparams: Mapping[str, Any],
    step: int,
    *,
    total_tokens: float,
    total_sequences: int,
) -> tuple[Tensor, dict[str, float]]:
    """Scalar loss to back-propagate for this (micro-)batch, and float metrics.

    step: 0-based optimizer step (guidance schedule). total_tokens / total_sequences: response tokens /
    non-empty sequences of the whole mini-batch (aggregation normalisers).
    Loss-valued metrics (actor/pg_loss, tgpo/guidance_loss, actor/kl_loss, tgpo/rkl_loss) are this
    micro-batch's share, so they add up over micro-batches; the others (clip fractions, entropy,
    tgpo/teacher_oov_frac) are means over this micro-batch's response tokens.
    """
    hp = resolve_hparams(method, hparams)
    mask = inputs.response_mask.to(inputs.logits.dtype)
    agg = partial(
        aggregate,
        mask=mask,
        mode=method.loss_agg_mode,
        total_tokens=total_tokens,
        total_sequences=total_sequences,
        loss_scale_factor=hp.get("loss_scale_factor"),
    )
    metrics: dict[str, float] = {}
    ids, teacher_valid = _token_ids(method, inputs)
    log_probs = gather_token_log_probs(inputs.logits, ids)
    loss = _policy_term(method, inputs, log_probs, teacher_valid, hp, agg, metrics, step)

    if teacher_valid is not None:
        metrics["tgpo/teacher_oov_frac"] = float(masked_mean(1 - teacher_valid, mask))
    if method.guidance == "regulariser":
        weight = guidance_weight(step, float(hp["w_init"]), float(hp["delta"]))
        guidance = agg(guidance_loss_per_token(log_probs["teacher"], teacher_valid))
        loss = loss + weight * guidance
        metrics["tgpo/guidance_weight"] = weight
        metrics["tgpo/guidance_loss"] = float(guidance.detach())
    if method.rkl == "regulariser":
        teacher_log_probs = _require(inputs.teacher_log_probs, "teacher_log_probs", method)
        keep = None
        if hp.get("reward_mask_correct"):
            scores = _require(inputs.sequence_scores, "sequence_scores (reward_mask_correct)", method)
            keep = (scores <= 0).to(mask.dtype)
        rkl = agg(rkl_regulariser_per_token(log_probs["response"], teacher_log_probs, hp["rkl_estimator"], keep))
        loss = loss + float(hp["rkl_coef"]) * rkl
        metrics["tgpo/rkl_loss"] = float(rkl.detach())
    kl_coef = float(hp.get("kl_coef", 0.0))
    if kl_coef > 0:
        ref_log_probs = _require(inputs.ref_log_probs, "ref_log_probs (kl_coef > 0)", method)
        kl = agg(kl_estimate(log_probs["response"], ref_log_probs.detach(), hp["kl_estimator"]))
        loss = loss + kl_coef * kl
        metrics["actor/kl_loss"] = float(kl.detach())
    entropy_coef = float(hp.get("entropy_coef", 0.0))
    if entropy_coef > 0:
        entropy = entropy_from_logits(inputs.logits)
        loss = loss - entropy_coef * agg(entropy)
    else:
        with torch.no_grad():
            entropy = entropy_from_logits(inputs.logits.detach())
    metrics["actor/entropy"] = float(masked_mean(entropy.detach(), mask))
    return loss, metrics
