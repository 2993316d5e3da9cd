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

Where the wrapper must go: `@ray.remote` gives the actor class it makes its own copy of every method,
inherited ones included (ray/actor.py `_make_actor` -> ray/util/tracing/tracing_helper.py
`_inject_tracing_into_class`, `setattr(_cls, name, wrapped_method)`), when the decorated class is defined.
verl's `AgentLoopWorkerTQ` (verl/trainer/ppo/v1/agent_loop_tq.py:52, the agent-loop worker of the v1
trainers; imported by verl/trainer/ppo/v1/__init__.py:15) is defined while this plugin imports
(tgpo.verl.luffy -> tgpo.verl.rkl_trainer -> verl.trainer.ppo.v1.trainer_base), before `register_all()`
wraps anything. Wrapping `AgentLoopWorker` alone (as before) left the actor class's copy, verl's own
method, which Ray pickles by value for the agent-loop worker processes, so the teacher kept scoring at
w = 0. `patch()` therefore wraps every agent-loop worker class that has its own copy; classes defined
later copy the wrapped method. A skipped sample carries `extra_fields["tgpo_teacher_skipped"]` and a scored
one the seconds it waited for the teacher pool (`tgpo_teacher_s`); `tgpo.verl.trainer` logs them per step
as `tgpo/teacher_skipped` (share of the step's samples) and `tgpo/teacher_request_s` (mean seconds).

STATUS: acts in real verl runs. tests/test_verl_teacher_skip.py checks the actor class Ray ships, in a
fresh interpreter (fails on the old wrapping), and (slow) a real `tgpo verl-train` run on CPU with w = 0
from step 2: tgpo/teacher_skipped [0, 1, 1]. bench/verl_step.py on CPU (bench/verl_tiny_inputs.py: tiny
random student and teacher, 16 samples x 24 new tokens a step; --steps 12 --teacher-off-from 7):
tgpo/teacher_skipped 0 at steps 1-6, 1.0 at steps 7-12; tgpo/teacher_request_s 0.07-0.15 s per sample at
steps 2-6, 0 at 7-12. That is below verl's 2-s replay-buffer poll, so timing_s/gen reads 2.0 s either way
(paired TGPO / GRPO++ gen ratio 0.996 with the teacher, 1.002 without); on the cluster the skip saves the
teacher pool's prefill of each sample of the idle steps. The run's numbers are unaffected: the loss
multiplies the placeholders by 0.
"""

from __future__ import annotations

import time
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


METHOD = "_compute_teacher_logprobs"
SKIPPED_FIELD = "tgpo_teacher_skipped"  # set in a sample's extra_fields when the teacher was not asked
SECONDS_FIELD = "tgpo_teacher_s"  # seconds the sample waited for the teacher pool (0.0 when skipped)


def _skipping(method):
    """`method` (an AgentLoopWorker._compute_teacher_logprobs) behind the idle-step check."""

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
            output.extra_fields[SKIPPED_FIELD] = True
            output.extra_fields[SECONDS_FIELD] = 0.0
            return None
        start = time.perf_counter()
        result = await method(self, output, prompt_ids=prompt_ids, response_ids=response_ids, validate=validate,
                              sample_kwargs=sample_kwargs)  # fmt: skip
        if getattr(self, "distillation_enabled", False) and not validate:
            output.extra_fields[SECONDS_FIELD] = time.perf_counter() - start
        return result

    _compute_teacher_logprobs.tgpo_patch = True
    _compute_teacher_logprobs.__wrapped__ = method
    return _compute_teacher_logprobs


def agent_loop_worker_classes() -> list[type]:
    """verl's AgentLoopWorker and every subclass of it defined in this process so far, Ray's actor classes
    included (`@ray.remote class AgentLoopWorkerTQ(AgentLoopWorker)` makes a further subclass)."""
    from verl.experimental.agent_loop import agent_loop

    classes, pending = [], [agent_loop.AgentLoopWorker]
    while pending:
        cls = pending.pop()
        if cls not in classes:
            classes.append(cls)
            pending.extend(cls.__subclasses__())
    return classes


def patch() -> None:
    """Wrap _compute_teacher_logprobs in every agent-loop worker class that has its own copy (Ray's actor
    classes included: see the module docstring); idempotent."""
    for cls in agent_loop_worker_classes():
        method = cls.__dict__.get(METHOD)
        if method is not None and not getattr(method, "tgpo_patch", False):
            setattr(cls, METHOD, _skipping(method))


def teacher_step_metrics(extra_fields: list, tags: list[dict]) -> dict[str, float]:
    """Per-step teacher metrics from the samples' extra_fields (verl's synthetic padding rows left out):
    tgpo/teacher_skipped, the share of samples whose agent loop did not ask the teacher, and
    tgpo/teacher_request_s, the mean seconds a sample waited for the teacher pool (0 for a skipped one)."""
    real = [fields if isinstance(fields, dict) else {}
            for fields, tag in zip(extra_fields, tags, strict=True) if not tag.get("is_padding", False)]  # fmt: skip
    if not real:
        return {"tgpo/teacher_skipped": 0.0, "tgpo/teacher_request_s": 0.0}
    return {
        "tgpo/teacher_skipped": sum(bool(fields.get(SKIPPED_FIELD)) for fields in real) / len(real),
        "tgpo/teacher_request_s": sum(float(fields.get(SECONDS_FIELD) or 0.0) for fields in real) / len(real),
    }


def registration_problems() -> list[str]:
    """The agent-loop worker classes of this process whose _compute_teacher_logprobs is not wrapped."""
    return [
        f"verl {cls.__module__}.{cls.__qualname__}.{METHOD} is not wrapped (teacher skip at weight 0)"
        for cls in agent_loop_worker_classes()
        if not getattr(getattr(cls, METHOD), "tgpo_patch", False)
    ]
