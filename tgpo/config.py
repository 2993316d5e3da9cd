"""Experiment configs: load, validate (JSON schema + cross-references), and answer questions about them.

A config (`config/*.yaml`) lists models, data, benchmarks, engine defaults and named experiments
(method + student + teacher + overrides + seeds); see `docs/architecture.md`. Every error names the
file and the key path, e.g. ``config/default.yaml: experiments.tgpo.hparms: unknown key``, and is
raised before any job runs (the Snakefile validates on load). Settings of one run are merged by
`tgpo.resolve`, paths under results/<name>/ are named by `tgpo.layout`.
"""

from __future__ import annotations

import argparse
import difflib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from tgpo.layout import ResultsLayout

# Methods whose teacher signal is not "none" need a teacher; SFT and LUFFY need teacher traces.
TEACHER_FREE_SIGNAL = "none"


class ConfigError(ValueError):
    """A config is invalid; the message names the file and the key."""


def _schema() -> dict:
    return json.loads(resources.files("tgpo").joinpath("config_schema.json").read_text())


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _describe_schema_error(error, source: str) -> str:
    import jsonschema  # noqa: F401  (imported for the error type only)

    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        prefix = f"{where}." if error.absolute_path else ""
        return (
            f"{source}: unknown key {prefix}{', '.join(k for k in unknown)}: "
            f"{'; '.join(hints)}; expected one of {allowed}"
        )
    return f"{source}: {where}: {error.message}"


def validate(config: Mapping[str, Any], source: str = "<config>") -> None:
    """Check `config` against the schema and its cross-references; raise ConfigError naming the key."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ConfigError(_describe_schema_error(errors[0], source))
    _check_references(config, source)


def _check_references(config: Mapping[str, Any], source: str) -> None:
    from tgpo.methods import get_method, list_methods
    from tgpo.resolve import resolve_settings

    models = config["models"]
    experiments = config["experiments"]
    for name, experiment in experiments.items():
        where = f"{source}: experiments.{name}"
        if experiment.get("eval_only"):
            model = experiment.get("model")
            if not model:
                raise ConfigError(f"{where}.model: an eval_only experiment needs `model` (a model key or hub id)")
            if model not in models and "/" not in model:
                raise ConfigError(
                    f"{where}.model: {model!r} is neither a key of `models` ({sorted(models)}) nor a hub id"
                )
            continue
        for key in ("method", "student"):
            if key not in experiment:
                raise ConfigError(f"{where}.{key}: missing (a training experiment needs method and student)")
        try:
            method = get_method(experiment["method"])
        except KeyError:
            raise ConfigError(
                f"{where}.method: unknown method {experiment['method']!r}; known methods: {list_methods()}"
            ) from None
        if experiment["student"] not in models:
            raise ConfigError(f"{where}.student: {experiment['student']!r} is not a key of `models` ({sorted(models)})")
        teacher = experiment.get("teacher")
        if method.teacher_signal != TEACHER_FREE_SIGNAL and not teacher:
            raise ConfigError(
                f"{where}.teacher: method {method.name!r} needs a teacher ({method.teacher_signal} signal) "
                "but none is set"
            )
        if teacher and teacher not in models:
            raise ConfigError(f"{where}.teacher: {teacher!r} is not a key of `models` ({sorted(models)})")
        if method.uses_teacher_traces and "traces" not in config["data"]:
            raise ConfigError(f"{where}.method: {method.name!r} trains on teacher traces but `data.traces` is missing")
        resolve_settings(method, experiment_hparams=experiment.get("hparams"),  # conflicting settings
                         experiment_training=experiment.get("training"), config_training=config.get("training"),
                         engine=config.get("engine", "local"), where=where)
    traces = config["data"].get("traces")
    if traces and traces["teacher"] not in models:
        raise ConfigError(f"{source}: data.traces.teacher: {traces['teacher']!r} is not a key of `models`")
    _check_id_alignment(config, source)
    for output, spec in config["report"].items():
        rows = spec.get("series") or spec.get("rows") or [r for g in spec.get("groups", []) for r in g["rows"]]
        for index, row in enumerate(rows):
            if row["experiment"] not in experiments:
                raise ConfigError(
                    f"{source}: report.{output}: row {index} names experiment {row['experiment']!r}, "
                    f"which is not in `experiments`"
                )
        for bench in spec.get("benchmarks", []):
            bench = bench["key"] if isinstance(bench, dict) else bench
            if bench not in config["benchmarks"]:
                raise ConfigError(f"{source}: report.{output}.benchmarks: {bench!r} is not a key of `benchmarks`")


def _check_id_alignment(config: Mapping[str, Any], source: str) -> None:
    """`models.<t>.prepare.align_ids_to: <s>` makes a copy of teacher t whose token ids are student s's
    (tgpo.model_prep, tgpo.vocab_alignment): it only scores s's token ids as s's teacher. Generating text
    (evaluation, teacher traces) and training use the teacher with its own tokenizer."""
    models, experiments = config["models"], config["experiments"]
    traces_teacher = (config["data"].get("traces") or {}).get("teacher")
    for key, model in models.items():
        target = (model.get("prepare") or {}).get("align_ids_to")
        if target is None:
            continue
        where = f"{source}: models.{key}.prepare.align_ids_to"
        own = "; use the model key of the teacher with its own tokenizer"
        if target not in models or target == key:
            raise ConfigError(f"{where}: {target!r} must be another key of `models` ({sorted(models)})")
        if traces_teacher == key:
            raise ConfigError(f"{source}: data.traces.teacher: {key!r} is a teacher re-indexed to {target!r}'s "
                              f"token ids ({where}), not a model to sample text from{own}")
        for name, experiment in experiments.items():
            if key in (experiment.get("student"), experiment.get("model")):
                raise ConfigError(f"{source}: experiments.{name}: {key!r} is a teacher re-indexed to {target!r}'s "
                                  f"token ids ({where}); it cannot be trained or evaluated itself{own}")
            if experiment.get("teacher") == key and experiment.get("student") != target:
                raise ConfigError(f"{source}: experiments.{name}.teacher: {key!r} speaks {target!r}'s token ids "
                                  f"({where}) but the student is {experiment.get('student')!r}; add a copy of the "
                                  f"teacher aligned to that student")


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML config; raise ConfigError naming the file and key on any problem."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(config).__name__}")
    validate(config, str(path))
    return config


def model_location(config: Mapping[str, Any], key_or_id: str) -> str:
    """Where the checkpoint of a model key lives: a built model's folder, a local path, or a hub id."""
    model = config["models"].get(key_or_id)
    if model is None:
        return key_or_id  # a hub id given directly (eval-only released checkpoints)
    if "build" in model or "prepare" in model:
        # built (miniature) or prepared (RoPE/context/vocabulary, cluster) by the pipeline itself
        return str(ResultsLayout.of(config).model(key_or_id))
    if "path" in model:
        return model["path"]
    return model["hub"]


def pipeline_made_model(config: Mapping[str, Any], key: str) -> bool:
    """True when the pipeline writes this model's checkpoint (so it is a Snakemake input)."""
    model = config["models"].get(key, {})
    return "build" in model or "prepare" in model


def build_seed(config: Mapping[str, Any]) -> int:
    """The seed of the built models (initialisation and pretraining: the base models' draw), `build_seed`,
    else the config's `seed`. The RL seeds of the experiments do not change it."""
    return int(config.get("build_seed", config.get("seed", 0)))


def experiment_seeds(config: Mapping[str, Any], experiment: str) -> list[int]:
    spec = config["experiments"][experiment]
    if spec.get("eval_only"):
        return [0]
    return list(spec.get("seeds", [config.get("seed", 0)]))


def training_experiments(config: Mapping[str, Any]) -> list[str]:
    return [name for name, spec in config["experiments"].items() if not spec.get("eval_only")]


def train_data_path(config: Mapping[str, Any]) -> str:
    """The prompt table training reads: the local engine reads `data.train.path` as it is; on the verl
    engine that path (or hub id) is prepare-data's source and the table is prepare-data's output."""
    train = config["data"]["train"]
    if config.get("engine") == "verl":
        return str(ResultsLayout.of(config).train_data)
    return train.get("path") or str(ResultsLayout.of(config).train_data)


def traces_path(config: Mapping[str, Any]) -> str:
    traces = config["data"].get("traces", {})
    return traces.get("path") or str(ResultsLayout.of(config).traces_data)


# verl parquet files (written by tgpo.verl.data_prep and tgpo.verl.teacher_traces, read by
# tgpo.verl.translate); their names live in tgpo.layout. App. B.1: every experiment uses one curated set,
# the prompts with a correct teacher trace.
def verl_data_dir(config: Mapping[str, Any]) -> Path:
    return ResultsLayout.of(config).verl_data


def verl_train_path(config: Mapping[str, Any]) -> Path:
    return ResultsLayout.of(config).verl_train


def verl_val_path(config: Mapping[str, Any]) -> Path:
    return ResultsLayout.of(config).verl_val


def curated_rl_path(config: Mapping[str, Any]) -> Path:
    return ResultsLayout.of(config).curated_rl


def curated_sft_path(config: Mapping[str, Any]) -> Path:
    return ResultsLayout.of(config).curated_sft


def rl_train_path(config: Mapping[str, Any]) -> Path:
    """What every RL experiment trains on: the curated set when the config re-samples teacher traces
    (`data.traces`, the paper's setting), else all prompts."""
    return curated_rl_path(config) if config["data"].get("traces") else verl_train_path(config)


def verl_train_files(config: Mapping[str, Any], experiment: str) -> Path:
    """The parquet one experiment trains on under verl: SFT (no rollouts) the curated conversations,
    every RL method `rl_train_path`."""
    from tgpo.methods import get_method

    method = get_method(config["experiments"][experiment]["method"])
    return rl_train_path(config) if method.rollouts else curated_sft_path(config)


# ---------------------------------------------------------------- CLI: python -m tgpo validate-config
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configs", nargs="+", help="config YAML files to validate")


def run(args: argparse.Namespace) -> int:
    for path in args.configs:
        config = load_config(path)
        n_train = len(training_experiments(config))
        print(f"{path}: OK ({len(config['experiments'])} experiments, {n_train} trained)")
    return 0
