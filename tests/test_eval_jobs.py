"""Cluster evaluation jobs (issue 18, item 6): one job per experiment x seed x benchmark, with the
experiment's own GPUs and time limit, so the teacher rows can finish and a retry redoes only what is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from tgpo.config import evaluation_setting, experiment_seeds, load_config
from tgpo.layout import ResultsLayout

ROOT = Path(__file__).resolve().parents[1]


def dry_run(*args: str) -> str:
    completed = subprocess.run([sys.executable, "-m", "snakemake", "-n", *args], cwd=ROOT, capture_output=True,
                               text=True, timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def evaluate_jobs(output: str) -> list[str]:
    blocks = re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", output)
    return [block for block in blocks if re.search(r"^rule evaluate:", block, re.M)]


def test_paper_7b_plans_one_job_per_benchmark_with_the_experiments_own_gpus_and_time():
    config = load_config(ROOT / "config" / "paper-7b.yaml")
    output = dry_run("--profile", "slurm", "--configfile", "config/paper-7b.yaml", "--forceall")
    jobs = evaluate_jobs(output)
    expected = {(e, s, b) for e in config["experiments"] for s in experiment_seeds(config, e) for b in config["benchmarks"]}
    planned = set()
    for block in jobs:
        found = re.search(r"wildcards: experiment=(\S+), seed=(\d+), benchmark=(\S+)", block)
        experiment, seed, benchmark = found.group(1), int(found.group(2)), found.group(3)
        planned.add((experiment, seed, benchmark))
        n_gpus = evaluation_setting(config, experiment, "n_gpus")
        assert f"gres=gpu:{n_gpus}" in block and f"runtime={evaluation_setting(config, experiment, 'runtime_min')}" in block
        assert f"--benchmarks {benchmark}" in block or "output: " + str(
            ResultsLayout.of(config).eval_file(experiment, seed, benchmark)) in block
    assert planned == expected and len(jobs) == len(expected)
    teacher = [b for b in jobs if "experiment=teacher," in b]
    assert teacher and all("gres=gpu:4" in b and "runtime=720" in b for b in teacher)


def test_a_retry_plans_only_the_benchmark_whose_file_is_missing():
    config = yaml.safe_load((ROOT / "config" / "paper-7b.yaml").read_text())
    config["name"] = f"test-eval-retry-{uuid.uuid4().hex[:8]}"
    layout = ResultsLayout.of(config)
    config_path = layout.root / "config.yaml"
    try:
        layout.root.mkdir(parents=True)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        (layout.root / "hub.json").write_text("{}")  # the hub was downloaded before the evaluations ran
        benchmarks = list(config["benchmarks"])
        for benchmark in benchmarks[1:]:  # every file of the teacher row but the first benchmark's exists
            path = layout.eval_file("teacher", 0, benchmark)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"done")
        targets = [str(layout.eval_file("teacher", 0, benchmark)) for benchmark in benchmarks]
        output = dry_run(*targets, "--configfile", str(config_path))
        (job,) = evaluate_jobs(output)
        assert f"benchmark={benchmarks[0]}" in job
        for benchmark in benchmarks[1:]:
            assert str(layout.eval_file("teacher", 0, benchmark)) not in job
    finally:
        shutil.rmtree(layout.root, ignore_errors=True)
