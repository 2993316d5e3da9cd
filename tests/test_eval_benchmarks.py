"""Benchmark registry, loading of the real benchmark copies, option shuffling and prompt templates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from eval.benchmarks import REGISTRY, BenchmarkError, get_benchmark, load_problems, shuffle_options
from eval.prompts import SYSTEM_PROMPT, build_prompt, template_for_model

ROOT = Path(__file__).resolve().parents[1]
# Copies of the public evaluation sets (tests only; the project loads benchmarks from the hub or a
# user-given path at run time). TGPO_BENCHMARKS_DIR points elsewhere.
BENCHMARK_DIR = Path(os.environ.get("TGPO_BENCHMARKS_DIR", ROOT / "tests" / "data" / "benchmarks"))
MATH_ROWS = {"aime24": 30, "aime25": 30, "amc": 83, "math500": 500, "minerva": 272, "olympiadbench": 675}
ARC_ROWS = 1172


def real_file(relative: str) -> Path:
    path = BENCHMARK_DIR / relative
    if not path.exists():
        pytest.fail(f"real benchmark copy {path} not found (set TGPO_BENCHMARKS_DIR)")
    return path


def test_registry_has_the_papers_nine_benchmarks_and_metrics():
    assert sorted(REGISTRY) == sorted([*MATH_ROWS, "arc_c", "gpqa_diamond", "mmlu_pro"])
    assert {name: REGISTRY[name].metric_name for name in ("aime24", "aime25", "amc")} == {
        "aime24": "avg@32",
        "aime25": "avg@32",
        "amc": "avg@32",
    }
    assert all(
        REGISTRY[name].metric_name == "pass@1"
        for name in ("math500", "minerva", "olympiadbench", "arc_c", "gpqa_diamond", "mmlu_pro")
    )
    assert {spec.domain for spec in REGISTRY.values() if spec.kind == "choice"} == {"ood"}
    assert {spec.domain for spec in REGISTRY.values() if spec.kind == "math"} == {"id"}
    assert REGISTRY["gpqa_diamond"].gated and REGISTRY["gpqa_diamond"].hub_id == "Idavidrein/gpqa"
    assert get_benchmark("aime24", k=4).metric_name == "avg@4"
    with pytest.raises(KeyError, match="known benchmarks"):
        get_benchmark("aime26")
    with pytest.raises(KeyError, match="unknown override"):
        get_benchmark("amc", temperature=0.6)


@pytest.mark.parametrize("name", sorted(MATH_ROWS))
def test_every_math_row_loads(name):
    problems = load_problems(get_benchmark(name, path=str(real_file(f"math/{name}.jsonl"))))
    assert len(problems) == MATH_ROWS[name]
    assert all(problem.question.strip() and problem.answer.strip() for problem in problems)
    assert len({problem.problem_id for problem in problems}) == len(problems)


def test_every_arc_row_loads_and_shuffling_keeps_the_right_option():
    path = real_file("ood/arc_c.jsonl")
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    problems = load_problems(get_benchmark("arc_c", path=str(path)), shuffle_seed=0)
    assert len(problems) == ARC_ROWS == len(raw)
    moved = 0
    for row, problem in zip(raw, problems):
        correct_text = row["choices"][row["labels"].index(row["answer"])]
        assert problem.options[problem.option_labels.index(problem.gold_letter)] == correct_text.strip()
        assert sorted(problem.options) == sorted(choice.strip() for choice in row["choices"])
        assert problem.option_labels == tuple("ABCDE"[: len(row["choices"])])  # '1'-'4' labels relabelled
        moved += list(problem.options) != [choice.strip() for choice in row["choices"]]
    assert moved > 0.6 * ARC_ROWS  # most orders change (a 4-option identity permutation has p = 1/24)
    again = load_problems(get_benchmark("arc_c", path=str(path)), shuffle_seed=0)
    other = load_problems(get_benchmark("arc_c", path=str(path)), shuffle_seed=1)
    assert again == problems
    assert other != problems


def test_shuffle_maps_gold_index_to_the_same_text():
    options = ["w", "x", "y", "z", "v"]
    for seed in range(20):
        shuffled, gold = shuffle_options(options, 2, seed=seed, problem_id="p")
        assert shuffled[gold] == "y" and sorted(shuffled) == sorted(options)


def test_hub_field_layout_of_a_local_copy(tmp_path):
    """A local file with the hub's own fields (here GPQA's columns) loads through the hub mapping."""
    row = {
        "Record ID": "rec1",
        "Question": "2+2?",
        "Correct Answer": "4",
        "Incorrect Answer 1": "3",
        "Incorrect Answer 2": "5",
        "Incorrect Answer 3": "22",
    }
    path = tmp_path / "gpqa.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (problem,) = load_problems(get_benchmark("gpqa_diamond", path=str(path)))
    assert problem.problem_id == "rec1"
    assert problem.options[problem.option_labels.index(problem.gold_letter)] == "4"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"id": "a", "problem": "1+1"}\n', r"row 0 has no field 'answer'"),
        ('{"id": "a", "problem": "1+1", "answer": ""}\n', r"row 0 field 'answer' is empty"),
        ('{"id": "a", "problem": "1+1", "answer": "2"}\nnot json\n', r"line 2 is not valid JSON"),
    ],
)
def test_bad_math_rows_name_file_row_and_field(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(BenchmarkError, match=message) as error:
        load_problems(get_benchmark("math500", path=str(path)))
    assert str(path) in str(error.value)


def test_bad_choice_row_and_missing_file(tmp_path):
    path = tmp_path / "arc.jsonl"
    path.write_text(
        json.dumps({"id": "q", "question": "?", "choices": ["a", "b"], "labels": ["A", "B"], "answer": "C"}) + "\n"
    )
    with pytest.raises(BenchmarkError, match=r"row 0 field 'answer'='C' is not one of \['A', 'B'\]"):
        load_problems(get_benchmark("arc_c", path=str(path)))
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_problems(get_benchmark("arc_c", path=str(tmp_path / "missing.jsonl")))


def test_paper_template_and_released_checkpoint_templates():
    problem = load_problems(get_benchmark("aime24", path=str(real_file("math/aime24.jsonl"))), limit=1)[0]
    prompt = build_prompt(problem, "tgpo")
    assert prompt.startswith("Your task is to follow a systematic, thorough reasoning process")
    assert prompt.endswith(f"\n\nUser: {problem.question}\n\nAssistant: <think>\n")
    assert "include the answer in `\\boxed{}` for closed-form results like multiple choices" in SYSTEM_PROMPT
    assert template_for_model("hkust-nlp/Qwen-2.5-Math-7B-SimpleRL-Zero") == "qwen"
    assert template_for_model("PRIME-RL/Eurus-2-7B-PRIME-Zero") == "prime"
    assert template_for_model("sail/Qwen2.5-Math-7B-Oat-Zero") == "qwen_math"
    assert template_for_model("results/mini/runs/x/seed0/checkpoint") == "tgpo"
    assert template_for_model("sail/Qwen2.5-Math-7B-Oat-Zero", "raw") == "raw"
    assert build_prompt(problem, "qwen_math").startswith(
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}."
    )
    assert build_prompt(problem, "raw") == problem.question


def test_choice_prompts_list_shuffled_options():
    path = real_file("ood/arc_c.jsonl")
    problem = load_problems(get_benchmark("arc_c", path=str(path)), limit=1)[0]
    prompt = build_prompt(problem, "tgpo")
    for label, text in zip(problem.option_labels, problem.options):
        assert f"\n{label}) {text}" in prompt
    raw = build_prompt(problem, "raw")  # the miniature's `q|xA|yB|` format (each option, then its label)
    assert raw == problem.question + "|" + "".join(
        f"{t}{label}|" for label, t in zip(problem.option_labels, problem.options)
    )
