"""RKL-only and LUFFY on verl 0.9.1 (CPU): the plugin's advantage hook, agent loop and actor loss equal the
objective library (tgpo.objectives.compose.compute_advantages / compute_loss), and the translated overrides validate."""

from __future__ import annotations

import asyncio
import os
import types
from functools import partial
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("verl")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import tgpo.verl.register as plugin  # noqa: E402
from tgpo.methods import get_method  # noqa: E402
from tgpo.objectives.compose import LossInputs, compute_advantages, compute_loss  # noqa: E402
from tgpo.verl import luffy, rkl_trainer  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
GROUPS, GROUP_SIZE, VOCAB = 2, 4, 13


def nested(rows):
    return torch.nested.as_nested_tensor(rows, layout=torch.jagged)


def verl_config(overrides: list[str]):
    import verl

    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def test_registrations_are_active_and_idempotent():
    plugin.assert_registered()
    plugin.register_all()
    plugin.assert_registered()
    assert rkl_trainer.registration_problems() == [] and luffy.registration_problems() == []


# ------------------------------------------------------------------ RKL-only
class FakeTransferQueue:
    """kv_batch_get / kv_batch_put over an in-memory TensorDict (the trainer hook's only I/O)."""

    def __init__(self, fields):
        self.fields = fields
        self.written = {}

    def kv_batch_get(self, keys, partition_id, select_fields):
        from verl.utils import tensordict_utils as tu

        return tu.get_tensordict({name: self.fields[name] for name in select_fields})

    def kv_batch_put(self, keys, partition_id, fields):
        self.written.update({name: fields[name] for name in fields.keys()})
        return types.SimpleNamespace(keys=keys, partition_id=partition_id)


def rkl_batch(generator):
    """Rows as verl stores them: nested responses, teacher_logprobs over prompt+response (shifted by one)."""
    n = GROUPS * GROUP_SIZE
    prompt_lens = torch.randint(2, 5, (n,), generator=generator).tolist()
    response_lens = torch.randint(1, 7, (n,), generator=generator).tolist()
    old = [torch.randn(r, generator=generator) - 1.0 for r in response_lens]
    teacher_sequence = [
        torch.randn(p + r, 1, generator=generator) * 2 - 3.0 for p, r in zip(prompt_lens, response_lens)
    ]
    # the teacher log-prob of response token t sits at sequence row p + t - 1 (vLLM prompt_logprobs layout)
    teacher = [seq[p - 1 : p - 1 + r, 0] for seq, p, r in zip(teacher_sequence, prompt_lens, response_lens)]
    scores = [torch.zeros(r) for r in response_lens]
    for row in scores:
        row[-1] = float(torch.randint(0, 2, (1,), generator=generator))
    fields = {
        "uid": [f"prompt{i // GROUP_SIZE}" for i in range(n)],
        "response_mask": nested([torch.ones(r, dtype=torch.int64) for r in response_lens]),
        "rm_scores": nested(scores),
        "old_log_probs": nested(old),
        "teacher_logprobs": nested(teacher_sequence),
    }
    return fields, old, teacher, scores, response_lens


def padded(rows, width):
    return torch.stack([torch.nn.functional.pad(row, (0, width - row.shape[0])) for row in rows])


def run_rkl_hook(monkeypatch, fields):
    import transfer_queue

    fake = FakeTransferQueue(fields)
    monkeypatch.setattr(transfer_queue, "kv_batch_get", fake.kv_batch_get)
    monkeypatch.setattr(transfer_queue, "kv_batch_put", fake.kv_batch_put)
    trainer = rkl_trainer.RKLRewardTrainerSync.__new__(rkl_trainer.RKLRewardTrainerSync)
    trainer.method = get_method("rkl_only")
    keys = [f"{uid}_{i}_0" for i, uid in enumerate(fields["uid"])]
    metrics = {}
    trainer._compute_advantage(_Batch(keys), metrics)
    return fake.written, metrics


class _Batch:
    def __init__(self, keys):
        self.keys, self.partition_id = keys, "train"

    def __len__(self):
        return len(self.keys)


def test_rkl_hook_advantages_equal_compute_advantages(monkeypatch):
    fields, old, teacher, scores, response_lens = rkl_batch(torch.Generator().manual_seed(0))
    written, metrics = run_rkl_hook(monkeypatch, fields)
    width = max(response_lens)
    mask = padded([torch.ones(r) for r in response_lens], width)
    group_index = torch.arange(GROUPS * GROUP_SIZE) // GROUP_SIZE
    expected = compute_advantages(
        get_method("rkl_only"),
        {},
        padded(scores, width).sum(-1),
        group_index,
        mask,
        old_log_probs=padded(old, width),
        teacher_log_probs=padded(teacher, width),
    )
    advantages = written["advantages"].to_padded_tensor(0.0)
    assert expected.abs().max() > 0.1, "the fixture must give non-trivial advantages"
    assert torch.allclose(advantages, expected, atol=1e-6), (advantages - expected).abs().max()
    assert torch.allclose(written["returns"].to_padded_tensor(0.0), expected, atol=1e-6)
    rewards = written["token_level_rewards"].to_padded_tensor(0.0).sum(-1)
    expected_rewards = -((padded(old, width) - padded(teacher, width)) * mask).sum(-1)
    assert torch.allclose(rewards, expected_rewards, atol=1e-5)
    assert metrics["tgpo/rkl_reward/mean"] == pytest.approx(float(expected_rewards.mean()), abs=1e-5)
    # the unnormalised reward is the advantage of every token (App. A, Eq. 9): no group z-score on verl either
    assert torch.allclose(advantages, expected_rewards.unsqueeze(-1) * mask, atol=1e-5)
    assert "rm_scores" not in written  # the verifier score stays as stored: verl logs it as critic/score/mean


def test_rkl_hook_ignores_the_verifier_score(monkeypatch):
    fields, *_ = rkl_batch(torch.Generator().manual_seed(1))
    first, _ = run_rkl_hook(monkeypatch, fields)
    flipped = dict(fields, rm_scores=nested([1.0 - row for row in fields["rm_scores"].unbind()]))
    second, _ = run_rkl_hook(monkeypatch, flipped)
    assert torch.equal(first["advantages"].to_padded_tensor(0.0), second["advantages"].to_padded_tensor(0.0))


def experiment_overrides(method: str, experiment: str):
    from tgpo.config import load_config
    from tgpo.verl.translate import experiment_overrides as translate

    config = load_config(ROOT / "config" / "paper-7b.yaml")
    candidates = [name for name, entry in config["experiments"].items() if entry.get("method") == method]
    assert candidates, f"paper-7b.yaml has no {method} experiment"
    return translate(config, candidates[0], seed=0)


def compose_and_validate(overrides):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    cfg = verl_config(overrides)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    distillation = omega_conf_to_dataclass(cfg.distillation) if cfg.distillation.enabled else None
    return cfg, actor, distillation


def test_rkl_only_overrides_validate_and_select_the_plugin():
    cfg, _, distillation = compose_and_validate(experiment_overrides("rkl_only", "rkl"))
    assert cfg.trainer.v1.trainer_mode == rkl_trainer.TRAINER_NAME
    loss = distillation.distillation_loss
    assert loss.loss_mode == rkl_trainer.RKL_LOSS_MODE and loss.loss_settings.use_estimator  # sampled-token log-probs
    assert loss.use_task_rewards and not loss.use_policy_gradient  # ppo_loss runs, on our advantages
    rkl_trainer.check_algorithm_config(cfg.algorithm, get_method("rkl_only"))


@pytest.mark.parametrize("coef", [0.0, 1.0])  # the spec's coefficient 0, and the loss mode alone
def test_rkl_reward_loss_mode_adds_nothing_to_ppo_loss(coef):
    from verl.trainer.distillation.losses import distillation_ppo_loss
    from verl.utils import tensordict_utils as tu
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.utils.losses import ppo_loss

    cfg = verl_config(
        experiment_overrides("rkl_only", "rkl") + [f"distillation.distillation_loss.distillation_loss_coef={coef}"]
    )
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    distillation = omega_conf_to_dataclass(cfg.distillation)
    generator = torch.Generator().manual_seed(2)
    prompt_lens, response_lens = [2, 3], [4, 2]
    seq = [p + r for p, r in zip(prompt_lens, response_lens)]
    log_probs = (torch.randn(sum(seq), generator=generator) - 1).requires_grad_(True)
    data = tu.get_tensordict(
        {
            "prompts": nested([torch.zeros(p, dtype=torch.int64) for p in prompt_lens]),
            "responses": nested([torch.zeros(r, dtype=torch.int64) for r in response_lens]),
            "response_mask": nested([torch.ones(r, dtype=torch.int64) for r in response_lens]),
            "old_log_probs": nested([torch.randn(r, generator=generator) - 1 for r in response_lens]),
            "advantages": nested([torch.full((r,), float(a)) for r, a in zip(response_lens, [0.7, -0.7])]),
            "teacher_logprobs": nested([torch.randn(n, 1, generator=generator) for n in seq]),
        },
        {"dp_size": 1, "batch_num_tokens": sum(response_lens), "global_batch_size": 2},
    )
    packed = {"log_probs": nested(list(log_probs.split(seq)))}
    loss, metrics = distillation_ppo_loss(actor, distillation, model_output=packed, data=data)
    reference, _ = ppo_loss(actor, packed, data)
    (grad,) = torch.autograd.grad(loss, log_probs)
    (reference_grad,) = torch.autograd.grad(reference, log_probs)
    assert torch.allclose(loss, reference) and torch.allclose(grad, reference_grad)
    assert grad.abs().sum() > 0 and "tgpo/rkl_k1" in metrics


# ------------------------------------------------------------------ LUFFY agent loop
def test_trace_sample_is_the_tokenized_trace_with_the_mask_set(tmp_path):
    from conftest import build_char_tokenizer

    tokenizer = build_char_tokenizer(tmp_path)
    extra_info = {"target": [{"role": "assistant", "content": "12+30=42"}], "index": 3}
    trace_ids = luffy.trace_token_ids(tokenizer, luffy.trace_text(extra_info), max_response_length=64)
    assert trace_ids == tokenizer.encode("12+30=42", add_special_tokens=False) + [tokenizer.eos_token_id]
    assert luffy.trace_token_ids(tokenizer, "12+30=42", max_response_length=4) == trace_ids[:4]

    off = luffy.trace_output([5, 6, 7], trace_ids, weights_version=4, mm_processor_kwargs={}).as_dict()
    assert off["responses"].tolist() == trace_ids and off["prompts"].tolist() == [5, 6, 7]
    assert off["off_policy_mask"].tolist() == [1] * len(trace_ids) and off["response_mask"].tolist() == [1] * len(
        trace_ids
    )
    assert off["extra_fields"]["max_global_steps"] == 4

    from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

    generated = AgentLoopOutput(
        prompt_ids=[5, 6, 7],
        response_ids=[8, 9],
        response_mask=[1, 1],
        response_logprobs=None,
        routed_experts=None,
        multi_modal_data={},
        mm_processor_kwargs={},
        mm_processor_output=None,
        num_turns=2,
        metrics={},
        extra_fields={"turn_scores": [], "tool_rewards": []},
    )
    on = luffy.with_off_policy_mask(generated, off_policy=False).as_dict()
    assert on["off_policy_mask"].tolist() == [0, 0] and on["responses"].tolist() == [8, 9]
    assert set(on) == set(off), "every sample of a batch must carry the same fields (TransferQueue)"
    with pytest.raises(ValueError, match="target"):
        luffy.trace_text({"index": 3})


def test_agent_loop_replays_the_trace_for_the_first_sessions(tmp_path, monkeypatch):
    from conftest import build_char_tokenizer
    from verl.experimental.agent_loop.agent_loop import AgentLoopOutput
    from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

    tokenizer = build_char_tokenizer(tmp_path)
    loop = luffy.LuffyAgentLoop.__new__(luffy.LuffyAgentLoop)  # no servers: the trace path needs none
    loop.tokenizer, loop.response_length, loop.off_policy_per_group, loop.mm_processor_kwargs = tokenizer, 32, 1, {}
    loop.processor = None

    async def prompt_tokens(messages, **_):
        return tokenizer.encode(messages[-1]["content"], add_special_tokens=False)

    async def generate(self, sampling_params, **kwargs):
        return AgentLoopOutput(prompt_ids=[2], response_ids=[3, 4, 1], response_mask=[1, 1, 1], num_turns=2, metrics={})

    loop.ct_build_initial_tokens = prompt_tokens
    monkeypatch.setattr(SingleTurnAgentLoop, "run", generate)
    row = {
        "raw_prompt": [{"role": "user", "content": "1+2="}],
        "global_steps": 7,
        "extra_info": {"target": [{"role": "assistant", "content": "#3."}]},
    }
    outputs = [asyncio.run(loop.run({}, session_id=session, **row)).as_dict() for session in range(3)]
    assert outputs[0]["responses"].tolist() == tokenizer.encode("#3.", add_special_tokens=False) + [
        tokenizer.eos_token_id
    ]
    assert outputs[0]["prompts"].tolist() == tokenizer.encode("1+2=", add_special_tokens=False)
    assert outputs[0]["off_policy_mask"].tolist() == [1] * 4
    assert [o["responses"].tolist() for o in outputs[1:]] == [[3, 4, 1]] * 2
    assert [o["off_policy_mask"].tolist() for o in outputs[1:]] == [[0, 0, 0]] * 2


# ------------------------------------------------------------------ LUFFY actor loss
PROMPT_LENS, RESPONSE_LENS, OFF_POLICY = [2, 3, 2, 1], [4, 2, 5, 3], [1, 0, 0, 0]


def luffy_actor_config(loss_scale_factor=7, entropy_coeff=0.01):
    from verl.utils.config import omega_conf_to_dataclass

    overrides = [
        o
        for o in experiment_overrides("luffy", "luffy")
        if not o.startswith(("actor_rollout_ref.actor.loss_scale_factor", "actor_rollout_ref.actor.entropy_coeff"))
    ]
    cfg = verl_config(
        overrides
        + [
            f"actor_rollout_ref.actor.loss_scale_factor={loss_scale_factor}",
            f"actor_rollout_ref.actor.entropy_coeff={entropy_coeff}",
        ]
    )
    return omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


def luffy_micro_batch(generator):
    from verl.utils import tensordict_utils as tu

    seq = [p + r for p, r in zip(PROMPT_LENS, RESPONSE_LENS)]
    input_ids = [torch.randint(0, VOCAB, (n,), generator=generator) for n in seq]
    logits = torch.randn(sum(seq), VOCAB, generator=generator, dtype=torch.float64).requires_grad_(True)
    old = [torch.randn(r, generator=generator, dtype=torch.float64) * 0.5 - 2.5 for r in RESPONSE_LENS]
    adv = [torch.full((r,), a, dtype=torch.float64) for r, a in zip(RESPONSE_LENS, [0.9, -0.6, 0.4, -0.7])]
    data = tu.get_tensordict(
        {
            "prompts": nested([ids[:p] for ids, p in zip(input_ids, PROMPT_LENS)]),
            "responses": nested([ids[p:] for ids, p in zip(input_ids, PROMPT_LENS)]),
            "response_mask": nested([torch.ones(r, dtype=torch.int64) for r in RESPONSE_LENS]),
            "old_log_probs": nested(old),
            "advantages": nested(adv),
            "off_policy_mask": nested(
                [torch.full((r,), o, dtype=torch.int64) for r, o in zip(RESPONSE_LENS, OFF_POLICY)]
            ),
        },
        {"dp_size": 1, "batch_num_tokens": sum(RESPONSE_LENS), "global_batch_size": len(seq)},
    )
    return logits, data, input_ids, old, adv


def rows_predicting_responses(packed):
    rows, start = [], 0
    for p, r in zip(PROMPT_LENS, RESPONSE_LENS):
        rows.append(packed[start + p - 1 : start + p - 1 + r])
        start += p + r
    return rows


def luffy_through_verl(config, logits, data, input_ids, off_policy_mask=None, remove_clip=True):
    from verl.utils import torch_functional as verl_F

    # what the engine hands the loss: packed log-probs of the next token and entropies (model_output)
    targets = torch.cat([torch.roll(ids, -1) for ids in input_ids])
    log_probs = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    model_output = {"log_probs": log_probs, "entropy": verl_F.entropy_from_logits(logits)}
    if off_policy_mask is not None:
        data["off_policy_mask"] = off_policy_mask
    loss_fn = partial(luffy.luffy_policy_loss, config=config, gamma=0.1, remove_clip=remove_clip)  # as LuffyTrainerSync
    loss, metrics = loss_fn(model_output=model_output, data=data, dp_group=None)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss, grad, metrics


def luffy_through_objective(logits, input_ids, old, adv, loss_scale_factor=7, entropy_coef=0.01, clip=None):
    logits = logits.detach().requires_grad_(True)
    width = max(RESPONSE_LENS)

    def pad(rows):
        return torch.stack([torch.nn.functional.pad(x, (0, 0) * (x.dim() - 1) + (0, width - x.shape[0])) for x in rows])

    inputs = LossInputs(
        logits=pad(rows_predicting_responses(logits)),
        response_ids=pad([ids[p:] for ids, p in zip(input_ids, PROMPT_LENS)]),
        response_mask=pad([torch.ones(r, dtype=torch.float64) for r in RESPONSE_LENS]),
        old_log_probs=pad(old),
        advantages=pad(adv),
        off_policy_mask=torch.tensor(OFF_POLICY),
    )
    hparams = {"luffy_gamma": 0.1, "loss_scale_factor": loss_scale_factor, "entropy_coef": entropy_coef}
    if clip is not None:  # (low, high, c); None = the recipe's defaults (no clip)
        hparams.update(zip(("clip_ratio_low", "clip_ratio_high", "clip_ratio_c"), clip))
    loss, metrics = compute_loss(
        get_method("luffy"),
        inputs,
        hparams,
        0,
        total_tokens=float(sum(RESPONSE_LENS)),
        total_sequences=len(RESPONSE_LENS),
    )
    (grad,) = torch.autograd.grad(loss, logits)
    return loss, grad, metrics


@pytest.mark.parametrize("remove_clip", [True, False])  # the recipe (loss_remove_clip=True), and with verl's clip
def test_luffy_loss_and_gradient_equal_compute_loss(remove_clip):
    config = luffy_actor_config()
    assert config.loss_agg_mode == "seq-mean-token-sum-norm"
    logits, data, input_ids, old, adv = luffy_micro_batch(torch.Generator().manual_seed(3))
    loss, grad, metrics = luffy_through_verl(config, logits, data, input_ids, remove_clip=remove_clip)
    clip = None if remove_clip else (config.clip_ratio_low, config.clip_ratio_high, config.clip_ratio_c)
    ref_loss, ref_grad, ref_metrics = luffy_through_objective(logits, input_ids, old, adv, clip=clip)
    clipped, _, _ = luffy_through_objective(logits, input_ids, old, adv, clip=(0.2, 0.2, 3.0))
    assert not torch.allclose(clipped, luffy_through_objective(logits, input_ids, old, adv)[0]), (
        "the fixture must exercise clipping on the on-policy rows"
    )
    assert (ref_metrics["actor/pg_clipfrac"] == 0) == remove_clip
    assert torch.allclose(loss, ref_loss, atol=1e-10), (loss, ref_loss)
    assert torch.allclose(grad, ref_grad, atol=1e-10), (grad - ref_grad).abs().max()
    assert metrics["tgpo/off_policy_frac"].values == [pytest.approx(0.25)]


def test_luffy_loss_depends_on_the_off_policy_mask():
    config = luffy_actor_config()
    logits, data, input_ids, *_ = luffy_micro_batch(torch.Generator().manual_seed(3))
    loss, grad, _ = luffy_through_verl(config, logits, data.clone(), input_ids)
    all_on = nested([torch.zeros(r, dtype=torch.int64) for r in RESPONSE_LENS])
    loss_on, grad_on, _ = luffy_through_verl(config, logits, data.clone(), input_ids, off_policy_mask=all_on)
    assert not torch.allclose(grad, grad_on)
    mixed = nested([torch.tensor([1, 0, 1, 1]), *[torch.zeros(r, dtype=torch.int64) for r in RESPONSE_LENS[1:]]])
    with pytest.raises(ValueError, match="mixes 0 and 1"):
        luffy_through_verl(config, logits, data.clone(), input_ids, off_policy_mask=mixed)


def test_luffy_overrides_validate_and_select_the_plugin():
    overrides = experiment_overrides("luffy", "luffy")
    cfg, actor, distillation = compose_and_validate(overrides)
    assert cfg.trainer.v1.trainer_mode == luffy.TRAINER_NAME and distillation is None
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == luffy.AGENT_NAME
    assert cfg.actor_rollout_ref.rollout.calculate_log_probs is False
    assert luffy.luffy_settings(cfg) == {"gamma": pytest.approx(0.1), "off_policy_per_group": 1, "remove_clip": True}
    assert actor.loss_scale_factor == 8192 and actor.loss_agg_mode == "seq-mean-token-sum-norm"
    rkl_trainer.check_algorithm_config(cfg.algorithm, get_method("luffy"))
    with pytest.raises(KeyError, match="luffy"):
        luffy.luffy_settings({})


def test_plugin_trainers_run_verl_sync_semantics():
    from verl.trainer.ppo.v1.replay_buffer import ReplayBufferAsync

    cfg = verl_config(experiment_overrides("luffy", "luffy"))
    trainer = luffy.LuffyTrainerSync(cfg)  # constructs only the replay buffer and config checks
    assert trainer.trainer_mode == "sync" and not isinstance(trainer.replay_buffer, ReplayBufferAsync)


def test_tgpo_trainer_runs_verl_sync_semantics():
    from verl.trainer.ppo.v1.replay_buffer import ReplayBufferAsync

    from tgpo.verl.trainer import TGPOTrainerSync

    cfg = verl_config(experiment_overrides("tgpo_annealing", "tgpo_annealing"))
    trainer = TGPOTrainerSync(cfg)
    assert trainer.trainer_mode == "sync" and not isinstance(trainer.replay_buffer, ReplayBufferAsync)
