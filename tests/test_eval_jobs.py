"""Cluster evaluation jobs (issue 18, item 6): a retry redoes only the benchmarks whose file is missing (the
per-benchmark jobs' GPUs and time limits are checked in tests/test_pipeline_dryrun.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from tgpo.results.layout import ResultsLayout

ROOT = Path(__file__).resolve().parents[1]


def dry_run(*args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def evaluate_jobs(output: str) -> list[str]:
    blocks = re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", output)
    return [block for block in blocks if re.search(r"^rule evaluate:", block, re.M)]


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


def test_job_per_benchmark_false_keeps_one_job_per_experiment_and_seed():
    """config/verl-mini.yaml on CPU: one vLLM start-up per experiment x seed writes every benchmark."""
    from tgpo.config import experiment_seeds, load_config

    config = load_config(ROOT / "config" / "verl-mini.yaml")
    assert config["evaluation"]["job_per_benchmark"] is False
    jobs = evaluate_jobs(dry_run("--configfile", "config/verl-mini.yaml", "--forceall"))
    assert len(jobs) == sum(len(experiment_seeds(config, e)) for e in config["experiments"])
    layout = ResultsLayout.of(config)
    (base,) = [job for job in jobs if re.search(r"wildcards: experiment=base, seed=0\n", job)]
    assert all(str(layout.eval_file("base", 0, benchmark)) in base for benchmark in config["benchmarks"])
