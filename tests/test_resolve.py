"""The resolver (tgpo.config.resolve): one precedence for every setting, identical in both engines; the
schema's setting lists are the registry's; the layout names every run path."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import pytest
import torch
from conftest import tiny_config, write_config

from tgpo.cli import main as tgpo_main
from tgpo.config import ConfigError, load_config, validate
from tgpo.config.resolve import (
    CONFIG_TRAINING,
    ENGINE_DEFAULT,
    EXPERIMENT_HPARAMS,
    EXPERIMENT_TRAINING,
    METHOD_DEFAULT,
    TRAINING_NAMES,
    resolve_experiment,
)
from tgpo.engine.run_spec import RunSpec
from tgpo.engine.trainer import Trainer
from tgpo.methods import HPARAM_NAMES, get_method
from tgpo.results.layout import ResultsLayout, run_layout, seed_of_dir
from tgpo.verl.translate import experiment_overrides

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
OPTIM_LR = "actor_rollout_ref.actor.optim.lr="


# ------------------------------------------------------------------------- learning-rate precedence
# (method, config training lr, experiment hparams lr, experiment training lr) -> the lr both engines use
LR_CASES = [
    ("tgpo", None, None, None, 1e-6),  # the method default (paper App. B.1)
    ("tgpo", 3e-6, None, None, 3e-6),  # config training beats the method default (issue 9, defect 7)
    ("tgpo", 3e-6, 2e-6, None, 2e-6),  # experiment hparams beat config training
    ("tgpo", 3e-6, None, 4e-6, 4e-6),  # experiment training beats config training
    ("sft", None, None, None, 5e-5),  # SFT's method default (App. B.1)
    ("sft", 3e-6, None, None, 3e-6),
    ("sft", 3e-6, 2e-6, None, 2e-6),
]


@pytest.mark.parametrize("method,config_lr,hparams_lr,training_lr,expected", LR_CASES)
def test_both_engines_train_at_the_same_learning_rate(
    method,
    config_lr,
    hparams_lr,
    training_lr,
    expected,
    tiny_models,
    tiny_data,
    digit_verifier,
    tmp_path,
    monkeypatch,
    capsys,
):
    monkeypatch.chdir(tmp_path)
    experiment = {}
    if hparams_lr is not None:
        experiment["hparams"] = {"lr": hparams_lr}
    if training_lr is not None:
        experiment["training"] = {"lr": training_lr}
    # a verifier the verl reward grades (tgpo.verl.reward.GRADING_RULES); the learning rate does not depend on it
    config = tiny_config(
        tiny_models,
        tiny_data,
        "mini_arith",
        method=method,
        training={} if config_lr is None else {"lr": config_lr},
        experiment=experiment,
    )
    path = write_config(config, tmp_path)

    # verl: what `python -m tgpo verl-overrides` prints
    capsys.readouterr()
    assert (
        tgpo_main(
            ["verl-overrides", "--config", str(path), "--experiment", "run", "--seed", "0"]
            + (["--sft"] if method == "sft" else [])
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    key = "optim.lr=" if method == "sft" else OPTIM_LR
    verl_lr = [float(line.split("=", 1)[1]) for line in lines if line.startswith(key)]
    assert verl_lr == [pytest.approx(expected)]

    # local engine: the optimizer's learning rate
    trainer = Trainer(RunSpec.from_resolved(resolve_experiment(load_config(path), "run", 0)), progress=False)
    assert trainer.optimizer.param_groups[0]["initial_lr"] == pytest.approx(expected)
    assert trainer.hparams["lr"] == pytest.approx(expected)


# ------------------------------------------------------------------------- sources and errors
def test_every_setting_has_its_source(tiny_models, tiny_data, digit_verifier):
    config = tiny_config(
        tiny_models,
        tiny_data,
        digit_verifier,
        training={"lr": 3e-6},
        experiment={"hparams": {"w_init": 0.5}, "training": {"steps": 7}},
    )
    resolved = resolve_experiment(config, "run", 0)
    assert resolved.settings["w_init"].value == 0.5 and resolved.settings["w_init"].source == EXPERIMENT_HPARAMS
    assert resolved.settings["steps"].value == 7 and resolved.settings["steps"].source == EXPERIMENT_TRAINING
    assert resolved.settings["lr"].source == CONFIG_TRAINING
    assert resolved.settings["delta"].value == get_method("tgpo").defaults["delta"]
    assert resolved.settings["delta"].source == METHOD_DEFAULT
    assert resolved.settings["weight_decay"].source == ENGINE_DEFAULT
    assert set(HPARAM_NAMES) & set(get_method("tgpo").defaults) <= set(resolved.hparams)
    assert resolved.run.root == Path("results/tiny/runs/run/seed0")


def test_run_hash_follows_what_determines_the_training(tiny_models, tiny_data, digit_verifier):
    config = tiny_config(tiny_models, tiny_data, digit_verifier, experiment={"hparams": {"w_init": 0.1}})
    base = resolve_experiment(config, "run", 0).run_hash
    changed = copy.deepcopy(config)
    changed["experiments"]["run"]["hparams"]["w_init"] = 0.5
    assert resolve_experiment(changed, "run", 0).run_hash != base
    assert resolve_experiment(config, "run", 1).run_hash != base
    scheduler_only = copy.deepcopy(config)
    scheduler_only["training"]["runtime_min"] = 999  # a SLURM limit: the same training
    assert resolve_experiment(scheduler_only, "run", 0).run_hash == base
    same_value = copy.deepcopy(config)  # the same value from another source: the same training
    same_value["experiments"]["run"]["hparams"]["delta"] = get_method("tgpo").defaults["delta"]
    assert resolve_experiment(same_value, "run", 0).run_hash == base


def test_a_setting_given_twice_differently_is_rejected(tiny_models, tiny_data, digit_verifier):
    config = tiny_config(
        tiny_models, tiny_data, digit_verifier, experiment={"hparams": {"lr": 1e-6}, "training": {"lr": 2e-6}}
    )
    with pytest.raises(ConfigError, match=r"experiments\.run.*\['lr'\].*both `hparams` and `training`"):
        validate(config, "tiny.yaml")


def test_a_required_setting_nothing_sets_is_named(tiny_models, tiny_data, digit_verifier):
    config = tiny_config(tiny_models, tiny_data, digit_verifier)
    del config["training"]["micro_batch_size"]
    with pytest.raises(ConfigError, match=r"experiments\.run: setting 'micro_batch_size' is not set"):
        RunSpec.from_resolved(resolve_experiment(config, "run", 0))


def test_hand_written_run_spec_records_the_lr_it_trains_at(tiny_models, tiny_data, digit_verifier, tmp_path):
    spec = RunSpec(
        experiment="x",
        method="tgpo",
        hparams={},
        seed=0,
        output_dir=tmp_path / "x",
        student_path=tiny_models["student"],
        teacher_path=tiny_models["teacher"],
        train_data=tiny_data["train"],
        verifier=digit_verifier,
        steps=1,
        prompts_per_step=2,
        group_size=2,
        max_new_tokens=8,
        micro_batch_size=4,
        lr=5e-5,
        save_every=1,
    )
    assert spec.hparams["lr"] == 5e-5 and spec.hparams["w_init"] == get_method("tgpo").defaults["w_init"]
    from tgpo.engine.run_spec import RunSpecError

    with pytest.raises(RunSpecError, match=r"hparams\.lr = 1e-06 disagrees with RunSpec\.lr = 5e-05"):
        RunSpec.from_dict({**spec.to_dict(), "hparams": {"lr": 1e-6}})


# ------------------------------------------------------------------------- verl mapping, schema
def test_method_defaults_reach_verl_through_the_resolver():
    config = load_config(ROOT / "config" / "paper-7b.yaml")
    config = copy.deepcopy(config)
    config["experiments"]["oat"] = {"method": "oat_zero", "student": config["experiments"]["tgpo"]["student"]}
    config["experiments"]["grpo"] = {"method": "grpo_pp", "student": config["experiments"]["tgpo"]["student"]}
    oat = dict(line.split("=", 1) for line in experiment_overrides(config, "oat", 0))
    assert (
        float(oat["actor_rollout_ref.actor.loss_scale_factor"]) == get_method("oat_zero").defaults["loss_scale_factor"]
    )
    grpo = dict(line.split("=", 1) for line in experiment_overrides(config, "grpo", 0))
    assert grpo["actor_rollout_ref.actor.use_kl_loss"] == "false"
    assert float(grpo["actor_rollout_ref.actor.clip_ratio_c"]) == get_method("grpo_pp").defaults["clip_ratio_c"]
    # verl_overrides hold no hyper-parameter values: the resolver is their one home
    assert not any(
        key.endswith(("optim.lr", "clip_ratio_low", "entropy_coeff")) for key in get_method("oat_zero").verl_overrides
    )


def test_schema_setting_lists_are_the_registry_lists():
    schema = json.loads(resources.files("tgpo.config").joinpath("schema.json").read_text())
    assert set(schema["$defs"]["hparams"]["properties"]) == set(HPARAM_NAMES)
    assert set(schema["$defs"]["training"]["properties"]) == set(TRAINING_NAMES) | {"lr"}


def test_clip_ratio_c_is_accepted_in_hparams(tiny_models, tiny_data, digit_verifier):
    config = tiny_config(tiny_models, tiny_data, digit_verifier, experiment={"hparams": {"clip_ratio_c": 10.0}})
    validate(config, "tiny.yaml")
    assert resolve_experiment(config, "run", 0).hparams["clip_ratio_c"] == 10.0


# ------------------------------------------------------------------------- layout
def test_layout_names_every_run_path():
    layout = ResultsLayout.of({"name": "mini"})
    run = layout.run("tgpo", 2)
    assert str(run.root) == "results/mini/runs/tgpo/seed2"
    assert (run.checkpoints.name, run.final_checkpoint.name, run.metrics.name, run.run_json.name) == (
        "checkpoints",
        "checkpoint",
        "metrics.jsonl",
        "run.json",
    )
    assert str(layout.eval_file("tgpo", 2, "math500")) == "results/mini/eval/tgpo/seed2/math500.parquet"
    assert str(layout.run("{experiment}", "{seed}").run_json) == "results/mini/runs/{experiment}/seed{seed}/run.json"
    assert run_layout(layout.runs, "tgpo", 2) == run
    assert str(layout.log("train", "tgpo", "seed2")) == "results/mini/logs/train/tgpo/seed2.log"
    stale = run.stale("abc", when=0)
    assert stale.parent == run.root.parent and stale.name.startswith("seed2.stale-abc-")
    assert seed_of_dir("seed2") == 2 and seed_of_dir(stale.name) is None
