"""App. B.3's "best-performing checkpoints" on the test benchmarks (`training.checkpoint_choice: test`,
eval/checkpoint_choice.py): every save's per-sample grades in, the save with the best in-distribution Avg.
out, written as the experiment's ordinary eval files that the summary reads."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from eval.checkpoint_choice import STEP_COLUMN, best_save, choice_benchmarks, choose, evaluated_saves
from eval.summary import build_summary
from tgpo.results.io import write_parquet
from tgpo.results.layout import ResultsLayout

# the fraction of correct samples of each save on each benchmark (2 problems x 2 samples = quarters)
CORRECT = {
    "aime24": {10: 0.25, 20: 0.75, 30: 0.0},
    "math500": {10: 0.5, 20: 0.5, 30: 0.25},
    "gpqa_diamond": {10: 1.0, 20: 0.0, 30: 1.0},  # out of distribution: not part of the choice
}
DOMAINS = {"aime24": "id", "math500": "id", "gpqa_diamond": "ood"}


def saves_frame(benchmark: str) -> pd.DataFrame:
    rows = []
    for step, fraction in CORRECT[benchmark].items():
        grades = [index < round(4 * fraction) for index in range(4)]
        for index, correct in enumerate(grades):
            rows.append(
                {"prompt_id": f"p{index // 2}", "sample_index": index % 2, "correct": correct, STEP_COLUMN: step}
            )
    frame = pd.DataFrame(rows)
    frame.attrs = {
        "benchmark": benchmark,
        "domain": DOMAINS[benchmark],
        "metric": "avg@2",
        "models": {str(step): f"/runs/kdrl/seed0/saves/step_{step}" for step in CORRECT[benchmark]},
    }
    return frame


@pytest.fixture
def layout(tmp_path):
    layout = ResultsLayout(tmp_path / "results")
    for benchmark in CORRECT:
        write_parquet(layout.saves_eval_file("kdrl", 0, benchmark), saves_frame(benchmark))
    return layout


def test_the_save_with_the_best_in_distribution_average_is_reported(layout):
    # Avg. over aime24 and math500: step 10 37.5, step 20 62.5, step 30 12.5 (gpqa would favour 10 and 30)
    record = choose(layout, "kdrl", 0, list(CORRECT))
    assert record["chosen_step"] == 20 and record["chosen_average"] == pytest.approx(62.5)
    assert record["judged_on"] == ["aime24", "math500"]
    assert record["scores"]["30"]["gpqa_diamond"] == pytest.approx(100.0)
    assert json.loads(layout.checkpoint_choice("kdrl", 0).read_text())["chosen_step"] == 20
    for benchmark in CORRECT:
        reported = pd.read_parquet(layout.eval_file("kdrl", 0, benchmark))
        assert STEP_COLUMN not in reported.columns and len(reported) == 4
        assert reported["correct"].mean() == pytest.approx(CORRECT[benchmark][20])
        assert reported.attrs["checkpoint_step"] == 20 and reported.attrs["model"].endswith("step_20")
    summary = build_summary(layout.root, n_resamples=10, only=[layout.eval_file("kdrl", 0, b) for b in CORRECT])
    assert dict(zip(summary["benchmark"], summary["score"])) == pytest.approx(
        {"aime24": 75.0, "math500": 50.0, "gpqa_diamond": 0.0}
    )


def test_ties_go_to_the_later_save_and_no_in_distribution_set_means_every_benchmark():
    scores = pd.DataFrame({"a": {10: 50.0, 20: 50.0, 30: 40.0}, "b": {10: 10.0, 20: 10.0, 30: 30.0}})
    assert best_save(scores, ["a"]) == (20, 50.0)
    assert best_save(scores, ["a", "b"]) == (30, 35.0)
    assert choice_benchmarks({"a": "ood", "b": "ood"}) == ["a", "b"]
    assert choice_benchmarks({"a": "id", "b": "ood"}) == ["a"]


def test_a_benchmark_missing_a_save_is_an_error(layout):
    frame = saves_frame("math500")
    write_parquet(layout.saves_eval_file("kdrl", 0, "math500"), frame[frame[STEP_COLUMN] != 30])
    with pytest.raises(ValueError, match=r"not evaluated on every save"):
        choose(layout, "kdrl", 0, list(CORRECT))
    with pytest.raises(FileNotFoundError, match="minerva.parquet"):
        choose(layout, "kdrl", 0, ["minerva"])


def test_the_saves_come_from_run_json():
    record = {
        "checkpoint_choice": "test",
        "checkpoint_step": 30,
        "earlier_saves": {"20": "/s/step_20", "10": "/s/step_10"},
    }
    assert evaluated_saves(record, "/run/checkpoint") == {10: "/s/step_10", 20: "/s/step_20", 30: "/run/checkpoint"}
    with pytest.raises(ValueError, match="not 'test'"):
        evaluated_saves({"checkpoint_choice": "last", "checkpoint_step": 30}, "/run/checkpoint")


def test_table_3_names_the_rows_whose_save_the_test_sets_chose():
    from pathlib import Path

    from figures.spec import checkpoint_choice_note, load_spec

    spec = load_spec("table3", config_path=Path(__file__).resolve().parents[1] / "config" / "paper-1.5b.yaml")
    assert spec["checkpoint_choice"] == {"kdrl": "test", "op_distill": "test"}
    labels = {row["experiment"]: row["label"] for row in spec["rows"]}
    note = checkpoint_choice_note(spec, labels)
    assert note.startswith("KDRL, OP Distill: the save with the best in-distribution Avg.") and "App. B.3" in note
    assert checkpoint_choice_note({"checkpoint_choice": {"kdrl": "validation"}}, labels).startswith("KDRL: ")
    assert checkpoint_choice_note({"checkpoint_choice": {}}, labels) is None


@pytest.mark.parametrize("name", ["default.yaml", "paper-7b.yaml", "paper-1.5b.yaml"])
def test_figures_read_the_choice_the_pipeline_resolves(name):
    """figures.spec reads `checkpoint_choice` from the config as written (the figures run on report configs
    that need not resolve); the pipeline resolves it (tgpo.config.resolve). They must agree."""
    from pathlib import Path

    from figures.spec import reported_checkpoint_choices
    from tgpo.config import load_config, training_experiments
    from tgpo.config.resolve import checkpoint_choice

    config = load_config(Path(__file__).resolve().parents[1] / "config" / name)
    resolved = {e: checkpoint_choice(config, e) for e in training_experiments(config)}
    assert reported_checkpoint_choices(config) == {e: c for e, c in resolved.items() if c != "last"}
