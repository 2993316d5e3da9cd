"""Each method as its recipe defines it: one test per difference from the recipe that was fixed.

RKL-only's unnormalised reward is in tests/test_objectives.py (test_rkl_only_keeps_an_unbounded_penalty_unbounded);
the verl side of each fix is in tests/test_verl_rkl_luffy.py and below.
"""

from __future__ import annotations

import math

import pytest
import torch

from tgpo.methods import VERL_NO_DUAL_CLIP, get_method, list_methods, resolve_hparams
from tgpo.objectives.advantages import leave_one_out_token_rewards
from tgpo.objectives.compose import LossInputs, compute_advantages, compute_loss
from tgpo.objectives.guidance import shaped_advantages
from tgpo.objectives.implicit_reward import (
    accuracy_filter,
    batch_norm_process_rewards,
    last_token_mask,
    masked_whiten,
    prime_advantages,
    return_to_go,
)
from tgpo.objectives.off_policy import off_policy_shaping
from tgpo.objectives.policy_loss import clipped_policy_loss

torch.set_num_threads(1)
DOUBLE = torch.float64


def far_off_policy_batch(seed: int = 0, batch: int = 4, length: int = 5, vocab: int = 11):
    """Logits whose ratios to old_log_probs are far outside [0.8, 1.2] and beyond the dual clip 3."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=generator, dtype=DOUBLE)
    response_ids = torch.randint(0, vocab, (batch, length), generator=generator)
    log_probs = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    old_log_probs = log_probs + torch.tensor([2.0, -2.0]).repeat(batch * length // 2 + 1)[: batch * length].view(
        batch, length
    ).to(DOUBLE)
    advantages = torch.tensor([1.0, -1.0, 0.5, -2.0], dtype=DOUBLE)[:batch].unsqueeze(-1).expand(batch, length).clone()
    mask = torch.ones(batch, length, dtype=DOUBLE)
    return logits, response_ids, mask, old_log_probs, advantages


def pg_gradient(method_name: str, hparams: dict, off_policy_mask=None, seed: int = 0):
    logits, response_ids, mask, old_log_probs, advantages = far_off_policy_batch(seed)
    logits = logits.requires_grad_(True)
    inputs = LossInputs(logits, response_ids, mask, old_log_probs, advantages, off_policy_mask=off_policy_mask)
    loss, metrics = compute_loss(
        get_method(method_name),
        inputs,
        {"entropy_coef": 0.0, **hparams},
        0,
        total_tokens=float(mask.sum()),
        total_sequences=mask.shape[0],
    )
    (grad,) = torch.autograd.grad(loss, logits)
    return loss, grad, metrics, (logits, response_ids, mask, old_log_probs, advantages)


# ----------------------------------------------------------------------------- LUFFY: no clipping anywhere
def test_luffy_on_policy_rows_are_unclipped_as_loss_remove_clip():
    off_rows = torch.tensor([1.0, 0.0, 0.0, 0.0])
    loss, _, metrics, (logits, ids, mask, old, adv) = pg_gradient("luffy", {"loss_scale_factor": 5}, off_rows)
    log_probs = torch.log_softmax(logits.detach(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    ratio = torch.exp(log_probs - old)
    per_token = torch.where(off_rows.bool().unsqueeze(-1), -adv * off_policy_shaping(log_probs, 0.1), -adv * ratio)
    expected = (per_token * mask).sum() / 4 / 5  # seq-mean-token-sum-norm: sum / (B * loss_scale_factor)
    torch.testing.assert_close(loss.detach(), expected)
    assert metrics["actor/pg_clipfrac"] == 0.0 and metrics["actor/pg_clipfrac_lower"] == 0.0
    spec = get_method("luffy")
    assert [spec.defaults[k] for k in ("clip_ratio_low", "clip_ratio_high", "clip_ratio_c")] == [None, None, None]
    verl = hparam_overrides(spec, dict(spec.defaults))  # the cluster run: the plugin's loss clips nothing
    assert verl["+luffy.remove_clip"] is True and "actor_rollout_ref.actor.clip_ratio_low" not in verl
    assert (
        hparam_overrides(spec, {**spec.defaults, "clip_ratio_low": 0.2, "clip_ratio_high": 0.2})["+luffy.remove_clip"]
        is False
    )


def test_unclipped_policy_loss_needs_both_bounds_absent():
    with pytest.raises(ValueError, match="both or neither"):
        clipped_policy_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), None, 0.2)


# ----------------------------------------------------------------------------- Oat-Zero: no dual clip
def test_oat_zero_has_no_dual_clip_in_either_engine():
    spec = get_method("oat_zero")
    assert spec.defaults["clip_ratio_c"] is None
    _, grad, metrics, _ = pg_gradient("oat_zero", {"loss_scale_factor": 5})
    _, grad_dual, metrics_dual, _ = pg_gradient("oat_zero", {"loss_scale_factor": 5, "clip_ratio_c": 3.0})
    assert metrics["actor/pg_clipfrac_lower"] == 0.0 and metrics_dual["actor/pg_clipfrac_lower"] > 0
    assert not torch.allclose(grad, grad_dual)
    # verl always dual-clips; the bound it gets is one its clamped ratio (<= e^20) never reaches
    key = "actor_rollout_ref.actor.clip_ratio_c"
    assert hparam_overrides(spec, dict(spec.defaults))[key] == VERL_NO_DUAL_CLIP > math.exp(20)
    assert hparam_overrides(get_method("grpo_pp"), dict(get_method("grpo_pp").defaults))[key] == 3.0


def hparam_overrides(method, hparams):
    pytest.importorskip("verl")
    from tgpo.verl.translate import hparam_overrides as translate

    return translate(method, hparams)


def test_verl_vanilla_loss_with_the_no_dual_clip_bound_equals_no_dual_clip():
    pytest.importorskip("verl")
    from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla
    from verl.workers.config import ActorConfig

    generator = torch.Generator().manual_seed(4)
    log_probs = torch.randn(3, 6, generator=generator, dtype=DOUBLE) * 8  # ratios up to e^20 after verl's clamp
    old = torch.randn(3, 6, generator=generator, dtype=DOUBLE) * 8
    advantages = torch.randn(3, 1, generator=generator, dtype=DOUBLE).expand(3, 6).clone()
    advantages[0] = 0.0
    mask = torch.ones(3, 6, dtype=DOUBLE)
    config = ActorConfig(
        strategy="fsdp",
        clip_ratio_low=0.2,
        clip_ratio_high=0.2,
        clip_ratio_c=VERL_NO_DUAL_CLIP,
        loss_agg_mode="token-mean",
        ppo_micro_batch_size_per_gpu=1,
        rollout_n=1,
    )
    config.global_batch_info.update({"dp_size": 1, "batch_num_tokens": 18, "global_batch_size": 3})
    verl_loss, _ = compute_policy_loss_vanilla(old, log_probs, advantages, mask, "token-mean", config)
    ours, _ = clipped_policy_loss(log_probs, old, advantages, 0.2, 0.2, clip_ratio_c=None)
    torch.testing.assert_close(verl_loss, ours.mean())


# ----------------------------------------------------------------------------- OP Distill: no entropy bonus
def test_op_distill_has_no_entropy_bonus_like_verls_distillation_path():
    assert resolve_hparams(get_method("op_distill"))["entropy_coef"] == 0.0
    logits, ids, mask, old, _ = far_off_policy_batch(1)
    teacher = old - 0.3
    advantages = compute_advantages(
        get_method("op_distill"),
        {},
        torch.zeros(4),
        torch.arange(4),
        mask,
        old_log_probs=old,
        teacher_log_probs=teacher,
    )
    inputs = LossInputs(logits.requires_grad_(True), ids, mask, old, advantages, teacher_log_probs=teacher)
    loss, _ = compute_loss(get_method("op_distill"), inputs, {}, 0, total_tokens=float(mask.sum()), total_sequences=4)
    pg_only, _ = compute_loss(
        get_method("op_distill"), inputs, {"entropy_coef": 0.0}, 0, total_tokens=float(mask.sum()), total_sequences=4
    )
    torch.testing.assert_close(loss, pg_only)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in list_methods()
        if get_method(n).verl_overrides.get("distillation.distillation_loss.use_task_rewards") is False
    ],
)
def test_methods_without_verls_policy_loss_have_no_entropy_or_kl_term(name):
    """verl's distillation_ppo_loss drops ppo_loss (entropy bonus and KL loss with it) when use_task_rewards is
    False; the local engine must not add terms the cluster run does not have."""
    defaults = get_method(name).defaults
    assert defaults["entropy_coef"] == 0.0 and defaults["kl_coef"] == 0.0


# ----------------------------------------------------------------------------- PRIME: 5 and 5, batch norm, filter
def test_prime_process_rewards_are_batch_normalised():
    rewards = torch.tensor([[0.5, -1.0, 2.0], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # returns-to-go: [1.5, 1.0, 2.0], [2.0, 1.0, 0.0] -> max |.| = 2
    torch.testing.assert_close(batch_norm_process_rewards(rewards, mask), rewards * mask / (2.0 + 1e-6))


def test_prime_weighs_outcome_and_process_rewards_equally():
    spec = get_method("prime_zero")
    assert spec.defaults["prime_coef"] == spec.defaults["prime_outcome_coef"] == 5.0
    scores = torch.tensor([1.0, 0.0, 1.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1])
    mask = torch.ones(4, 3)
    implicit = torch.tensor([[0.2, -0.1, 0.3], [-0.4, 0.1, 0.0], [0.05, 0.05, -0.2], [0.1, 0.0, 0.6]])
    advantages = compute_advantages(spec, {}, scores, groups, mask, implicit_rewards=implicit)
    outcome_tokens = last_token_mask(mask)
    outcome = leave_one_out_token_rewards(scores.unsqueeze(-1) * outcome_tokens, outcome_tokens, groups)
    process = leave_one_out_token_rewards(batch_norm_process_rewards(implicit, mask), mask, groups)
    expected = masked_whiten(5 * return_to_go(outcome) + 5 * return_to_go(process), mask)
    torch.testing.assert_close(advantages, expected)
    old_weighting = masked_whiten(
        return_to_go(outcome) + return_to_go(leave_one_out_token_rewards(5 * implicit, mask, groups)), mask
    )
    assert (advantages - old_weighting).abs().max() > 0.1
    torch.testing.assert_close(
        prime_advantages(scores, implicit, groups, mask, 1.0, 1.0), expected, atol=1e-5, rtol=1e-5
    )


def test_prime_accuracy_filter_keeps_groups_between_0_2_and_0_8():
    scores = torch.tensor([0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0], dtype=torch.float32)
    groups = torch.arange(20) // 4  # accuracies 0, 0.25, 0.5, 1.0, 0.75
    keep = accuracy_filter(scores, groups, 0.2, 0.8)
    assert keep.view(5, 4).all(-1).tolist() == [False, True, True, False, True]
    assert keep.view(5, 4).any(-1).tolist() == keep.view(5, 4).all(-1).tolist()
    defaults = get_method("prime_zero").defaults
    assert (defaults["prime_accuracy_low"], defaults["prime_accuracy_high"], defaults["prime_oversample"]) == (
        0.2,
        0.8,
        4,
    )


# ----------------------------------------------------------------------------- TGPO_R: OOV positions not favoured
def test_tgpo_r_masked_positions_are_not_favoured():
    teacher_log_probs = torch.log(torch.tensor([[0.5, 0.9, 0.2, 0.1], [0.3, 0.3, 0.3, 0.3]]))
    valid = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    advantages = torch.tensor([[1.0] * 4, [-1.0] * 4])
    shaped = shaped_advantages(advantages, teacher_log_probs, 0.5, valid)
    valid_shaped = shaped[0][valid[0].bool()]
    # the OOV position gets its row's mean shaping: between the valid positions' values, below A = 1
    assert valid_shaped.min() < shaped[0, 1] < valid_shaped.max() and shaped[0, 1] < 1.0
    assert shaped[0, 1].item() == pytest.approx(1 + 0.5 * float(teacher_log_probs[0, [0, 2, 3]].mean()))
    torch.testing.assert_close(shaped[1], advantages[1])  # a row without a valid position is not shaped
    # padding never enters the mean: a valid mask that is 1 on padding gives the same with the response mask
    response = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    padded_valid = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    with_mask = shaped_advantages(advantages, teacher_log_probs, 0.5, padded_valid, response_mask=response)
    torch.testing.assert_close(
        with_mask, shaped_advantages(advantages, teacher_log_probs, 0.5, padded_valid * response)
    )
    # unmasked behaviour unchanged
    torch.testing.assert_close(
        shaped_advantages(advantages, teacher_log_probs, 0.5), advantages + 0.5 * teacher_log_probs
    )
