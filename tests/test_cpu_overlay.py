"""The paper configs through the CPU scale overlay (config/cpu-overlay.yaml), and the config plumbing it needs:
files and --config entries merged once (results/<name>/config.yaml, what every job reads), an overlay that
changes only its declared scale keys, validate-config resolving every experiment as the jobs will."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tgpo import config as tgpo_config
from tgpo.config import ConfigError, changed_paths, merge_configs, read_config_file
from tgpo.config.loading import _matches as matches
from tgpo.config.resolve import resolve_experiment
from tgpo.results.layout import ResultsLayout

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / "config" / "cpu-overlay.yaml"
PAPER_CONFIGS = [ROOT / "config" / "paper-7b.yaml", ROOT / "config" / "paper-1.5b.yaml"]


def tgpo_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tgpo", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("paper", PAPER_CONFIGS, ids=lambda path: path.stem)
def test_overlay_changes_only_its_scale_keys(paper):
    base = tgpo_config.load_config(paper)
    merged = merge_configs([paper, OVERLAY])
    declared = read_config_file(OVERLAY)["scale_keys"]
    changed = [path for path in changed_paths(base, merged) if path != "scale_keys"]
    assert changed, "the overlay changes nothing"
    undeclared = [path for path in changed if not matches(path, declared)]
    assert not undeclared, f"the overlay changes keys it does not declare as scale keys: {undeclared}"
    # what must come from the paper config unchanged: in experiments, evaluation and report only GPUs, job
    # time limits and batch sizes move
    resource_keys = (
        ".training.n_gpus",
        ".training.prompts_per_step",
        ".training.save_every",
        ".evaluation.n_gpus",
        ".evaluation.runtime_min",
    )
    for key in ("experiments", "evaluation", "report"):
        for path in changed_paths(base[key], merged[key], f"{key}."):
            assert path.endswith(resource_keys) or path in ("evaluation.n_gpus", "evaluation.job_per_benchmark"), path

    def kept(evaluation):
        return {k: v for k, v in evaluation.items() if k not in ("n_gpus", "job_per_benchmark")}

    assert kept(base["evaluation"]) == kept(merged["evaluation"])  # the protocol, budgets, seed
    assert {name: e.get("hparams") for name, e in base["experiments"].items()} == {
        name: e.get("hparams") for name, e in merged["experiments"].items()
    }
    # every model key stands in locally; the results go to a folder of their own
    assert all("build" in model for model in merged["models"].values())
    assert ResultsLayout.of(merged).root.name == f"{base['name']}-cpu"


def test_overlay_adjusts_only_experiments_the_config_has():
    merged = merge_configs([PAPER_CONFIGS[1], OVERLAY])  # paper-1.5b has no sft, simplerl_zero, oat_zero
    assert set(merged["experiments"]) == set(tgpo_config.load_config(PAPER_CONFIGS[1])["experiments"])


def test_an_undeclared_overlay_key_is_refused(tmp_path):
    overlay = read_config_file(OVERLAY)
    overlay["training"]["lr"] = 1.0e-3  # a hyper-parameter, not scale
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    with pytest.raises(ConfigError, match=r"overlay\.yaml: training\.lr: not a scale key"):
        merge_configs([PAPER_CONFIGS[0], path])


def test_results_placeholder_is_the_results_folder():
    merged = merge_configs([PAPER_CONFIGS[0], OVERLAY])
    assert merged["data"]["train"]["path"] == "results/paper-7b-cpu/world/openr1-math-46k-8192.parquet"


def test_validate_config_names_a_template_that_does_not_exist(tmp_path):
    config = read_config_file(PAPER_CONFIGS[0])
    config["evaluation"]["template"] = "tgpo_system"  # the name both paper configs once carried
    config["evaluation"].pop("protocol", None)
    path = tmp_path / "paper-7b.yaml"
    path.write_text(yaml.safe_dump(config))
    completed = tgpo_cli("validate-config", str(path))
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "evaluation.template" in completed.stderr and "'tgpo_system'" in completed.stderr
    assert "allowed values: " in completed.stderr and "authors" in completed.stderr  # the allowed values
    assert "Traceback" not in completed.stderr


def test_validate_config_merges_files_as_snakemake_does():
    completed = tgpo_cli("validate-config", *map(str, [PAPER_CONFIGS[0], OVERLAY]), "--config", "training={steps: 3}")
    assert completed.returncode == 0, completed.stderr
    assert "every training and evaluation setting resolved" in completed.stdout


def test_config_entries_are_read_with_their_types():
    merged = merge_configs([PAPER_CONFIGS[0], OVERLAY], ["training={steps: 7, lr: 1.0e-5}"])
    assert merged["training"]["steps"] == 7 and merged["training"]["lr"] == 1.0e-5  # not "7" (Snakemake's parser)
    assert merged["training"]["group_size"] == 8  # merged key by key


def test_run_hash_ignores_labels_not_weights():
    config = merge_configs([PAPER_CONFIGS[0], OVERLAY])
    before = resolve_experiment(config, "tgpo", 0).run_hash
    config["models"]["qwen25_math_7b"]["label"] = "another label"
    config["experiments"]["tgpo"]["note"] = "a note"
    assert resolve_experiment(config, "tgpo", 0).run_hash == before
    config["models"]["qwen25_math_7b"]["build_steps"] += 1
    assert resolve_experiment(config, "tgpo", 0).run_hash != before


def dry_run(*args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def test_a_dry_run_writes_no_config():
    """A dry run must not change the config that a running pipeline's jobs read."""
    merged = ROOT / "results" / "paper-7b-cpu" / "config.yaml"
    before = merged.read_text() if merged.exists() else None
    dry_run("--configfile", str(PAPER_CONFIGS[0]), str(OVERLAY), "--config", "training={steps: 11}")
    assert (merged.read_text() if merged.exists() else None) == before


@pytest.mark.slow
def test_a_config_entry_reaches_the_training_job(tmp_path):
    """`--config 'training={steps: 7}'` and a second --configfile reach what the job reads: the pipeline
    writes the merged config when it runs, the training job's command names that file, and the verl overrides
    made from it train 7 steps."""
    from test_pipeline_e2e import copy_repo, snakemake

    workdir = copy_repo(tmp_path / "repo")
    args = ["--configfile", "config/paper-7b.yaml", "config/cpu-overlay.yaml", "--config", "training={steps: 7}"]
    snakemake(workdir, "-c1", *args, "--", "results/paper-7b-cpu/world", timeout=600)  # a cheap job: the world
    merged_file = "results/paper-7b-cpu/config.yaml"
    written = tgpo_config.load_config(workdir / merged_file)
    assert written["training"]["steps"] == 7 and written["name_suffix"] == "-cpu"
    listing = snakemake(workdir, "-n", "-p", *args, "--", "results/paper-7b-cpu/runs/grpo_pp/seed0/run.json")
    train_commands = [line for line in listing.stdout.splitlines() if "tgpo verl-train" in line]
    assert train_commands and all(f"--config {merged_file}" in line for line in train_commands), train_commands
    overrides = subprocess.run(
        [sys.executable, "-m", "tgpo", "verl-overrides", "--config", merged_file, "--experiment", "grpo_pp"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(workdir)},
    )
    assert overrides.returncode == 0, overrides.stderr
    assert "trainer.total_training_steps=7" in overrides.stdout.split()


def test_only_experiments_runs_a_selection_and_writes_what_ran():
    output = dry_run(
        "--forceall",
        "--configfile",
        str(PAPER_CONFIGS[0]),
        str(OVERLAY),
        "--config",
        "only_experiments=[base_7b, grpo_pp, rkl_cross]",
    )
    assert "rule train:" in output
    trains = output.count("rule train:")
    evaluations = output.count("rule evaluate:")
    assert (trains, evaluations) == (2, 3), (trains, evaluations)
    for written in ("table1.md", "table2.md", "fig2.pdf", "fig4.pdf"):
        assert written in output
    assert "fig5.pdf" not in output  # none of Figure 5's series ran: not written, and said so
    assert "nothing of ['fig5'] was run" in output
