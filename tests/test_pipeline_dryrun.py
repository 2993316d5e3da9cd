"""Snakemake dry runs of the real Snakefile: the miniature's job list, and both paper configs through
the SLURM profile with every training job asking for its GPUs (no cluster needed for a dry run)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tgpo.config import evaluation_setting, experiment_seeds, load_config, training_experiments
from tgpo.config.resolve import checkpoint_choice
from tgpo.results.layout import ResultsLayout

ROOT = Path(__file__).resolve().parents[1]


def dry_run(*args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def job_stats(output: str) -> Counter:
    table = output.split("Job stats:", 1)[1]
    counts = Counter()
    for line in table.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def jobs_of(output: str, rule: str) -> list[str]:
    """The text blocks of every job of `rule` in a dry-run listing."""
    blocks = re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", output)
    return [block for block in blocks if re.search(rf"^(?:local)?rule {rule}:", block, re.M)]


def test_miniature_plans_every_experiment_and_output():
    """The local engine: one job per trained experiment trains and evaluates all its seeds (a rule per
    seed list: `train_seeds_0_1_2`, `train_seeds_0`, ...); eval-only experiments get an evaluation job."""
    config = load_config(ROOT / "config" / "default.yaml")
    output = dry_run("-c2", "--configfile", "config/default.yaml", "--forceall")
    counts = job_stats(output)
    trained = training_experiments(config)
    seed_lists = {name: config["experiments"][name].get("seeds", [0]) for name in trained}
    assert len(set(map(tuple, seed_lists.values()))) > 1  # so both rule forms are exercised
    train_counts = {rule: n for rule, n in counts.items() if rule.startswith("train")}
    assert sum(train_counts.values()) == len(trained)
    for name, seeds in seed_lists.items():
        rule = "train_seeds_" + "_".join(map(str, seeds))
        (block,) = [b for b in jobs_of(output, rule) if re.search(rf"wildcards: experiment={name}\n", b)]
        layout = ResultsLayout.of(config)
        for seed in seeds:  # one job writes every seed's run and its evaluation
            assert str(layout.run(name, seed).run_json) in block, (name, seed)
            assert str(layout.eval_file(name, seed, "gpqa_diamond")) in block, (name, seed)
    assert sum(n for rule, n in counts.items() if rule.startswith("evaluate")) == len(config["experiments"]) - len(
        trained
    )
    assert counts["build_model"] == len(config["models"])
    for output_name in ("table1", "table2", "table3", "fig2", "fig4", "fig5", "fig6", "summary", "world", "traces"):
        assert counts[output_name] == 1, output_name


@pytest.mark.parametrize("config_name", ["paper-7b.yaml", "paper-1.5b.yaml"])
def test_paper_config_through_slurm_profile_asks_for_gpus(config_name):
    config = load_config(ROOT / "config" / config_name)
    if config_name == "paper-1.5b.yaml":  # Table 3's KDRL and RKL report their best save on the test sets
        assert {name for name in config["experiments"] if checkpoint_choice(config, name) == "test"} == {
            "kdrl",
            "op_distill",
        }
    output = dry_run("--profile", "slurm", "--configfile", f"config/{config_name}", "--forceall")
    counts = job_stats(output)
    train_jobs = jobs_of(output, "train")
    expected_runs = {
        (name, seed) for name in training_experiments(config) for seed in config["experiments"][name].get("seeds", [0])
    }
    assert counts["train"] == len(expected_runs) == len(train_jobs)
    planned = set()
    for block in train_jobs:
        wildcards = re.search(r"wildcards: experiment=(\S+), seed=(\d+)", block)
        planned.add((wildcards.group(1), int(wildcards.group(2))))
        n_gpus = {**config["training"], **config["experiments"][wildcards.group(1)].get("training", {})}["n_gpus"]
        assert f"gres=gpu:{n_gpus}" in block, block
        assert "tasks_per_gpu=0" in block
    assert planned == expected_runs
    check_evaluation_jobs(config, output)
    check_hub_download_first(config, output)
    assert counts["prepare_model"] >= 1 and counts["prepare_data"] == 1


def check_evaluation_jobs(config, output):
    """Issue 18, item 6: one job per experiment x seed x benchmark (a retry redoes only missing files), each
    with its experiment's own GPUs (vLLM tensor parallel) and time limit. Item 5: a `checkpoint_choice:
    test` run has every save evaluated (evaluate_saves, one job per benchmark), then one choose_checkpoint."""
    test_choice = {name for name in config["experiments"] if checkpoint_choice(config, name) == "test"}

    def planned_jobs(rule, names):
        expected = {(e, s, b) for e in names for s in experiment_seeds(config, e) for b in config["benchmarks"]}
        jobs = jobs_of(output, rule)
        planned = set()
        for block in jobs:
            found = re.search(r"wildcards: experiment=(\S+), seed=(\d+), benchmark=(\S+)", block)
            experiment, seed, benchmark = found.group(1), int(found.group(2)), found.group(3)
            planned.add((experiment, seed, benchmark))
            assert f"gres=gpu:{evaluation_setting(config, experiment, 'n_gpus')}" in block, block
            assert f"runtime={evaluation_setting(config, experiment, 'runtime_min')}" in block, block
        assert planned == expected and len(jobs) == len(expected), rule
        return jobs

    jobs = planned_jobs("evaluate", [name for name in config["experiments"] if name not in test_choice])
    teacher = [block for block in jobs if "experiment=teacher," in block]
    assert all("gres=gpu:4" in block and "runtime=720" in block for block in teacher)
    planned_jobs("evaluate_saves", sorted(test_choice))
    chosen = {
        re.search(r"wildcards: experiment=(\S+), seed=", b).group(1) for b in jobs_of(output, "choose_checkpoint")
    }
    assert chosen == test_choice


def check_hub_download_first(config, output):
    """Issue 18, item 7: the `download` job writes the hub manifest every job reading hub content waits for."""
    manifest = f"results/{config['name']}/hub.json"
    (download,) = jobs_of(output, "download")
    assert manifest in download
    for rule in ("prepare_model", "prepare_data", "teacher_traces", "train", "evaluate"):
        blocks = jobs_of(output, rule)
        assert blocks and all(manifest in block.split("output:")[0] for block in blocks), rule
    # a local rule (it runs where Snakemake runs: the login node); a dry run does not print the marker
    rule_text = (ROOT / "workflows" / "data.smk").read_text().split("rule download:", 1)[1].split("\n\n\n", 1)[0]
    assert "localrule: True" in rule_text


def test_a_bad_config_fails_before_any_job_naming_the_key(tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    config["experiments"]["tgpo"]["hparms"] = config["experiments"]["tgpo"].pop("hparams")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    completed = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode != 0
    assert "experiments.tgpo.hparms" in completed.stdout + completed.stderr
