"""The miniature's tuning rule (tgpo.mini.sweep) and the several-seeds-per-process CLIs."""

from __future__ import annotations

import argparse

import pytest

from tgpo.mini import sweep


def result(experiment: str, value: float, accuracy: float) -> dict:
    return {"experiment": experiment, "hyperparameter": "w_init", "value": value, "validation_accuracy": accuracy}


def test_best_values_take_the_highest_accuracy_and_the_smaller_value_on_ties():
    best = sweep.best_values([result("tgpo", 0.3, 0.61), result("tgpo", 0.1, 0.61), result("tgpo", 1.0, 0.40),
                              result("kdrl", 1.0, 0.55), result("kdrl", 0.03, 0.50)])
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


def test_train_cli_rejects_seed_with_seeds_and_output_dir_with_several_seeds():
    from tgpo.engine import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    both = parser.parse_args(["--config", "c.yaml", "--experiment", "x", "--seed", "0", "--seeds", "0", "1"])
    with pytest.raises(SystemExit, match="--seed or --seeds"):
        cli.resolve_specs(both)
    missing = parser.parse_args(["--config", "c.yaml", "--experiment", "x"])
    with pytest.raises(SystemExit, match="missing --seed"):
        cli.resolve_specs(missing)


def test_eval_experiment_cli_rejects_seed_with_seeds():
    from eval import experiment

    parser = argparse.ArgumentParser()
    experiment.add_arguments(parser)
    args = parser.parse_args(["--config", "c.yaml", "--experiment", "x", "--seed", "0", "--seeds", "0", "1"])
    with pytest.raises(SystemExit, match="--seed or --seeds"):
        experiment.run(args)
