"""Hub models and data sets, pinned and downloaded once, read from local snapshots by every job.

`python -m tgpo download --config C` (the pipeline's `download` rule, a Snakemake `localrule`, so it runs
on the login node, which has network; compute nodes are often offline) fetches every hub model and data
set a cluster config names, each at the commit its `revision:` key pins, into
`<hub_dir>/<models|datasets>/<owner>--<name>/<revision>/` (hub_dir: the config's `hub_dir`, default
results/hub, shared by configs so the 61 GB teacher is fetched once), then writes the config's manifest
`results/<name>/hub.json`, which every job that reads hub content takes as input. A hub entry without a
`revision:` makes the download fail, naming every such key, before anything is fetched: an unpinned hub
id would give a different model or data set whenever its owner pushes. Jobs resolve a pinned entry to its
snapshot folder (tgpo.config.paths: model_location, pinned_snapshot), so nothing in a GPU job touches the network.

Hub entries of a config (`hub_items`):
- `models.<key>.hub` (not built, no local `path`), with `models.<key>.revision`;
- an eval-only experiment whose `model` is a hub id, with `experiments.<name>.revision`;
- `data.train.hub` (no local `path`), with `data.train.revision`;
- every benchmark without a local `path`: the registry's hub data set (eval.benchmarks), with
  `benchmarks.<name>.revision`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tgpo.config.paths import snapshot_dir


@dataclass(frozen=True)
class HubItem:
    """One hub repository a config reads: `where` is the config key that names it."""

    where: str
    repo_id: str
    repo_type: str  # "model" | "dataset"
    revision: str | None


def manifest_path(config: Mapping[str, Any]) -> Path:
    from tgpo.results.layout import ResultsLayout

    return ResultsLayout.of(config).root / "hub.json"


def hub_items(config: Mapping[str, Any]) -> list[HubItem]:
    """Every hub repository the config reads (see the module docstring), in config order."""
    items: list[HubItem] = []
    models = config.get("models", {})
    for key, model in models.items():
        if "hub" in model and "path" not in model and "build" not in model:
            items.append(HubItem(f"models.{key}", model["hub"], "model", model.get("revision")))
    for name, spec in config.get("experiments", {}).items():
        if spec.get("eval_only") and spec.get("model") and spec["model"] not in models:
            items.append(HubItem(f"experiments.{name}", spec["model"], "model", spec.get("revision")))
    train = config.get("data", {}).get("train", {})
    if "hub" in train and "path" not in train:
        items.append(HubItem("data.train", train["hub"], "dataset", train.get("revision")))
    if config.get("engine") == "verl":  # the miniature's benchmarks are the world's files
        from eval.benchmarks import REGISTRY

        for name, entry in config.get("benchmarks", {}).items():
            if not (entry or {}).get("path") and name in REGISTRY:
                items.append(
                    HubItem(f"benchmarks.{name}", REGISTRY[name].hub_id, "dataset", (entry or {}).get("revision"))
                )
    return items


def missing_revisions(config: Mapping[str, Any]) -> list[str]:
    return [f"{item.where}.revision ({item.repo_id})" for item in hub_items(config) if not item.revision]


def benchmark_source(config: Mapping[str, Any], benchmark: str) -> str | None:
    """The local snapshot folder of a benchmark's pinned hub data set (None: not pinned, or a local path)."""
    from eval.benchmarks import REGISTRY

    entry = config.get("benchmarks", {}).get(benchmark) or {}
    if entry.get("path") or not entry.get("revision") or benchmark not in REGISTRY:
        return None
    return str(snapshot_dir(config, "dataset", REGISTRY[benchmark].hub_id, entry["revision"]))


def download(config: Mapping[str, Any], *, source: str, fetch=None) -> dict:
    """Fetch every hub item at its revision into its snapshot folder; write and return the manifest.

    fetch(repo_id=, repo_type=, revision=, local_dir=): huggingface_hub.snapshot_download by default
    (skips files already complete, so a rerun costs nothing)."""
    from tgpo.results import io

    missing = missing_revisions(config)
    if missing:
        raise SystemExit(
            f"{source}: hub entries without a pinned `revision:` (the commit hash from the repository's "
            f"'Files and versions' page on huggingface.co): {', '.join(missing)}"
        )
    if fetch is None:
        from huggingface_hub import snapshot_download as fetch
    entries = []
    for item in hub_items(config):
        local = snapshot_dir(config, item.repo_type, item.repo_id, item.revision)
        print(f"{item.where}: {item.repo_id}@{item.revision} -> {local}", flush=True)
        fetch(repo_id=item.repo_id, repo_type=item.repo_type, revision=item.revision, local_dir=str(local))
        entries.append({**asdict(item), "local_dir": str(local)})
    manifest = {"config": config["name"], "items": entries}
    io.write_text(manifest_path(config), json.dumps(manifest, indent=2) + "\n")
    return manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config YAML")
    parser.add_argument("--check", action="store_true", help="only list the hub entries and check their revisions")


def run(args: argparse.Namespace) -> int:
    from tgpo.config import load_config

    config = load_config(args.config)
    if args.check:
        for item in hub_items(config):
            print(f"{item.where}: {item.repo_type} {item.repo_id} revision {item.revision or 'MISSING'}")
        missing = missing_revisions(config)
        if missing:
            print(f"{args.config}: {len(missing)} hub entries without `revision:`: {', '.join(missing)}")
            return 1
        return 0
    download(config, source=str(args.config))
    return 0
