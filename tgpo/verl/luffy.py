"""LUFFY (Yan et al. 2025) on verl 0.9.1: one teacher trace per group, off-policy shaping f(p) = p / (p + gamma).

Each prompt's group of K samples mixes `off_policy_per_group` teacher traces (taken whole from the row's
`extra_info.target`, LUFFY's prefix ratio 1.0) with K - off_policy_per_group student rollouts. The
per-token loss is (tgpo.objectives.off_policy, tgpo.objectives.policy_loss)

    on-policy rows:   -A rho with LUFFY's loss_remove_clip (luffy.remove_clip=true, the recipe), else the
                      clipped surrogate of Eq. 4, max(-A rho, -A clip(rho, 1-eps, 1+eps)) with verl's dual clip
    off-policy rows:  -A * f(pi_theta(y_t)),  f(p) = p / (p + gamma)   (no ratio, no clipping)

aggregated with the actor's loss_agg_mode (seq-mean-token-sum-norm over a constant, LUFFY's
loss_remove_token_mean), minus entropy_coeff * entropy; advantages come from
tgpo.objectives.compose.compute_advantages over the whole mixed group (Dr.GRPO, mean-only). Three pieces:

1. `LuffyAgentLoop` ("luffy_agent"): for sessions `session_id < off_policy_per_group` it returns the
   tokenized trace instead of generating; every sample carries a per-token `off_policy_mask`. The trace is
   the configured teacher's verified trace of the curated set (`python -m tgpo teacher-traces`), and a
   leading `<think>` is dropped when the student's prompt already ends with one.
2. `luffy_policy_loss`: the actor loss above, reading `off_policy_mask` from the micro-batch; installed on
   the actor workers with `set_loss_fn` by the trainer.
3. `LuffyTrainerSync` ("luffy_sync"): installs the loss after the workers exist, and computes the
   advantages with tgpo.objectives.compose.compute_advantages (tgpo.verl.rkl_trainer.MethodAdvantageTrainer).

Hyper-parameters come from the root config group `luffy` (`+luffy.gamma`, `+luffy.off_policy_per_group`,
`+luffy.remove_clip`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
from tensordict import TensorDict
from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput, _agent_loop_registry
from verl.experimental.agent_loop.agent_loop import register as register_agent_loop
from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop
from verl.trainer.ppo.core_algos import agg_loss
from verl.utils.metric import AggregationType, Metric
from verl.workers.utils.padding import no_padding_2_padding

from tgpo.objectives.off_policy import mix_on_off_policy, off_policy_loss_per_token
from tgpo.objectives.policy_loss import clipped_policy_loss
from tgpo.verl.rkl_trainer import MethodAdvantageTrainer, register_trainer_cls

AGENT_NAME = "luffy_agent"
TRAINER_NAME = "luffy_sync"
OFF_POLICY_MASK_KEY = "off_policy_mask"
CONFIG_GROUP = "luffy"


# ------------------------------------------------------------------ config
def luffy_settings(config: Mapping[str, Any] | None) -> dict[str, float | int | bool]:
    """{"gamma", "off_policy_per_group", "remove_clip"} from the root config group `luffy` (+luffy.gamma=...)."""
    group = dict((config or {}).get(CONFIG_GROUP) or {})
    missing = [key for key in ("gamma", "off_policy_per_group", "remove_clip") if group.get(key) is None]
    if missing:
        raise KeyError(
            f"tgpo verl plugin (LUFFY): config group '{CONFIG_GROUP}' lacks {missing}; pass "
            f"+{CONFIG_GROUP}.gamma=0.1 +{CONFIG_GROUP}.off_policy_per_group=1 +{CONFIG_GROUP}.remove_clip=true"
        )
    gamma, per_group, remove_clip = float(group["gamma"]), int(group["off_policy_per_group"]), group["remove_clip"]
    if gamma <= 0 or per_group < 0 or not isinstance(remove_clip, bool):
        raise ValueError(
            f"tgpo verl plugin (LUFFY): expected {CONFIG_GROUP}.gamma > 0, off_policy_per_group >= 0 "
            f"and remove_clip true|false, got {gamma}, {per_group} and {remove_clip!r}"
        )
    return {"gamma": gamma, "off_policy_per_group": per_group, "remove_clip": remove_clip}


# ------------------------------------------------------------------ agent loop
def trace_text(extra_info: Mapping[str, Any] | None) -> str:
    """The teacher trace of a row: `extra_info.target` (LUFFY's assistant message list, or a string)."""
    target = (extra_info or {}).get("target")
    if hasattr(target, "tolist"):
        target = target.tolist()
    if isinstance(target, (list, tuple)):
        contents = [m.get("content") for m in target if isinstance(m, Mapping) and m.get("role") == "assistant"]
        target = contents[-1] if contents else None
    if not isinstance(target, str) or not target:
        raise ValueError(
            "tgpo verl plugin (LUFFY): the row's extra_info has no 'target' trace (expected "
            "[{'role': 'assistant', 'content': ...}] as in the curated set `python -m tgpo teacher-traces` "
            "writes)"
        )
    return target


def continuation_of(prompt_text: str, trace: str) -> str:
    """The trace as the continuation of the prompt: without its opening `<think>` when the prompt (the
    student's template, tgpo.models.chat_template.think_chat_template) already ends with one, so the sequence holds
    exactly one; unchanged otherwise."""
    from tgpo.models.chat_template import THINK_OPEN
    from tgpo.verl.teacher_traces import trace_text

    return trace_text(trace) if prompt_text.rstrip().endswith(THINK_OPEN) else trace


def trace_token_ids(tokenizer, text: str, max_response_length: int) -> list[int]:
    """The trace as response token ids: tokens of `text` then EOS (as a finished rollout), truncated."""
    if tokenizer.eos_token_id is None:
        raise ValueError("tgpo verl plugin (LUFFY): the student tokenizer has no eos_token_id")
    ids = list(tokenizer.encode(text, add_special_tokens=False)) + [int(tokenizer.eos_token_id)]
    return ids[:max_response_length]


def is_off_policy_session(session_id: int, off_policy_per_group: int) -> bool:
    """Sessions 0 .. off_policy_per_group-1 of each prompt's group replay the teacher trace."""
    return int(session_id) < off_policy_per_group


class LuffyAgentLoopOutput(AgentLoopOutput):
    """AgentLoopOutput with `off_policy_mask` [response_len] (1 on teacher-trace tokens), stored per sample."""

    off_policy_mask: list[int] = []

    def as_dict(self) -> dict[str, Any]:
        output = super().as_dict()
        mask = output.pop(OFF_POLICY_MASK_KEY, self.off_policy_mask)
        if len(mask) != len(self.response_ids):
            raise ValueError(
                f"tgpo verl plugin (LUFFY): off_policy_mask has {len(mask)} entries for "
                f"{len(self.response_ids)} response tokens"
            )
        output[OFF_POLICY_MASK_KEY] = torch.tensor(mask, dtype=torch.int64)
        return output


def with_off_policy_mask(output: AgentLoopOutput, off_policy: bool) -> LuffyAgentLoopOutput:
    """`output` as a LuffyAgentLoopOutput with a constant mask; keeps exactly the fields that were set."""
    fields = {name: getattr(output, name) for name in output.model_fields_set}
    fields[OFF_POLICY_MASK_KEY] = [int(off_policy)] * len(output.response_ids)
    return LuffyAgentLoopOutput(**fields)


def trace_output(
    prompt_ids: list[int], response_ids: list[int], weights_version: int, mm_processor_kwargs: dict
) -> LuffyAgentLoopOutput:
    """The agent-loop output of a teacher-trace sample, with the fields a generated single-turn sample sets.

    weights_version: the policy version rollouts of this step use (verl's min/max_global_steps tags).
    """
    output = AgentLoopOutput(
        prompt_ids=prompt_ids,
        response_ids=response_ids,
        response_mask=[1] * len(response_ids),
        response_logprobs=None,
        routed_experts=None,
        multi_modal_data={},
        mm_processor_kwargs=mm_processor_kwargs,
        mm_processor_output=None,
        num_turns=2,
        metrics=AgentLoopMetrics(),
        extra_fields={
            "turn_scores": [],
            "tool_rewards": [],
            "global_steps": weights_version,
            "min_global_steps": weights_version,
            "max_global_steps": weights_version,
        },
    )
    return with_off_policy_mask(output, off_policy=True)


class LuffyAgentLoop(SingleTurnAgentLoop):
    """Single-turn agent loop whose first `off_policy_per_group` sessions replay the row's teacher trace."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.off_policy_per_group = int(luffy_settings(self.config)["off_policy_per_group"])

    async def run(self, sampling_params: dict[str, Any], **kwargs) -> LuffyAgentLoopOutput:
        if "session_id" not in kwargs:
            raise KeyError(
                "tgpo verl plugin (LUFFY): agent loop called without session_id (needs verl's V1 "
                "AgentLoopWorkerTQ, trainer.use_v1=true)"
            )
        if not is_off_policy_session(kwargs["session_id"], self.off_policy_per_group):
            return with_off_policy_mask(await super().run(sampling_params, **kwargs), off_policy=False)
        messages = list(kwargs["raw_prompt"])
        prompt_ids = await self.ct_build_initial_tokens(messages)
        prompt_text = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        trace = continuation_of(prompt_text, trace_text(kwargs.get("extra_info")))
        response_ids = trace_token_ids(self.tokenizer, trace, self.response_length)
        weights_version = int(kwargs["global_steps"]) - 1  # sync trainer: rollouts of step s use version s-1
        return trace_output(prompt_ids, response_ids, weights_version, self._get_mm_processor_kwargs(None))


# ------------------------------------------------------------------ actor loss
def off_policy_rows(off_policy_mask: torch.Tensor) -> torch.Tensor:
    """[B] 1 for teacher-trace rows, from the per-token mask (nested [B, j] or padded [B, T])."""
    rows = off_policy_mask.unbind() if off_policy_mask.is_nested else list(off_policy_mask)
    flags = []
    for index, row in enumerate(rows):
        if row.numel() and row.min() != row.max():
            raise ValueError(f"tgpo verl plugin (LUFFY): off_policy_mask of row {index} mixes 0 and 1")
        flags.append(row.max() if row.numel() else row.new_zeros(()))
    return torch.stack(flags)


def luffy_policy_loss(config, model_output: dict, data: TensorDict, dp_group=None, *, gamma: float, remove_clip: bool):
    """Actor loss of one micro-batch: -A rho or clipped (on-policy rows) / -A f(p) (off-policy rows) - entropy bonus.

    remove_clip: LUFFY's loss_remove_clip (no PPO clip, no dual clip on on-policy rows).
    config: verl ActorConfig (loss_agg_mode, clip ratios, entropy_coeff, loss_scale_factor);
    model_output: {"log_probs", "entropy"?} packed; data: the micro-batch with `off_policy_mask`.
    """
    if config.use_kl_loss:
        raise ValueError("tgpo verl plugin (LUFFY): use_kl_loss is not part of LUFFY's loss; set it false")
    log_probs = no_padding_2_padding(model_output["log_probs"], data)
    entropy = model_output.get("entropy")
    for key in ("dp_size", "batch_num_tokens", "global_batch_size"):
        config.global_batch_info[key] = data[key]
    config.global_batch_info["loss_scale_factor"] = config.loss_scale_factor
    if OFF_POLICY_MASK_KEY not in data.keys():
        raise KeyError(
            f"tgpo verl plugin (LUFFY): micro-batch has no '{OFF_POLICY_MASK_KEY}'; use "
            f"actor_rollout_ref.rollout.agent.default_agent_loop={AGENT_NAME}"
        )
    off_rows = off_policy_rows(data[OFF_POLICY_MASK_KEY]).to(log_probs.dtype)
    padded = data.select("response_mask", "old_log_probs", "advantages").to_padded_tensor()
    response_mask = padded["response_mask"].to(log_probs.dtype)
    advantages = padded["advantages"].to(log_probs.dtype)
    agg = partial(agg_loss, loss_mask=response_mask, loss_agg_mode=config.loss_agg_mode, **config.global_batch_info)

    if remove_clip:
        clip_low = clip_high = clip_ratio_c = None
    else:
        clip_low = config.clip_ratio_low if config.clip_ratio_low is not None else config.clip_ratio
        clip_high = config.clip_ratio_high if config.clip_ratio_high is not None else config.clip_ratio
        clip_ratio_c = config.get("clip_ratio_c", 3.0)
    on_policy_loss, clip_metrics = clipped_policy_loss(
        log_probs,
        padded["old_log_probs"].to(log_probs.dtype),
        advantages,
        clip_low,
        clip_high,
        clip_ratio_c=clip_ratio_c,
        response_mask=response_mask * (1 - off_rows).unsqueeze(-1),
    )
    off_policy_loss = off_policy_loss_per_token(log_probs, advantages, gamma)
    pg_loss = agg(mix_on_off_policy(on_policy_loss, off_policy_loss, off_rows))

    summed = AggregationType.SUM  # every term is normalised by the global batch: micro-batches add up
    metrics: dict[str, Any] = {key: Metric(AggregationType.MEAN, value) for key, value in clip_metrics.items()}
    metrics["actor/pg_loss"] = Metric(summed, pg_loss.detach())
    metrics["tgpo/off_policy_frac"] = Metric(AggregationType.MEAN, float(off_rows.mean()))
    loss = pg_loss
    if entropy is not None:
        entropy_loss = agg(no_padding_2_padding(entropy, data))
        loss = loss - config.entropy_coeff * entropy_loss
        metrics["actor/entropy_loss"] = Metric(summed, entropy_loss.detach())
    return loss, metrics


# ------------------------------------------------------------------ trainer
class LuffyTrainerSync(MethodAdvantageTrainer):
    """Sync trainer for LUFFY: mixed-group advantages (compute_advantages) and the LUFFY actor loss."""

    METHOD = "luffy"

    def __init__(self, config):
        super().__init__(config)
        self.luffy = luffy_settings(config)
        if config.actor_rollout_ref.rollout.agent.default_agent_loop != AGENT_NAME:
            raise ValueError(
                f"tgpo verl plugin (LUFFY): set actor_rollout_ref.rollout.agent.default_agent_loop={AGENT_NAME}"
            )
        if self.luffy["off_policy_per_group"] >= config.actor_rollout_ref.rollout.n:
            raise ValueError(
                f"tgpo verl plugin (LUFFY): off_policy_per_group {self.luffy['off_policy_per_group']} "
                f"leaves no on-policy sample of rollout.n {config.actor_rollout_ref.rollout.n}"
            )

    def _setup(self):
        from verl.utils.config import omega_conf_to_dataclass

        super()._setup()
        actor_config = omega_conf_to_dataclass(self.config.actor_rollout_ref.actor)
        self.actor_rollout_wg.set_loss_fn(
            partial(
                luffy_policy_loss, config=actor_config, gamma=self.luffy["gamma"], remove_clip=self.luffy["remove_clip"]
            )
        )


def _agent_loop_target() -> dict[str, str]:
    return {"_target_": f"{LuffyAgentLoop.__module__}.{LuffyAgentLoop.__qualname__}"}


def register() -> None:
    """Register the `luffy_agent` agent loop and the `luffy_sync` trainer (idempotent)."""
    if dict(_agent_loop_registry.get(AGENT_NAME) or {}) != _agent_loop_target():
        register_agent_loop(AGENT_NAME)(LuffyAgentLoop)
    register_trainer_cls(TRAINER_NAME, LuffyTrainerSync)


def registration_problems() -> list[str]:
    """What is not registered in this process (empty when everything is)."""
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    problems = []
    if dict(_agent_loop_registry.get(AGENT_NAME) or {}) != _agent_loop_target():
        problems.append(f"agent loop '{AGENT_NAME}' is not registered to {_agent_loop_target()['_target_']}")
    if TRAINER_REGISTRY.get(TRAINER_NAME) is not LuffyTrainerSync:
        problems.append(f"trainer '{TRAINER_NAME}' is not registered to LuffyTrainerSync")
    return problems
