"""Synthetic responses in the styles a reasoning model writes, around a given answer: for grader parity
tests (tests/test_eval_authors_parity.py) and the lm-eval cross-check (bench/grader_cross_check.py).

Each style renders `(answer, think_opened) -> response` as the model would continue a prompt that ended
with `<think>\\n` (so the response starts inside the thought section). Styles are plain strings so a test
can name the case it checks.
"""

from __future__ import annotations

from collections.abc import Callable

THINK_END = "</think>"
REASONING = "Let me work through the problem step by step and check each part carefully."


def boxed_after_think(answer: str) -> str:
    return f"{REASONING}\n{THINK_END}\n\nThe final answer is $\\boxed{{{answer}}}$."


def boxed_inside_think_only(answer: str) -> str:
    return f"{REASONING} So the answer is \\boxed{{{answer}}}.\n{THINK_END}\n\nI have finished the reasoning above."


def truncated_with_box(answer: str) -> str:
    """Cut off by the token budget: no `</think>`, a box written while thinking."""
    return f"{REASONING} So far the answer looks like \\boxed{{{answer}}}, but let me double-check the"


def truncated_without_box(answer: str) -> str:
    return f"{REASONING} The value should be {answer}, but let me double-check the"


def two_think_ends(answer: str) -> str:
    """The answer only after a second `</think>`: outside the authors' segment."""
    return f"{REASONING}\n{THINK_END}\nWait, let me think again.\n{THINK_END}\n\nThe answer is $\\boxed{{{answer}}}$."


def plain_after_think(answer: str) -> str:
    """No box: the answer in running text after `</think>` (only Math-Verify can find it)."""
    return f"{REASONING}\n{THINK_END}\n\nTherefore the answer is ${answer}$."


def boxed_with_unit(answer: str) -> str:
    return f"{REASONING}\n{THINK_END}\n\nThe answer is $\\boxed{{{answer} \\text{{ cm}}}}$."


def boxed_with_variable(answer: str) -> str:
    return f"{REASONING}\n{THINK_END}\n\nThe answer is $\\boxed{{x = {answer}}}$."


def answer_line_letter(answer: str) -> str:
    """GPQA's own requested format, without a box."""
    return f"{REASONING}\n{THINK_END}\n\nANSWER: {answer}"


def boxed_parenthesised(answer: str) -> str:
    return f"{REASONING}\n{THINK_END}\n\nThe answer is $\\boxed{{({answer})}}$."


def boxed_text_letter(answer: str) -> str:
    return f"{REASONING}\n{THINK_END}\n\nThe answer is $\\boxed{{\\text{{{answer}}}}}$."


def boxed_lowercase(answer: str) -> str:
    return f"{REASONING}\n{THINK_END}\n\nThe answer is $\\boxed{{{answer.lower()}}}$."


STYLES: dict[str, Callable[[str], str]] = {
    "boxed_after_think": boxed_after_think,
    "boxed_inside_think_only": boxed_inside_think_only,
    "truncated_with_box": truncated_with_box,
    "truncated_without_box": truncated_without_box,
    "two_think_ends": two_think_ends,
    "plain_after_think": plain_after_think,
    "boxed_with_unit": boxed_with_unit,
    "boxed_with_variable": boxed_with_variable,
}
LETTER_STYLES: dict[str, Callable[[str], str]] = {
    "boxed_after_think": boxed_after_think,
    "boxed_parenthesised": boxed_parenthesised,
    "boxed_text_letter": boxed_text_letter,
    "boxed_lowercase": boxed_lowercase,
    "answer_line_letter": answer_line_letter,
    "boxed_inside_think_only": boxed_inside_think_only,
    "truncated_with_box": truncated_with_box,
}
