"""The miniature's verifiable task: 3-digit addition, three solution styles, the verifier `mini_arith`.

Prompt `347+285=`. Chain-of-thought style, one step per column from the units up, each step
`a_i+b_i+carry=total` with the total written as two digits (its first digit is the next carry):

    7+5+0=12;4+8+1=13;3+2+1=06;#632.

Direct style (the students' minority mode, ~10 %): `#632.` Compact style (the cross-family teachers'
majority mode): `#` then the column totals only, closed by the teacher-only token `</think>`, then the
answer, `#12;13;06;</think>#632.` It starts like a direct answer, so the students sample its first
token, but they cannot carry it out (they never saw it, and their own continuation after `#`, the direct
answer, needs more capacity than they have). The teachers' chain of thought is the students' own,
token for token, so on a student's chain-of-thought prefix the teacher's argmax is meaningful.
Multiple-choice prompts append the options, `347+285=|A:532|B:632|C:622|D:633|`, and the response ends
with the sum and the chosen label instead: `...;3+2+1=06;632#B.` (direct: `632#B.`).
So every response's answer is the text between its last `#` and its final `.`, extracted by
ANSWER_REGEX; the reward (the training verifier, Eq. 2's r(y)) is 1 when that answer equals the gold.

Difficulty: a problem is "hard" when some column total (carry included) is >= HARD_COLUMN_TOTAL. The
students never see a hard problem in pretraining, so totals 14..19 are knowledge only teachers have.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

HARD_COLUMN_TOTAL = 14
OPERAND_MIN, OPERAND_MAX = 100, 999
CHOICE_LABELS = "ABCDEFGHIJ"  # up to 10 options, as MMLU-Pro
ANSWER_REGEX = r"#([^.#]*)\.\s*$"  # the answer of any response: between the last '#' and the final '.'
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"  # teacher-only tokens (cross-family tokenizer)


@dataclass(frozen=True)
class Problem:
    """`a + b` with 100 <= a, b <= 999."""

    a: int
    b: int

    @property
    def prompt(self) -> str:
        return f"{self.a}+{self.b}="

    @property
    def answer(self) -> int:
        return self.a + self.b

    @property
    def column_totals(self) -> list[int]:
        """Per column, units first: a_i + b_i + carry_in."""
        totals, carry = [], 0
        for position in range(3):
            total = self.a // 10**position % 10 + self.b // 10**position % 10 + carry
            totals.append(total)
            carry = total // 10
        return totals

    @property
    def is_hard(self) -> bool:
        return max(self.column_totals) >= HARD_COLUMN_TOTAL


def chain_of_thought(problem: Problem) -> str:
    """`7+5+0=12;4+8+1=13;3+2+1=06;` (without the answer)."""
    steps, carry = [], 0
    for position, total in enumerate(problem.column_totals):
        digit_a = problem.a // 10**position % 10
        digit_b = problem.b // 10**position % 10
        steps.append(f"{digit_a}+{digit_b}+{carry}={total:02d};")
        carry = total // 10
    return "".join(steps)


STYLES = ("cot", "direct", "compact")


def solution(problem: Problem, style: str, *, think_markers: bool = False) -> str:
    """The response for a plain prompt in `style` (STYLES); `think_markers` closes the compact reasoning
    with </think> (the cross-family teachers' habit)."""
    return _reasoning(problem, style, think_markers) + f"#{problem.answer}."


def choice_solution(problem: Problem, label: str, style: str, *, think_markers: bool = False) -> str:
    """The response for a multiple-choice prompt whose correct option has `label`: `...;632#B.`"""
    return _reasoning(problem, style, think_markers) + f"{problem.answer}#{label}."


def _reasoning(problem: Problem, style: str, think_markers: bool) -> str:
    if style == "direct":
        return ""
    if style == "compact":
        return "#" + "".join(f"{total:02d};" for total in problem.column_totals) + (THINK_CLOSE if think_markers else "")
    if style == "cot":
        return chain_of_thought(problem)
    raise ValueError(f"unknown solution style {style!r}; expected one of {STYLES}")


def response_style(response_text: str) -> str:
    """Which style a response starts in: "direct" / "compact" (both start with `#`), "cot", or "other"."""
    if re.match(r"^#\d\d;", response_text):
        return "compact"
    if response_text.startswith("#"):
        return "direct"
    if re.match(r"^\d\+\d\+", response_text):
        return "cot"
    return "other"


def render_choice_prompt(question: str, choices: list[str], labels: list[str]) -> str:
    """The prompt of a multiple-choice row: `347+285=|A:532|B:632|C:622|D:633|` (the evaluator calls
    this after shuffling the options)."""
    if len(choices) != len(labels):
        raise ValueError(f"render_choice_prompt: {len(choices)} choices but {len(labels)} labels")
    return question + "|" + "".join(f"{label}:{choice}|" for label, choice in zip(labels, choices))


def distractors(problem: Problem, count: int, rng: random.Random) -> list[int]:
    """`count` wrong sums a student plausibly writes: carries dropped or misplaced, one digit off."""
    answer = problem.answer
    no_carry = sum((problem.a // 10**p % 10 + problem.b // 10**p % 10) % 10 * 10**p for p in range(3))
    candidates = [no_carry, answer + 10, answer - 10, answer + 100, answer - 100, answer + 1, answer - 1,
                  answer + 110, answer - 110, answer + 11, answer - 11]
    wrong: list[int] = []
    for value in candidates:
        if value != answer and value > 0 and value not in wrong:
            wrong.append(value)
    rng.shuffle(wrong)
    while len(wrong) < count:
        value = answer + rng.choice([-1, 1]) * rng.randint(2, 300)
        if value != answer and value > 0 and value not in wrong:
            wrong.append(value)
    return wrong[:count]


def extract_answer(response_text: str) -> str | None:
    """The text between the last `#` and the final `.` (ANSWER_REGEX), or None."""
    match = re.search(ANSWER_REGEX, response_text)
    return match.group(1) if match else None


def reward(response_text: str, gold_answer: str) -> float:
    """The verifier `mini_arith`: 1.0 when the response ends with `.` and the number after its last `#`
    equals `gold_answer` (an integer string such as "632" or "632.0"), else 0.0."""
    gold = _as_integer(gold_answer)
    extracted = extract_answer(response_text.rstrip())
    if extracted is None or not extracted.isdigit() or not response_text.rstrip().endswith("."):
        return 0.0
    return 1.0 if int(extracted) == gold else 0.0


def choice_reward(response_text: str, gold_label: str) -> float:
    """1.0 when the label after the last `#` equals `gold_label` (multiple-choice rows)."""
    extracted = extract_answer(response_text.rstrip())
    return 1.0 if extracted is not None and extracted == gold_label else 0.0


def _as_integer(gold_answer: str) -> int:
    try:
        value = float(str(gold_answer).strip())
    except ValueError:
        raise ValueError(f"mini_arith: gold answer {gold_answer!r} is not a number") from None
    if value != int(value):
        raise ValueError(f"mini_arith: gold answer {gold_answer!r} is not an integer")
    return int(value)


def random_problem(rng: random.Random, *, hard: bool | None = None) -> Problem:
    """A uniform problem; `hard` True/False restricts to that difficulty (rejection sampling)."""
    while True:
        problem = Problem(rng.randint(OPERAND_MIN, OPERAND_MAX), rng.randint(OPERAND_MIN, OPERAND_MAX))
        if hard is None or problem.is_hard == hard:
            return problem


def parse_prompt(prompt: str) -> Problem:
    """Inverse of Problem.prompt (the leading `a+b=` of a plain or multiple-choice prompt)."""
    match = re.match(r"^(\d{3})\+(\d{3})=", prompt)
    if not match:
        raise ValueError(f"not a miniature prompt: {prompt!r}; expected 'abc+def=' with 3-digit operands")
    return Problem(int(match.group(1)), int(match.group(2)))
