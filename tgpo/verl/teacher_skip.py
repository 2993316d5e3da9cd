"""verl's teacher pool skips the samples of a step whose guidance weight is 0 (issue 18, item 14).

verl 0.9.1 scores every finished rollout sample with the teacher inside the agent loop
(`verl/experimental/agent_loop/agent_loop.py`, `AgentLoopWorker._compute_teacher_logprobs`, called from
`verl/trainer/ppo/v1/agent_loop_tq.py` with the sample's `global_steps`). For TGPO's loss modes the
teacher enters the loss only through its argmax, weighted by w_t (`tgpo_d`) or lambda_t (`tgpo_r`); once
that weight is 0 (TGPO-annealing from step 201 of 300, TGPO_R from step 201) the teacher's answer cannot
change the update. `patch()` wraps `_compute_teacher_logprobs` so that such a sample gets placeholder
teacher ids and log-probs (zeros, the shapes the teacher pool returns: [prompt + response, topk]) without
a request to the teacher; the loss multiplies them by 0. Whether a step is idle is decided by
`tgpo.objectives.annealing.teacher_idle` from the run's `tgpo` config group, the same rule the local engine uses and
the one `tgpo.verl.trainer` derives w_t / lambda_t from.

STATUS: unit-tested (tests/test_verl_teacher_skip.py), but NOT effective in a real verl run: in
bench/verl_step.py on CPU (verl-mini, w = 0 from step 8) the teacher's ids still reached the loss at the
steps with w = 0 (tgpo/teacher_oov_frac 0.029-0.033 there; the placeholders would give 0). Why the wrapper
does not act in verl's agent-loop worker is not yet known; the run's numbers are unaffected either way.
"""

from __future__ import annotations

from typing import Any

from tgpo.objectives.annealing import teacher_idle

# loss mode -> how the teacher's argmax enters the loss (tgpo.methods.GUIDANCE_KINDS)
GUIDANCE_OF_LOSS_MODE = {"tgpo_d": "regulariser", "tgpo_r": "reward_shaping"}


def _plain(value: Any) -> Any:
    """Non-tensor batch values arrive as 0-d numpy objects; normalise to Python."""
    return value.item() if hasattr(value, "item") else value


def idle_step(config, global_steps: Any) -> bool:
    """True when verl step `global_steps` (1-based) of this run needs no teacher: a TGPO loss mode whose
    weight (from the root `tgpo` group: w_init / shaping_lambda, delta) is 0 at that step."""
    if global_steps is None or config is None:
        return False
    distillation = config.get("distillation") or {}
    loss_mode = (distillation.get("distillation_loss") or {}).get("loss_mode")
    guidance = GUIDANCE_OF_LOSS_MODE.get(loss_mode)
    tgpo_config = config.get("tgpo")
    if guidance is None or not tgpo_config:
        return False
    return teacher_idle("argmax", guidance, dict(tgpo_config), int(_plain(global_steps)) - 1)


def placeholder_teacher_outputs(sequence_length: int, topk: int):
    """(teacher_ids [S, topk] int32, teacher_logprobs [S, topk] float32) of zeros, as the pool's shapes."""
    import torch

    return torch.zeros(sequence_length, topk, dtype=torch.int32), torch.zeros(sequence_length, topk)


def patch() -> None:
    """Wrap verl's AgentLoopWorker._compute_teacher_logprobs (idempotent)."""
    from verl.experimental.agent_loop import agent_loop

    original = agent_loop.AgentLoopWorker._compute_teacher_logprobs
    if getattr(original, "tgpo_patch", False):
        return

    async def _compute_teacher_logprobs(self, output, prompt_ids, response_ids, validate, sample_kwargs=None):
        if (
            getattr(self, "distillation_enabled", False)
            and not validate
            and sample_kwargs is not None
            and idle_step(self.config, sample_kwargs.get("global_steps"))
        ):
            topk = int(self.config.distillation.distillation_loss.topk)
            ids, logprobs = placeholder_teacher_outputs(len(prompt_ids) + len(response_ids), topk)
            output.extra_fields["teacher_ids"] = ids
            output.extra_fields["teacher_logprobs"] = logprobs
            return None
        return await original(
            self,
            output,
            prompt_ids=prompt_ids,
            response_ids=response_ids,
            validate=validate,
            sample_kwargs=sample_kwargs,
        )

    _compute_teacher_logprobs.tgpo_patch = True
    _compute_teacher_logprobs.__wrapped__ = original
    agent_loop.AgentLoopWorker._compute_teacher_logprobs = _compute_teacher_logprobs


def registration_problems() -> list[str]:
    from verl.experimental.agent_loop import agent_loop

    if not getattr(agent_loop.AgentLoopWorker._compute_teacher_logprobs, "tgpo_patch", False):
        return ["verl AgentLoopWorker._compute_teacher_logprobs is not wrapped (teacher skip at weight 0)"]
    return []
