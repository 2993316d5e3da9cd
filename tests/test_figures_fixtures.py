"""FIXTURES for the figure tests: a fake results set, not produced by the pipeline.

`build_fixture_results(root)` writes, under `root/results/fixture/`, a synthetic summary.parquet and
metrics.jsonl files (random curves, made-up scores) for every experiment that the fixture config's
`report:` section names, and returns that config (a dict, also written to `root/config.yaml`).
Nothing here is a result of the paper or of the suite.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import yaml

FIXTURE_NAME = "fixture"
ID_BENCHMARKS = ("aime24", "aime25", "amc", "math500", "minerva", "olympiadbench")
OOD_BENCHMARKS = ("arc_c", "gpqa_diamond", "mmlu_pro")
STEPS = 40

# experiment -> (label, seeds); which figure/table shows which experiment is in REPORT below
EXPERIMENTS = {
    "base": ("Base model", [0]),
    "teacher": ("Teacher", [0]),
    "grpo_pp": ("GRPO++", [0, 1]),
    "kdrl": ("KDRL", [0, 1]),
    "rkl_cross": ("RKL", [0, 1]),
    "rkl_in": ("In-Family", [0]),
    "luffy": ("LUFFY", [0, 1]),
    "tgpo": ("TGPO", [0, 1, 2]),
    "tgpo_constant": ("Constant Weight", [0]),
    "tgpo_aggressive": ("Aggressive Annealing", [0]),
    "tgpo_continuous": ("Continuous Annealing", [0]),
    "tgpo_r1_teacher": ("R1 teacher", [0]),
}
SCHEDULES = {
    "tgpo": (2e-3, 1e-5 * 8),
    "tgpo_constant": (2e-3, 0.0),
    "tgpo_aggressive": (2e-2, 1e-4 * 8),
    "tgpo_continuous": (2e-3, 2e-3 / STEPS),
}

REPORT = {
    "table1": {
        "groups": [
            {
                "title": "Original Models",
                "rows": [
                    {"experiment": "base", "label": "Qwen2.5-Math-7B"},
                    {"experiment": "teacher", "label": "Qwen3", "teacher": True},
                ],
            },
            {
                "title": "On-Policy Methods",
                "rows": [
                    {"experiment": "grpo_pp", "label": "GRPO++"},
                    {"experiment": "kdrl", "label": "KDRL"},
                    {"experiment": "tgpo", "label": "TGPO-annealing"},
                ],
            },
        ]
    },
    "table2": {
        "rows": [
            {"experiment": "grpo_pp", "label": "No Teacher"},
            {"experiment": "tgpo_r1_teacher", "label": "R1-Distill-Qwen-32B"},
            {"experiment": "tgpo", "label": "Qwen3-30B-A3B"},
        ],
        "benchmarks": ["amc", "math500", "olympiadbench", "gpqa_diamond"],
    },
    "table3": {
        "rows": [
            {"experiment": "base", "label": "Qwen2.5-Math-1.5B"},
            {"experiment": "luffy", "label": "LUFFY"},
            {"experiment": "tgpo", "label": "TGPO-annealing"},
        ],
        "benchmarks": list(ID_BENCHMARKS),
    },
    "fig2": {
        "series": [{"experiment": "rkl_in", "label": "In-Family"}, {"experiment": "rkl_cross", "label": "Cross-Family"}]
    },
    "fig4": {
        "series": [
            {"experiment": e, "label": EXPERIMENTS[e][0]} for e in ("tgpo", "rkl_cross", "kdrl", "grpo_pp", "luffy")
        ]
    },
    "fig5": {
        "series": [
            {"experiment": "tgpo_constant", "label": "Constant Weight"},
            {"experiment": "tgpo_aggressive", "label": "Aggressive Annealing"},
            {"experiment": "tgpo_continuous", "label": "Continuous Annealing"},
            {"experiment": "tgpo", "label": "Ours"},
        ]
    },
    "fig6": {
        "series": [
            {"experiment": e, "label": EXPERIMENTS[e][0]} for e in ("tgpo", "rkl_cross", "kdrl", "grpo_pp", "luffy")
        ]
    },
}


def fixture_config() -> dict:
    return {
        "name": FIXTURE_NAME,
        "experiments": {name: {"method": "fixture", "seeds": seeds} for name, (_, seeds) in EXPERIMENTS.items()},
        "report": json.loads(json.dumps(REPORT)),
    }


def _summary_rows(rng: random.Random) -> list[dict]:
    rows = []
    for index, (experiment, (_, seeds)) in enumerate(EXPERIMENTS.items()):
        for benchmark in ID_BENCHMARKS + OOD_BENCHMARKS:
            level = 10 + 5 * index + 3 * len(benchmark)
            for seed in seeds:
                score = min(99.0, level + rng.uniform(-2, 2))
                rows.append(
                    {
                        "experiment": experiment,
                        "benchmark": benchmark,
                        "domain": "id" if benchmark in ID_BENCHMARKS else "ood",
                        "metric": "avg@32" if benchmark in ("aime24", "aime25", "amc") else "pass@1",
                        "seed": seed,
                        "score": score,
                        "ci_low": score - 1.5,
                        "ci_high": score + 1.5,
                        "n_problems": 30,
                        "n_samples": 30 * 32,
                    }
                )
    return rows


def _metrics_lines(rng: random.Random, experiment: str, seed: int) -> list[str]:
    w_init, delta = SCHEDULES.get(experiment, (None, None))
    lines = []
    for step in range(1, STEPS + 1):
        record = {
            "step": step,
            "critic/score/mean": 0.3 + 0.4 * (1 - math.exp(-step / 15)) + rng.gauss(0, 0.03),
            "response_length/mean": 400 + 5 * step + rng.gauss(0, 20),
            "actor/grad_norm": abs(0.2 + rng.gauss(0, 0.05)) + (3.0 if rng.random() < 0.05 else 0.0),
            "actor/pg_loss": rng.gauss(0, 0.1),
        }
        if w_init is not None:
            record["tgpo/guidance_weight"] = max(w_init - delta * step, 0.0)
        lines.append(json.dumps(record))
    return lines


def build_fixture_results(root: Path) -> dict:
    """Write the fixture results under root/results/fixture and the config to root/config.yaml."""
    rng = random.Random(1234)
    results = Path(root) / "results" / FIXTURE_NAME
    results.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(_summary_rows(rng)).to_parquet(results / "summary.parquet", index=False)
    for experiment, (_, seeds) in EXPERIMENTS.items():
        for seed in seeds:
            path = results / "runs" / experiment / f"seed{seed}" / "metrics.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(_metrics_lines(rng, experiment, seed)) + "\n")
            (path.parent / "run.json").write_text("{}\n")  # the train rule's finished-run marker
    config = fixture_config()
    (Path(root) / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def test_fixture_covers_every_report_experiment(tmp_path):
    config = build_fixture_results(tmp_path)
    named = {
        row["experiment"]
        for spec in config["report"].values()
        for group in spec.get("groups", [{"rows": spec.get("rows", [])}])
        for row in group["rows"]
    }
    named |= {series["experiment"] for spec in config["report"].values() for series in spec.get("series", [])}
    assert named <= set(config["experiments"])
    summary = pd.read_parquet(tmp_path / "results" / FIXTURE_NAME / "summary.parquet")
    assert set(summary["experiment"]) == set(EXPERIMENTS)
