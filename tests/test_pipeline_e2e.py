"""End to end: the CI-sized miniature (config/ci.yaml) through the real Snakefile.

1. Locally with `snakemake -c2`, killed (SIGTERM) once training has started and re-run: the re-run
   finishes, does not redo runs that had finished, and never accepts a partial output.
2. Through `snakemake --profile slurm` against a real SLURM (CI starts one with .ci/slurm_setup.sh):
   the same summary numbers as the local run (the pipeline is deterministic).
3. The README's worked example: one new module in baselines/ and one config entry, after which the
   new method trains and appears in Table 1 (only the new jobs run).

Each run happens in a temporary copy of the repository, so the checkout's results/ is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_pipeline_dryrun import job_stats

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CI_RESULTS = Path("results") / "ci"
REPORT_OUTPUTS = [f"table{i}.{ext}" for i in (1, 2, 3) for ext in ("md", "tex", "csv")] + [
    f"fig{i}.{ext}" for i in (2, 4, 5, 6) for ext in ("pdf", "png")
]
ANYWHERE = shutil.ignore_patterns(".git", ".snakemake", "__pycache__", "*.egg-info", ".pytest_cache")
TOP_LEVEL = {"results", "logs"}  # the checkout's outputs; tgpo/results/ (a package) is code and is copied


def ignore_outputs(folder: str, names: list[str]) -> set[str]:
    ignored = set(ANYWHERE(folder, names))
    return ignored | (TOP_LEVEL & set(names)) if Path(folder) == ROOT else ignored


def copy_repo(destination: Path) -> Path:
    shutil.copytree(ROOT, destination, ignore=ignore_outputs)
    if not (destination / "tgpo" / "results" / "__init__.py").is_file():
        raise AssertionError(f"{destination}: the copy lost the tgpo.results package")
    return destination


def snakemake(workdir: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    completed = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + "\n" + completed.stderr[-6000:]
    return completed


def finished_runs(workdir: Path) -> dict[Path, float]:
    return {path: path.stat().st_mtime for path in (workdir / CI_RESULTS / "runs").glob("*/seed*/run.json")}


def check_outputs(workdir: Path) -> pd.DataFrame:
    results = workdir / CI_RESULTS
    summary = pd.read_parquet(results / "summary.parquet")
    config = yaml.safe_load((workdir / "config" / "ci.yaml").read_text())
    expected = {(name, bench) for name in config["experiments"] for bench in config["benchmarks"]}
    assert set(zip(summary["experiment"], summary["benchmark"])) == expected
    assert summary["score"].between(0, 100).all()
    for name in REPORT_OUTPUTS:
        path = results / "figures" / name
        assert path.exists() and path.stat().st_size > 0, path
    assert (results / "figures" / "fig2.pdf").read_bytes().startswith(b"%PDF")
    assert (results / "figures" / "fig5.png").read_bytes().startswith(b"\x89PNG")
    table1 = pd.read_csv(results / "figures" / "table1.csv")
    assert len(table1) >= len(config["report"]["table1"]["groups"][-1]["rows"])
    return summary


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The CI config run locally, killed once mid-training and resumed."""
    workdir = copy_repo(tmp_path_factory.mktemp("local") / "repo")
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-c2", "--configfile", "config/ci.yaml"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 900
    while len(finished_runs(workdir)) < 3:
        assert process.poll() is None, (
            "the pipeline ended before it could be interrupted:\n"
            + process.stdout.read().decode(errors="replace")[-4000:]
        )
        assert time.time() < deadline, "no training run finished within 15 minutes"
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)  # like Ctrl-C on the whole job tree
    process.wait(timeout=120)
    before = finished_runs(workdir)
    assert before, "no run had finished before the interruption"

    resumed = snakemake(workdir, "-c2", "--configfile", "config/ci.yaml")
    after = finished_runs(workdir)
    redone = [str(path) for path, mtime in before.items() if after.get(path) != mtime]
    assert not redone, f"finished runs were trained again after the interruption: {redone}"
    nothing_left = snakemake(workdir, "-n", "--configfile", "config/ci.yaml")
    assert "Nothing to be done" in nothing_left.stdout + nothing_left.stderr
    return workdir, check_outputs(workdir), resumed


def test_local_run_is_complete_after_interruption(local_run):
    workdir, summary, _ = local_run
    assert len(summary) > 0
    # every trained experiment wrote one metrics line per step
    config = yaml.safe_load((workdir / "config" / "ci.yaml").read_text())
    for name, spec in config["experiments"].items():
        if spec.get("eval_only") or spec["method"] == "sft":
            continue
        lines = (workdir / CI_RESULTS / "runs" / name / "seed0" / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == config["training"]["steps"], name


def test_slurm_run_matches_the_local_run(slurm, local_run, tmp_path):
    _, local_summary, _ = local_run
    workdir = copy_repo(tmp_path / "repo")
    completed = snakemake(workdir, "--profile", "slurm", "--configfile", "config/ci.yaml", timeout=1500)
    log = completed.stdout + completed.stderr
    assert "sbatch" in log or "SLURM" in log or "slurm" in log
    slurm_summary = check_outputs(workdir)
    key = ["experiment", "benchmark", "seed"]
    pd.testing.assert_frame_equal(
        local_summary.sort_values(key).reset_index(drop=True)[key + ["score", "n_samples"]],
        slurm_summary.sort_values(key).reset_index(drop=True)[key + ["score", "n_samples"]],
    )


NEW_BASELINE = '''"""GRPO with DAPO's clip-higher: the upper clip bound raised to 1 + 0.28 (Yu et al., 2025)."""

from tgpo.methods.spec import method_spec

GRPO_CLIP_HIGHER = method_spec(
    "grpo_clip_higher",
    "GRPO (clip-higher)",
    "GRPO++ with DAPO's asymmetric clipping [1 - 0.2, 1 + 0.28]",
    defaults={"clip_ratio_high": 0.28},
    defaults_source={"clip_ratio_high": "DAPO (Yu et al., 2025): clip-higher 0.28"},
)

METHODS = (GRPO_CLIP_HIGHER,)
'''


def test_adding_a_baseline_is_one_module_and_one_config_entry(local_run):
    workdir, _, _ = local_run
    (workdir / "baselines" / "grpo_clip_higher.py").write_text(NEW_BASELINE)
    config_path = workdir / "config" / "ci.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["experiments"]["grpo_clip_higher"] = {"method": "grpo_clip_higher", "student": "student_7b"}
    config["report"]["table1"]["groups"][-1]["rows"].append(
        {"experiment": "grpo_clip_higher", "label": "GRPO (clip-higher)"}
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    methods = subprocess.run(
        [sys.executable, "-m", "tgpo", "methods"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(workdir)},
        check=True,
    ).stdout.split()
    assert "grpo_clip_higher" in methods

    # targets before --configfile: it takes one or more values and would swallow them
    planned = snakemake(workdir, "-n", str(CI_RESULTS / "figures" / "table1.md"), "--configfile", "config/ci.yaml")
    plan = planned.stdout + planned.stderr
    assert "rule train:" in plan and "experiment=grpo_clip_higher" in plan
    assert plan.count("rule train:") == 1, "only the new experiment may be trained"
    snakemake(workdir, "-c2", str(CI_RESULTS / "figures" / "table1.md"), "--configfile", "config/ci.yaml")
    table = (workdir / CI_RESULTS / "figures" / "table1.md").read_text()
    row = next(line for line in table.splitlines() if "GRPO (clip-higher)" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert any(any(ch.isdigit() for ch in cell) for cell in cells[1:]), row


def test_regenerating_one_figure_runs_one_job(local_run):
    workdir, _, _ = local_run
    target = str(CI_RESULTS / "figures" / "fig5.pdf")
    # code elsewhere changes (a comment in the engine and in a baseline): no retraining is planned
    for path in (workdir / "tgpo" / "engine" / "trainer.py", workdir / "baselines" / "kdrl.py"):
        path.write_text(path.read_text() + "\n# edited\n")
    plan = snakemake(workdir, "-n", "-f", target, "--configfile", "config/ci.yaml")
    counts = job_stats(plan.stdout + plan.stderr)
    assert counts == {"fig5": 1, "total": 1}, counts
