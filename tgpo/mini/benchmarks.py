"""Stand-ins of the paper's nine benchmarks (Section 4), in the real benchmarks' row formats.

In-distribution maths rows `{id, problem, answer}` (the prompt is `problem` itself, `347+285=`):
aime24, aime25, amc (the hardest, scored avg@k like the paper's avg@32) and math500, minerva,
olympiadbench (graded difficulty, pass@1). Out-of-distribution multiple-choice rows
`{id, question, choices, labels, answer}` (answer = the gold label; the evaluator renders the prompt
with `tgpo.mini.task.render_choice_prompt`, options not shuffled), which ask for the sum's hundreds digit
with the ten digits as options: arc_c (30 % hard problems), mmlu_pro (50 %) and gpqa_diamond (hard
problems only, so a carry the students never learnt decides the digit). A share of the multiple-choice
format is in every pretraining corpus, so the models know the answer format `...;3+2+1=06;6G.`.

Maths rows are graded on the text matched by ANSWER_REGEX (`#([^.#]*)\\.\\s*$`, the integer sum),
multiple-choice rows on CHOICE_ANSWER_REGEX (`([A-J])\\.\\s*$`, the option label).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tgpo.mini.task import CHOICE_LABELS, CHOICE_OPTIONS, Problem, choice_digit, choice_problem, random_problem


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    domain: str  # "id" | "ood"
    kind: str  # "math" | "choice"
    size: int  # rows at --size default
    hard_share: float  # fraction of hard problems (some column total >= 14)
    min_hard_columns: int = 1  # a hard problem of this benchmark has at least this many hard columns
    metric: str = "pass@1"  # the paper's metric for the real benchmark


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in [
        BenchmarkSpec("aime24", "id", "math", 30, 1.0, metric="avg@k"),
        BenchmarkSpec("aime25", "id", "math", 30, 1.0, min_hard_columns=2, metric="avg@k"),
        BenchmarkSpec("amc", "id", "math", 40, 0.8, metric="avg@k"),
        BenchmarkSpec("math500", "id", "math", 120, 0.3),
        BenchmarkSpec("minerva", "id", "math", 100, 0.5),
        BenchmarkSpec("olympiadbench", "id", "math", 100, 0.6),
        BenchmarkSpec("arc_c", "ood", "choice", 100, 0.3),
        BenchmarkSpec("mmlu_pro", "ood", "choice", 100, 0.5),
        BenchmarkSpec("gpqa_diamond", "ood", "choice", 100, 1.0),
    ]
}

SIZE_SCALE = {"ci": None, "verl": None, "small": 0.5, "default": 1.0}
CI_ROWS = 8


def rows_for(spec: BenchmarkSpec, size: str) -> int:
    if size not in SIZE_SCALE:
        raise ValueError(f"unknown world size {size!r}; expected one of {sorted(SIZE_SCALE)}")
    scale = SIZE_SCALE[size]
    return CI_ROWS if scale is None else max(CI_ROWS, round(spec.size * scale))


def hard_column_count(problem: Problem) -> int:
    return sum(total >= 14 for total in problem.column_totals)


def draw_problems(spec: BenchmarkSpec, count: int, rng: random.Random, taken: set[tuple[int, int]]) -> list[Problem]:
    """`count` distinct problems not in `taken` (updated), round(hard_share * count) of them hard."""
    n_hard = round(spec.hard_share * count)
    draw = choice_problem if spec.kind == "choice" else random_problem
    problems: list[Problem] = []
    for index in range(count):
        want_hard = index < n_hard
        while True:
            problem = draw(rng, hard=want_hard)
            if want_hard and hard_column_count(problem) < spec.min_hard_columns:
                continue
            if problem.key not in taken:
                break
        taken.add(problem.key)
        problems.append(problem)
    rng.shuffle(problems)
    return problems


def math_row(spec: BenchmarkSpec, index: int, problem: Problem) -> dict:
    return {"id": f"{spec.name}-{index}", "problem": problem.prompt, "answer": str(problem.answer)}


def choice_row(spec: BenchmarkSpec, index: int, problem: Problem) -> dict:
    return {
        "id": f"{spec.name}-{index}",
        "question": problem.prompt,
        "choices": list(CHOICE_OPTIONS),
        "labels": list(CHOICE_LABELS),
        "answer": CHOICE_LABELS[choice_digit(problem)],
    }


def build_benchmark(spec: BenchmarkSpec, count: int, rng: random.Random, taken: set[tuple[int, int]]) -> list[dict]:
    problems = draw_problems(spec, count, rng, taken)
    if spec.kind == "math":
        return [math_row(spec, index, problem) for index, problem in enumerate(problems)]
    return [choice_row(spec, index, problem) for index, problem in enumerate(problems)]
