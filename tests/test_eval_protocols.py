"""Evaluation protocols (eval.protocols), the "authors" template, and LUFFY's evaluation files.

The paper configs used to name `evaluation.template: tgpo_system`, which is no template: validate-config
passed and every evaluation job crashed. Now they select `evaluation.protocol: authors`, and an unknown
protocol or template fails validation naming the key and the allowed values.

LUFFY's files (ElliottYan/LUFFY data/valid.*.parquet) are not shipped: the loader tests build files of
their layout from the real de-duplicated copies in tests/data/benchmarks, and
`test_luffy_files_match_the_registry_copies` compares the real files when TGPO_LUFFY_DATA_DIR names a
folder holding them (docs/evaluation.md gives the numbers of that comparison).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from test_eval_benchmarks import MATH_ROWS, real_file

from eval.benchmarks import BenchmarkError, get_benchmark, load_problems, luffy_problems, read_local_rows
from eval.prompts import LUFFY_SYSTEM_PROMPT, build_prompt, think_opened
from eval.protocols import PROTOCOLS, resolve_evaluation
from tgpo.config import ConfigError, load_config, validate

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = [ROOT / "config" / "paper-7b.yaml", ROOT / "config" / "paper-1.5b.yaml"]


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.name)
def test_paper_configs_evaluate_with_the_authors_protocol(path):
    config = load_config(path)
    assert config["evaluation"]["protocol"] == "authors"
    for experiment, spec in config["experiments"].items():
        for benchmark in config["benchmarks"]:
            settings = resolve_evaluation(config, experiment, benchmark, spec.get("model", ""))
            assert settings.grader == "authors" and settings.top_p == 1.0 and settings.temperature == 0.6
            assert settings.template in ("authors", "qwen", "prime", "qwen_math"), (experiment, settings.template)
            if settings.template == "authors":  # a name eval.prompts knows: the old tgpo_system crashed here
                assert settings.sources["template"] == "protocol authors"


def test_authors_protocol_settings_and_released_checkpoint_templates():
    config = load_config(PAPER_CONFIGS[0])
    trained = resolve_evaluation(config, "tgpo_annealing", "math500")
    assert (trained.template, trained.max_new_tokens, trained.max_model_len) == ("authors", 8192, 16384)
    assert resolve_evaluation(config, "tgpo_annealing", "arc_c").shuffle_options is False  # authors' order
    assert resolve_evaluation(config, "tgpo_annealing", "gpqa_diamond").shuffle_options is None  # registry's
    released = {"simplerl_zero_released": "qwen", "prime_zero": "prime", "oat_zero_released": "qwen_math"}
    for experiment, template in released.items():
        settings = resolve_evaluation(config, experiment, "aime24", config["experiments"][experiment]["model"])
        assert settings.template == template
        assert settings.sources["template"] == f"experiments.{experiment}.evaluation"
    teacher = resolve_evaluation(config, "teacher", "aime24")
    assert (teacher.max_new_tokens, teacher.max_model_len) == (32768, 40960)


def test_miniature_configs_keep_the_suite_protocol():
    config = load_config(ROOT / "config" / "ci.yaml")
    settings = resolve_evaluation(config, "tgpo_annealing", "arc_c")
    assert (settings.protocol, settings.grader, settings.template) == ("suite", "suite", "raw")
    assert settings.max_new_tokens == config["evaluation"]["max_new_tokens"]


@pytest.fixture
def paper_config():
    import yaml

    return yaml.safe_load(PAPER_CONFIGS[0].read_text())


@pytest.mark.parametrize("where", ["evaluation", "benchmark", "experiment"])
def test_unknown_template_names_the_key_and_the_allowed_values(paper_config, where):
    config = copy.deepcopy(paper_config)
    if where == "evaluation":
        config["evaluation"]["template"], key = "tgpo_system", "evaluation.template"
    elif where == "benchmark":
        config["benchmarks"]["aime24"]["template"], key = "tgpo_system", "benchmarks.aime24.template"
    else:
        config["experiments"]["prime_zero"]["evaluation"]["template"] = "tgpo_system"
        key = "experiments.prime_zero.evaluation.template"
    with pytest.raises(
        ConfigError,
        match=rf"paper.yaml: {key}: unknown template 'tgpo_system'; allowed values: "
        r"authors, prime, qwen, qwen_math, raw, tgpo, tgpo_chat, auto",
    ):
        validate(config, "paper.yaml")


def test_unknown_protocol_names_the_key_and_the_allowed_values(paper_config):
    paper_config["evaluation"]["protocol"] = "luffy"
    with pytest.raises(
        ConfigError,
        match=r"evaluation.protocol: unknown protocol 'luffy'; allowed values: " + ", ".join(sorted(PROTOCOLS)),
    ):
        validate(paper_config, "paper.yaml")


class ChatTokenizer:
    """A chat template like the prepared checkpoints' (tgpo.models.prepare): Qwen's format, `<think>\\n` opened."""

    chat_template = "qwen-like"

    def __init__(self, opens_think: bool = True):
        self.opens_think = opens_think

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + "<|im_start|>assistant\n" + ("<think>\n" if self.opens_think else "")


def test_authors_template_is_the_chat_template_over_luffys_system_prompt():
    problem = load_problems(get_benchmark("aime24", path=str(real_file("math/aime24.jsonl"))), limit=1)[0]
    prompt = build_prompt(problem, "authors", ChatTokenizer())
    assert prompt == (
        f"<|im_start|>system\n{LUFFY_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{problem.question}"
        "<|im_end|>\n<|im_start|>assistant\n<think>\n"
    )
    assert think_opened(prompt)
    assert not think_opened(build_prompt(problem, "authors", ChatTokenizer(opens_think=False)))
    assert not think_opened(build_prompt(problem, "qwen"))  # released checkpoints: whole response graded (R3)
    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        build_prompt(problem, "authors")


def luffy_user_message(row: dict) -> str:
    """An ARC-c user message in LUFFY's layout: question, blank line, `label) text` lines, final newline."""
    options = "".join(f"{label}) {text}\n" for label, text in zip(row["labels"], row["choices"]))
    return f"{row['question']}\n\n{options}"


def write_luffy_file(path: Path, rows: list[tuple[str, str, str]], repeats: dict[str, int]) -> None:
    """rows: (data_source, user message, gold), each written `repeats[data_source]` times (default 1)."""
    records = [
        {
            "data_source": source,
            "ability": "math",
            "prompt": [{"role": "system", "content": LUFFY_SYSTEM_PROMPT}, {"role": "user", "content": question}],
            "reward_model": {"ground_truth": gold, "style": "rule"},
            "extra_info": {"index": index, "split": "default"},
        }
        for index, (source, question, gold) in enumerate(rows)
        for _ in range(repeats.get(source, 1))
    ]
    pd.DataFrame(records).to_parquet(path)


def test_luffy_file_loads_as_it_is(tmp_path):
    """valid.all-style file: AIME repeated 32 times and MATH-500 once become one problem each, golds and
    questions verbatim; ARC-c keeps its option order, its labels (1-4 too) and its text layout."""
    math = [
        (source, row["problem"], row["answer"])
        for source, name in (("aime", "aime24"), ("math", "math500"))
        for row in map(json.loads, real_file(f"math/{name}.jsonl").read_text().splitlines())
    ]
    write_luffy_file(tmp_path / "valid.all.parquet", math, {"aime": 32})
    for name, rows in (("aime24", MATH_ROWS["aime24"]), ("math500", MATH_ROWS["math500"])):
        spec = get_benchmark(name, path=str(tmp_path / "valid.all.parquet"))
        ours = load_problems(get_benchmark(name, path=str(real_file(f"math/{name}.jsonl"))))
        loaded = luffy_problems(read_local_rows(tmp_path / "valid.all.parquet"), spec, source="valid.all")
        assert len(loaded) == rows
        assert {repeats for _, repeats in loaded} == {32 if name == "aime24" else 1}
        assert [(p.question, p.answer) for p, _ in loaded] == [(p.question, p.answer) for p in ours]
        assert load_problems(spec) == [p for p, _ in loaded]
    arc_rows = [json.loads(line) for line in real_file("ood/arc_c.jsonl").read_text().splitlines()]
    arc_file = [("arc_c", luffy_user_message(row), row["answer"]) for row in arc_rows]
    write_luffy_file(tmp_path / "valid.arc_c.parquet", arc_file, {})
    problems = load_problems(get_benchmark("arc_c", path=str(tmp_path / "valid.arc_c.parquet")))
    assert len(problems) == len(arc_rows)
    numeric = [p for p in problems if p.gold_letter in "1234"]
    assert len(numeric) == 22 and all(p.is_choice and not p.options for p in problems)
    assert build_prompt(problems[0], "authors", ChatTokenizer()).count(problems[0].question) == 1  # verbatim


def test_hub_layout_under_the_authors_template_matches_luffys_text(tmp_path):
    """Our canonical ARC-c rows, unshuffled and rendered by the authors template, give LUFFY's user message."""
    arc_rows = [json.loads(line) for line in real_file("ood/arc_c.jsonl").read_text().splitlines()]
    problems = load_problems(get_benchmark("arc_c", path=str(real_file("ood/arc_c.jsonl")), shuffle_options=False))
    messages = [
        build_prompt(p, "authors", ChatTokenizer()).split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
        for p in problems
    ]
    assert messages == [luffy_user_message(row) for row in arc_rows]
    assert sum(p.gold_letter in "1234" for p in problems) == 22  # labels 1-4 kept, not relabelled


def test_luffy_file_errors_name_the_file_and_the_problem(tmp_path):
    path = tmp_path / "valid.all.parquet"
    write_luffy_file(path, [("aime", "What is 1+1?", "2")], {})
    with pytest.raises(
        BenchmarkError,
        match=r"no rows with data_source 'math' for benchmark 'math500'; the file "
        r"has \['aime'\]",
    ):
        load_problems(get_benchmark("math500", path=str(path)))
    frame = pd.read_parquet(path)
    frame.at[0, "prompt"] = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "1+1?"}]
    frame.to_parquet(path)
    with pytest.raises(BenchmarkError, match="row 0 has another system prompt than LUFFY's"):
        load_problems(get_benchmark("aime24", path=str(path)))


LUFFY_FILES = {"valid.all.parquet": list(MATH_ROWS), "valid.arc_c.parquet": ["arc_c"]}


@pytest.mark.skipif(
    not os.environ.get("TGPO_LUFFY_DATA_DIR"),
    reason="set TGPO_LUFFY_DATA_DIR to a folder holding ElliottYan/LUFFY data/valid.*.parquet",
)
def test_luffy_files_match_the_registry_copies():
    """Problem counts, questions and golds of LUFFY's real files equal tests/data/benchmarks' copies."""
    folder = Path(os.environ["TGPO_LUFFY_DATA_DIR"])
    for file_name, names in LUFFY_FILES.items():
        rows = read_local_rows(folder / file_name)
        for name in names:
            spec = get_benchmark(name, path=str(folder / file_name))
            loaded = luffy_problems(rows, spec, source=file_name)
            relative = "ood/arc_c.jsonl" if name == "arc_c" else f"math/{name}.jsonl"
            ours = load_problems(get_benchmark(name, path=str(real_file(relative)), shuffle_options=False))
            assert len(loaded) == len(ours), name
            assert {r for _, r in loaded} == {spec.k}, name  # avg@32 by 32 copies of each row
            assert [p.answer for p, _ in loaded] == [p.gold_letter or p.answer for p in ours], name
            if name != "arc_c":
                assert [p.question for p, _ in loaded] == [p.question for p in ours], name
            else:
                assert [p.question for p, _ in loaded] == [
                    build_prompt(p, "authors", ChatTokenizer()).split("user\n")[1].split("<|im_end|>")[0] for p in ours
                ]
    # GPQA-Diamond (gated data, no copy in tests/data): 198 problems, one sample each, the authors' fixed
    # shuffle baked into the file (gold letters of every kind) and their "ANSWER: $LETTER" instruction kept
    gpqa = folder / "valid.gpqa.parquet"
    loaded = luffy_problems(read_local_rows(gpqa), get_benchmark("gpqa_diamond", path=str(gpqa)), source=gpqa.name)
    assert len(loaded) == 198 and {r for _, r in loaded} == {1}
    assert {p.answer for p, _ in loaded} == set("ABCD")
    assert all("'ANSWER: $LETTER'" in p.question for p, _ in loaded)


class EchoBackend:
    """Answers every prompt with the gold of its problem boxed after `</think>`, or after a second one."""

    def __init__(self, answers: list[str], second_block: bool):
        self.tokenizer, self.answers, self.second = ChatTokenizer(), answers, second_block

    def generate(self, prompts, *, n, temperature, top_p, max_new_tokens, seed):
        from eval.generation import Generation
        from eval.response_styles import boxed_after_think, two_think_ends

        render = two_think_ends if self.second else boxed_after_think
        return [Generation(i, j, render(self.answers[i]), "stop", 10) for i in range(len(prompts)) for j in range(n)]


@pytest.mark.parametrize("second_block", [False, True])
def test_evaluate_grades_with_the_protocols_grader(second_block):
    """The same generations, graded by each grader: an answer after a second `</think>` is outside the
    authors' segment (R1) but after the suite's last `</think>`; the frame records the protocol."""
    from eval.cli import evaluate

    spec = get_benchmark("amc", path=str(real_file("math/amc.jsonl")), k=2)
    answers = [p.answer for p in load_problems(spec, limit=5)]
    frames = {}
    for grader in ("authors", "suite"):
        frames[grader], _ = evaluate(
            spec,
            EchoBackend(answers, second_block),
            model="m",
            template="authors",
            temperature=0.6,
            top_p=1.0,
            max_new_tokens=16,
            seed=0,
            limit=5,
            grader=grader,
            protocol=grader,
            grading_workers=1,
            progress=False,
        )
    assert frames["authors"].attrs["think_opened"] == 1.0 and frames["authors"].attrs["grader"] == "authors"
    assert frames["authors"]["correct"].tolist() == [not second_block] * 10
    assert frames["suite"]["correct"].tolist() == [True] * 10
