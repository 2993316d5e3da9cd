"""Verb `world`: write the miniature world (task data, tokenizers, pretraining corpora, benchmarks).

    python -m tgpo world --out results/mini/world --seed 0 [--size ci|small|default]

Layout of --out:
    tokenizer/                 student tokenizer (character level, save_pretrained)
    teacher_tokenizer/         cross-family teachers' tokenizer: student vocabulary + <think>, </think>
    train.parquet              RL training prompts: prompt_id, prompt, answer (natural difficulty mix)
    openr1-math-46k-8192.parquet   the same prompts in the schema of OpenR1-Math-46k-8192 (OPENR1_SCHEMA), the
                               stand-in for `data.train: {hub: Elliott/Openr1-Math-46k-8192}` (prepare-data reads it)
    validation.parquet         held-out prompts of the same mix, for choosing settings (`python -m tgpo sweep`)
    corpora/<corpus>.parquet   pretraining text: prompt, response, style, hard, kind
    benchmarks/<name>.jsonl    the nine benchmark stand-ins (see tgpo.mini.benchmarks)
    world.json                 sizes, seed, answer regex, corpus and benchmark descriptions

Every problem of a benchmark is held out of the training prompts, of the other benchmarks and of every
pretraining corpus. The students' corpus has no hard problem (the knowledge only teachers have).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from tgpo.mini import benchmarks as bench
from tgpo.mini.task import (
    ANSWER_REGEX,
    CHOICE_ANSWER_REGEX,
    CHOICE_LABELS,
    CHOICE_OPTIONS,
    HARD_COLUMN_TOTAL,
    Problem,
    choice_problem,
    choice_solution,
    parse_prompt,
    random_problem,
    render_choice_prompt,
    solution,
)
from tgpo.mini.tokenizer import build_student_tokenizer, build_teacher_tokenizer
from tgpo.results import io


@dataclass(frozen=True)
class CorpusSpec:
    """Who writes this text and how: the pretraining mixture of one model family."""

    name: str
    includes_hard: bool  # False: the students never see a hard problem
    cot_share: float  # share of chain-of-thought responses; the rest are in `short_style`
    short_style: str  # "direct" (`#632.`, students') or "think" (`#7+5+0=12;...;</think>#632.`, cross-family teachers')
    think_markers: bool  # think-style reasoning closed by </think> (cross-family tokenizer only)
    choice_share: float = 0.1  # share of multiple-choice prompts (tgpo.mini.task: the sum's hundreds digit)


CORPORA: dict[str, CorpusSpec] = {
    spec.name: spec
    for spec in [
        CorpusSpec("student", includes_hard=False, cot_share=0.9, short_style="direct", think_markers=False),
        CorpusSpec("teacher_in_family", includes_hard=True, cot_share=0.9, short_style="direct", think_markers=False),
        CorpusSpec("teacher_cross", includes_hard=True, cot_share=0.3, short_style="think", think_markers=True),
        CorpusSpec("teacher_cross_r1", includes_hard=True, cot_share=0.6, short_style="think", think_markers=True),
    ]
}

VALIDATION_ROWS = {"ci": 16, "verl": 16, "small": 256, "default": 256}
WORLD_SIZES = {  # size -> (training prompts, rows per pretraining corpus)
    "ci": (64, 4_000),
    "verl": (64, 4_000),  # the ci world for the verl engine (tokenizers: tgpo.mini.tokenizer, for_verl)
    "small": (1_000, 30_000),
    "default": (2_000, 60_000),
}


# OpenR1-Math-46k-8192 (LUFFY's training set, https://huggingface.co/datasets/Elliott/Openr1-Math-46k-8192,
# read by the TGPO authors' data/prepare_train.py as it is): one row per problem with these columns, as
# its dataset card lists them (and that of its subset SII-Enigma/OpenR1-Math-R1-8.5k):
#   data_source: str; prompt: [{content, role: "user"}]; target: [{content, role: "assistant"}] (the
#   DeepSeek-R1 trace, `<think>...</think>` then the solution); ability: str;
#   reward_model: {ground_truth: str, style: "rule"}; extra_info: {index: int, split: str}
OPENR1_FILE = "openr1-math-46k-8192.parquet"
OPENR1_SCHEMA = ("data_source", "prompt", "target", "ability", "reward_model", "extra_info")
OPENR1_DATA_SOURCE = "openr1_math_mini"


def openr1_rows(train: list[dict]) -> list[dict]:
    """The training prompts in OPENR1_SCHEMA; `target` is the cross-family teachers' think-style trace
    (`#7+5+0=12;...;</think>#632.`), the analogue of OpenR1's R1 traces."""
    rows = []
    for row in train:
        problem = parse_prompt(row["prompt"])
        rows.append(
            {
                "data_source": OPENR1_DATA_SOURCE,
                "prompt": [{"content": row["prompt"], "role": "user"}],
                "target": [{"content": solution(problem, "think", think_markers=True), "role": "assistant"}],
                "ability": "math",
                "reward_model": {"ground_truth": row["answer"], "style": "rule"},
                "extra_info": {"index": int(row["prompt_id"]), "split": "train"},
            }
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="world folder, e.g. results/mini/world")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--size",
        choices=sorted(WORLD_SIZES),
        default="default",
        help="ci: tiny (tests); verl: ci for the verl engine (chat template, '\\n' token); "
        "small / default: the miniature pipeline",
    )


def run(args: argparse.Namespace) -> int:
    summary = build_world(args.out, seed=args.seed, size=args.size)
    print(json.dumps(summary["counts"], indent=1))
    return 0


def build_world(out: str | Path, *, seed: int = 0, size: str = "default") -> dict:
    if size not in WORLD_SIZES:
        raise ValueError(f"unknown world size {size!r}; expected one of {sorted(WORLD_SIZES)}")
    import pandas as pd

    out = Path(out)
    rng = random.Random(seed)
    n_train, n_corpus = WORLD_SIZES[size]
    n_validation = VALIDATION_ROWS[size]

    held_out: set[tuple[int, int]] = set()
    benchmark_rows = {}
    for name, spec in bench.BENCHMARKS.items():
        benchmark_rows[name] = bench.build_benchmark(spec, bench.rows_for(spec, size), rng, held_out)
    train = training_prompts(n_train, rng, held_out)
    # the validation split (settings are chosen on it, tgpo/mini/sweep.py): held out of training, the
    # benchmarks and every pretraining corpus
    validation = training_prompts(n_validation, rng, held_out | {parse_prompt(row["prompt"]).key for row in train})
    held_out |= {parse_prompt(row["prompt"]).key for row in validation}

    with io.atomic_dir(out) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private
        for_verl = size == "verl"
        save_tokenizer(build_student_tokenizer(for_verl=for_verl), tmp / "tokenizer")
        save_tokenizer(build_teacher_tokenizer(for_verl=for_verl), tmp / "teacher_tokenizer")
        pd.DataFrame(train).to_parquet(tmp / "train.parquet", index=False)
        pd.DataFrame(openr1_rows(train), columns=list(OPENR1_SCHEMA)).to_parquet(tmp / OPENR1_FILE, index=False)
        pd.DataFrame(validation).to_parquet(tmp / "validation.parquet", index=False)
        (tmp / "corpora").mkdir()
        for name, spec in CORPORA.items():
            rows = corpus_rows(spec, n_corpus, random.Random(f"{seed}-{name}"), held_out)
            pd.DataFrame(rows).to_parquet(tmp / "corpora" / f"{name}.parquet", index=False)
        (tmp / "benchmarks").mkdir()
        for name, rows in benchmark_rows.items():
            (tmp / "benchmarks" / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        summary = world_summary(seed, size, train, benchmark_rows, n_corpus, len(validation))
        (tmp / "world.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def save_tokenizer(tokenizer, directory: Path) -> None:
    tokenizer.save_pretrained(str(directory))


def training_prompts(count: int, rng: random.Random, held_out: set[tuple[int, int]]) -> list[dict]:
    """Distinct problems of natural difficulty, none in a benchmark."""
    seen: set[tuple[int, int]] = set()
    rows = []
    while len(rows) < count:
        problem = random_problem(rng)
        key = problem.key
        if key in held_out or key in seen:
            continue
        seen.add(key)
        rows.append({"prompt_id": len(rows), "prompt": problem.prompt, "answer": str(problem.answer)})
    return rows


def corpus_rows(spec: CorpusSpec, count: int, rng: random.Random, held_out: set[tuple[int, int]]) -> list[dict]:
    rows = []
    while len(rows) < count:
        is_choice = rng.random() < spec.choice_share
        draw = choice_problem if is_choice else random_problem
        problem = draw(rng, hard=None if spec.includes_hard else False)
        if problem.key in held_out:
            continue
        style = "cot" if rng.random() < spec.cot_share else spec.short_style
        if is_choice:
            prompt, response = choice_example(problem, style, spec.think_markers)
            kind = "choice"
        else:
            prompt, response = problem.prompt, solution(problem, style, think_markers=spec.think_markers)
            kind = "math"
        rows.append({"prompt": prompt, "response": response, "style": style, "hard": problem.is_hard, "kind": kind})
    return rows


def choice_example(problem: Problem, style: str, think_markers: bool) -> tuple[str, str]:
    """A multiple-choice prompt (the ten digit options) and its response in `style`."""
    prompt = render_choice_prompt(problem.prompt, list(CHOICE_OPTIONS), list(CHOICE_LABELS))
    return prompt, choice_solution(problem, style, think_markers=think_markers)


def world_summary(
    seed: int, size: str, train: list[dict], benchmark_rows: dict, n_corpus: int, n_validation: int
) -> dict:
    return {
        "seed": seed,
        "size": size,
        "task": f"3-digit addition; hard = some column total (carry included) >= {HARD_COLUMN_TOTAL:d}",
        "answer_regex": ANSWER_REGEX,
        "answer_format": {
            "math": "...;#632.  (graded: the integer between the last '#' and the final '.')",
            "choice": "...;3+2+1=06;6G.  (the sum's hundreds digit and its label; graded: the label before the final '.')",
            "choice_prompt": "tgpo.mini.task.render_choice_prompt(question, choices, labels) = '347+285=|0A|1B|...|9J|'",
            "choice_answer_regex": CHOICE_ANSWER_REGEX,
        },
        "counts": {
            "train": len(train),
            "validation": n_validation,
            "corpus_rows": n_corpus,
            **{name: len(rows) for name, rows in benchmark_rows.items()},
        },
        "corpora": {name: asdict(spec) for name, spec in CORPORA.items()},
        "benchmarks": {name: asdict(spec) for name, spec in bench.BENCHMARKS.items()},
    }
