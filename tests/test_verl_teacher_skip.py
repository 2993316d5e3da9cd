"""verl's teacher pool is not asked once the guidance weight is 0 (issue 18, item 14; tgpo.verl.teacher_skip)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from tgpo.config import load_config
from tgpo.verl import teacher_skip

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
ROOT = Path(__file__).resolve().parents[1]


def run_config(loss_mode: str, **tgpo) -> OmegaConf:
    return OmegaConf.create(
        {"distillation": {"enabled": True, "distillation_loss": {"loss_mode": loss_mode, "topk": 1}}, "tgpo": tgpo}
    )


def test_idle_from_the_step_where_the_weight_reaches_zero():
    annealing = run_config("tgpo_d", w_init=2e-3, delta=1e-5)  # w_t = 2e-3 - 1e-5 (step - 1)
    assert not teacher_skip.idle_step(annealing, 200) and teacher_skip.idle_step(annealing, 201)
    assert not teacher_skip.idle_step(run_config("tgpo_d", w_init=2e-3, delta=0.0), 300)  # constant TGPO
    shaping = run_config("tgpo_r", shaping_lambda=0.02, delta=1e-4)
    assert not teacher_skip.idle_step(shaping, 200) and teacher_skip.idle_step(shaping, 201)
    assert not teacher_skip.idle_step(run_config("k3", w_init=0.0), 5)  # KDRL / OP Distill: the teacher's log-probs


def fake_worker(config):
    return SimpleNamespace(config=config, distillation_enabled=True)


def call(worker, global_steps, validate=False, prompt=3, response=4):
    from verl.experimental.agent_loop import agent_loop

    output = SimpleNamespace(extra_fields={})
    method = agent_loop.AgentLoopWorker._compute_teacher_logprobs
    asyncio.run(
        method(
            worker,
            output,
            prompt_ids=list(range(prompt)),
            response_ids=list(range(response)),
            validate=validate,
            sample_kwargs={"global_steps": global_steps},
        )
    )
    return output


def test_wrapped_agent_loop_asks_the_teacher_only_while_the_weight_is_positive(monkeypatch):
    from verl.experimental.agent_loop import agent_loop

    import tgpo.verl.register  # noqa: F401  (applies the patch, as verl's plugin entry point does)

    wrapped = agent_loop.AgentLoopWorker._compute_teacher_logprobs
    assert wrapped.tgpo_patch
    asked = []

    async def teacher(self, output, prompt_ids, response_ids, validate, sample_kwargs=None):
        asked.append(sample_kwargs["global_steps"])
        output.extra_fields["teacher_ids"] = torch.ones(len(prompt_ids) + len(response_ids), 1, dtype=torch.int32)

    worker = fake_worker(run_config("tgpo_d", w_init=2e-3, delta=1e-5))
    # a fake teacher in place of verl's method, wrapped as the plugin wraps verl's (restored after the test)
    monkeypatch.setattr(agent_loop.AgentLoopWorker, "_compute_teacher_logprobs", teacher)
    teacher_skip.patch()
    active = call(worker, 200)
    idle = call(worker, 201)
    assert asked == [200]
    assert torch.equal(active.extra_fields["teacher_ids"], torch.ones(7, 1, dtype=torch.int32))
    assert idle.extra_fields["teacher_ids"].shape == (7, 1) and idle.extra_fields["teacher_ids"].dtype == torch.int32
    assert not idle.extra_fields["teacher_ids"].any() and not idle.extra_fields["teacher_logprobs"].any()
    call(worker, 250, validate=True)  # validation goes to verl's own method (which skips the teacher itself)
    assert asked == [200, 250]


@pytest.mark.parametrize(
    ("experiment", "first_idle"),
    [("tgpo_annealing", 201), ("tgpo_r", 201), ("tgpo", None), ("op_distill", None), ("kdrl", None)],
)
def test_paper_7b_experiments_skip_the_teacher_from_step_201_where_the_weight_is_zero(experiment, first_idle):
    import verl
    from hydra import compose, initialize_config_dir

    from tgpo.verl.translate import experiment_overrides

    config = load_config(ROOT / "config" / "paper-7b.yaml")
    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=experiment_overrides(config, experiment, seed=0))
    idle = [step for step in range(1, 301) if teacher_skip.idle_step(cfg, step)]
    assert idle == ([] if first_idle is None else list(range(first_idle, 301)))
