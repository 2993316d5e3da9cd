"""The miniature's verifiable task: 3-digit addition, three solution styles, the verifier `mini_arith`.

Prompt `347+285=`. Chain-of-thought style, one step per column from the units up, each step
`a_i+b_i+carry=total` with the total written as two digits (its first digit is the next carry):

    7+5+0=12;4+8+1=13;3+2+1=06;#632.

Direct style (the students' minority mode): `#632.` Think style (the cross-family teachers' majority
mode, as Qwen3's `<think>...</think>` against Qwen2.5-Math's plain chain of thought): `#` opens the
thinking, the chain of thought follows, the teacher-only token `</think>` closes it, then the answer:
`#7+5+0=12;4+8+1=13;3+2+1=06;</think>#632.` It starts like a direct answer, so the students sample its
first token, but they do not carry it out (after `#` they have only ever written the direct answer, which
needs more than they have); the reasoning after `#` is their own, so a student can learn the style by
imitation (SFT on the teacher's traces, or TGPO's guidance toward the teacher's argmax). The teachers'
chain of thought is the students' own, token for token, so on a student's chain-of-thought prefix the
teacher's argmax is meaningful.
Multiple-choice prompts (sums below 1000) ask for the sum's hundreds digit, the end of the carry chain:
the ten digits follow the question in order, each followed by its label, `347+285=|0A|1B|...|9J|`, and
the response ends with the digit and its label instead of `#` and the sum: `...;3+2+1=06;6G.` (direct:
`6G.`). The options are not shuffled: picking a shuffled option by its content is a look-up that the
2-layer models did not learn within their pretraining budget (docs/miniature.md), so choosing here is
writing the digit's letter, and the test is the arithmetic asked in another format. A maths answer is
the text between the last `#` and the final `.` (ANSWER_REGEX), a multiple-choice answer the label
before the final `.` (CHOICE_ANSWER_REGEX); the reward (the training verifier, Eq. 2's r(y)) is 1 when
the maths answer equals the gold.

Difficulty: a problem is "hard" when some column total (carry included) is >= HARD_COLUMN_TOTAL. The
students never see a hard problem in pretraining, so totals 14..19 are knowledge only teachers have.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

HARD_COLUMN_TOTAL = 14
OPERAND_MIN, OPERAND_MAX = 100, 999
CHOICE_OPTIONS = tuple(str(digit) for digit in range(10))  # multiple choice: the ten digits, in order
CHOICE_LABELS = "ABCDEFGHIJ"  # their labels (10 options, as MMLU-Pro)
ANSWER_REGEX = r"#([^.#]*)\.\s*$"  # the answer of a maths response: between the last '#' and the final '.'
CHOICE_ANSWER_REGEX = r"([A-J])\.\s*$"  # the answer of a multiple-choice response: the label before the final '.'
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"  # teacher-only tokens (cross-family tokenizer)


@dataclass(frozen=True)
class Problem:
    """`a + b` with 100 <= a, b <= 999."""

    a: int
    b: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.a, self.b)

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


STYLES = ("cot", "direct", "think")


def solution(problem: Problem, style: str, *, think_markers: bool = False) -> str:
    """The response for a plain prompt in `style` (STYLES); `think_markers` closes the think-style reasoning
    with </think> (the cross-family teachers' habit)."""
    return _reasoning(problem, style, think_markers) + f"#{problem.answer}."


def choice_solution(problem: Problem, style: str, *, think_markers: bool = False) -> str:
    """The response for a multiple-choice prompt: the reasoning, then the sum's hundreds digit and its
    label, `...;3+2+1=06;6G.`"""
    digit = choice_digit(problem)
    return _reasoning(problem, style, think_markers) + f"{digit}{CHOICE_LABELS[digit]}."


def choice_digit(problem: Problem) -> int:
    """The right option of a multiple-choice row: the sum's hundreds digit (sums below 1000)."""
    if problem.answer >= 1000:
        raise ValueError(f"{problem.prompt} sums to {problem.answer}; multiple-choice rows need a sum below 1000")
    return problem.answer // 100


def _reasoning(problem: Problem, style: str, think_markers: bool) -> str:
    if style == "direct":
        return ""
    if style == "think":
        return "#" + chain_of_thought(problem) + (THINK_CLOSE if think_markers else "")
    if style == "cot":
        return chain_of_thought(problem)
    raise ValueError(f"unknown solution style {style!r}; expected one of {STYLES}")


def response_style(response_text: str) -> str:
    """Which style a response starts in: "direct" / "think" (both start with `#`), "cot", or "other"."""
    if re.match(r"^#\d\+\d\+", response_text):
        return "think"
    if response_text.startswith("#"):
        return "direct"
    if re.match(r"^\d\+\d\+", response_text):
        return "cot"
    return "other"


def render_choice_prompt(question: str, choices: list[str], labels: list[str]) -> str:
    """The prompt of a multiple-choice row, each option followed by its label: `347+285=|0A|1B|...|9J|`
    (the evaluator renders its benchmark rows with it, `template: raw`)."""
    if len(choices) != len(labels):
        raise ValueError(f"render_choice_prompt: {len(choices)} choices but {len(labels)} labels")
    return question + "|" + "".join(f"{choice}{label}|" for label, choice in zip(labels, choices))


def choice_problem(rng: random.Random, *, hard: bool | None = None) -> Problem:
    """A problem for a multiple-choice row: sum < 1000, so its hundreds digit is one of the ten options."""
    while True:
        problem = random_problem(rng, hard=hard)
        if problem.answer < 1000:
            return problem


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
    """1.0 when the label before the final `.` (CHOICE_ANSWER_REGEX) equals `gold_label` (multiple-choice rows)."""
    match = re.search(CHOICE_ANSWER_REGEX, response_text.rstrip())
    return 1.0 if match is not None and match.group(1) == gold_label else 0.0


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
