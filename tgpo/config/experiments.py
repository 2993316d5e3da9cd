"""What a config runs: its selected and training experiments, their seeds, the models' draw, evaluation settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# An evaluation job's resources on the cluster (vLLM backend), unless `evaluation:` or the experiment's own
# `evaluation:` block says otherwise: GPUs = vLLM's tensor-parallel size, and the time limit of ONE job, which
# generates ONE benchmark (workflows/eval.smk).
EVALUATION_RESOURCE_DEFAULTS = {"n_gpus": 1, "runtime_min": 240}


def evaluation_setting(config: Mapping[str, Any], experiment: str, key: str) -> Any:
    """An evaluation setting for one experiment: its own `evaluation:` block, else the config's, else
    EVALUATION_RESOURCE_DEFAULTS (None for a key without a default)."""
    own = config["experiments"][experiment].get("evaluation") or {}
    if key in own:
        return own[key]
    shared = config.get("evaluation") or {}
    return shared.get(key, EVALUATION_RESOURCE_DEFAULTS.get(key))


def build_seed(config: Mapping[str, Any]) -> int:
    """The seed of the built models (initialisation and pretraining: the base models' draw), `build_seed`,
    else the config's `seed`. The RL seeds of the experiments do not change it."""
    return int(config.get("build_seed", config.get("seed", 0)))


def experiment_seeds(config: Mapping[str, Any], experiment: str) -> list[int]:
    spec = config["experiments"][experiment]
    if spec.get("eval_only"):
        return [0]
    return list(spec.get("seeds", [config.get("seed", 0)]))


def selected_experiments(config: Mapping[str, Any]) -> list[str]:
    """The experiments this invocation runs: `only_experiments` when set (a selection), else all of them."""
    only = config.get("only_experiments")
    return [name for name in config["experiments"] if only is None or name in only]


def training_experiments(config: Mapping[str, Any]) -> list[str]:
    """The selected experiments that train (not eval_only)."""
    return [name for name in selected_experiments(config) if not config["experiments"][name].get("eval_only")]
