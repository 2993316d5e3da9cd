"""Draws of the base models: `build_seed` (tgpo.config.build_seed) and `python -m tgpo draw-config`."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_build_seed_defaults_to_the_config_seed():
    from tgpo.config import build_seed

    assert build_seed({"seed": 3}) == 3
    assert build_seed({"seed": 3, "build_seed": 1}) == 1
    assert build_seed({}) == 0


def test_draw_config_moves_every_results_path_and_keeps_the_rest():
    from tgpo.config import load_config, validate
    from tgpo.mini.draws import draw_config

    config = load_config(ROOT / "config" / "default.yaml")
    draw = draw_config(config, 2)
    validate(draw, "draw")
    assert draw["name"] == "mini-build2" and draw["build_seed"] == 2
    assert draw["data"]["train"]["path"] == "results/mini-build2/world/train.parquet"
    assert "results/mini/" not in yaml.safe_dump(draw)
    assert draw["experiments"] == config["experiments"] and draw["training"] == config["training"]
    assert draw["seed"] == config["seed"] and draw["world"] == config["world"]


def test_the_build_rule_uses_the_build_seed(tmp_path):
    """The pipeline passes `build_seed` to build-model (a dry run of the draw's config)."""
    import subprocess

    from tgpo.config import load_config
    from tgpo.mini.draws import draw_config

    path = tmp_path / "draw.yaml"
    path.write_text(yaml.safe_dump(draw_config(load_config(ROOT / "config" / "ci.yaml"), 5)))
    result = subprocess.run(
        ["snakemake", "-n", "-p", "-c1", "--configfile", str(path), "--forceall"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    builds = [line for line in result.stdout.splitlines() if "tgpo build-model" in line]
    assert builds and all("--seed 5 " in line for line in builds), builds
