"""A tiny random model evaluated end to end on CPU: `eval` (local backend) then `summarize`, and the
lm-evaluation-harness cross-check on 20 real ARC-Challenge rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_eval_benchmarks import real_file
from test_eval_tiny_model import ascii_model  # noqa: F401 - session fixture

from tgpo.cli import main as tgpo_main

SAMPLE_COLUMNS = [
    "prompt_id",
    "sample_index",
    "response",
    "finish_reason",
    "n_tokens",
    "extracted_answer",
    "correct",
    "timed_out",
]


def copy_rows(source, target, count):
    target.write_text("\n".join(source.read_text().splitlines()[:count]) + "\n")
    return target


def test_eval_and_summarize_on_cpu(ascii_model, tmp_path):  # noqa: F811
    math_file = copy_rows(real_file("math/aime24.jsonl"), tmp_path / "aime24.jsonl", 3)
    arc_file = copy_rows(real_file("ood/arc_c.jsonl"), tmp_path / "arc_c.jsonl", 3)
    results = tmp_path / "results"
    common = [
        "--model",
        str(ascii_model),
        "--max-new-tokens",
        "6",
        "--seed",
        "1",
        "--backend",
        "local",
        "--grading-workers",
        "1",
    ]
    out_math = results / "eval" / "base" / "seed1" / "aime24.parquet"
    assert (
        tgpo_main(
            ["eval", "--benchmark", "aime24", "--path", str(math_file), "--k", "2", *common, "--out", str(out_math)]
        )
        == 0
    )
    out_arc = results / "eval" / "base" / "seed1" / "arc_c.parquet"
    assert (
        tgpo_main(
            [
                "eval",
                "--benchmark",
                "arc_c",
                "--path",
                str(arc_file),
                "--template",
                "raw",
                *common,
                "--out",
                str(out_arc),
            ]
        )
        == 0
    )

    frame = pd.read_parquet(out_math)
    assert list(frame.columns) == SAMPLE_COLUMNS
    assert len(frame) == 3 * 2 and sorted(frame["sample_index"].unique()) == [0, 1]
    assert frame["prompt_id"].tolist()[:2] == ["aime24-0", "aime24-0"]
    assert set(frame["finish_reason"]) <= {"stop", "length"} and frame["n_tokens"].between(1, 6).all()
    assert frame.attrs["metric"] == "avg@2" and frame.attrs["domain"] == "id" and frame.attrs["template"] == "tgpo"
    assert frame.attrs["temperature"] == 0.6 and frame.attrs["max_new_tokens"] == 6
    again = results / "again.parquet"  # same seed -> same samples
    assert (
        tgpo_main(["eval", "--benchmark", "aime24", "--path", str(math_file), "--k", "2", *common, "--out", str(again)])
        == 0
    )
    assert pd.read_parquet(again)["response"].tolist() == frame["response"].tolist()

    assert tgpo_main(["summarize", "--results", str(results), "--bootstrap", "100"]) == 0
    summary = pd.read_parquet(results / "summary.parquet")
    assert sorted(summary["benchmark"]) == ["aime24", "arc_c"]
    arc_row = summary.set_index("benchmark").loc["arc_c"]
    assert arc_row["domain"] == "ood" and arc_row["metric"] == "pass@1" and arc_row["n_problems"] == 3


@pytest.mark.slow
def test_lm_eval_cross_check_on_arc_rows(ascii_model, tmp_path, capsys):  # noqa: F811
    arc_file = copy_rows(real_file("ood/arc_c.jsonl"), tmp_path / "arc_c.jsonl", 20)
    report_path = tmp_path / "report.json"
    assert (
        tgpo_main(
            [
                "lm-eval-check",
                "--model",
                str(ascii_model),
                "--benchmark",
                "arc_c",
                "--path",
                str(arc_file),
                "--max-new-tokens",
                "8",
                "--template",
                "raw",
                "--grading-workers",
                "1",
                "--out",
                str(report_path),
            ]
        )
        == 0
    )
    report = json.loads(report_path.read_text())
    assert report["n_problems"] == 20 and report["lm_eval_n_documents"] == 20
    for key in (
        "ours_pass@1",
        "lm_eval_generative_exact_match",
        "lm_eval_loglikelihood_acc",
        "extracted_letter_agreement",
    ):
        assert 0.0 <= report[key] <= 100.0, key
    assert "lm_eval_loglikelihood_acc" in capsys.readouterr().out
