"""Config files: read, merged as Snakemake merges them (scale overlays, --config entries), validated (JSON
schema + cross-references).

A config (`config/*.yaml`) lists models, data, benchmarks, engine defaults and named experiments
(method + student + teacher + overrides + seeds); see `docs/architecture.md`. Every error names the
file and the key path, e.g. ``config/default.yaml: experiments.tgpo.hparms: unknown key``, and is
raised before any job runs (the Snakefile validates on load). Settings of one run are merged by
`tgpo.config.resolve`; where a config's inputs live is `tgpo.config.paths`, what it runs `tgpo.config.experiments`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tgpo.config.errors import ConfigError
from tgpo.results.layout import ResultsLayout

# Methods whose teacher signal is not "none" need a teacher; SFT and LUFFY need teacher traces.
TEACHER_FREE_SIGNAL = "none"


def _schema() -> dict:
    return json.loads(resources.files("tgpo.config").joinpath("schema.json").read_text())


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
    from tgpo.config.resolve import resolve_settings
    from tgpo.methods import get_method, list_methods

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
        resolve_settings(
            method,
            experiment_hparams=experiment.get("hparams"),  # conflicting settings
            experiment_training=experiment.get("training"),
            config_training=config.get("training"),
            engine=config.get("engine", "local"),
            where=where,
        )
    for name in config.get("only_experiments", []):
        if name not in experiments:
            raise ConfigError(f"{source}: only_experiments: {name!r} is not in `experiments` ({sorted(experiments)})")
    traces = config["data"].get("traces")
    if traces and traces["teacher"] not in models:
        raise ConfigError(f"{source}: data.traces.teacher: {traces['teacher']!r} is not a key of `models`")
    _check_id_alignment(config, source)
    _check_evaluation(config, source)
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


def _check_evaluation(config: Mapping[str, Any], source: str) -> None:
    """Protocol and template names (eval.protocols, eval.prompts): unknown ones fail naming key and choices."""
    from eval.protocols import check_evaluation

    try:
        check_evaluation(config, source)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_id_alignment(config: Mapping[str, Any], source: str) -> None:
    """`models.<t>.prepare.align_ids_to: <s>` makes a copy of teacher t whose token ids are student s's
    (tgpo.models.prepare, tgpo.models.vocab_alignment): it only scores s's token ids as s's teacher. Generating text
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
            raise ConfigError(
                f"{source}: data.traces.teacher: {key!r} is a teacher re-indexed to {target!r}'s "
                f"token ids ({where}), not a model to sample text from{own}"
            )
        for name, experiment in experiments.items():
            if key in (experiment.get("student"), experiment.get("model")):
                raise ConfigError(
                    f"{source}: experiments.{name}: {key!r} is a teacher re-indexed to {target!r}'s "
                    f"token ids ({where}); it cannot be trained or evaluated itself{own}"
                )
            if experiment.get("teacher") == key and experiment.get("student") != target:
                raise ConfigError(
                    f"{source}: experiments.{name}.teacher: {key!r} speaks {target!r}'s token ids "
                    f"({where}) but the student is {experiment.get('student')!r}; add a copy of the "
                    f"teacher aligned to that student"
                )


def load_config(path: str | Path) -> dict:
    """Read and validate a YAML config; raise ConfigError naming the file and key on any problem."""
    config = read_config_file(path)
    validate(config, str(path))
    return config


# ---------------------------------------------------------------- several config files, one config
# `snakemake --configfile A B --config key=value` merges B over A and the --config entries over both;
# `merge_configs` does the same for the verbs (validate-config) and `merged_config_text` writes the result
# to results/<name>/config.yaml, the one file every job reads (the Snakefile).

SCALE_KEYS = "scale_keys"  # a scale overlay's declaration: the dotted key patterns it may change
RESULTS_PLACEHOLDER = "{results}"  # in a string value: the config's results folder, results/<name><name_suffix>


def merge_into(base: dict, update: Mapping[str, Any]) -> dict:
    """Merge `update` into `base` in place as Snakemake merges config files: mappings key by key, any other
    value (lists included) replaced. Returns `base`."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = _plain(value)
    return base


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def read_config_file(path: str | Path) -> dict:
    """One YAML config file as a mapping (not validated: an overlay alone is not a whole config)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(config).__name__}")
    return config


def parse_config_args(entries: list[str]) -> dict:
    """`--config name=value` entries with their values read as YAML (Snakemake's own parser reads a mapping's
    values as strings: `training={steps: 2}` would give steps "2"). Snakemake accepts only top-level names, so
    a nested setting is given as a mapping, merged key by key: `--config 'training={steps: 2}'`."""
    parsed: dict = {}
    for entry in entries:
        name, sep, text = entry.partition("=")
        if not sep:
            raise ConfigError(f"--config {entry!r}: expected name=value")
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError as error:
            raise ConfigError(f"--config {entry!r}: the value is not valid YAML: {error}") from None
        merge_into(parsed, {name: value})
    return parsed


def leaf_paths(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the non-mapping values of `mapping` (an empty mapping is a leaf)."""
    paths = []
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            paths.extend(leaf_paths(value, path + "."))
        else:
            paths.append(path)
    return paths


def _matches(path: str, patterns: list[str]) -> bool:
    """`path` (a.b.c) is or lies under a path matched by one of the glob `patterns` (`*` is one key)."""
    import fnmatch

    parts = path.split(".")
    for pattern in patterns:
        want = pattern.split(".")
        if len(parts) >= len(want) and all(fnmatch.fnmatchcase(part, glob) for part, glob in zip(parts, want)):
            return True
    return False


def check_scale_overlay(overlay: Mapping[str, Any], source: str) -> None:
    """An overlay that declares `scale_keys` changes only keys matching them; raise ConfigError naming the
    first key it sets that is not declared."""
    patterns = overlay.get(SCALE_KEYS)
    if patterns is None:
        return
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"{source}: {SCALE_KEYS}: expected a list of dotted key patterns")
    for path in leaf_paths({k: v for k, v in overlay.items() if k != SCALE_KEYS}):
        if not _matches(path, patterns):
            raise ConfigError(
                f"{source}: {path}: not a scale key of this overlay ({SCALE_KEYS}: {patterns}); an "
                "overlay changes only where models and data come from and the size of the work"
            )


def changed_paths(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths at which `after` differs from `before` (added, removed or changed values)."""
    paths = []
    for key in dict.fromkeys([*before, *after]):
        path = f"{prefix}{key}"
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if isinstance(old, Mapping) or isinstance(new, Mapping):  # an added or removed mapping: its leaves
            old, new = (value if isinstance(value, Mapping) else {} for value in (old, new))
            paths.extend(changed_paths(old, new, path + "."))
        elif old != new:
            paths.append(path)
    return paths


_MISSING = object()


def expand_results_placeholder(config: dict) -> dict:
    """Replace `{results}` in every string value by the config's results folder, in place."""
    root = str(ResultsLayout.of(config).root)

    def expand(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(RESULTS_PLACEHOLDER, root)
        if isinstance(value, dict):
            return {key: expand(item) for key, item in value.items()}
        if isinstance(value, list):
            return [expand(item) for item in value]
        return value

    for key in list(config):
        config[key] = expand(config[key])
    return config


def drop_overlay_only_experiments(config: dict, files: Mapping[str, Mapping[str, Any]]) -> None:
    """A scale overlay adjusts the experiments a config has (one overlay serves several configs): remove the
    entries that only overlays (files with `scale_keys`) define, in place."""
    defined = {
        name for content in files.values() if SCALE_KEYS not in content for name in (content.get("experiments") or {})
    }
    overlay_only = {
        name for content in files.values() if SCALE_KEYS in content for name in (content.get("experiments") or {})
    } - defined
    for name in overlay_only:
        config.get("experiments", {}).pop(name, None)


def finish_merged_config(config: dict, sources: list[str], config_args: list[str] | None = None) -> dict:
    """The config the jobs read, from what Snakemake (or `merge_configs`) merged: the --config entries
    re-read with their YAML types, each overlay's declared scale keys checked, `{results}` expanded, then
    validated. Modifies `config` in place (the Snakefile's global) and returns it."""
    files = {str(path): read_config_file(path) for path in sources}
    for path, content in files.items():
        check_scale_overlay(content, path)
    drop_overlay_only_experiments(config, files)
    if config_args:
        merge_into(config, parse_config_args(config_args))
    expand_results_placeholder(config)
    validate(config, " + ".join(str(path) for path in sources) or "<config>")
    return config


def merge_configs(paths: list[str | Path], config_args: list[str] | None = None) -> dict:
    """The config of `snakemake --configfile <paths...> --config <config_args...>`, validated."""
    if not paths:
        raise ConfigError("no config file given")
    merged: dict = {}
    for path in paths:
        merge_into(merged, read_config_file(path))
    return finish_merged_config(merged, [str(path) for path in paths], config_args)


def merged_config_text(config: Mapping[str, Any], sources: list[str]) -> str:
    import os

    names = [os.path.relpath(source) if os.path.isabs(source) else source for source in sources]
    header = (
        "# Written by the Snakefile: the merged, validated config every job of this results folder reads.\n"
        f"# Sources, in order: {', '.join(names) or '(none)'} and --config entries. Do not edit; edit those.\n"
    )
    return header + yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True)


def write_merged_config(config: Mapping[str, Any], sources: list[str], *, main_process: bool = True) -> Path:
    """Write results/<name>/config.yaml (atomically, only when its text changes) and return its path.

    A job process (Snakemake re-reads the Snakefile inside every job, with the config files and --config
    entries it forwards) does not write: it checks that what it merged is what the main process wrote, so a
    job never runs on settings other than the ones validated at submission."""
    from tgpo.results import io

    path = ResultsLayout.of(config).merged_config
    text = merged_config_text(config, sources)
    if not main_process:
        if not path.exists() or path.read_text() != text:
            raise ConfigError(
                f"{path}: this job merged another config than the one the pipeline wrote at "
                f"submission (sources {sources}); rerun the pipeline"
            )
        return path
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(path, text)
    return path
