"""The config's `report:` section: which experiments each table and figure shows.

    report:
      table1: {groups: [{title: str, rows: [{experiment, label, teacher: bool = false, paper_label?}]}],
               benchmarks?: [key | {key, name}], mode?: reproduced | paper | compare}
      table2: {rows: [...], benchmarks?: [...], mode?: ...}
      table3: {rows: [...], benchmarks?: [...], mode?: ...}
      fig2 / fig4 / fig5 / fig6: {series: [{experiment, label}]}

A spec comes either from a config file (`--config`; the seeds of each experiment are then read from
`experiments.<name>.seeds`) or as JSON (`--spec`, what the Snakemake rules pass; they add
`seeds: {experiment: [k, ...]}` from the Snakefile's `seeds_of`). Experiments without listed seeds use
every `seed<k>` found on disk / in summary.parquet. A spec may list `not_run: [experiment, ...]`, the
rows or series a selection (config `only_experiments`) dropped; the output then says so (`not_run_note`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class RowSpec:
    """One table row: an experiment shown under `label` (teacher rows get no bold/underline)."""

    experiment: str
    label: str
    teacher: bool = False
    group: str | None = None
    paper_label: str | None = None  # the paper row to compare with; defaults to `label`


@dataclass(frozen=True)
class SeriesSpec:
    """One curve of a training-dynamics figure: the mean over `seeds` of an experiment's metrics."""

    experiment: str
    label: str
    seeds: tuple[int, ...] | None = None  # None: every seed<k> directory found


def load_spec(output: str, *, config_path: str | Path | None = None, spec_json: str | None = None) -> dict:
    """The `report.<output>` mapping, with `seeds` filled in from the config's experiments."""
    if (config_path is None) == (spec_json is None):
        raise ValueError(f"{output}: give exactly one of --config (a YAML config) or --spec (JSON)")
    if spec_json is not None:
        try:
            spec = json.loads(spec_json)
        except json.JSONDecodeError as error:
            raise ValueError(f"{output}: --spec is not valid JSON ({error})") from error
        if not isinstance(spec, dict):
            raise ValueError(f"{output}: --spec must be a JSON object, got {type(spec).__name__}")
        return spec
    config = yaml.safe_load(Path(config_path).read_text())
    report = (config or {}).get("report")
    if not isinstance(report, dict) or output not in report:
        raise KeyError(f"{config_path}: no `report.{output}` section (which experiments {output} shows)")
    spec = dict(report[output])
    experiments = config.get("experiments") or {}
    seeds = {
        name: list(entry["seeds"])
        for name, entry in experiments.items()
        if isinstance(entry, dict) and entry.get("seeds") is not None
    }
    spec.setdefault("seeds", seeds)
    spec.setdefault("checkpoint_choice", reported_checkpoint_choices(config))
    return spec


def reported_checkpoint_choices(config: Mapping[str, Any]) -> dict[str, str]:
    """{experiment: `training.checkpoint_choice`} of the trained experiments that do not report their last
    save (the experiment's own `training:` block, else the config's; methods set no default). Read as
    written, since a report config need not resolve; the pipeline's resolved value is
    tgpo.config.resolve.checkpoint_choice, and a test keeps the two equal on the shipped configs."""
    shared = (config.get("training") or {}).get("checkpoint_choice")
    choices = {}
    for name, entry in (config.get("experiments") or {}).items():
        if isinstance(entry, dict) and not entry.get("eval_only"):
            choice = (entry.get("training") or {}).get("checkpoint_choice") or shared or "last"
            if choice != "last":
                choices[name] = choice
    return choices


def not_run_note(spec: Mapping[str, Any]) -> str | None:
    """The sentence a table or figure carries when a selection (config `only_experiments`) left some of its
    rows or series out: the pipeline writes what ran and says what did not."""
    not_run = spec.get("not_run") or []
    return f"Not run in this selection (only_experiments): {', '.join(not_run)}." if not_run else None


# How a row's reported save was chosen (`training.checkpoint_choice`; the last save needs no note)
CHOICE_WORDS = {
    "test": "the save with the best in-distribution Avg. on these test benchmarks (the paper's "
    '"best-performing checkpoints", App. B.3; optimistic: the test set picks the model)',
    "validation": "the save with the best score on verl's validation split (App. B.3, our alternative)",
}


def checkpoint_choice_note(spec: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """The sentence naming the rows whose reported checkpoint is not the last save, and how it was chosen.
    `spec["checkpoint_choice"]`: {experiment: choice}; `labels`: {experiment: row label}."""
    chosen = {e: c for e, c in (spec.get("checkpoint_choice") or {}).items() if e in labels and c != "last"}
    if not chosen:
        return None
    sentences = []
    for choice, words in CHOICE_WORDS.items():
        rows = [labels[e] for e, c in chosen.items() if c == choice]
        if rows:
            sentences.append(f"{', '.join(rows)}: {words}.")
    unknown = sorted({c for c in chosen.values() if c not in CHOICE_WORDS})
    if unknown:
        raise ValueError(f"checkpoint_choice {unknown}: expected one of {['last', *CHOICE_WORDS]}")
    return " ".join(sentences)


def table_rows(output: str, spec: Mapping[str, Any]) -> list[RowSpec]:
    """Rows of a table spec, in order; table1 has `groups`, table2/3 have `rows` (groups also accepted)."""
    if "groups" in spec:
        groups = spec["groups"]
    elif "rows" in spec:
        groups = [{"title": None, "rows": spec["rows"]}]
    else:
        raise KeyError(f"report.{output}: expected `groups` (with titles and rows) or `rows`")
    rows = []
    for group_index, group in enumerate(groups):
        if "rows" not in group:
            raise KeyError(f"report.{output}.groups[{group_index}]: missing `rows`")
        for row_index, row in enumerate(group["rows"]):
            where = f"report.{output}.groups[{group_index}].rows[{row_index}]"
            _require_keys(row, ("experiment", "label"), where)
            rows.append(
                RowSpec(
                    experiment=str(row["experiment"]),
                    label=str(row["label"]),
                    teacher=bool(row.get("teacher", False)),
                    group=group.get("title"),
                    paper_label=row.get("paper_label"),
                )
            )
    if not rows:
        raise ValueError(f"report.{output}: no rows")
    return rows


def figure_series(output: str, spec: Mapping[str, Any]) -> list[SeriesSpec]:
    """Series of a figure spec, with the seeds of each experiment when the spec knows them."""
    if "series" not in spec:
        raise KeyError(f"report.{output}: expected `series: [{{experiment, label}}, ...]`")
    seeds = spec.get("seeds") or {}
    series = []
    for index, entry in enumerate(spec["series"]):
        _require_keys(entry, ("experiment", "label"), f"report.{output}.series[{index}]")
        experiment = str(entry["experiment"])
        known = seeds.get(experiment)
        series.append(
            SeriesSpec(
                experiment, str(entry["label"]), tuple(int(seed) for seed in known) if known is not None else None
            )
        )
    if not series:
        raise ValueError(f"report.{output}: no series")
    return series


def seeds_for(spec: Mapping[str, Any], experiment: str) -> tuple[int, ...] | None:
    known = (spec.get("seeds") or {}).get(experiment)
    return tuple(int(seed) for seed in known) if known is not None else None


def _require_keys(entry: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(entry, Mapping):
        raise TypeError(f"{where}: expected a mapping with keys {list(keys)}, got {entry!r}")
    missing = [key for key in keys if key not in entry]
    if missing:
        raise KeyError(f"{where}: missing {missing} (has {sorted(entry)})")
