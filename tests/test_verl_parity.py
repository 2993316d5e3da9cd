"""Our objective terms equal verl 0.9's `core_algos` on random tensors (max |diff| <= 1e-6).

Never skipped: without verl the tests fail (verl is a declared dependency of the parity suite).
verl is imported inside the tests only, so collection works and the failure names the missing import.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tgpo.objectives.advantages import broadcast_to_tokens, group_advantages
from tgpo.objectives.aggregation import AGG_MODES, aggregate
from tgpo.objectives.policy_loss import clipped_policy_loss
from tgpo.objectives.reverse_kl import kl_estimate

torch.set_num_threads(1)
TOLERANCE = 1e-6


def core_algos():
    import verl.trainer.ppo.core_algos as algos  # fails (not skips) when verl is missing

    return algos


def random_rollouts(seed: int, groups: int = 5, group_size: int = 4, length: int = 9):
    generator = torch.Generator().manual_seed(seed)
    n = groups * group_size
    group_index = torch.arange(groups).repeat_interleave(group_size)
    group_index = group_index[torch.randperm(n, generator=generator)]
    scores = torch.randint(0, 2, (n,), generator=generator).float()
    scores[:3] += torch.rand(3, generator=generator)  # non-binary scores too
    mask = torch.ones(n, length)
    lengths = torch.randint(1, length + 1, (n,), generator=generator)
    for row, row_length in enumerate(lengths.tolist()):
        mask[row, row_length:] = 0
    return scores, group_index, mask, generator


def verl_token_rewards(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    rewards = torch.zeros_like(mask)
    last = mask.sum(-1).long() - 1
    rewards[torch.arange(len(scores)), last] = scores
    return rewards


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("estimator", ["grpo", "drgrpo", "rloo"])
def test_group_advantages_equal_verl(estimator, seed):
    algos = core_algos()
    scores, group_index, mask, _ = random_rollouts(seed)
    index = np.array([f"uid{int(i)}" for i in group_index])
    rewards = verl_token_rewards(scores, mask)
    if estimator == "rloo":
        expected, _ = algos.compute_rloo_outcome_advantage(rewards, mask, index)
    else:
        expected, _ = algos.compute_grpo_outcome_advantage(
            rewards, mask, index, norm_adv_by_std_in_grpo=(estimator == "grpo")
        )
    ours = broadcast_to_tokens(group_advantages(scores, group_index, estimator), mask)
    assert (ours - expected).abs().max().item() <= TOLERANCE


def test_group_advantages_equal_verl_with_singletons_and_constant_groups():
    algos = core_algos()
    scores = torch.tensor([1.0, 1.0, 1.0, 0.3, 0.0, 1.0])
    group_index = torch.tensor([0, 0, 0, 1, 2, 2])
    mask = torch.ones(6, 3)
    index = np.array([int(i) for i in group_index])
    for estimator in ("grpo", "drgrpo"):
        expected, _ = algos.compute_grpo_outcome_advantage(
            verl_token_rewards(scores, mask), mask, index, norm_adv_by_std_in_grpo=(estimator == "grpo")
        )
        ours = broadcast_to_tokens(group_advantages(scores, group_index, estimator), mask)
        assert (ours - expected).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregation_equals_verl_agg_loss(mode):
    algos = core_algos()
    _, _, mask, generator = random_rollouts(3)
    mask[4] = 0  # a fully masked sequence
    loss = torch.randn(mask.shape, generator=generator)
    for kwargs in ({}, {"loss_scale_factor": 17}):
        expected = algos.agg_loss(loss, mask, mode, **kwargs)
        ours = aggregate(loss, mask, mode, **kwargs)
        assert abs(ours.item() - expected.item()) <= TOLERANCE
    # mini-batch totals: verl's batch_num_tokens / global_batch_size
    expected = algos.agg_loss(
        loss[:7], mask[:7], mode, batch_num_tokens=mask.sum(), global_batch_size=19, loss_scale_factor=17
    )
    ours = aggregate(loss[:7], mask[:7], mode, total_tokens=mask.sum(), total_sequences=19, loss_scale_factor=17)
    assert abs(ours.item() - expected.item()) <= TOLERANCE


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-sum-norm"])
@pytest.mark.parametrize("clip", [(0.2, 0.2), (0.2, 0.28)])
def test_clipped_policy_loss_equals_verl_vanilla(mode, clip):
    algos = core_algos()
    from verl.workers.config.actor import ActorConfig

    _, _, mask, generator = random_rollouts(4)
    log_probs = -torch.rand(mask.shape, generator=generator) * 3
    old_log_probs = log_probs + 0.6 * torch.randn(mask.shape, generator=generator)  # ratios well outside the clip
    advantages = torch.randn(mask.shape[0], 1, generator=generator).expand_as(mask) * mask
    config = ActorConfig(
        strategy="fsdp",
        rollout_n=1,
        ppo_micro_batch_size_per_gpu=1,
        clip_ratio=clip[0],
        clip_ratio_low=clip[0],
        clip_ratio_high=clip[1],
        loss_agg_mode=mode,
        loss_scale_factor=13,
    )
    config.global_batch_info.update({"loss_scale_factor": 13})
    expected_loss, expected_metrics = algos.compute_policy_loss_vanilla(
        old_log_probs, log_probs, advantages, mask, loss_agg_mode=mode, config=config
    )
    per_token, metrics = clipped_policy_loss(
        log_probs, old_log_probs, advantages, clip[0], clip[1], clip_ratio_c=config.clip_ratio_c, response_mask=mask
    )
    ours = aggregate(per_token, mask, mode, loss_scale_factor=13)
    assert abs(ours.item() - expected_loss.item()) <= TOLERANCE
    for key in ("actor/pg_clipfrac", "actor/ppo_kl", "actor/pg_clipfrac_lower"):
        assert abs(metrics[key] - expected_metrics[key]) <= TOLERANCE, key
    assert expected_metrics["actor/pg_clipfrac"] > 0  # the clipped branch was exercised


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_estimators_equal_verl_kl_penalty(estimator):
    algos = core_algos()
    generator = torch.Generator().manual_seed(5)
    log_probs = -torch.rand(8, 11, generator=generator) * 4
    ref_log_probs = log_probs + 2.0 * torch.randn(8, 11, generator=generator)
    ref_log_probs[0, 0] = log_probs[0, 0] + 30.0  # exercise the k3 clamps
    expected = algos.kl_penalty(log_probs, ref_log_probs, estimator)
    ours = kl_estimate(log_probs, ref_log_probs, estimator)
    assert (ours - expected).abs().max().item() <= TOLERANCE
    verl_name = {"k1": "kl", "k2": "mse", "k3": "low_var_kl"}[estimator]
    assert (
        kl_estimate(log_probs, ref_log_probs, verl_name) - algos.kl_penalty(log_probs, ref_log_probs, verl_name)
    ).abs().max().item() <= TOLERANCE
