"""Grading a response against a benchmark's gold answer: the rules.

Two graders, chosen by the evaluation protocol (`eval.protocols`):

- "authors" (the paper configs' default): the TGPO authors' rules, `eval.authors_grading` (answer
  segment between the first and second `</think>` when the prompt opened `<think>\n`; Math-Verify on the
  segment OR an Oat-style boxed grader; multiple-choice letters graded by the same two steps).
- "suite" (this suite's first grader; the miniature's): the answer region is the text after the last
  `</think>` (the whole response when there is none). Maths is correct when

      Math-Verify: verify(parse("$" + gold + "$"), parse(answer_region))      (gold first)
      OR boxed:    normalise(last \\boxed{...} of answer_region) == normalise(gold)

  (`combine="any"`; "math_verify" or "boxed" use one grader alone). Multiple choice: the letter in the
  last `\\boxed{...}` of the answer region equals the gold letter.

With either grader a benchmark with an `answer_regex` (the miniature world: `...#632.`) extracts the
regex's first group and compares it with the gold string (numerically when both are numbers).


The rules are pure functions of text; `eval.grading_pool` runs them in worker processes under a hard
per-item timeout.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

THINK_END = "</think>"
COMBINE_RULES = ("any", "math_verify", "boxed")
GRADERS = ("authors", "suite")  # eval.protocols.PROTOCOLS name the grader each protocol uses
KINDS = ("math", "choice", "regex")


@dataclass(frozen=True)
class GradeRequest:
    """One response to grade. `kind` "regex" needs `answer_regex`; `combine` applies to "math" under the
    "suite" grader; `think_opened` (the prompt ended with `<think>\\n`) applies to the "authors" grader."""

    response: str
    gold: str
    kind: str = "math"
    answer_regex: str | None = None
    combine: str = "any"
    grader: str = "suite"
    think_opened: bool = True


@dataclass(frozen=True)
class GradeResult:
    extracted_answer: str
    correct: bool
    timed_out: bool = False
    error: str = ""  # a grader exception or a crashed worker (graded wrong)


# --------------------------------------------------------------------------------------- extraction


def answer_region(response: str) -> str:
    """The Solution section: the text after the last `</think>`, else the whole response."""
    return response.rsplit(THINK_END, 1)[1] if THINK_END in response else response


BOXED_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`, `\\boxed 5`) in `text`; None when there is
    none or its braces never close."""
    start = max(text.rfind(command) for command in BOXED_COMMANDS)
    if start < 0:
        return None
    command = next(command for command in BOXED_COMMANDS if text.startswith(command, start))
    position = start + len(command)
    while position < len(text) and text[position] == " ":
        position += 1
    if position >= len(text):
        return None
    if text[position] != "{":  # "\boxed 5": up to the next space or dollar
        match = re.match(r"[^\s$]+", text[position:])
        return match.group(0) if match and position > start + len(command) else None
    depth = 0
    for end in range(position, len(text)):
        if text[end] == "{":
            depth += 1
        elif text[end] == "}":
            depth -= 1
            if depth == 0:
                return text[position + 1 : end]
    return None


TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
DROPPED_TOKENS = ("\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "$", "\\%", "%")


def normalise_answer(answer: str) -> str:
    """String normal form for the boxed grader: no spaces, `$`, `\\left`/`\\right`, `\\text{}` wrappers,
    degree signs or trailing period; `\\dfrac`/`\\tfrac` -> `\\frac`; numbers in canonical form (142.0 -> 142)."""
    text = answer.strip()
    for _ in range(3):
        text = TEXT_COMMANDS.sub(r"\1", text)
    for token in DROPPED_TOKENS:
        text = text.replace(token, "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = re.sub(r"\^\{?\\circ\}?", "", text)
    text = re.sub(r"\s+", "", text).rstrip(".")
    number = as_number(text)
    return format_number(number) if number is not None else text


def as_number(text: str) -> float | None:
    cleaned = text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text) else text
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def format_number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


CHOICE_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[.):\s].*)?$", re.DOTALL)


def choice_letter(text: str) -> str | None:
    """The option letter in the last `\\boxed{...}` of `text` (`C`, `(C)`, `\\text{C}`, `C) 42`), or None."""
    boxed = last_boxed(text)
    if boxed is None:
        return None
    cleaned = boxed.strip()
    for _ in range(3):
        cleaned = TEXT_COMMANDS.sub(r"\1", cleaned)
    match = CHOICE_LETTER.match(cleaned.replace("$", "").strip())
    return match.group(1) if match else None


# --------------------------------------------------------------------------------------------- graders


@functools.lru_cache(maxsize=4096)
def parsed_gold(gold: str) -> tuple:
    """Math-Verify's parse of a gold answer, wrapped in `$...$` for LaTeX extraction (cached: avg@k golds
    repeat k times). Timeouts are disabled here: the pool's hard timeout bounds the whole item."""
    from math_verify import parse

    return tuple(parse(f"${gold}$", parsing_timeout=None))


def math_verify_grade(region: str, gold: str) -> tuple[bool, str]:
    """(correct, extracted answer) by Math-Verify, gold first."""
    from math_verify import parse, verify

    gold_parsed = list(parsed_gold(gold))
    predicted = parse(region, parsing_timeout=None)
    extracted = str(predicted[-1]) if predicted else ""
    if not gold_parsed or not predicted:
        return False, extracted
    return bool(verify(gold_parsed, predicted, timeout_seconds=None)), extracted


def boxed_grade(region: str, gold: str) -> tuple[bool, str | None]:
    """(correct, boxed content): the last boxed answer equals the gold after `normalise_answer`."""
    boxed = last_boxed(region)
    if boxed is None:
        return False, None
    return normalise_answer(boxed) == normalise_answer(gold), boxed


def grade_math(response: str, gold: str, combine: str = "any") -> GradeResult:
    if combine not in COMBINE_RULES:
        raise ValueError(f"unknown combine rule {combine!r}; expected one of {COMBINE_RULES}")
    region = answer_region(response)
    boxed_correct, boxed = boxed_grade(region, gold)
    if combine == "boxed" or (combine == "any" and boxed_correct):  # OR: Math-Verify cannot change a True
        return GradeResult(extracted_answer=boxed or "", correct=boxed_correct)
    verified, extracted = math_verify_grade(region, gold)
    correct = verified if combine == "math_verify" else (verified or boxed_correct)
    return GradeResult(extracted_answer=boxed if boxed is not None else extracted, correct=correct)


def grade_choice(response: str, gold_letter: str) -> GradeResult:
    letter = choice_letter(answer_region(response))
    return GradeResult(extracted_answer=letter or "", correct=letter is not None and letter == gold_letter.strip())


def grade_regex(response: str, gold: str, pattern: str) -> GradeResult:
    """The first group of the last match of `pattern` in the answer region, compared with the gold."""
    matches = list(re.finditer(pattern, answer_region(response)))
    if not matches:
        return GradeResult(extracted_answer="", correct=False)
    if matches[-1].re.groups < 1:
        raise ValueError(f"answer_regex {pattern!r} has no capturing group; its first group is the answer")
    extracted = (matches[-1].group(1) or "").strip()
    expected = gold.strip()
    number, gold_number = as_number(extracted), as_number(expected)
    correct = extracted == expected or (number is not None and gold_number is not None and number == gold_number)
    return GradeResult(extracted_answer=extracted, correct=correct)


def grade_authors(response: str, gold: str, think_opened: bool) -> GradeResult:
    from eval.authors_grading import authors_label

    label = authors_label(response, gold, think_opened)
    return GradeResult(extracted_answer=label.boxed_answer or "", correct=label.correct)


def grade(request: GradeRequest) -> GradeResult:
    """Grade one request in this process (no timeout: use GradingPool for untrusted responses)."""
    if request.grader not in GRADERS:
        raise ValueError(f"unknown grader {request.grader!r}; expected one of {GRADERS}")
    if request.kind not in KINDS:
        raise ValueError(f"unknown grading kind {request.kind!r}; expected one of {KINDS}")
    if request.grader == "authors" and request.kind != "regex":  # maths and letters: the same two steps
        return grade_authors(request.response, request.gold, request.think_opened)
    if request.kind == "math":
        return grade_math(request.response, request.gold, request.combine)
    if request.kind == "choice":
        return grade_choice(request.response, request.gold)
    if request.kind == "regex":
        if not request.answer_regex:
            raise ValueError("grading kind 'regex' needs answer_regex")
        return grade_regex(request.response, request.gold, request.answer_regex)
    raise ValueError(f"unknown grading kind {request.kind!r}; expected one of {KINDS}")
