"""Hand-computed cases for every term of the objective library, and the composition in compute_loss."""

from __future__ import annotations

import math

import pytest
import torch

from tgpo.methods import get_method, with_overrides
from tgpo.objectives.advantages import group_advantages, leave_one_out_token_rewards
from tgpo.objectives.aggregation import AGG_MODES, aggregate
from tgpo.objectives.annealing import guidance_weight
from tgpo.objectives.compose import LossInputs, compute_advantages, compute_loss
from tgpo.objectives.guidance import guidance_loss_per_token, shaped_advantages
from tgpo.objectives.implicit_reward import implicit_process_rewards, prime_advantages, reward_model_loss
from tgpo.objectives.off_policy import off_policy_loss_per_token, off_policy_shaping
from tgpo.objectives.policy_loss import clipped_policy_loss
from tgpo.objectives.reverse_kl import kl_estimate, rkl_regulariser_per_token, rkl_token_advantages, sequence_rkl_reward
from tgpo.objectives.token_log_probs import entropy_from_logits, gather_token_log_probs

torch.set_num_threads(1)
DOUBLE = torch.float64


def random_batch(seed: int = 0, batch: int = 6, length: int = 7, vocab: int = 13):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=generator, dtype=DOUBLE)
    response_ids = torch.randint(0, vocab, (batch, length), generator=generator)
    teacher_ids = torch.randint(0, vocab, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=DOUBLE)
    for row in range(batch):
        mask[row, length - row % 4 :] = 0  # ragged lengths
    log_probs = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    old_log_probs = log_probs + 0.05 * torch.randn(batch, length, generator=generator, dtype=DOUBLE)
    advantages = torch.randn(batch, 1, generator=generator, dtype=DOUBLE).expand(batch, length) * mask
    return logits, response_ids, teacher_ids, mask, old_log_probs, advantages


# ----------------------------------------------------------------------------- token log-probs / entropy
def test_gather_token_log_probs_equals_log_softmax_gather_values_and_gradients():
    logits, response_ids, teacher_ids, *_ = random_batch()
    weights = torch.randn(2, *response_ids.shape, dtype=DOUBLE)

    ours_logits = logits.clone().requires_grad_(True)
    ours = gather_token_log_probs(ours_logits, {"response": response_ids, "teacher": teacher_ids})
    (weights[0] * ours["response"] + weights[1] * ours["teacher"]).sum().backward()

    ref_logits = logits.clone().requires_grad_(True)
    log_softmax = torch.log_softmax(ref_logits, -1)
    ref_response = log_softmax.gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    ref_teacher = log_softmax.gather(-1, teacher_ids.unsqueeze(-1)).squeeze(-1)
    (weights[0] * ref_response + weights[1] * ref_teacher).sum().backward()

    torch.testing.assert_close(ours["response"], ref_response)
    torch.testing.assert_close(ours["teacher"], ref_teacher)
    torch.testing.assert_close(ours_logits.grad, ref_logits.grad)


def test_gather_token_log_probs_rejects_out_of_vocabulary_ids():
    logits = torch.zeros(1, 2, 5)
    with pytest.raises(ValueError, match="outside"):
        gather_token_log_probs(logits, {"teacher": torch.tensor([[1, 5]])})


@pytest.mark.parametrize("elements_per_chunk", [1 << 24, 30])  # one chunk / many chunks of 2 rows
def test_entropy_from_logits_matches_definition_and_gradient(monkeypatch, elements_per_chunk):
    import tgpo.objectives.token_log_probs

    monkeypatch.setattr(tgpo.objectives.token_log_probs, "_ELEMENTS_PER_CHUNK", elements_per_chunk)
    logits, *_ = random_batch(seed=1)
    ours_logits = logits.clone().requires_grad_(True)
    ref_logits = logits.clone().requires_grad_(True)
    weights = torch.randn(logits.shape[:-1], dtype=DOUBLE)
    ours = entropy_from_logits(ours_logits)
    log_p = torch.log_softmax(ref_logits, -1)
    reference = -(log_p.exp() * log_p).sum(-1)
    (weights * ours).sum().backward()
    (weights * reference).sum().backward()
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(ours_logits.grad, ref_logits.grad)
    uniform = entropy_from_logits(torch.zeros(1, 1, 8))
    assert float(uniform) == pytest.approx(math.log(8))


# ----------------------------------------------------------------------------- advantages
def test_group_advantages_hand_computed():
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 3.0])
    groups = torch.tensor([0, 0, 1, 1, 1, 2])
    grpo = group_advantages(scores, groups, "grpo")
    drgrpo = group_advantages(scores, groups, "drgrpo")
    rloo = group_advantages(scores, groups, "rloo")
    # group 0 {1, 0}: mean 0.5, unbiased std 0.7071; group 1 {1, 0, 0}: mean 1/3, std 0.57735
    assert grpo[:2].tolist() == pytest.approx([0.5 / math.sqrt(0.5), -0.5 / math.sqrt(0.5)], abs=1e-5)
    assert grpo[2:5].tolist() == pytest.approx(
        [(2 / 3) / math.sqrt(1 / 3), (-1 / 3) / math.sqrt(1 / 3)] + [(-1 / 3) / math.sqrt(1 / 3)], abs=1e-5
    )
    assert drgrpo.tolist()[:5] == pytest.approx([0.5, -0.5, 2 / 3, -1 / 3, -1 / 3], abs=1e-6)
    # leave-one-out: r_i - mean of the others
    assert rloo.tolist()[:5] == pytest.approx([1.0, -1.0, 1.0, -0.5, -0.5], abs=1e-6)
    # singleton group: mean 0, std 1 (verl's convention)
    assert grpo[5].item() == pytest.approx(3.0 / (1 + 1e-6))
    assert drgrpo[5].item() == pytest.approx(3.0)
    # a group of equal scores has zero advantage
    assert group_advantages(torch.ones(4), torch.zeros(4, dtype=torch.long)).abs().max() == 0


def test_leave_one_out_token_rewards_hand_computed():
    rewards = torch.tensor([[1.0, 3.0], [2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    # scores (token means): 2 and 2; n = 2 -> r * 2 - (2 + 2) / 1
    out = leave_one_out_token_rewards(rewards, mask, torch.tensor([0, 0]))
    assert out.tolist() == [[-2.0, 2.0], [0.0, 0.0]]


# ----------------------------------------------------------------------------- aggregation
def test_aggregate_modes_hand_computed():
    mask = torch.ones(4, 6)
    mask[0, 4:] = 0  # 22 tokens, lengths 4, 6, 6, 6
    ones = torch.ones(4, 6)
    expected = {
        "token-mean": 1.0,
        "token-sum": 22.0,
        "seq-mean-token-sum": 5.5,
        "seq-mean-token-mean": 1.0,
        "seq-mean-token-sum-norm": 5.5 / 6,
    }
    for mode, value in expected.items():
        assert float(aggregate(ones, mask, mode)) == pytest.approx(value, rel=1e-6), mode
    assert float(aggregate(ones, mask, "seq-mean-token-sum-norm", loss_scale_factor=11)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="loss_agg_mode"):
        aggregate(ones, mask, "token-average")


@pytest.mark.parametrize("mode", AGG_MODES)
def test_micro_batches_sum_to_the_mini_batch_loss(mode):
    _, _, _, mask, _, _ = random_batch(seed=2)
    loss = torch.randn(mask.shape, dtype=DOUBLE)
    totals = dict(total_tokens=mask.sum(), total_sequences=int((mask.sum(-1) > 0).sum()), loss_scale_factor=7)
    full = aggregate(loss, mask, mode, **totals)
    parts = sum(aggregate(loss[rows], mask[rows], mode, **totals) for rows in (slice(0, 2), slice(2, 3), slice(3, 6)))
    torch.testing.assert_close(parts, full)


def test_compute_loss_micro_batches_sum_to_the_mini_batch_loss_and_gradient():
    logits, response_ids, teacher_ids, mask, old_log_probs, advantages = random_batch(seed=3)
    for name in ("tgpo_annealing", "oat_zero", "luffy", "kdrl"):
        method = get_method(name)
        totals = dict(total_tokens=float(mask.sum()), total_sequences=int((mask.sum(-1) > 0).sum()))
        hparams = {"loss_scale_factor": 7} if "norm" in method.loss_agg_mode else {}

        def inputs(rows, leaf):
            return LossInputs(
                logits=leaf[rows],
                response_ids=response_ids[rows],
                response_mask=mask[rows],
                old_log_probs=old_log_probs[rows],
                advantages=advantages[rows],
                teacher_token_ids=teacher_ids[rows],
                teacher_log_probs=old_log_probs[rows] - 0.5,
                off_policy_mask=torch.tensor([1.0, 0, 0, 1, 0, 0])[rows],
            )

        full_leaf = logits.clone().requires_grad_(True)
        full, _ = compute_loss(method, inputs(slice(None), full_leaf), hparams, 5, **totals)
        full.backward()
        micro_leaf = logits.clone().requires_grad_(True)
        total = 0.0
        for rows in (slice(0, 2), slice(2, 5), slice(5, 6)):
            part, _ = compute_loss(method, inputs(rows, micro_leaf), hparams, 5, **totals)
            part.backward()
            total = total + part.detach()
        torch.testing.assert_close(total, full.detach(), msg=name)
        torch.testing.assert_close(micro_leaf.grad, full_leaf.grad, msg=name)


# ----------------------------------------------------------------------------- clipped policy loss
def test_clipped_policy_loss_hand_computed():
    ratio = torch.tensor([[1.5, 0.5, 0.5, 5.0, 1.1]])
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0, 2.0]])
    loss, metrics = clipped_policy_loss(torch.log(ratio), torch.zeros_like(ratio), advantages, 0.2, 0.2)
    # A>0: max(-A r, -A clip(r)) ; A<0: additionally min(., -A * 3) (dual clip)
    assert loss.tolist()[0] == pytest.approx([-1.2, -0.5, 0.8, 3.0, -2.2], abs=1e-6)
    assert metrics["actor/pg_clipfrac"] == pytest.approx(2 / 5)  # tokens 0 and 2 (verl counts clipped > unclipped)
    assert metrics["actor/pg_clipfrac_lower"] == pytest.approx(1 / 5)
    no_dual, _ = clipped_policy_loss(torch.log(ratio), torch.zeros_like(ratio), advantages, 0.2, 0.2, clip_ratio_c=None)
    assert no_dual[0, 3].item() == pytest.approx(5.0)


# ----------------------------------------------------------------------------- guidance, schedule
def test_guidance_term_and_weight_schedule():
    teacher_log_probs = torch.log(torch.tensor([[0.5, 0.25, 0.1]]))
    valid = torch.tensor([[1.0, 0.0, 1.0]])
    per_token = guidance_loss_per_token(teacher_log_probs, valid)
    assert per_token.tolist()[0] == pytest.approx([math.log(2), 0.0, math.log(10)])
    shaped = shaped_advantages(torch.ones(1, 3), teacher_log_probs, 0.1, valid)
    # the masked position gets its row's mean shaping over the valid positions (issue 10: not 0, the maximum)
    masked = 1 - 0.1 * (math.log(2) + math.log(10)) / 2
    assert shaped.tolist()[0] == pytest.approx([1 - 0.1 * math.log(2), masked, 1 - 0.1 * math.log(10)])
    assert guidance_weight(0, 2e-3, 1e-5) == pytest.approx(2e-3)
    assert guidance_weight(100, 2e-3, 1e-5) == pytest.approx(1e-3)
    assert guidance_weight(200, 2e-3, 1e-5) == 0.0
    assert guidance_weight(300, 2e-3, 1e-5) == 0.0
    assert guidance_weight(300, 2e-3, 0.0) == pytest.approx(2e-3)


def _hand_gradient_tgpo(logits, response_ids, teacher_ids, valid, mask, old_log_probs, advantages, hp, weight):
    """d loss / d logits of Eq. 6 (token-mean, dual-clip PPO) + entropy bonus, written out by hand."""
    probs = torch.softmax(logits, -1)
    log_probs = torch.log(probs)
    vocab = logits.shape[-1]
    onehot_response = torch.nn.functional.one_hot(response_ids, vocab).to(logits.dtype)
    onehot_teacher = torch.nn.functional.one_hot(teacher_ids, vocab).to(logits.dtype)
    z = mask.sum()
    ratio = torch.exp(log_probs.gather(-1, response_ids.unsqueeze(-1)).squeeze(-1) - old_log_probs)
    eps_low, eps_high, clip_c = hp["clip_ratio_low"], hp["clip_ratio_high"], hp["clip_ratio_c"]
    clipped_away = ((advantages > 0) & (ratio > 1 + eps_high)) | ((advantages < 0) & (ratio < 1 - eps_low))
    dual_clipped = (advantages < 0) & (ratio > clip_c)
    active = (~clipped_away & ~dual_clipped).to(logits.dtype)
    # policy term: d(-A rho)/dz = -A rho (onehot(y) - p) where the unclipped branch is active
    policy = (-(advantages * ratio * active * mask) / z).unsqueeze(-1) * (onehot_response - probs)
    # guidance: d(-log p[y^T])/dz = p - onehot(y^T), scaled by w * valid / Z
    guidance = (weight * valid * mask / z).unsqueeze(-1) * (probs - onehot_teacher)
    # entropy bonus -c H: dH/dz = -p (log p + H)
    entropy = -(probs * log_probs).sum(-1, keepdim=True)
    entropy_grad = (hp["entropy_coef"] * mask / z).unsqueeze(-1) * probs * (log_probs + entropy)
    return policy + guidance + entropy_grad


def test_tgpo_gradient_equals_hand_derived_gradient():
    logits, response_ids, teacher_ids, mask, old_log_probs, advantages = random_batch(seed=4)
    old_log_probs = old_log_probs.clone()
    old_log_probs[0, 0] -= 1.0  # ratio e > 1.2: clipped for A > 0, dual-clip bound not reached
    old_log_probs[1, 1] += 1.0  # ratio 1/e < 0.8
    valid = torch.ones_like(mask)
    valid[2, :3] = 0
    method = get_method("tgpo_annealing")
    hparams = {"w_init": 0.3, "delta": 0.01, "entropy_coef": 0.05}
    step = 4
    leaf = logits.clone().requires_grad_(True)
    inputs = LossInputs(
        leaf, response_ids, mask, old_log_probs, advantages, teacher_token_ids=teacher_ids, teacher_valid_mask=valid
    )
    loss, metrics = compute_loss(method, inputs, hparams, step, total_tokens=float(mask.sum()), total_sequences=6)
    loss.backward()
    assert metrics["tgpo/guidance_weight"] == pytest.approx(0.26)
    hp = {**method.defaults, **hparams}
    expected = _hand_gradient_tgpo(logits, response_ids, teacher_ids, valid, mask, old_log_probs, advantages, hp, 0.26)
    torch.testing.assert_close(leaf.grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("signal", ["log_prob", "prob"])
def test_tgpo_r_shaping_has_no_gradient_path_through_the_teacher_log_prob(signal):
    logits, response_ids, teacher_ids, mask, old_log_probs, advantages = random_batch(seed=5)
    hparams = {"shaping_lambda": 0.5, "delta": 0.0, "shaping_signal": signal, "entropy_coef": 0.0}
    method = get_method("tgpo_r")
    leaf = logits.clone().requires_grad_(True)
    inputs = LossInputs(leaf, response_ids, mask, old_log_probs, advantages, teacher_token_ids=teacher_ids)
    loss, _ = compute_loss(method, inputs, hparams, 0, total_tokens=float(mask.sum()), total_sequences=6)
    loss.backward()
    # reference: plain clipped loss with the shaped advantages precomputed as constants
    teacher_log_probs = torch.log_softmax(logits, -1).gather(-1, teacher_ids.unsqueeze(-1)).squeeze(-1)
    constant_advantages = advantages + 0.5 * (teacher_log_probs.exp() if signal == "prob" else teacher_log_probs)
    plain = with_overrides(method, guidance="none", teacher_signal="none")
    ref_leaf = logits.clone().requires_grad_(True)
    ref_inputs = LossInputs(ref_leaf, response_ids, mask, old_log_probs, constant_advantages)
    ref_loss, _ = compute_loss(plain, ref_inputs, hparams, 0, total_tokens=float(mask.sum()), total_sequences=6)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(leaf.grad, ref_leaf.grad)
    # the same objective with a gradient path through log pi(y^T) differs: the test can fail
    path_leaf = logits.clone().requires_grad_(True)
    log_softmax = torch.log_softmax(path_leaf, -1)
    live = advantages + 0.5 * log_softmax.gather(-1, teacher_ids.unsqueeze(-1)).squeeze(-1)
    ratio = torch.exp(log_softmax.gather(-1, response_ids.unsqueeze(-1)).squeeze(-1) - old_log_probs)
    (-(live * ratio * mask).sum() / mask.sum()).backward()
    assert (path_leaf.grad - leaf.grad).abs().max() > 1e-4


def test_teacher_valid_mask_removes_guidance_at_invalid_positions():
    logits, response_ids, teacher_ids, mask, old_log_probs, advantages = random_batch(seed=6)
    method = get_method("tgpo")
    hparams = {"w_init": 1.0, "entropy_coef": 0.0}
    zero_valid = torch.zeros_like(mask)
    with_none, _ = compute_loss(
        method,
        LossInputs(
            logits,
            response_ids,
            mask,
            old_log_probs,
            advantages,
            teacher_token_ids=teacher_ids,
            teacher_valid_mask=zero_valid,
        ),
        hparams,
        0,
        total_tokens=float(mask.sum()),
        total_sequences=6,
    )
    grpo, _ = compute_loss(
        get_method("grpo_pp"),
        LossInputs(logits, response_ids, mask, old_log_probs, advantages),
        hparams,
        0,
        total_tokens=float(mask.sum()),
        total_sequences=6,
    )
    torch.testing.assert_close(with_none, grpo)
    # out-of-vocabulary ids at invalid positions are accepted (they are never gathered)
    bad_ids = teacher_ids.clone()
    bad_ids[0, 0] = 10_000
    valid = torch.ones_like(mask)
    valid[0, 0] = 0
    _, metrics = compute_loss(
        method,
        LossInputs(
            logits, response_ids, mask, old_log_probs, advantages, teacher_token_ids=bad_ids, teacher_valid_mask=valid
        ),
        hparams,
        0,
        total_tokens=float(mask.sum()),
        total_sequences=6,
    )
    assert metrics["tgpo/teacher_oov_frac"] == pytest.approx(1 / float(mask.sum()))


# ----------------------------------------------------------------------------- reverse KL family
def test_kl_estimators_hand_computed_and_sign():
    log_probs, ref = torch.tensor([-1.0]), torch.tensor([-2.0])
    assert kl_estimate(log_probs, ref, "k1").item() == pytest.approx(1.0)
    assert kl_estimate(log_probs, ref, "k2").item() == pytest.approx(0.5)
    assert kl_estimate(log_probs, ref, "k3").item() == pytest.approx(math.exp(-1) + 1 - 1)
    with pytest.raises(ValueError, match="estimator"):
        kl_estimate(log_probs, ref, "k4")
    # minimising KDRL's k2 / k3 term moves the student's log-prob towards the teacher's
    for estimator in ("k2", "k3"):
        for start in (-1.0, -3.0):
            student = torch.tensor([start], requires_grad=True)
            rkl_regulariser_per_token(student, ref, estimator).sum().backward()
            assert (student.grad.item() > 0) == (start > ref.item()), estimator


def test_kdrl_loss_adds_beta_times_rkl_and_masks_correct_responses():
    logits, response_ids, _, mask, old_log_probs, advantages = random_batch(seed=7)
    teacher_log_probs = old_log_probs - 1.0
    scores = torch.tensor([1.0, 0, 0, 1, 0, 1])
    totals = dict(total_tokens=float(mask.sum()), total_sequences=6)
    base = LossInputs(
        logits,
        response_ids,
        mask,
        old_log_probs,
        advantages,
        teacher_log_probs=teacher_log_probs,
        sequence_scores=scores,
    )
    grpo, _ = compute_loss(get_method("grpo_pp"), base, {}, 0, **totals)
    kdrl, metrics = compute_loss(get_method("kdrl"), base, {"rkl_coef": 0.5}, 0, **totals)
    log_probs = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    k2 = 0.5 * (log_probs - teacher_log_probs) ** 2
    expected_rkl = (k2 * mask).sum() / mask.sum()
    assert metrics["tgpo/rkl_loss"] == pytest.approx(float(expected_rkl))
    torch.testing.assert_close(kdrl, grpo + 0.5 * expected_rkl)
    _, masked = compute_loss(get_method("kdrl"), base, {"reward_mask_correct": True}, 0, **totals)
    keep = (scores <= 0).to(DOUBLE).unsqueeze(-1)
    assert masked["tgpo/rkl_loss"] == pytest.approx(float((k2 * mask * keep).sum() / mask.sum()))


def test_op_distill_and_rkl_only_advantages_hand_computed():
    student = torch.tensor([[-1.0, -2.0, -0.5], [-0.1, -0.2, -9.0]])
    teacher = torch.tensor([[-2.0, -2.0, -0.5], [-1.1, -0.2, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    assert rkl_token_advantages(student, teacher, mask).tolist() == [[-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]
    assert sequence_rkl_reward(student, teacher, mask).tolist() == pytest.approx([-1.0, -1.0])
    op = compute_advantages(
        get_method("op_distill"),
        {},
        torch.zeros(2),
        torch.tensor([0, 0]),
        mask,
        old_log_probs=student,
        teacher_log_probs=teacher,
    )
    assert op.tolist() == [[-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]
    teacher2 = teacher.clone()
    teacher2[1, 0] = -0.1  # second response now has reward 0 > -1
    rkl = compute_advantages(
        get_method("rkl_only"),
        {},
        torch.tensor([1.0, 0.0]),
        torch.tensor([0, 0]),
        mask,
        old_log_probs=student,
        teacher_log_probs=teacher2,
    )
    # rewards -1, 0 are the advantages themselves (no group z-score), verifier scores ignored
    torch.testing.assert_close(rkl, torch.tensor([[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0]]))


def test_rkl_only_keeps_an_unbounded_penalty_unbounded():
    """App. A, Eq. 10-12: one rejected sample (rho = 500 per token) in a group of consensus samples keeps its
    whole penalty -sum_t log rho_t as advantage; a GRPO z-score would bound it to about -(G-1)/sqrt(G) = -2.47."""
    group, length = 8, 4
    student = torch.full((group, length), -0.5)
    teacher = student.clone()
    teacher[0] = student[0] - math.log(500.0)  # the teacher gives the first sample's tokens 500x less mass
    mask = torch.ones(group, length)
    advantages = compute_advantages(
        get_method("rkl_only"),
        {},
        torch.zeros(group),
        torch.zeros(group, dtype=torch.long),
        mask,
        old_log_probs=student,
        teacher_log_probs=teacher,
    )
    assert advantages[0].tolist() == pytest.approx([-length * math.log(500.0)] * length, rel=1e-6)
    assert advantages[1:].abs().max().item() == 0.0
    assert advantages[0, 0].item() < -20  # a z-scored reward would give -2.47 here


# ----------------------------------------------------------------------------- LUFFY, PRIME, SFT, KL-to-ref
def test_luffy_shaping_and_mixed_loss():
    log_probs = torch.log(torch.tensor([[0.5, 0.1]])).requires_grad_(True)
    assert off_policy_shaping(log_probs, 0.1).tolist()[0] == pytest.approx([0.5 / 0.6, 0.5])
    advantages = torch.tensor([[2.0, 2.0]])
    off_policy_loss_per_token(log_probs, advantages, 0.1).sum().backward()
    # d(-A p/(p+g))/dlog p = -A g p / (p+g)^2
    assert log_probs.grad.tolist()[0] == pytest.approx([-2 * 0.1 * 0.5 / 0.36, -2 * 0.1 * 0.1 / 0.04])
    logits, response_ids, _, mask, old_log_probs, advantages = random_batch(seed=8)
    off_rows = torch.tensor([1.0, 0, 0, 0, 1, 0])
    method = get_method("luffy")
    hparams = {"loss_scale_factor": 7, "entropy_coef": 0.0}
    loss, _ = compute_loss(
        method,
        LossInputs(logits, response_ids, mask, old_log_probs, advantages, off_policy_mask=off_rows),
        hparams,
        0,
        total_tokens=float(mask.sum()),
        total_sequences=6,
    )
    log_p = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    on, _ = clipped_policy_loss(log_p, old_log_probs, advantages, 0.2, 0.2)
    off = -advantages * log_p.exp() / (log_p.exp() + 0.1)
    per_token = torch.where(off_rows.bool().unsqueeze(-1), off, on)
    torch.testing.assert_close(loss, (per_token * mask).sum() / 6 / 7)


def test_prime_terms_hand_computed():
    rm, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    mask = torch.tensor([[1.0, 1.0]])
    assert implicit_process_rewards(rm, ref, 0.05, mask).tolist()[0] == pytest.approx([0.025, -0.05])
    rm_leaf = rm.clone().requires_grad_(True)
    loss = reward_model_loss(rm_leaf, ref, mask, torch.tensor([1.0]), 0.05)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(0.025))))
    loss.backward()
    assert rm_leaf.grad[0, 0].item() < 0  # a correct response pushes log pi_phi up
    # outcome-only PRIME (no process reward): RLOO at the last token, return-to-go, batch whitening
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 1, 1])
    full = torch.ones(4, 3)
    full[1, 2] = 0
    adv = prime_advantages(scores, torch.zeros(4, 3), groups, full, 5.0, 5.0)
    returns = 5.0 * torch.tensor([[1.0, 1, 1], [-1, -1, 0], [0, 0, 0], [0, 0, 0]])
    mean = returns.sum() / 11
    variance = (((returns - mean) * full) ** 2).sum() / 10
    torch.testing.assert_close(adv, (returns - mean) / torch.sqrt(variance + 1e-8) * full)
    via_objective = compute_advantages(
        get_method("prime_zero"), {}, scores, groups, full, implicit_rewards=torch.zeros(4, 3)
    )
    torch.testing.assert_close(via_objective, adv)


def test_sft_is_token_mean_nll_and_simplerl_adds_k3_kl():
    logits, response_ids, _, mask, old_log_probs, advantages = random_batch(seed=9)
    log_p = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)
    totals = dict(total_tokens=float(mask.sum()), total_sequences=6)
    sft, _ = compute_loss(
        get_method("sft"), LossInputs(logits, response_ids, mask, old_log_probs, advantages), {}, 0, **totals
    )
    torch.testing.assert_close(sft, -(log_p * mask).sum() / mask.sum())
    ref = log_p - 0.3
    base = LossInputs(logits, response_ids, mask, old_log_probs, advantages, ref_log_probs=ref)
    simplerl, metrics = compute_loss(get_method("simplerl_zero"), base, {}, 0, **totals)
    grpo, _ = compute_loss(get_method("grpo_pp"), base, {}, 0, **totals)
    k3 = math.exp(-0.3) + 0.3 - 1
    assert metrics["actor/kl_loss"] == pytest.approx(k3)
    torch.testing.assert_close(simplerl, grpo + 1e-4 * torch.tensor(k3, dtype=DOUBLE))
    with pytest.raises(ValueError, match="ref_log_probs"):
        compute_loss(
            get_method("simplerl_zero"),
            LossInputs(logits, response_ids, mask, old_log_probs, advantages),
            {},
            0,
            **totals,
        )


def test_entropy_bonus_lowers_the_loss_by_coef_times_mean_entropy():
    logits, response_ids, _, mask, old_log_probs, advantages = random_batch(seed=10)
    totals = dict(total_tokens=float(mask.sum()), total_sequences=6)
    inputs = LossInputs(logits, response_ids, mask, old_log_probs, advantages)
    with_bonus, metrics = compute_loss(get_method("grpo_pp"), inputs, {"entropy_coef": 0.1}, 0, **totals)
    without, _ = compute_loss(get_method("grpo_pp"), inputs, {"entropy_coef": 0.0}, 0, **totals)
    torch.testing.assert_close(with_bonus, without - 0.1 * torch.tensor(metrics["actor/entropy"], dtype=DOUBLE))
