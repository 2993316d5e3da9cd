"""Verb `validate-config`: a config, checked as the jobs will read it, before any job is submitted.

    python -m tgpo validate-config config/default.yaml
    python -m tgpo validate-config config/paper-7b.yaml config/cpu-overlay.yaml --config 'training={steps: 2}'

The files are merged in order as `snakemake --configfile A B --config ...` merges them
(tgpo.config.merge_configs), checked against the schema and its cross-references (tgpo.config.validate),
and then every experiment is resolved with the code its jobs run:

- training: the resolved experiment of every seed (tgpo.config.resolve), the verifier, and on the verl engine the
  Hydra overrides (tgpo.verl.translate, which checks verl's divisibility rules);
- evaluation: for every experiment x benchmark, the settings of its protocol (eval.protocols, through
  eval.experiment.benchmark_settings) and the benchmark spec (eval.experiment.benchmark_spec).

A wrong name fails here, naming the file, the key and the allowed values, instead of in a job days later.
The Snakefile runs the same check on every invocation. It sits in `eval/` because it reads both layers
(tgpo may not import eval).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from tgpo import config as tgpo_config
from tgpo.config import ConfigError


def resolve_training(config: Mapping[str, Any], experiment: str, source: str) -> None:
    """Resolve every seed of one training experiment as its job will (and translate it for verl)."""
    from tgpo.config.resolve import resolve_experiment
    from tgpo.verifiers import get_verifier

    where = f"{source}: experiments.{experiment}"
    for seed in tgpo_config.experiment_seeds(config, experiment):
        resolved = resolve_experiment(config, experiment, seed)
        verifier = resolved.training.get("verifier")
        try:
            get_verifier(verifier)
        except KeyError as error:
            raise ConfigError(f"{where}: training.verifier: {error.args[0]}") from None
        if config.get("engine") == "verl":
            from tgpo.verl import translate

            try:
                if resolved.method == "sft":
                    translate.sft_overrides(dict(config), experiment, seed)
                else:
                    translate.experiment_overrides(dict(config), experiment, seed)
            except (KeyError, ValueError) as error:
                raise ConfigError(f"{where}: {error.args[0] if error.args else error}") from None


def resolve_evaluations(config: Mapping[str, Any], experiment: str, source: str) -> None:
    """Resolve every benchmark's evaluation settings (eval.protocols) and spec for one experiment, as its
    eval-experiment job will (the names themselves are checked by tgpo.config.validate)."""
    from eval.experiment import benchmark_settings, benchmark_spec

    spec = config["experiments"][experiment]
    model = tgpo_config.model_location(config, spec["model"]) if spec.get("eval_only") else ""
    for benchmark in config["benchmarks"]:
        where = f"{source}: evaluation of experiments.{experiment} on benchmarks.{benchmark}"
        try:
            benchmark_spec(benchmark, benchmark_settings(config, experiment, benchmark, model))
        except (KeyError, ValueError) as error:
            raise ConfigError(f"{where}: {error.args[0] if error.args else error}") from None


def preflight(config: Mapping[str, Any], source: str) -> None:
    """Resolve every experiment's training and evaluation settings; ConfigError naming the first failure."""
    for experiment, spec in config["experiments"].items():
        if not spec.get("eval_only"):
            resolve_training(config, experiment, source)
        resolve_evaluations(config, experiment, source)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "configs", nargs="+", help="config YAML files, merged in order as `snakemake --configfile A B` merges them"
    )
    parser.add_argument(
        "--config",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="overrides as for `snakemake --config` (values read as YAML)",
    )


def run(args: argparse.Namespace) -> int:
    config = tgpo_config.merge_configs(args.configs, args.config)
    source = " + ".join(args.configs)
    preflight(config, source)
    n_train = len(tgpo_config.training_experiments(config))
    print(
        f"{source}: OK ({len(config['experiments'])} experiments, {n_train} trained, every training and "
        f"evaluation setting resolved)"
    )
    return 0
