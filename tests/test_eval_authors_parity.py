"""Parity of our "authors" grader with the TGPO authors' grading rules, on the real benchmark golds.

Each case renders a real gold answer (tests/data/benchmarks: LUFFY's evaluation sets, de-duplicated) in a
style a model writes and states the label the authors' rules give, citing the rule (R1-R7, stated in
eval/authors_grading.py; their code: helldog-star/TGPO eval_scripts/generate_vllm.py with the flags of
eval_scripts/my_eval_sh.sh, and Oat's boxed_reward_fn in eval_scripts/oat_math_grader.py). The expected
labels were also checked against the authors' public scoring code, run from a checkout of theirs by
bench/authors_code_parity.py: it gave the same label on 45,136 rendered responses (docs/evaluation.md).

`test_a_changed_rule_is_detected` shows the test can fail: changing one rule (reading the whole
response instead of the segment; dropping the boxed half of the OR; running Math-Verify without a
`</think>`) breaks the cases that rule decides.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
from test_eval_benchmarks import MATH_ROWS, real_file

import eval.authors_grading as authors
from eval import response_styles as styles
from eval.grading import GradeRequest
from eval.grading_pool import grade_all, grade_response, grade_responses


def gold(row_id: str) -> str:
    """The gold answer of a real row, e.g. "amc-0" (142.0), "arc_c-44" (the numeric label 2)."""
    name = row_id.rsplit("-", 1)[0]
    relative = f"ood/{name}.jsonl" if name == "arc_c" else f"math/{name}.jsonl"
    for line in real_file(relative).read_text().splitlines():
        row = json.loads(line)
        if row["id"] == row_id:
            return row["answer"]
    raise KeyError(row_id)


@dataclass(frozen=True)
class Case:
    name: str
    row: str  # the real row whose gold is graded against
    response: str
    expected: bool
    rule: str
    think_opened: bool = True


CASES = [
    # --- where the answer is read (R1-R3), AMC gold "142.0" ------------------------------------------
    Case(
        "boxed_after_think",
        "amc-0",
        styles.boxed_after_think("142"),
        True,
        "R1 segment after the first </think>; R6b integers compare as integers (142 = 142.0)",
    ),
    Case("boxed_after_think_wrong", "amc-0", styles.boxed_after_think("143"), False, "R4 and R6 both reject 143"),
    Case(
        "boxed_inside_think_only",
        "amc-0",
        styles.boxed_inside_think_only("142"),
        False,
        "R1: the segment after </think> has neither a box (R5) nor an answer Math-Verify reads (R4)",
    ),
    Case(
        "boxed_inside_think_only_no_think_prompt",
        "amc-0",
        styles.boxed_inside_think_only("142"),
        True,
        "R3: a prompt that did not open <think> is graded on the whole response, so the box counts",
        think_opened=False,
    ),
    Case(
        "truncated_with_box",
        "amc-0",
        styles.truncated_with_box("142"),
        True,
        "R2: no </think>, Math-Verify skipped, but the boxed grader reads the whole text",
    ),
    Case(
        "truncated_without_box",
        "amc-0",
        styles.truncated_without_box("142"),
        False,
        "R2: no </think> and no box: Math-Verify is skipped, nothing can rescue it",
    ),
    Case(
        "two_think_ends",
        "amc-0",
        styles.two_think_ends("142"),
        False,
        "R1: only the text between the first and the second </think> is read",
    ),
    Case(
        "plain_after_think",
        "amc-0",
        styles.plain_after_think("142"),
        True,
        "R4: Math-Verify reads `$142$` in the segment; no box needed",
    ),
    Case(
        "unit",
        "amc-0",
        styles.boxed_with_unit("142"),
        True,
        "R4: Math-Verify ignores the \\text{ cm} unit; R6a drops a trailing \\text{} unit too",
    ),
    # --- answer forms ---------------------------------------------------------------------------------
    Case(
        "leading_zero", "aime24-1", styles.boxed_after_think("25"), True, "R4/R6b: the AIME gold 025 is the number 25"
    ),
    Case(
        "variable_prefix",
        "math500-1",
        styles.boxed_with_variable("p - q"),
        True,
        "R6a: a short `x =` prefix is dropped (gold p - q)",
    ),
    Case("slash_fraction", "math500-2", styles.boxed_after_think("14/3"), True, "R6a: 14/3 becomes \\frac{14}{3}"),
    Case("dfrac", "math500-2", styles.boxed_after_think("\\dfrac{14}{3}"), True, "R6a: dfrac -> frac"),
    Case(
        "rounded_fraction",
        "math500-2",
        styles.boxed_after_think("4.67"),
        False,
        "R4 and R6b: 4.67 is not 14/3 (no rounding tolerance at two decimals)",
    ),
    Case(
        "tuple_left_right",
        "math500-0",
        styles.boxed_after_think("(3,\\frac{\\pi}{2})"),
        True,
        "R6a: \\left( and \\right) removed from the gold",
    ),
    Case("interval", "math500-103", styles.boxed_after_think("(3,4]"), True, "R6a: the same interval"),
    Case(
        "interval_other_brackets",
        "math500-103",
        styles.boxed_after_think("(3,4)"),
        False,
        "R6b: a tuple or interval with other brackets is another answer; R4 agrees",
    ),
    Case(
        "gold_in_dollars",
        "olympiadbench-1",
        styles.boxed_after_think("\\frac{1}{2n+2}"),
        True,
        "R4: parse('$' + gold + '$') reads a gold written as $\\frac{1}{2 n+2}$",
    ),
    Case(
        "variable_prefix_percent",
        "olympiadbench-150",
        styles.boxed_with_variable("8 \\%"),
        True,
        "R6c: Oat's extraction_mode=['first_match'] is a list, so math-verify runs its any_match mode and "
        "reads 8% in `x = 8 \\%` (R6a keeps `x=8`, R6b keeps `x=8` against 8)",
    ),
    # --- multiple choice: the same two steps on a letter gold (R7), ARC-c gold "C" ----------------------
    Case("letter_boxed", "arc_c-0", styles.boxed_after_think("C"), True, "R4/R6a: \\boxed{C}"),
    Case(
        "letter_parenthesised",
        "arc_c-0",
        styles.boxed_parenthesised("C"),
        True,
        "R4: Math-Verify reads (C) as C; R6b agrees",
    ),
    Case("letter_text", "arc_c-0", styles.boxed_text_letter("C"), True, "R6a: an enclosing \\text{} is dropped"),
    Case("letter_lowercase", "arc_c-0", styles.boxed_lowercase("C"), True, "R6b: text answers compare lower-cased"),
    Case(
        "letter_answer_line",
        "arc_c-0",
        styles.answer_line_letter("C"),
        False,
        "R4: Math-Verify's default extraction reads no answer in 'ANSWER: C'; R5: no box",
    ),
    Case("letter_wrong", "arc_c-0", styles.boxed_after_think("B"), False, "R4 and R6 reject B"),
    Case("letter_truncated_with_box", "arc_c-0", styles.truncated_with_box("C"), True, "R2 then R6a"),
    Case(
        "numeric_label",
        "arc_c-44",
        styles.boxed_after_think("2"),
        True,
        "ARC-c rows labelled 1-4 keep their labels in the authors' file: gold 2",
    ),
    Case(
        "numeric_label_as_letter",
        "arc_c-44",
        styles.boxed_after_think("B"),
        False,
        "the gold is the label 2, not a letter: B is wrong",
    ),
]


def parity_failures(cases: list[Case]) -> list[str]:
    """The cases whose label from eval.authors_grading differs from the authors' rules."""
    failures = []
    for case in cases:
        label = authors.authors_label(case.response, gold(case.row), case.think_opened)
        if label.correct != case.expected:
            failures.append(
                f"{case.name} ({case.row}): got {label.correct}, the rules give {case.expected} [{case.rule}]"
            )
    return failures


def test_authors_grader_gives_the_authors_label_case_by_case():
    assert parity_failures(CASES) == []


@pytest.mark.parametrize(
    "mutation, broken",
    [
        # whole response instead of the segment between the first and second </think> (R1-R2)
        ("whole_response", {"boxed_inside_think_only", "truncated_without_box", "two_think_ends"}),
        # the boxed half of the OR removed (R7): only Math-Verify on the segment is left
        ("no_boxed_grader", {"truncated_with_box", "letter_truncated_with_box"}),
        # Math-Verify run on the whole text when there is no </think> (R2 changed)
        ("math_verify_without_think_end", {"truncated_without_box"}),
    ],
)
def test_a_changed_rule_is_detected(monkeypatch, mutation, broken):
    if mutation == "whole_response":
        monkeypatch.setattr(authors, "graded_texts", lambda response, think_opened: (response, response))
    elif mutation == "no_boxed_grader":
        monkeypatch.setattr(authors, "boxed_equal", lambda boxed, gold: False)
    else:
        original = authors.graded_texts

        def verify_anyway(response, think_opened):
            segment, boxed_text = original(response, think_opened)
            return (boxed_text if segment is None else segment), boxed_text

        monkeypatch.setattr(authors, "graded_texts", verify_anyway)
    failed = {failure.split(" ")[0] for failure in parity_failures(CASES)}
    assert broken <= failed, f"the {mutation} change went unnoticed by {sorted(broken - failed)}"


def math_golds(step: int) -> list[tuple[str, str]]:
    """(row id, gold) of every `step`-th row of the six maths sets."""
    rows = []
    for name in sorted(MATH_ROWS):
        lines = real_file(f"math/{name}.jsonl").read_text().splitlines()
        rows += [(row["id"], row["answer"]) for row in map(json.loads, lines[::step])]
    return rows


# The labels the rules give whatever the gold is: these styles depend only on where the answer stands.
STYLE_RULES = {
    "boxed_after_think": (True, "R1, R6a: the gold boxed after </think> equals itself"),
    "truncated_with_box": (True, "R2, R6a: the boxed grader reads the unclosed thought"),
    "boxed_inside_think_only": (False, "R1: nothing to read after </think>"),
    "truncated_without_box": (False, "R2: Math-Verify skipped, no box"),
    "two_think_ends": (False, "R1: the box after the second </think> is outside the segment"),
}


def sweep(step: int) -> list[str]:
    failures = []
    for row_id, answer in math_golds(step):
        for style, (expected, rule) in STYLE_RULES.items():
            got = authors.authors_label(styles.STYLES[style](answer), answer, True).correct
            if got != expected:
                failures.append(f"{row_id} {style}: got {got} [{rule}]")
    return failures


def test_style_rules_on_a_sample_of_real_golds():
    assert sweep(step=15) == []


@pytest.mark.slow
def test_style_rules_on_every_real_gold():
    assert sweep(step=1) == []


def test_grade_response_is_the_public_entry_point():
    response = styles.boxed_after_think("142")
    assert grade_response(response, "142.0") is True
    assert grade_response(styles.two_think_ends("142"), "142.0", protocol="authors") is False
    # think_opened=False: the whole response is read (R3), so a box inside the thought counts
    assert grade_response(styles.boxed_inside_think_only("142"), "142.0", think_opened=False) is True
    # the suite's grader reads after the last </think>: it accepts what the authors' rule R1 rejects
    assert grade_response(styles.two_think_ends("142"), "142.0", protocol="suite") is True
    assert grade_responses([response, styles.boxed_after_think("141")], ["142.0", "142.0"]) == [True, False]
    with pytest.raises(ValueError, match="unknown protocol 'luffy'"):
        grade_response(response, "142.0", protocol="luffy")


def test_authors_grader_keeps_the_hard_timeout():
    """A power tower hangs sympy inside the authors' grader: the worker is killed at the timeout, the item
    is wrong and marked, the others are graded."""
    requests = [
        GradeRequest("x</think> \\boxed{10^{10^{10^{10}}}}", "5", grader="authors"),
        GradeRequest("x</think> \\boxed{5}", "5", grader="authors"),
        GradeRequest("x</think> \\boxed{(C)}", "C", kind="choice", grader="authors"),
    ]
    started = time.perf_counter()
    results, stats = grade_all(requests, workers=2, timeout_s=2.0, progress=False)
    assert [(r.correct, r.timed_out) for r in results] == [(False, True), (True, False), (True, False)]
    assert stats.timeouts == 1 and time.perf_counter() - started < 2.0 + 10
