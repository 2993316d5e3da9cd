"""The SLURM profile (slurm/config.yaml) and the Ray-on-SLURM launcher.

The slow test runs `snakemake --profile slurm` on a 2-rule workflow against a real SLURM
(.ci/slurm_setup.sh). Without one it is skipped, saying why; under CI (`CI=true`) it fails instead.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = ROOT / "tgpo" / "verl" / "launch_ray_slurm.sh"
SNAKEFILE = """
rule all:
    input: "b.txt"
rule a:
    output: "a.txt"
    shell: "echo job=$SLURM_JOB_ID > {output}"
rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "cat {input} > {output}; echo b >> {output}"
"""


def workflow_dir(tmp_path: Path) -> Path:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    shutil.copytree(ROOT / "slurm", tmp_path / "slurm")  # `--profile slurm` resolves ./slurm
    return tmp_path


def test_profile_parses_and_dry_runs(tmp_path):
    workdir = workflow_dir(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "runtime=60" in result.stdout + result.stderr


def test_profile_keys_are_options_of_the_installed_plugin():
    """Every key of slurm/config.yaml is a flag of snakemake with snakemake-executor-plugin-slurm 2.6.1
    (pyproject.toml pins it; later versions add flags 2.6.1 lacks)."""
    from importlib.metadata import version

    import yaml
    from snakemake.cli import get_argument_parser

    assert version("snakemake-executor-plugin-slurm") == "2.6.1"
    flags = {flag for action in get_argument_parser()._actions for flag in action.option_strings}
    profile = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    assert sorted(key for key in profile if f"--{key}" not in flags) == []


def test_profile_resubmits_and_requeues_failed_jobs():
    """A training job stopped before (or killed at) its time limit, or preempted, runs again and resumes."""
    import yaml

    profile = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    assert profile.get("retries", 0) >= 1
    assert profile.get("slurm-requeue") is True
    workflow_profile = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert "retries" not in workflow_profile  # it would override the cluster profile's key


@pytest.mark.slow
def test_snakemake_profile_runs_on_real_slurm(slurm, tmp_path):
    workdir = workflow_dir(tmp_path)
    result = subprocess.run(
        ["timeout", "-k", "30", "600", sys.executable, "-m", "snakemake", "--profile", "slurm"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    text = (workdir / "b.txt").read_text().split()
    assert text[0].startswith("job=") and text[0] != "job=", "rule a did not run inside a SLURM job"
    assert text[-1] == "b"


def fake_bin(tmp_path: Path, name: str, body: str) -> None:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_launcher(tmp_path, *args, env_extra=None):
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", **(env_extra or {})}
    return subprocess.run(["bash", str(LAUNCHER), *args], capture_output=True, text=True, env=env, timeout=60)


def test_launcher_dry_run_plans_head_workers_and_driver(tmp_path):
    # jobstep 0.6.1 strips SLURM_JOB_NODELIST: the launcher must ask squeue / scontrol
    fake_bin(tmp_path, "squeue", 'echo "gpu[01-03]"')
    fake_bin(tmp_path, "scontrol", 'printf "gpu01\\ngpu02\\ngpu03\\n"')
    env = {"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": ""}
    result = run_launcher(
        tmp_path,
        "--nodes",
        "3",
        "--gpus-per-node",
        "8",
        "--cpus-per-node",
        "64",
        "--dry-run",
        "--",
        "python",
        "-m",
        "verl.trainer.main_ppo",
        "trainer.nnodes=3",
        env_extra=env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("head: srun") and "-w gpu01" in lines[0] and "--head" in lines[0]
    workers = [line for line in lines if line.startswith("worker:")]
    assert [w.split("-w ")[1].split()[0] for w in workers] == ["gpu02", "gpu03"]
    assert all("--address=gpu01:6379" in w and "--num-gpus=8" in w for w in workers)
    assert lines[-1] == "driver: RAY_ADDRESS=gpu01:6379 python -m verl.trainer.main_ppo trainer.nnodes=3"


def test_launcher_rejects_node_count_mismatch_and_missing_job(tmp_path):
    fake_bin(tmp_path, "squeue", 'echo "gpu[01-02]"')
    fake_bin(tmp_path, "scontrol", 'printf "gpu01\\ngpu02\\n"')
    mismatch = run_launcher(
        tmp_path,
        "--nodes",
        "3",
        "--gpus-per-node",
        "8",
        "--cpus-per-node",
        "8",
        "--dry-run",
        "--",
        "true",
        env_extra={"SLURM_JOB_ID": "7"},
    )
    assert mismatch.returncode != 0 and "has 2 node(s)" in mismatch.stderr
    env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}
    no_job = subprocess.run(
        ["bash", str(LAUNCHER), "--nodes", "2", "--gpus-per-node", "8", "--cpus-per-node", "8", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert no_job.returncode != 0 and "SLURM_JOB_ID is not set" in no_job.stderr
    single = run_launcher(tmp_path, "--nodes", "1", "--gpus-per-node", "8", "--cpus-per-node", "8", "--", "echo", "ran")
    assert single.returncode == 0 and single.stdout.strip() == "ran"


@pytest.mark.parametrize("ci,outcome", [("", "1 skipped"), ("true", "1 error")])  # error: in the fixture
def test_without_slurm_the_slurm_test_skips_with_a_reason_except_under_ci(tmp_path, ci, outcome):
    """The README's `python -m pytest` passes on a machine without SLURM; CI (CI=true) skips nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sinfo", "sbatch"):  # a SLURM client whose controller does not answer
        (bin_dir / tool).write_text(
            "#!/bin/sh\necho 'slurm_load_partitions: Unable to contact slurm controller' >&2\nexit 1\n"
        )
        (bin_dir / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TGPO_NO_SLURM")}
    env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", CI=ci)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            f"{Path(__file__)}::test_snakemake_profile_runs_on_real_slurm",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert outcome in result.stdout and (result.returncode != 0) == bool(ci), result.stdout[-3000:]
    assert "needs a running SLURM" in result.stdout and "Unable to contact slurm controller" in result.stdout
