"""The resolver: (config, experiment, seed) -> the resolved experiment, the one place settings are merged.

Every setting (each hyper-parameter of `tgpo.methods.HPARAM_NAMES` and each engine setting of
`TRAINING_DEFAULTS`) takes its value from the first of these that sets it, identically for both
engines:

  1. the experiment's `hparams:` or `training:` (setting one name in both, to different values, is an error)
  2. the config's `training:`
  3. the method's default (`MethodSpec.defaults`, each with its source)
  4. the engine default (`TRAINING_DEFAULTS`, `ENGINE_DEFAULTS`)

The resolved experiment also holds the model and data paths, the run's folder (tgpo.results.layout) and a
hash of everything that determines the training (`run_hash`): the Snakefile re-runs a training job
when it changes, run.json and every checkpoint record it, and a run never resumes a checkpoint whose
hash differs (tgpo.results.run_guard). The local engine (`tgpo.engine.run_spec.RunSpec.from_resolved`), the
verl translation (`tgpo.verl.translate`) and the workflows all read settings from here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tgpo.config.errors import ConfigError
from tgpo.config.paths import model_location, traces_path, train_data_path
from tgpo.methods import HPARAM_NAMES, MethodSpec, get_method
from tgpo.results.layout import ResultsLayout, RunLayout
from tgpo.settings import TRAINING

# Where a value came from, highest precedence first.
EXPERIMENT_HPARAMS = "experiment hparams"
EXPERIMENT_TRAINING = "experiment training"
CONFIG_TRAINING = "config training"
METHOD_DEFAULT = "method default"
ENGINE_DEFAULT = "engine default"

# Engine settings a config's `training:` (or an experiment's) may set, with the default used when none
# does; None: no default (the engine that needs it says so). Their table, with types and meanings, is
# tgpo.settings.TRAINING; lr is a hyper-parameter (its default is the method's) that `training:` may set too.
TRAINING_DEFAULTS: Mapping[str, Any] = MappingProxyType({setting.name: setting.default for setting in TRAINING})
ENGINE_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "local": MappingProxyType({"runtime_min": 60}),
        "verl": MappingProxyType({"runtime_min": 2880, "n_gpus": 8}),  # one 8-GPU node, 48 h
    }
)
TRAINING_NAMES = tuple(TRAINING_DEFAULTS)
SETTING_NAMES = tuple(dict.fromkeys(HPARAM_NAMES + TRAINING_NAMES))
# Settings that do not change what is trained (a scheduler's limits); left out of run_hash.
NOT_TRAINING_DETERMINING = frozenset({"runtime_min", "loggers"})


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # EXPERIMENT_HPARAMS | EXPERIMENT_TRAINING | CONFIG_TRAINING | METHOD_DEFAULT | ENGINE_DEFAULT | ...


def layered_settings(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Setting]:
    """name -> Setting: each name's value from the first layer (source, values) that has it (None = unset)."""
    settings: dict[str, Setting] = {}
    for source, values in layers:
        for name, value in values.items():
            if name not in settings and value is not None:
                settings[name] = Setting(value, source)
    return settings


def resolve_settings(
    method: MethodSpec,
    *,
    experiment_hparams: Mapping[str, Any] | None = None,
    experiment_training: Mapping[str, Any] | None = None,
    config_training: Mapping[str, Any] | None = None,
    engine: str = "local",
    where: str = "<config>",
) -> dict[str, Setting]:
    """Every setting of one experiment with its source (the precedence of the module docstring)."""
    experiment_hparams = dict(experiment_hparams or {})
    experiment_training = dict(experiment_training or {})
    config_training = dict(config_training or {})
    for section, values, allowed in (
        ("hparams", experiment_hparams, HPARAM_NAMES),
        ("training", experiment_training, SETTING_NAMES),
        ("training", config_training, SETTING_NAMES),
    ):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: {section}: unknown setting(s) {unknown}; known: {list(allowed)}")
    both = {
        name
        for name in experiment_hparams.keys() & experiment_training.keys()
        if experiment_hparams[name] != experiment_training[name]
    }
    if both:
        raise ConfigError(f"{where}: {sorted(both)} set to different values in both `hparams` and `training`")
    if engine not in ENGINE_DEFAULTS:
        raise ConfigError(f"{where}: engine {engine!r}: expected one of {sorted(ENGINE_DEFAULTS)}")
    return layered_settings(
        [
            (EXPERIMENT_HPARAMS, experiment_hparams),
            (EXPERIMENT_TRAINING, experiment_training),
            (CONFIG_TRAINING, config_training),
            (METHOD_DEFAULT, method.defaults),
            (ENGINE_DEFAULT, ENGINE_DEFAULTS[engine]),
            (ENGINE_DEFAULT, TRAINING_DEFAULTS),
        ]
    )


@dataclass(frozen=True)
class ResolvedExperiment:
    """One training run as it will be trained: method, every setting with its source, paths, hash."""

    experiment: str
    seed: int
    method: str
    engine: str
    settings: Mapping[str, Setting]
    student: str  # model locations (tgpo.config.model_location): a folder or a hub id
    teacher: str | None
    reference: str | None  # KL reference / PRIME's reward-model init: the initial student, when needed
    student_key: str
    teacher_key: str | None
    train_data: str
    traces_data: str | None  # teacher traces, for the methods that train on them
    run: RunLayout
    run_hash: str  # settings_hash of what determines the training

    def value(self, name: str) -> Any:
        """The value of one setting; ConfigError naming it when nothing sets it."""
        if name not in self.settings:
            raise ConfigError(
                f"experiments.{self.experiment}: setting {name!r} is not set (set `training.{name}` in the config)"
            )
        return self.settings[name].value

    @property
    def hparams(self) -> dict[str, Any]:
        """The method's hyper-parameters (the names of tgpo.methods.HPARAM_NAMES that are set)."""
        return {name: self.settings[name].value for name in HPARAM_NAMES if name in self.settings}

    @property
    def training(self) -> dict[str, Any]:
        """The engine settings (the names of TRAINING_DEFAULTS that are set), lr and sft_epochs included."""
        return {name: self.settings[name].value for name in TRAINING_NAMES + ("lr",) if name in self.settings}

    @property
    def sources(self) -> dict[str, str]:
        return {name: setting.source for name, setting in self.settings.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what run.json records as the resolved experiment."""
        return {
            "experiment": self.experiment,
            "seed": self.seed,
            "method": self.method,
            "engine": self.engine,
            "run_hash": self.run_hash,
            "settings": {name: {"value": s.value, "source": s.source} for name, s in sorted(self.settings.items())},
            "models": {"student": self.student, "teacher": self.teacher, "reference": self.reference},
            "data": {"train": self.train_data, "traces": self.traces_data},
            "run_dir": str(self.run.root),
        }


# Keys of a model entry that name or describe it without changing its weights: left out of run_hash.
DESCRIPTIVE_KEYS = frozenset({"label", "note"})


def numbers_of(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A model entry without its descriptive keys: what changes the numbers a run starts from."""
    return None if entry is None else {key: value for key, value in entry.items() if key not in DESCRIPTIVE_KEYS}


def settings_hash(determining: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of `determining` as canonical JSON."""
    return hashlib.sha256(json.dumps(determining, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_experiment(config: Mapping[str, Any], experiment: str, seed: int) -> ResolvedExperiment:
    """The resolved training run of `experiment` with `seed` (the config is validated already)."""
    experiments = config["experiments"]
    if experiment not in experiments:
        raise ConfigError(f"experiments.{experiment}: no such experiment; known: {sorted(experiments)}")
    entry = experiments[experiment]
    if entry.get("eval_only"):
        raise ConfigError(f"experiments.{experiment}: eval_only experiments are not trained")
    method = get_method(entry["method"])
    engine = config.get("engine", "local")
    settings = resolve_settings(
        method,
        experiment_hparams=entry.get("hparams"),
        experiment_training=entry.get("training"),
        config_training=config.get("training"),
        engine=engine,
        where=f"experiments.{experiment}",
    )
    teacher_key = entry.get("teacher")
    student = model_location(config, entry["student"])
    teacher = model_location(config, teacher_key) if teacher_key else None
    train_data = train_data_path(config)
    traces_data = traces_path(config) if method.uses_teacher_traces else None
    determining = {
        "method": method.name,
        "engine": engine,
        "seed": int(seed),
        "settings": {name: s.value for name, s in settings.items() if name not in NOT_TRAINING_DETERMINING},
        # the model entries (build kind and steps, path, hub id, preparation) and the data settings
        # determine the checkpoints and tables a run starts from
        "models": {
            role: {"location": location, "entry": numbers_of(config["models"].get(key))}
            for role, key, location in (("student", entry["student"], student), ("teacher", teacher_key, teacher))
            if key
        },
        "data": {
            "train": train_data,
            "traces": traces_data,
            "config": {
                k: v
                for k, v in config.get("data", {}).items()
                if k == "train" or (k == "traces" and method.uses_teacher_traces)
            },
        },
        "world": config.get("world"),
    }
    return ResolvedExperiment(
        experiment=experiment,
        seed=int(seed),
        method=method.name,
        engine=engine,
        settings=MappingProxyType(settings),
        student=student,
        teacher=teacher,
        reference=student if method.needs_reference_model or method.needs_reward_model else None,
        student_key=entry["student"],
        teacher_key=teacher_key,
        train_data=train_data,
        traces_data=traces_data,
        run=ResultsLayout.of(config).run(experiment, int(seed)),
        run_hash=settings_hash(determining),
    )


def checkpoint_choice(config: Mapping[str, Any], experiment: str) -> str:
    """Which save an experiment reports (`training.checkpoint_choice`, resolved): "last" (the default and
    for eval-only rows), "validation" or "test" (App. B.3; tgpo.verl.lifecycle, eval.checkpoint_choice)."""
    if config["experiments"][experiment].get("eval_only"):
        return "last"
    return resolve_experiment(config, experiment, 0).training.get("checkpoint_choice") or "last"
