"""The miniature's tuning rule (tgpo.mini.sweep) and the several-seeds-per-process CLIs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tgpo.mini import sweep

ROOT = Path(__file__).resolve().parents[1]


def result(experiment: str, value: float, accuracy: float) -> dict:
    return {"experiment": experiment, "hyperparameter": "w_init", "value": value, "validation_accuracy": accuracy}


def test_best_values_take_the_highest_accuracy_and_the_smaller_value_on_ties():
    best = sweep.best_values(
        [
            result("tgpo", 0.3, 0.61),
            result("tgpo", 0.1, 0.61),
            result("tgpo", 1.0, 0.40),
            result("kdrl", 1.0, 0.55),
            result("kdrl", 0.03, 0.50),
        ]
    )
    assert best["tgpo"]["value"] == 0.1 and best["kdrl"]["value"] == 1.0


def test_annealing_delta_reaches_zero_at_two_thirds_of_training():
    delta = sweep.annealing_delta(0.3, 300)
    assert delta == pytest.approx(0.3 / 200)  # the paper's schedule: w0 -> 0 at step 200 of 300
    assert 0.3 - delta * 200 == pytest.approx(0.0)


def test_the_shared_learning_rate_is_swept_on_grpo_pp_only():
    assert sweep.SWEEPS["grpo_pp"][0] == "lr"
    assert [name for name, (hyperparameter, _) in sweep.SWEEPS.items() if hyperparameter == "lr"] == ["grpo_pp", "sft"]


def test_sweep_points_name_a_missing_experiment():
    with pytest.raises(SystemExit, match="experiments.kdrl"):
        sweep.sweep_points({"experiments": {"tgpo": {}}}, ["tgpo", "kdrl"])
    points = sweep.sweep_points({"experiments": {"tgpo": {}}}, ["tgpo"])
    assert points == [("tgpo", "w_init", value) for value in sweep.SWEEPS["tgpo"][1]]


def parsed(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("verb", ["train", "eval-experiment"])
def test_seed_and_seeds_together_are_refused(verb):
    from eval import experiment
    from tgpo.engine import cli

    module, entry = {"train": (cli, cli.resolve_specs), "eval-experiment": (experiment, experiment.run)}[verb]
    args = parsed(module, ["--config", "c.yaml", "--experiment", "x", "--seed", "0", "--seeds", "0", "1"])
    with pytest.raises(SystemExit, match="--seed or --seeds"):
        entry(args)


def test_train_cli_needs_a_seed_one_output_dir_per_run_and_a_config_to_evaluate():
    from tgpo.engine import cli

    with pytest.raises(SystemExit, match="missing --seed"):
        cli.resolve_specs(parsed(cli, ["--config", "c.yaml", "--experiment", "x"]))
    config = str(ROOT / "config" / "default.yaml")
    several = parsed(
        cli, ["--config", config, "--experiment", "grpo_pp", "--seeds", "0", "1", "--output-dir", "/tmp/x"]
    )
    with pytest.raises(SystemExit, match="names one run's folder"):
        cli.resolve_specs(several)
    one = cli.resolve_specs(parsed(cli, ["--config", config, "--experiment", "grpo_pp", "--seeds", "0", "2"]))[1]
    assert [spec.seed for spec in one] == [0, 2]
    with pytest.raises(SystemExit, match="--evaluate needs --config"):
        cli.run(parsed(cli, ["--run-spec", "spec.json", "--evaluate"]))
