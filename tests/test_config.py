"""Config validation: every shipped config is valid; typos, unknown methods and missing teachers fail
before any job runs, with a message naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tgpo.config import ConfigError, load_config, validate
from tgpo.config.resolve import resolve_experiment
from tgpo.engine.run_spec import RunSpec

ROOT = Path(__file__).resolve().parents[1]
# whole configs; an overlay (a file with `scale_keys`) is valid on top of one (tests/test_cpu_overlay.py)
CONFIGS = sorted(
    path for path in (ROOT / "config").glob("*.yaml") if "scale_keys" not in yaml.safe_load(path.read_text())
)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_are_valid(path):
    config = load_config(path)
    assert config["experiments"]


@pytest.fixture()
def default_config():
    return yaml.safe_load((ROOT / "config" / "default.yaml").read_text())


def test_typo_in_a_key_names_the_key(default_config):
    bad = copy.deepcopy(default_config)
    bad["experiments"]["tgpo"]["hparms"] = bad["experiments"]["tgpo"].pop("hparams")
    with pytest.raises(ConfigError, match=r"experiments\.tgpo\.hparms.*did you mean 'hparams'"):
        validate(bad, "default.yaml")


def test_typo_in_a_training_key_names_the_key(default_config):
    bad = copy.deepcopy(default_config)
    bad["training"]["stpes"] = 3
    with pytest.raises(ConfigError, match=r"training\.stpes.*did you mean 'steps'"):
        validate(bad, "default.yaml")


def test_unknown_method_lists_the_known_ones(default_config):
    bad = copy.deepcopy(default_config)
    bad["experiments"]["tgpo"]["method"] = "tgpo_magic"
    with pytest.raises(ConfigError, match=r"experiments\.tgpo\.method: unknown method 'tgpo_magic'.*grpo_pp"):
        validate(bad, "default.yaml")


def test_missing_teacher_is_named(default_config):
    bad = copy.deepcopy(default_config)
    del bad["experiments"]["tgpo"]["teacher"]
    with pytest.raises(ConfigError, match=r"experiments\.tgpo\.teacher: method 'tgpo' needs a teacher"):
        validate(bad, "default.yaml")


def test_teacher_that_is_not_a_model_is_named(default_config):
    bad = copy.deepcopy(default_config)
    bad["experiments"]["tgpo"]["teacher"] = "teacher_typo"
    with pytest.raises(ConfigError, match=r"experiments\.tgpo\.teacher: 'teacher_typo' is not a key of `models`"):
        validate(bad, "default.yaml")


def test_report_row_naming_a_missing_experiment_fails(default_config):
    bad = copy.deepcopy(default_config)
    bad["report"]["fig2"]["series"][0]["experiment"] = "nope"
    with pytest.raises(ConfigError, match=r"report\.fig2: row 0 names experiment 'nope'"):
        validate(bad, "default.yaml")


def test_resolved_run_spec_applies_overrides(default_config):
    validate(default_config)
    run = RunSpec.from_resolved(resolve_experiment(default_config, "tgpo_annealing", seed=3))
    assert run.method == "tgpo_annealing"
    assert run.seed == 3
    assert run.hparams["w_init"] == default_config["experiments"]["tgpo_annealing"]["hparams"]["w_init"]
    assert run.steps == default_config["training"]["steps"]
    assert str(run.output_dir).endswith("runs/tgpo_annealing/seed3")
    assert run.teacher_path is not None and run.teacher_path.name == "teacher_cross"


def test_ci_config_is_the_default_pipeline_made_small():
    default = load_config(ROOT / "config" / "default.yaml")
    ci = load_config(ROOT / "config" / "ci.yaml")

    def one_seed(experiments):  # CI trains one seed of each experiment
        return {
            name: {key: value for key, value in spec.items() if key != "seeds"} for name, spec in experiments.items()
        }

    assert one_seed(ci["experiments"]) == one_seed(default["experiments"])
    assert not any("seeds" in spec for spec in ci["experiments"].values())
    assert ci["report"] == default["report"]
    assert set(ci["benchmarks"]) == set(default["benchmarks"])
    assert ci["training"]["steps"] < default["training"]["steps"]
