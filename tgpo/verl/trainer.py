"""The TGPO trainer for verl 0.9.1: PPOTrainerSync plus the per-step guidance weight (Section 3.2).

Before each actor update it puts into the batch's non-tensor data (which reaches every micro-batch):
  tgpo_coef               = w_t = max(w_init - delta * t, 0)  (tgpo.objectives.annealing.guidance_weight; t 0-based,
                            verl's global_steps counts from 1, so t = global_steps - 1)
  tgpo_shaping_lambda     = lambda_t of TGPO_R (Eq. 5) = max(shaping_lambda - delta * t, 0)
  tgpo_shaping_signal     = "prob" or "log_prob" (tgpo.objectives.guidance.shaped_advantages)
  tgpo_student_vocab_size = len(student tokenizer) (teacher ids at or above it are masked), unless the
                            config sets +tgpo.student_vocab_size
and logs tgpo/guidance_weight. Selected with trainer.v1.trainer_mode=tgpo_sync; hyper-parameters come
from the root config group `tgpo` (`+tgpo.w_init=...`), since verl's actor config rejects extra keys.
"""

from __future__ import annotations

from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from tgpo.objectives.annealing import guidance_weight
from tgpo.verl.losses import COEF_KEY, SHAPING_LAMBDA_KEY, SHAPING_SIGNAL_KEY, STUDENT_VOCAB_KEY
from tgpo.verl.teacher_skip import idle_step, teacher_step_metrics

TRAINER_NAME = "tgpo_sync"


def tgpo_step_info(tgpo_config, global_steps: int, tokenizer_size: int) -> dict[str, float | int]:
    """The per-step non-tensor entries for verl step `global_steps` (1-based) from the `tgpo` config group.

    Without +tgpo.w_init the guidance weight is 0 (TGPO_R); without +tgpo.shaping_lambda lambda is 0 (TGPO);
    +tgpo.delta anneals whichever is set.
    """
    tgpo_config = dict(tgpo_config or {})
    if not tgpo_config:
        raise KeyError("tgpo verl plugin: trainer_mode=tgpo_sync needs the config group 'tgpo' (+tgpo.w_init=...)")
    return {
        COEF_KEY: guidance_weight(
            global_steps - 1, float(tgpo_config.get("w_init", 0.0)), float(tgpo_config.get("delta", 0.0))
        ),
        SHAPING_LAMBDA_KEY: guidance_weight(
            global_steps - 1, float(tgpo_config.get("shaping_lambda", 0.0)), float(tgpo_config.get("delta", 0.0))
        ),
        SHAPING_SIGNAL_KEY: str(tgpo_config.get("shaping_signal", "log_prob")),
        STUDENT_VOCAB_KEY: int(tgpo_config.get("student_vocab_size") or tokenizer_size),
    }


# verl 0.9.1 behaves as its sync trainer only when trainer.v1.trainer_mode is literally "sync"; under
# any other registered name it switches to the async replay buffer and checkpoint handling.
VERL_SYNC_MODE = "sync"


def teacher_metrics(batch) -> dict[str, float]:
    """tgpo.verl.teacher_skip.teacher_step_metrics of the step's samples (a KVBatchMeta), read from TransferQueue."""
    import transfer_queue as tq

    if not batch.keys:
        return teacher_step_metrics([], [])
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
    extra_fields = data["extra_fields"]  # a NonTensorStack of per-sample dicts (as verl reads its spec_* stats)
    return teacher_step_metrics(extra_fields.tolist() if hasattr(extra_fields, "tolist") else list(extra_fields),
                                list(batch.tags))  # fmt: skip


class SyncModeTrainer(PPOTrainerSync):
    """PPOTrainerSync registered under its own name but running verl's "sync" replay buffer and checkpoints."""

    def __init__(self, config):
        super().__init__(config)
        self.trainer_mode = VERL_SYNC_MODE
        self.parameter_sync_step = config.trainer.v1.get(VERL_SYNC_MODE, {}).get("parameter_sync_step", 1)
        self.replay_buffer = self._build_replay_buffer()


class TGPOTrainerSync(SyncModeTrainer):
    """PPOTrainerSync that injects the annealed guidance weight before every actor update."""

    def _update_actor(self, batch, metrics: dict):
        step_info = tgpo_step_info(self.config.get("tgpo"), self.global_steps, len(self.tokenizer))
        batch.extra_info.update(step_info)
        metrics["tgpo/guidance_weight"] = step_info[COEF_KEY]
        # teacher_idle: 1 when the schedule's weight is 0 this step, so the agent loop should not ask the
        # teacher (tgpo.verl.teacher_skip); teacher_skipped / teacher_request_s: what the agent loop did (the
        # marks the wrapped _compute_teacher_logprobs leaves in the samples' extra_fields)
        metrics["tgpo/teacher_idle"] = float(idle_step(self.config, self.global_steps))
        metrics.update(teacher_metrics(batch))
        return super()._update_actor(batch, metrics)


def register() -> None:
    """Register TGPOTrainerSync as 'tgpo_sync' (idempotent)."""
    if TRAINER_REGISTRY.get(TRAINER_NAME) is not TGPOTrainerSync:
        register_trainer(TRAINER_NAME)(TGPOTrainerSync)
