"""RKL-only (Section 2.3) on verl 0.9.1: the sequence reverse-KL reward is the sole reward.

For a response y ~ pi_theta of prompt x, the reward is (tgpo.objectives.reverse_kl.sequence_rkl_reward)

    r(y) = -sum_t ( log pi_old(y_t | x, y_<t) - log pi_T(y_t | x, y_<t) )

over the student's sampled response tokens; the advantage is that reward itself, unnormalised (App. A,
Eq. 9; baselines/rkl_only.py), and the clipped loss is verl's ppo_loss. Three pieces go in:

1. `rkl_reward` - a distillation loss mode registered with `use_estimator=True`, so verl's teacher pool
   returns the teacher log-prob of every *sampled* token (`teacher_logprobs`, vLLM prompt_logprobs=0),
   and which contributes exactly zero to the loss (the teacher enters through the reward only; verl's own
   estimator modes would add a gradient term, and `k1` without policy gradient is rejected by verl).
2. `MethodAdvantageTrainer._compute_advantage` - replaces verl's advantage step by
   `tgpo.objectives.compose.compute_advantages` of the trainer's method (the same function the local engine
   calls), from old_log_probs and the teacher's sampled-token log-probs. The verifier score (rm_scores)
   stays in the batch, untouched, so verl still logs it as `critic/score/mean` (Figure 2), while
   `token_level_rewards` carries the reward actually optimised (logged as `critic/rewards/mean`).
3. `SyncModeTrainer` - verl switches to its *async* replay buffer, refill and checkpoint paths for every
   trainer_mode other than the literal "sync" (trainer_base.py L153, L731, L902, L1004, L1499); a
   registered subclass of the sync trainer restores the "sync" semantics after construction.

Selected with `trainer.v1.trainer_mode=rkl_reward_sync` and `distillation.distillation_loss.loss_mode=rkl_reward`.
"""

from __future__ import annotations

import numpy as np
import torch
import verl.trainer.distillation.losses as verl_distillation_losses
from tensordict import TensorDict
from verl.trainer.distillation.losses import DistillationLossSettings, register_distillation_loss
from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, register_trainer
from verl.utils.metric import AggregationType, Metric
from verl.workers.utils.padding import no_padding_2_padding, response_from_nested, response_to_nested

from tgpo.methods import MethodSpec, get_method
from tgpo.objectives.compose import compute_advantages
from tgpo.objectives.reverse_kl import sequence_rkl_reward
from tgpo.verl.trainer import SyncModeTrainer

TRAINER_NAME = "rkl_reward_sync"
RKL_LOSS_MODE = "rkl_reward"


# ------------------------------------------------------------------ the zero estimator loss mode
def _padded(tensor: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    return tensor.to_padded_tensor(fill) if tensor.is_nested else tensor


def rkl_reward_zero_loss(config, distillation_config, model_output: dict, data: TensorDict):
    """Distillation loss mode `rkl_reward`: zero per-token loss [B, T]; logs the current-policy RKL.

    The teacher log-probs reach the objective through the reward (MethodAdvantageTrainer), not the loss.
    Metric `tgpo/rkl_k1`: mean over response tokens of log pi_theta(y_t) - log pi_T(y_t).
    """
    student_log_probs = no_padding_2_padding(model_output["log_probs"], data)
    teacher_log_probs = no_padding_2_padding(data["teacher_logprobs"], data)[..., 0]
    response_mask = _padded(data["response_mask"]).to(student_log_probs.dtype)
    log_ratio = (student_log_probs.detach() - teacher_log_probs) * response_mask
    metrics = {"tgpo/rkl_k1": Metric(AggregationType.MEAN, log_ratio.sum() / response_mask.sum().clamp_min(1))}
    return torch.zeros_like(student_log_probs), metrics


def register_loss() -> None:
    """Register the `rkl_reward` estimator loss mode (idempotent)."""
    existing = verl_distillation_losses.DISTILLATION_LOSS_REGISTRY.get(RKL_LOSS_MODE)
    if existing is None:
        register_distillation_loss(DistillationLossSettings(names=[RKL_LOSS_MODE], use_estimator=True))(
            rkl_reward_zero_loss
        )
    elif getattr(existing, "__qualname__", None) != rkl_reward_zero_loss.__qualname__:
        raise ValueError(f"tgpo verl plugin: distillation loss '{RKL_LOSS_MODE}' is already registered to {existing!r}")


# ------------------------------------------------------------------ advantages from the objective library
def group_index_of(uids) -> torch.Tensor:
    """[N] long group ids from the N rows' prompt uids (equal uid = same prompt)."""
    _, inverse = np.unique(np.asarray([str(uid) for uid in uids], dtype=object), return_inverse=True)
    return torch.as_tensor(inverse, dtype=torch.long)


def last_token_values(sequence_values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """[N] per-sequence values placed on the last response token of each row -> [N, T] (verl's reward layout)."""
    lengths = response_mask.sum(-1).long()
    token_values = torch.zeros(response_mask.shape, dtype=torch.float32)
    rows = torch.nonzero(lengths > 0).squeeze(-1)
    token_values[rows, lengths[rows] - 1] = sequence_values[rows].to(torch.float32)
    return token_values


def method_advantages(
    method: MethodSpec,
    verifier_scores: torch.Tensor,
    uids,
    response_mask: torch.Tensor,
    old_log_probs: torch.Tensor | None = None,
    teacher_log_probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages [N, T], optimised sequence rewards [N]) of `method` for one rollout batch.

    verifier_scores: [N] the verifier's reward (ignored by methods whose reward is not the verifier's);
    uids: N prompt ids; response_mask, old_log_probs, teacher_log_probs: [N, T] (sampled-token log-probs).
    """
    group_index = group_index_of(uids)
    advantages = compute_advantages(
        method,
        {},
        verifier_scores,
        group_index,
        response_mask,
        old_log_probs=old_log_probs,
        teacher_log_probs=teacher_log_probs,
    )
    if method.reward_source == "sequence_rkl":
        rewards = sequence_rkl_reward(old_log_probs, teacher_log_probs, response_mask)
    elif method.reward_source == "verifier":
        rewards = verifier_scores
    else:
        raise ValueError(
            f"method_advantages: method {method.name!r} has reward {method.reward_source!r}; "
            "expected 'verifier' or 'sequence_rkl'"
        )
    return advantages, rewards


def check_algorithm_config(algorithm, method: MethodSpec) -> None:
    """The verl `algorithm` keys the replaced advantage step would otherwise silently ignore.

    adv_estimator must be 'grpo' (critic-free; the step itself is replaced), and norm_adv_by_std_in_grpo
    must say what the method does: true only for the std-normalised GRPO estimator.
    """
    expected = {
        "adv_estimator": "grpo",
        "use_kl_in_reward": False,
        "norm_adv_by_std_in_grpo": method.advantage_estimator == "grpo",
    }
    wrong = {key: algorithm.get(key) for key, value in expected.items() if algorithm.get(key) != value}
    if wrong:
        raise ValueError(
            f"tgpo verl plugin: method {method.name!r} computes advantages with "
            f"tgpo.objectives.compose.compute_advantages and needs algorithm.{expected}; got {wrong}"
        )


class MethodAdvantageTrainer(SyncModeTrainer):
    """Sync trainer whose advantage step is tgpo.objectives.compose.compute_advantages of `METHOD`."""

    METHOD = ""

    def __init__(self, config):
        super().__init__(config)
        self.method = get_method(self.METHOD)
        check_algorithm_config(config.algorithm, self.method)

    def _compute_advantage(self, batch, metrics: dict):
        import transfer_queue as tq

        needs_teacher = self.method.reward_source == "sequence_rkl"
        fields = ["uid", "response_mask", "rm_scores", "old_log_probs"] + (
            ["teacher_logprobs"] if needs_teacher else []
        )
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=fields)
        nested_mask = data["response_mask"]
        response_mask = nested_mask.to_padded_tensor(0).to(torch.float32)
        old_log_probs = _padded(data["old_log_probs"]).to(torch.float32)
        teacher_log_probs = None
        if needs_teacher:
            teacher = response_from_nested(data["teacher_logprobs"], nested_mask).to_padded_tensor(0.0)
            if teacher.shape[-1] != 1:
                raise ValueError(
                    f"tgpo verl plugin: teacher_logprobs has {teacher.shape[-1]} columns; expected 1 "
                    f"(distillation.distillation_loss.loss_mode={RKL_LOSS_MODE}, an estimator mode)"
                )
            teacher_log_probs = teacher[..., 0].to(torch.float32)
        verifier_scores = (_padded(data["rm_scores"]).to(torch.float32) * response_mask).sum(-1)
        advantages, rewards = method_advantages(
            self.method, verifier_scores, list(data["uid"]), response_mask, old_log_probs, teacher_log_probs
        )
        if needs_teacher:
            metrics["tgpo/rkl_reward/mean"] = float(rewards.mean())
            metrics["tgpo/rkl_reward/min"] = float(rewards.min())
            metrics["tgpo/rkl_reward/max"] = float(rewards.max())
        output = {
            "advantages": advantages,
            "returns": advantages,
            "token_level_rewards": last_token_values(rewards, response_mask),
        }
        output = TensorDict(
            {key: response_to_nested(value, nested_mask) for key, value in output.items()}, batch_size=len(batch)
        )
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=output)


class RKLRewardTrainerSync(MethodAdvantageTrainer):
    """RKL-only (Section 2.3): the unnormalised sequence reverse-KL reward as advantage; the verifier is only logged."""

    METHOD = "rkl_only"


def register_trainer_cls(name: str, cls: type) -> None:
    """Register `cls` as verl trainer `name` (idempotent)."""
    if TRAINER_REGISTRY.get(name) is not cls:
        register_trainer(name)(cls)


def register() -> None:
    """Register the `rkl_reward` loss mode and the `rkl_reward_sync` trainer (idempotent)."""
    register_loss()
    register_trainer_cls(TRAINER_NAME, RKLRewardTrainerSync)


def registration_problems() -> list[str]:
    """What is not registered in this process (empty when everything is)."""
    from verl.trainer.ppo.v1.trainer_base import get_trainer_cls

    problems: list[str] = []
    try:
        if not verl_distillation_losses.get_distillation_loss_settings(RKL_LOSS_MODE).use_estimator:
            problems.append(f"distillation loss '{RKL_LOSS_MODE}' is not an estimator loss")
    except ValueError:
        problems.append(f"distillation loss '{RKL_LOSS_MODE}' is not registered")
    try:
        if get_trainer_cls(TRAINER_NAME) is not RKLRewardTrainerSync:
            problems.append(f"trainer '{TRAINER_NAME}' is registered to another class")
    except ValueError:
        problems.append(f"trainer '{TRAINER_NAME}' is not registered")
    return problems
