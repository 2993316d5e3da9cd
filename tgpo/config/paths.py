"""Where a config's inputs live: model checkpoints (local, built, prepared or a pinned hub snapshot), the
prompt and trace tables, and the verl parquet files. Leaves of tgpo.config: no validation, no merging."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tgpo.results.layout import ResultsLayout

DEFAULT_HUB_DIR = "results/hub"


def hub_dir(config: Mapping[str, Any]) -> Path:
    return Path(config.get("hub_dir", DEFAULT_HUB_DIR))


def snapshot_dir(config: Mapping[str, Any], repo_type: str, repo_id: str, revision: str) -> Path:
    """<hub_dir>/<models|datasets>/<owner>--<name>/<revision>: where `download` puts that commit."""
    return hub_dir(config) / f"{repo_type}s" / repo_id.replace("/", "--") / revision


def pinned_snapshot(config: Mapping[str, Any], repo_type: str, repo_id: str, revision: str | None) -> str:
    """The local snapshot folder of a pinned hub repository, else the hub id itself (the `download` job,
    which every job reading hub content waits for, fails on unpinned entries)."""
    return str(snapshot_dir(config, repo_type, repo_id, revision)) if revision else repo_id


def model_source(config: Mapping[str, Any], key: str) -> str:
    """Where the unprepared weights of model `key` come from: its local `path`, else the folder the pipeline
    builds (`build:`), else its hub id. `path` and `build` are local overrides of `hub` (a scale overlay such
    as config/cpu-overlay.yaml sets them over a paper config's hub ids)."""
    model = config["models"][key]
    if "path" in model:
        return model["path"]
    if "build" in model:
        layout = ResultsLayout.of(config)
        return str(layout.built_model(key) if "prepare" in model else layout.model(key))
    return pinned_snapshot(config, "model", model["hub"], model.get("revision"))


def model_location(config: Mapping[str, Any], key_or_id: str) -> str:
    """Where the checkpoint of a model key lives: its prepared folder, else `model_source`; a string that
    is not a model key is returned as it is (a hub id or a local path)."""
    model = config["models"].get(key_or_id)
    if model is None:  # a hub id given directly (an eval-only row), pinned by the experiment's `revision:`
        revisions = {
            spec.get("revision")
            for spec in config["experiments"].values()
            if spec.get("eval_only") and spec.get("model") == key_or_id
        } - {None}
        return pinned_snapshot(config, "model", key_or_id, min(revisions) if len(revisions) == 1 else None)
    if "prepare" in model:
        # prepared (RoPE/context/vocabulary, cluster) by the pipeline itself
        return str(ResultsLayout.of(config).model(key_or_id))
    return model_source(config, key_or_id)


def pipeline_made_model(config: Mapping[str, Any], key: str) -> bool:
    """True when the pipeline writes this model's checkpoint (so it is a Snakemake input)."""
    model = config["models"].get(key, {})
    return "build" in model or "prepare" in model


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
# tgpo.verl.translate); their names live in tgpo.results.layout. App. B.1: every experiment uses one curated set,
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
