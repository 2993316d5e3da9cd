"""The benchmark registry: where each of the paper's nine benchmarks comes from and how it is scored.

Paper Section 4: avg@32 on AIME24, AIME25 and AMC, pass@1 on MATH-500, Minerva and OlympiadBench
(in-distribution); pass@1 on ARC-c, GPQA-Diamond and MMLU-Pro (out-of-distribution), whose options are
shuffled "to mitigate position bias and prevent potential data contamination".

A benchmark loads from the Hugging Face hub (its `hub_id`, `config`, `split` and hub field names) or from
a local JSONL / parquet file (`path`). Local files use the canonical row formats

    maths:            {id, problem, answer}                     (answer: LaTeX, the Math-Verify gold)
    multiple choice:  {id, question, choices, labels, answer}   (answer: one of labels)

or, for a local copy of the hub data, the hub's own field names. GPQA-Diamond is gated: it loads only from
the hub (with the user's token) or a user's local file; this project never ships it.

Multiple-choice options are shuffled with a seeded RNG per problem (seed and problem id), relabelled
A, B, C, ... in their new order; the correct option's text is carried over, so `gold_letter` is the new
label of the same text. Options that are not shuffled keep the file's own labels (ARC-c's 22 rows
labelled 1-4 stay so, as in the authors' file).

The authors' own files (ElliottYan/LUFFY data/valid.all.parquet, valid.arc_c.parquet, valid.gpqa.parquet,
valid.mmlu_pro.parquet; byte-identical in helldog-star/TGPO) load as they are when `path` names one: rows
`{data_source, prompt: [system, user], reward_model: {ground_truth}, ...}`; the registry entry's
`luffy_source` selects its rows, the user message is the question verbatim (options, their order and
GPQA's "ANSWER: $LETTER" instruction included), `ground_truth` the gold; AIME and AMC rows, repeated 32
times there (avg@32 by repetition), become one problem each (`luffy_problems` returns the repeat counts).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class BenchmarkError(ValueError):
    """A benchmark file, row or field that does not match its registry entry."""


@dataclass(frozen=True)
class HubFields:
    """Field names of a benchmark's rows on the hub (dotted paths reach into nested dicts)."""

    question: str
    answer: str | None = None  # maths gold / MC gold label or letter
    id: str | None = None  # None: the row index is the id
    choices: str | None = None  # MC: list of option texts
    labels: str | None = None  # MC: list of option labels matching `choices`
    answer_index: str | None = None  # MC: index of the gold option in `choices`
    correct_text: str | None = None  # MC with separate columns (GPQA): the correct option's text
    incorrect_texts: tuple[str, ...] = ()  # MC with separate columns (GPQA): the wrong options' texts


@dataclass(frozen=True)
class BenchmarkSpec:
    """One registry entry. Every field but `name` can be overridden from a config's `benchmarks:` entry."""

    name: str
    display_name: str
    domain: str  # "id" | "ood"
    kind: str  # "math" | "choice"
    hub_id: str
    split: str
    hub_fields: HubFields
    config: str | None = None
    metric: str = "pass@1"  # "avg@k" (k samples per problem, mean accuracy) | "pass@1"
    k: int = 1  # samples per problem
    path: str | None = None  # local JSONL / parquet replacing the hub
    shuffle_options: bool = False
    gated: bool = False
    answer_regex: str | None = None  # first group = the extracted answer (miniature: '#([^#.]*)\.\s*$')
    template: str | None = None  # prompt template override (eval.prompts.TEMPLATES)
    max_new_tokens: int | None = None
    source: str = ""
    luffy_source: str | None = None  # `data_source` of its rows in LUFFY's evaluation files
    instruction: str | None = None  # put before the question by the "authors" template (GPQA's answer format)

    @property
    def metric_name(self) -> str:
        """The metric as reported: "avg@32", "pass@1"."""
        return f"avg@{self.k}" if self.metric == "avg@k" else self.metric


@dataclass(frozen=True)
class Problem:
    """One benchmark problem, ready for prompting and grading."""

    problem_id: str
    question: str  # maths problem or MC question stem (options not included)
    answer: str  # maths: LaTeX gold; MC: the gold letter after shuffling
    options: tuple[str, ...] = ()  # MC: option texts in presented order
    option_labels: tuple[str, ...] = ()  # MC: "A", "B", ... in presented order
    gold_letter: str | None = None  # MC: label of the correct option
    instruction: str = ""  # the benchmark's instruction (eval.prompts "authors" puts it first)

    @property
    def is_choice(self) -> bool:
        """A multiple-choice problem (its options listed in `options`, or, from a LUFFY file, in `question`)."""
        return self.gold_letter is not None


# The answer-format line that starts every user message of LUFFY's valid.gpqa.parquet (OpenAI simple-evals'
# multiple-choice query); the "authors" template puts it before a hub GPQA question.
GPQA_INSTRUCTION = (
    "Answer the following multiple choice question. The last line of your response should be of "
    "the following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of ABCD. Think "
    "step by step before answering."
)
LUFFY_COLUMNS = ("data_source", "prompt", "reward_model")

MATH_FIELDS = ("id", "problem", "answer")
CHOICE_FIELDS = ("id", "question", "choices", "labels", "answer")

REGISTRY: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in [
        BenchmarkSpec(
            "aime24",
            "AIME 2024",
            "id",
            "math",
            "HuggingFaceH4/aime_2024",
            "train",
            HubFields(question="problem", answer="answer", id="id"),
            metric="avg@k",
            k=32,
            luffy_source="aime",
            source="hub HuggingFaceH4/aime_2024 (30 problems)",
        ),
        BenchmarkSpec(
            "aime25",
            "AIME 2025",
            "id",
            "math",
            "math-ai/aime25",
            "test",
            HubFields(question="problem", answer="answer", id="id"),
            metric="avg@k",
            k=32,
            luffy_source="aime25",
            source="hub math-ai/aime25, the set lm-evaluation-harness's aime25 task uses",
        ),
        BenchmarkSpec(
            "amc",
            "AMC",
            "id",
            "math",
            "AI-MO/aimo-validation-amc",
            "train",
            HubFields(question="problem", answer="answer", id="id"),
            metric="avg@k",
            k=32,
            luffy_source="amc",
            source="hub AI-MO/aimo-validation-amc: the 83-problem set of PRIME-RL/PRIME eval/data and "
            "sail-sg/understand-r1-zero datasets/evaluation_suite/amc",
        ),
        BenchmarkSpec(
            "math500",
            "MATH-500",
            "id",
            "math",
            "HuggingFaceH4/MATH-500",
            "test",
            HubFields(question="problem", answer="answer", id="unique_id"),
            luffy_source="math",
            source="hub HuggingFaceH4/MATH-500 (the PRM800K test split of MATH)",
        ),
        BenchmarkSpec(
            "minerva",
            "Minerva",
            "id",
            "math",
            "lkevinzc/math-eval",
            "minerva",
            HubFields(question="problem", answer="answer"),
            luffy_source="minerva",
            source="hub lkevinzc/math-eval: sail-sg/understand-r1-zero datasets/evaluation_suite/minerva (272 rows)",
        ),
        BenchmarkSpec(
            "olympiadbench",
            "OlympiadBench",
            "id",
            "math",
            "lkevinzc/math-eval",
            "olympiad_bench",
            HubFields(question="problem", answer="answer"),
            luffy_source="olympiad_bench",
            source="hub lkevinzc/math-eval: sail-sg/understand-r1-zero datasets/evaluation_suite/"
            "olympiad_bench (675 rows, OE_TO_maths_en_COMP)",
        ),
        BenchmarkSpec(
            "arc_c",
            "ARC-c",
            "ood",
            "choice",
            "allenai/ai2_arc",
            "test",
            HubFields(question="question", answer="answerKey", id="id", choices="choices.text", labels="choices.label"),
            config="ARC-Challenge",
            shuffle_options=True,
            luffy_source="arc_c",
            source="hub allenai/ai2_arc ARC-Challenge test (1,172 rows, as ElliottYan/LUFFY data/valid.arc_c.parquet)",
        ),
        BenchmarkSpec(
            "gpqa_diamond",
            "GPQA*",
            "ood",
            "choice",
            "Idavidrein/gpqa",
            "train",
            HubFields(
                question="Question",
                id="Record ID",
                correct_text="Correct Answer",
                incorrect_texts=("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"),
            ),
            config="gpqa_diamond",
            shuffle_options=True,
            gated=True,
            luffy_source="gpqa",
            instruction=GPQA_INSTRUCTION,
            source="hub Idavidrein/gpqa gpqa_diamond (198 rows; gated: hub with a token, or a user's local file)",
        ),
        BenchmarkSpec(
            "mmlu_pro",
            "MMLU-Pro",
            "ood",
            "choice",
            "TIGER-Lab/MMLU-Pro",
            "test",
            HubFields(question="question", id="question_id", choices="options", answer_index="answer_index"),
            shuffle_options=True,
            luffy_source="mmlu_pro",
            source="hub TIGER-Lab/MMLU-Pro test (12,032 rows, up to 10 options)",
        ),
    ]
}

OVERRIDABLE = ("path", "k", "answer_regex", "template", "max_new_tokens", "shuffle_options")


def get_benchmark(name: str, **overrides: Any) -> BenchmarkSpec:
    """The registry entry `name` with config overrides applied (None values are ignored).

    Overrides are the keys of a config's `benchmarks:` entry: path, k, answer_regex, template,
    max_new_tokens (and shuffle_options).
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown benchmark {name!r}; known benchmarks: {', '.join(sorted(REGISTRY))}")
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise KeyError(f"benchmark {name!r}: unknown override(s) {unknown}; expected some of {list(OVERRIDABLE)}")
    given = {key: value for key, value in overrides.items() if value is not None}
    if "k" in given and int(given["k"]) < 1:
        raise ValueError(f"benchmark {name!r}: k must be >= 1, got {given['k']!r}")
    return replace(REGISTRY[name], **given)


# ----------------------------------------------------------------------------------------------- loading


def load_problems(spec: BenchmarkSpec, *, shuffle_seed: int = 0, limit: int | None = None) -> list[Problem]:
    """The benchmark's problems, from `spec.path` if set, else from the hub.

    Multiple-choice options are shuffled (when `spec.shuffle_options`) with `shuffle_seed`.
    """
    if spec.path:
        rows, source = read_local_rows(Path(spec.path)), str(spec.path)
    else:
        rows, source = read_hub_rows(spec), f"{spec.hub_id}[{spec.config or 'default'}/{spec.split}]"
    if not rows:
        raise BenchmarkError(f"{source}: benchmark {spec.name!r} has no rows")
    if is_luffy_layout(rows[0]):
        problems = [problem for problem, _ in luffy_problems(rows, spec, source=source)]
        return problems[:limit] if limit is not None else problems
    if limit is not None:
        rows = rows[:limit]
    hub_layout = spec.path is None or not has_canonical_fields(rows[0], spec.kind)
    problems = [
        row_to_problem(row, spec, source=source, row_index=index, hub_layout=hub_layout, shuffle_seed=shuffle_seed)
        for index, row in enumerate(rows)
    ]
    duplicated = sorted(
        problem_id for problem_id, count in Counter(p.problem_id for p in problems).items() if count > 1
    )
    if duplicated:
        raise BenchmarkError(f"{source}: duplicate problem ids {duplicated[:5]}")
    return problems


def is_luffy_layout(row: dict) -> bool:
    return all(name in row for name in LUFFY_COLUMNS)


def luffy_problems(rows: list[dict], spec: BenchmarkSpec, *, source: str) -> list[tuple[Problem, int]]:
    """(problem, times its row is repeated) for the rows of `spec.luffy_source` in a LUFFY evaluation file,
    in first-appearance order. The system message must be LUFFY's (tgpo.system_prompt.LUFFY_SYSTEM_PROMPT): the
    "authors" template rebuilds the prompt from it."""
    from tgpo.system_prompt import LUFFY_SYSTEM_PROMPT

    if not spec.luffy_source:
        raise BenchmarkError(f"{source}: benchmark {spec.name!r} has no rows in LUFFY's evaluation files")
    counts: dict[tuple[str, str], int] = {}
    for index, row in enumerate(rows):
        if row["data_source"] != spec.luffy_source:
            continue
        messages = list(row["prompt"])
        roles = [message.get("role") for message in messages]
        if roles != ["system", "user"]:
            raise BenchmarkError(f"{source}: row {index} field 'prompt' has roles {roles}, expected ['system', 'user']")
        if messages[0]["content"] != LUFFY_SYSTEM_PROMPT:
            raise BenchmarkError(
                f"{source}: row {index} has another system prompt than LUFFY's "
                "(tgpo.system_prompt.LUFFY_SYSTEM_PROMPT); the 'authors' template would not rebuild it"
            )
        question = messages[1]["content"]
        if not isinstance(question, str) or not question.strip():
            raise BenchmarkError(f"{source}: row {index}: the user message is empty")
        gold = as_answer_text(
            field_value(row, "reward_model.ground_truth", source=source, row_index=index),
            source=source,
            row_index=index,
            name="reward_model.ground_truth",
        )
        counts[(question, gold)] = counts.get((question, gold), 0) + 1
    if not counts:
        found = sorted({str(row["data_source"]) for row in rows})
        raise BenchmarkError(
            f"{source}: no rows with data_source {spec.luffy_source!r} for benchmark "
            f"{spec.name!r}; the file has {found}"
        )
    choice = spec.kind == "choice"
    return [
        (
            Problem(
                problem_id=f"{spec.name}-{index}", question=question, answer=gold, gold_letter=gold if choice else None
            ),
            repeats,
        )
        for index, ((question, gold), repeats) in enumerate(counts.items())
    ]


def read_local_rows(path: Path) -> list[dict]:
    """Rows of a local JSONL or parquet file."""
    if not path.exists():
        raise BenchmarkError(f"benchmark file {path} does not exist")
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    if path.suffix in (".jsonl", ".json"):
        rows = []
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise BenchmarkError(f"{path}: line {line_number} is not valid JSON ({error})") from error
                if not isinstance(row, dict):
                    raise BenchmarkError(f"{path}: line {line_number} is not a JSON object")
                rows.append(row)
        return rows
    raise BenchmarkError(f"benchmark file {path}: expected a .jsonl or .parquet file, got suffix {path.suffix!r}")


def read_hub_rows(spec: BenchmarkSpec) -> list[dict]:
    """Rows of the benchmark's hub dataset (needs network or the HF cache; GPQA needs an accepted licence)."""
    import datasets

    try:
        dataset = datasets.load_dataset(spec.hub_id, spec.config, split=spec.split)
    except Exception as error:  # noqa: BLE001 - re-raised with the benchmark named
        hint = " (gated: accept its terms on the hub and log in, or pass --path)" if spec.gated else ""
        raise BenchmarkError(
            f"benchmark {spec.name!r}: could not load {spec.hub_id} config={spec.config} split={spec.split}{hint}: "
            f"{error}"
        ) from error
    return [dict(row) for row in dataset]


def has_canonical_fields(row: dict, kind: str) -> bool:
    wanted = MATH_FIELDS if kind == "math" else CHOICE_FIELDS
    return all(name in row for name in wanted if name != "id")


def field_value(row: dict, dotted: str, *, source: str, row_index: int) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise BenchmarkError(f"{source}: row {row_index} has no field {dotted!r} (fields: {sorted(row)})")
        value = value[part]
    return value


def as_answer_text(value: Any, *, source: str, row_index: int, name: str) -> str:
    """A gold answer as a string: numbers as written (142.0 stays "142.0"), one-element lists unwrapped,
    several answers joined with ", " (OlympiadBench rows with more than one final answer)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if not value:
            raise BenchmarkError(f"{source}: row {row_index} field {name!r} is an empty list")
        return ", ".join(as_answer_text(item, source=source, row_index=row_index, name=name) for item in value)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BenchmarkError(f"{source}: row {row_index} field {name!r} is empty")
    if isinstance(value, (int, float, str)):
        return str(value).strip()
    raise BenchmarkError(f"{source}: row {row_index} field {name!r} has type {type(value).__name__}, expected text")


def row_to_problem(
    row: dict, spec: BenchmarkSpec, *, source: str, row_index: int, hub_layout: bool, shuffle_seed: int
) -> Problem:
    fields = spec.hub_fields if hub_layout else None
    id_field = fields.id if fields else "id"
    if id_field and id_field in row and row[id_field] is not None:
        problem_id = str(row[id_field])
    else:
        problem_id = f"{spec.name}-{row_index}"
    question_field = fields.question if fields else ("problem" if spec.kind == "math" else "question")
    question = field_value(row, question_field, source=source, row_index=row_index)
    if not isinstance(question, str) or not question.strip():
        raise BenchmarkError(f"{source}: row {row_index} field {question_field!r} must be non-empty text")
    if spec.kind == "math":
        answer_field = fields.answer if fields else "answer"
        answer = as_answer_text(
            field_value(row, answer_field, source=source, row_index=row_index),
            source=source,
            row_index=row_index,
            name=answer_field,
        )
        return Problem(problem_id=problem_id, question=question, answer=answer)
    options, gold_index, file_labels = choice_options(row, fields, source=source, row_index=row_index)
    if spec.shuffle_options:
        options, gold_index = shuffle_options(options, gold_index, seed=shuffle_seed, problem_id=problem_id)
    if len(options) > len(LETTERS):
        raise BenchmarkError(f"{source}: row {row_index} has {len(options)} options; at most {len(LETTERS)} supported")
    labels = tuple(file_labels) if file_labels and not spec.shuffle_options else tuple(LETTERS[: len(options)])
    return Problem(
        problem_id=problem_id,
        question=question,
        answer=labels[gold_index],
        options=tuple(options),
        option_labels=labels,
        gold_letter=labels[gold_index],
        instruction=spec.instruction or "",
    )


def choice_options(
    row: dict, fields: HubFields | None, *, source: str, row_index: int
) -> tuple[list[str], int, list[str] | None]:
    """(option texts in the file's order, index of the correct one, the file's labels or None)."""

    def get(name: str) -> Any:
        return field_value(row, name, source=source, row_index=row_index)

    def text_list(name: str) -> list[str]:
        value = get(name)
        value = value.tolist() if hasattr(value, "tolist") else value
        if not isinstance(value, (list, tuple)) or len(value) < 2:
            raise BenchmarkError(
                f"{source}: row {row_index} field {name!r} must list at least 2 options, got {value!r}"
            )
        return [str(item).strip() for item in value]

    if fields is not None and fields.correct_text:  # GPQA: one correct and several incorrect columns
        texts = [as_answer_text(get(fields.correct_text), source=source, row_index=row_index, name=fields.correct_text)]
        texts += [
            as_answer_text(get(name), source=source, row_index=row_index, name=name) for name in fields.incorrect_texts
        ]
        return texts, 0, None
    choices_field = fields.choices if fields else "choices"
    texts = text_list(choices_field)
    if fields is not None and fields.answer_index:
        index = get(fields.answer_index)
        if not isinstance(index, (int,)) and not (hasattr(index, "item") and isinstance(index.item(), int)):
            raise BenchmarkError(
                f"{source}: row {row_index} field {fields.answer_index!r} must be an integer, got {index!r}"
            )
        index = int(index)
        if not 0 <= index < len(texts):
            raise BenchmarkError(
                f"{source}: row {row_index} field {fields.answer_index!r}={index} is outside 0..{len(texts) - 1}"
            )
        return texts, index, None
    labels_field = fields.labels if fields else "labels"
    answer_field = fields.answer if fields else "answer"
    labels = text_list(labels_field)
    if len(labels) != len(texts):
        raise BenchmarkError(
            f"{source}: row {row_index}: {len(texts)} {choices_field!r} but {len(labels)} {labels_field!r}"
        )
    gold_label = str(get(answer_field)).strip()
    if gold_label not in labels:
        raise BenchmarkError(f"{source}: row {row_index} field {answer_field!r}={gold_label!r} is not one of {labels}")
    return texts, labels.index(gold_label), labels


def shuffle_options(options: Sequence[str], gold_index: int, *, seed: int, problem_id: str) -> tuple[list[str], int]:
    """A seeded permutation of the options; returns (shuffled options, new index of the gold option).

    The RNG is seeded with (seed, problem id), so a problem's order depends neither on the other rows nor
    on the order the file lists them in.
    """
    order = list(range(len(options)))
    random.Random(f"{seed}:{problem_id}").shuffle(order)
    return [options[i] for i in order], order.index(gold_index)
