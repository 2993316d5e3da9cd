"""verl's teacher pool is not asked once the guidance weight is 0 (issue 18, item 14; tgpo.verl.teacher_skip)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
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


def call(worker, global_steps, validate=False, prompt=3, response=4, method=None):
    from verl.experimental.agent_loop import agent_loop

    output = SimpleNamespace(extra_fields={})
    method = (method or agent_loop.AgentLoopWorker)._compute_teacher_logprobs
    asyncio.run(method(worker, output, prompt_ids=list(range(prompt)), response_ids=list(range(response)),
                       validate=validate, sample_kwargs={"global_steps": global_steps}))  # fmt: skip
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
    assert idle.extra_fields[teacher_skip.SKIPPED_FIELD] and teacher_skip.SKIPPED_FIELD not in active.extra_fields
    assert idle.extra_fields[teacher_skip.SECONDS_FIELD] == 0.0 and active.extra_fields[teacher_skip.SECONDS_FIELD] > 0
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


# Run in a fresh interpreter: the import order of a verl process (the plugin loads on `import verl`).
ACTOR_CLASS_PROBE = textwrap.dedent("""
    import asyncio
    from types import SimpleNamespace

    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1 import AgentLoopWorkerTQ  # what verl's v1 trainers start as Ray actors

    actor_class = AgentLoopWorkerTQ.__ray_metadata__.modified_class  # the class Ray pickles for the workers
    asked = []

    class Teacher:
        async def compute_teacher_logprobs_single(self, sequence_ids, **kwargs):
            asked.append(len(sequence_ids))
            raise SystemExit("teacher asked")

    config = OmegaConf.create({"distillation": {"enabled": True, "distillation_loss": {"loss_mode": "tgpo_d", "topk": 1}},
                               "tgpo": {"w_init": 2e-3, "delta": 1e-5}})
    worker = SimpleNamespace(config=config, distillation_enabled=True, teacher_key="data_source",
                             teacher_server_manager=Teacher())
    output = SimpleNamespace(extra_fields={}, multi_modal_data=None, mm_processor_kwargs=None)
    # the call AgentLoopWorkerTQ._agent_loop_postprocess makes, at step 201 (w = 0)
    asyncio.run(actor_class._compute_teacher_logprobs(worker, output, prompt_ids=[1, 2], response_ids=[3],
                                                      validate=False, sample_kwargs={"global_steps": 201}))
    print("asked", asked, "ids", output.extra_fields["teacher_ids"].tolist())
""")


def test_the_ray_actor_class_running_verls_agent_loop_skips_the_teacher_at_weight_zero():
    # Ray's @ray.remote copies every method, inherited ones too, into the actor class it makes; verl's
    # AgentLoopWorkerTQ is decorated while this plugin imports, before the patch: wrapping verl's
    # AgentLoopWorker alone left the actor's copy unwrapped and the teacher was asked at w = 0.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", ACTOR_CLASS_PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1] == "asked [] ids [[0], [0], [0]]"


def test_registration_names_an_agent_loop_worker_class_with_its_own_unwrapped_copy():
    import gc

    from verl.experimental.agent_loop import agent_loop

    import tgpo.verl.register  # noqa: F401

    async def unwrapped(self, output, prompt_ids, response_ids, validate, sample_kwargs=None):
        raise AssertionError("teacher asked")

    copy = type("CopiedWorker", (agent_loop.AgentLoopWorker,), {"_compute_teacher_logprobs": unwrapped})
    try:
        assert any("CopiedWorker" in problem for problem in teacher_skip.registration_problems())
        teacher_skip.patch()
        assert teacher_skip.registration_problems() == []
        output = call(fake_worker(run_config("tgpo_d", w_init=2e-3, delta=1e-5)), 201, method=copy)
        assert output.extra_fields[teacher_skip.SKIPPED_FIELD]
    finally:
        del copy
        gc.collect()  # drop the class from AgentLoopWorker.__subclasses__()


def test_step_metrics_count_the_marked_samples_without_padding_rows():
    skipped = {teacher_skip.SKIPPED_FIELD: True, teacher_skip.SECONDS_FIELD: 0.0}
    tags = [{}, {}, {}, {"is_padding": True}]
    metrics = teacher_skip.teacher_step_metrics([skipped, {teacher_skip.SECONDS_FIELD: 0.6}, skipped, skipped], tags)
    assert metrics == pytest.approx({"tgpo/teacher_skipped": 2 / 3, "tgpo/teacher_request_s": 0.2})
    scored = {teacher_skip.SECONDS_FIELD: 0.3}
    assert teacher_skip.teacher_step_metrics([scored, scored, scored, skipped], tags) == pytest.approx(
        {"tgpo/teacher_skipped": 0.0, "tgpo/teacher_request_s": 0.3}
    )
    assert teacher_skip.teacher_step_metrics([skipped], [{"is_padding": True}])["tgpo/teacher_skipped"] == 0.0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_real_verl_tgpo_run_on_cpu_asks_the_teacher_only_while_the_weight_is_positive(tmp_path):
    """`python -m tgpo verl-train` for TGPO (vLLM teacher pool) on CPU, w_t = 0.1 at step 1 and 0 from step 2:
    the agent-loop workers (Ray actors) mark step 2 and 3's samples as not scored by the teacher."""
    import json

    import yaml

    pytest.importorskip("vllm")
    from test_verl_cpu_run import build_qwen2, write_config, write_rl_parquet

    from tgpo.verl.cpu.settings import accelerator_present

    if accelerator_present():
        pytest.skip("this machine has an accelerator: verl-train does not take the CPU path")
    build_qwen2(tmp_path / "models" / "student", hidden_size=64, heads=2, seed=0)  # head_dim 32
    build_qwen2(tmp_path / "models" / "teacher", hidden_size=64, heads=2, seed=1)  # the same byte tokenizer
    write_rl_parquet(tmp_path / "results" / "verl-cpu" / "data" / "verl", rows=16)
    config_path = tmp_path / "verl-cpu.yaml"
    write_config(config_path, tmp_path / "models", steps=3, teacher_gpus=1)
    config = yaml.safe_load(config_path.read_text())
    config["models"]["teacher"] = {"path": str(tmp_path / "models" / "teacher"), "label": "tiny teacher",
                                   "family": "qwen2"}  # fmt: skip
    config["experiments"] = {"tgpo": {"method": "tgpo_annealing", "student": "student", "teacher": "teacher",
                                      "hparams": {"w_init": 0.1, "delta": 0.1}}}  # fmt: skip
    config["report"] = {}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "tgpo", "verl-train", "--config", config_path.name,
                             "--experiment", "tgpo"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=1100)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    run_dir = tmp_path / "results" / "verl-cpu" / "runs" / "tgpo" / "seed0"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in metrics] == [1, 2, 3]
    assert [line["tgpo/guidance_weight"] for line in metrics] == [0.1, 0.0, 0.0]
    assert [line["tgpo/teacher_idle"] for line in metrics] == [0.0, 1.0, 1.0]
    assert [line["tgpo/teacher_skipped"] for line in metrics] == [0.0, 1.0, 1.0]
    assert metrics[0]["tgpo/teacher_request_s"] > 0 and [line["tgpo/teacher_request_s"] for line in metrics[1:]] == [
        0,
        0,
    ]
    print(
        "timing_s/gen per step:",
        [round(line["timing_s/gen"], 3) for line in metrics],
        "tgpo/teacher_request_s:",
        [round(line["tgpo/teacher_request_s"], 3) for line in metrics],
    )
