"""`python -m tgpo draw-config`: the miniature under another draw of its base models (not part of the run).

The base models (`build-model`) are one pretraining draw; the experiments' RL seeds do not vary it.
This writes a copy of a config whose `build_seed` is another draw, named `<name>-build<k>` so that
every output goes to its own `results/<name>-build<k>/` (every path under `results/<name>/` in the
config is moved there). Everything else, the world included, is the config's own:

    python -m tgpo draw-config --config config/default.yaml --build-seed 1 --out results/draws/mini-build1.yaml
    snakemake -c all --configfile results/draws/mini-build1.yaml

docs/miniature.md gives the verdicts of three draws.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="the config to copy, e.g. config/default.yaml")
    parser.add_argument("--build-seed", dest="build_seed", required=True, type=int, help="the base models' draw")
    parser.add_argument("--out", required=True, type=Path, help="the config file to write")


def draw_name(name: str, build_seed: int) -> str:
    return f"{name}-build{build_seed}"


def moved(value: Any, old_root: str, new_root: str) -> Any:
    """`value` with every string under `old_root` moved under `new_root` (in nested dicts and lists)."""
    if isinstance(value, dict):
        return {key: moved(item, old_root, new_root) for key, item in value.items()}
    if isinstance(value, list):
        return [moved(item, old_root, new_root) for item in value]
    if isinstance(value, str) and value.startswith(old_root):
        return new_root + value[len(old_root) :]
    return value


def draw_config(config: dict, build_seed: int) -> dict:
    """`config` under the base-model draw `build_seed`: its own name and results folder."""
    name = draw_name(config["name"], build_seed)
    copy = moved(config, f"results/{config['name']}/", f"results/{name}/")
    return {
        **copy,
        "name": name,
        "build_seed": build_seed,
        "description": f"{config.get('description', config['name'])}; base models' draw build_seed={build_seed}",
    }


def run(args: argparse.Namespace) -> int:
    from tgpo.config import load_config, validate
    from tgpo.results.io import write_text

    config = draw_config(load_config(args.config), args.build_seed)
    validate(config, str(args.out))
    header = f"# Written by `python -m tgpo draw-config --config {args.config} --build-seed {args.build_seed}`.\n"
    write_text(args.out, header + yaml.safe_dump(config, sort_keys=False, width=120))
    print(f"draw-config: {args.out} (results/{config['name']}/)")
    return 0
