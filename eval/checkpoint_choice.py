"""Verb `choose-checkpoint`: App. B.3's "best-performing checkpoint", chosen on the test benchmarks.

    python -m tgpo choose-checkpoint --config results/paper-1.5b/config.yaml --experiment kdrl --seed 0

App. B.3 (KDRL and RKL on the 1.5B student, Table 3): "we terminated their training once the generation
length reached the maximum context window ... we report the performance based on their best-performing
checkpoints". The paper does not say on which data "best" was judged; `training.checkpoint_choice: test`
is our reading of its words, the paper's choice: every kept save of the run is evaluated on every
benchmark (eval.experiment writes `eval/<experiment>/seed<k>/saves/<benchmark>.parquet`, one row per sample
and save, column `checkpoint_step`), and the save with the best Avg. is reported:

    best = argmax_s  mean_{b in B_id} score_b(s)          (ties: the later save)

B_id: the in-distribution benchmarks (domain "id", the six math sets whose mean is Table 3's "Avg.");
every benchmark when none is in-distribution. The chosen save's rows become the experiment's ordinary
`eval/<experiment>/seed<k>/<benchmark>.parquet` files, so the summary, tables and figures read them as any
other row, and `checkpoint_choice.json` records every save's scores and the choice; the tables mark these
rows. It is optimistic by construction (the test set picks the model); `checkpoint_choice: validation`
chooses on verl's validation split instead (tgpo.verl.lifecycle.choose_checkpoint).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tgpo.results.layout import ResultsLayout

STEP_COLUMN = "checkpoint_step"


def evaluated_saves(run_record: Mapping[str, Any], final_checkpoint: str | Path) -> dict[int, str]:
    """{step: Hugging Face folder} of every save a `checkpoint_choice: test` run exported, in step order:
    run.json's `earlier_saves` and its `checkpoint_step` (the last save, the run's checkpoint)."""
    if run_record.get("checkpoint_choice") != "test":
        raise ValueError(
            f"run.json of {final_checkpoint}: checkpoint_choice is {run_record.get('checkpoint_choice')!r}, "
            f"not 'test'; only such runs export every save"
        )
    saves = {int(step): str(path) for step, path in (run_record.get("earlier_saves") or {}).items()}
    saves[int(run_record["checkpoint_step"])] = str(final_checkpoint)
    return dict(sorted(saves.items()))


def scores_by_save(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """[saves x benchmarks] score table (avg@k in percent) from each benchmark's saves frame."""
    from eval.metrics import correctness_matrix, score

    columns = {}
    for benchmark, frame in frames.items():
        if STEP_COLUMN not in frame.columns:
            raise KeyError(f"{benchmark}: the saves file has no {STEP_COLUMN!r} column")
        columns[benchmark] = {
            int(step): score(correctness_matrix(rows, source=f"{benchmark} save {step}"))
            for step, rows in frame.groupby(STEP_COLUMN, sort=True)
        }
    table = pd.DataFrame(columns)
    missing = table.columns[table.isna().any()].tolist()
    if missing:
        raise ValueError(f"benchmarks {missing} were not evaluated on every save (saves: {table.index.tolist()})")
    return table


def best_save(scores: pd.DataFrame, choice_benchmarks: list[str]) -> tuple[int, float]:
    """(step, Avg.) of the save with the best mean over `choice_benchmarks`; ties go to the later save."""
    average = scores[choice_benchmarks].mean(axis=1)
    best = max(average.items(), key=lambda item: (item[1], item[0]))
    return int(best[0]), float(best[1])


def choice_benchmarks(domains: Mapping[str, str]) -> list[str]:
    """The in-distribution benchmarks (Table 3's Avg.), or every one when none is in-distribution."""
    in_distribution = [benchmark for benchmark, domain in domains.items() if domain == "id"]
    return in_distribution or list(domains)


def choose(layout: ResultsLayout, experiment: str, seed: int, benchmarks: list[str]) -> dict[str, Any]:
    """Pick the best save from the saves files and write its rows as the experiment's eval files."""
    from tgpo.results.io import write_parquet, write_text

    frames = {}
    for benchmark in benchmarks:
        path = layout.saves_eval_file(experiment, seed, benchmark)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (eval-experiment writes it for a checkpoint_choice: test run)")
        frames[benchmark] = pd.read_parquet(path)
    domains = {benchmark: frame.attrs.get("domain", "id") for benchmark, frame in frames.items()}
    judged_on = choice_benchmarks(domains)
    scores = scores_by_save(frames)
    step, average = best_save(scores, judged_on)
    for benchmark, frame in frames.items():
        rows = frame[frame[STEP_COLUMN] == step].drop(columns=[STEP_COLUMN]).reset_index(drop=True)
        rows.attrs = {key: value for key, value in frame.attrs.items() if key != "models"} | {
            "model": frame.attrs.get("models", {}).get(str(step), ""),
            STEP_COLUMN: step,
            "checkpoint_choice": "test",
        }
        write_parquet(layout.eval_file(experiment, seed, benchmark), rows)
    record = {
        "experiment": experiment,
        "seed": seed,
        "checkpoint_choice": "test",
        "chosen_step": step,
        "chosen_average": average,
        "judged_on": judged_on,
        "rule": "best mean score over judged_on of every evaluated save (ties: the later save); App. B.3",
        "scores": {str(save): {b: float(v) for b, v in row.items()} for save, row in scores.iterrows()},
    }
    write_text(layout.checkpoint_choice(experiment, seed), json.dumps(record, indent=2) + "\n")
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config YAML")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from tgpo import config as tgpo_config

    config = tgpo_config.load_config(args.config)
    if args.experiment not in config["experiments"]:
        raise SystemExit(f"{args.config}: experiments.{args.experiment}: no such experiment")
    record = choose(ResultsLayout.of(config), args.experiment, args.seed, list(config["benchmarks"]))
    print(
        f"{args.experiment} seed{args.seed}: save {record['chosen_step']} reported "
        f"(Avg. {record['chosen_average']:.2f} over {', '.join(record['judged_on'])}; "
        f"saves {', '.join(record['scores'])})",
        flush=True,
    )
    return 0
