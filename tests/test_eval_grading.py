"""Grading: extraction helpers, the combined Math-Verify OR boxed rule, the hard timeout, and the real sets.

Real-benchmark check (six maths sets, 1,590 rows; `test_real_gold_answers_grade_correct_and_shifted_wrong`):
each gold answer written as a model would (`\\boxed{gold}` after `</think>`, and "The answer is $gold$.")
grades correct for every row (0 failures with math-verify 0.9.0). The gold of the next row grades wrong for
1,579 of 1,590 rows (99.3 %); the 11 exceptions are all legitimate equalities, not grader errors:

- 10 rows whose next row has the same gold value: amc-22 (2.0), amc-62 (9.0), amc-64 (7.0), amc-65 (7.0),
  math500-186 (7), math500-403 (3), olympiadbench-549 (5), -592 (67), -596 (3), -597 (3);
- math500-22: gold `5`, next gold `x=5`; Math-Verify compares an equation's right-hand side to a value,
  so `x=5` equals `5`.

One shifted pair, minerva-131 (gold: an ODE `\\frac{d^{2} v_{o}}{d t^{2}}+... = ...`, next gold another
ODE), makes sympy run past the 10 s limit: it is killed, counted as a timeout and graded wrong.
"""

from __future__ import annotations

import json

import pytest
from test_eval_benchmarks import MATH_ROWS, real_file

from eval.grading import GradeRequest, answer_region, choice_letter, grade, last_boxed, normalise_answer
from eval.grading_pool import GradingPool, grade_all


def test_answer_region_and_last_boxed():
    assert answer_region("<think>\n\\boxed{1}</think>\nso \\boxed{2}") == "\nso \\boxed{2}"
    assert answer_region("no think tag \\boxed{3}") == "no think tag \\boxed{3}"
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}} c") == "\\frac{1}{2}"
    assert last_boxed("\\boxed 7$") == "7"
    assert last_boxed("\\fbox{x}") == "x"
    assert last_boxed("\\boxed{\\frac{1}{2") is None  # unbalanced
    assert last_boxed("nothing") is None


def test_normalise_answer():
    assert normalise_answer("142.0") == normalise_answer("142") == "142"
    assert normalise_answer("\\dfrac{1}{2}") == normalise_answer("\\frac{1}{2}")
    assert normalise_answer("\\left( 3, \\frac{\\pi}{2} \\right)") == "(3,\\frac{\\pi}{2})"
    assert normalise_answer("90^\\circ") == "90"
    assert normalise_answer("\\text{(C)}") == "(C)"
    assert normalise_answer("1,000") == "1000"


def test_choice_letters_from_boxed():
    assert choice_letter("</think> The answer is \\boxed{C}.") == "C"
    assert choice_letter("\\boxed{(B)}") == "B"
    assert choice_letter("\\boxed{\\text{D}}") == "D"
    assert choice_letter("\\boxed{A) 42}") == "A"
    assert choice_letter("ANSWER: C") is None
    assert choice_letter("\\boxed{42}") is None
    assert grade(GradeRequest("<think>x</think> \\boxed{B}", "B", kind="choice")).correct
    assert not grade(GradeRequest("<think>x</think> \\boxed{A}", "B", kind="choice")).correct


def test_math_rules_any_math_verify_boxed():
    # Math-Verify knows 0.5 = 1/2, the string grader does not; a bare "The answer is" only Math-Verify reads.
    decimal = "<think>...</think> \\boxed{0.5}"
    assert grade(GradeRequest(decimal, "\\frac{1}{2}", combine="any")).correct
    assert grade(GradeRequest(decimal, "\\frac{1}{2}", combine="math_verify")).correct
    assert not grade(GradeRequest(decimal, "\\frac{1}{2}", combine="boxed")).correct
    plain = "</think> The answer is $142$."
    assert grade(GradeRequest(plain, "142.0")).correct
    assert not grade(GradeRequest(plain, "142.0", combine="boxed")).correct
    assert not grade(GradeRequest("</think> \\boxed{141}", "142.0")).correct
    with pytest.raises(ValueError, match="unknown combine rule"):
        grade(GradeRequest(plain, "1", combine="all"))


def test_regex_grading_for_the_miniature():
    pattern = r"#([^#.]*)\.\s*$"
    assert grade(GradeRequest("3+4 carry 0 #632.", "632", kind="regex", answer_regex=pattern)).correct
    assert grade(GradeRequest("...;06;6G.", "G", kind="regex", answer_regex=r"([A-J])\.\s*$")).correct
    result = grade(GradeRequest("...#631.", "632", kind="regex", answer_regex=pattern))
    assert result.extracted_answer == "631" and not result.correct
    assert grade(GradeRequest("no answer", "632", kind="regex", answer_regex=pattern)).extracted_answer == ""


def test_pool_kills_a_hung_item_and_keeps_grading():
    """A power tower makes sympy compute a gigantic integer: the worker is killed at the timeout and
    replaced; the items around it are graded normally, in order."""
    requests = [
        GradeRequest("</think> \\boxed{5}", "5"),
        GradeRequest("</think> \\boxed{10^{10^{10^{10}}}}", "5"),
        GradeRequest("</think> \\boxed{6}", "5"),
        GradeRequest("x" * 100_000 + "\\boxed{5}", "5"),
        GradeRequest("\\boxed{\\frac{1}{2" + "{" * 5000, "5"),
    ]
    results, stats = grade_all(requests, workers=2, timeout_s=1.5, progress=False)
    assert [r.correct for r in results] == [True, False, False, True, False]
    assert [r.timed_out for r in results] == [False, True, False, False, False]
    assert stats.timeouts == 1 and stats.restarts == 1 and stats.graded == 5
    assert stats.slowest_s < 1.5 + 1.0


def test_pool_survives_a_crashing_worker():
    """A worker that dies (killed by the OS) mid-item grades that item wrong with an error; one that died
    while idle is replaced before it gets work; the run goes on."""
    import threading

    with GradingPool(workers=1, timeout_s=20, progress=False) as pool:
        (first,) = pool.grade([GradeRequest("</think> \\boxed{1}", "1")])
        pool._workers[0].process.kill()  # dies while idle
        pool._workers[0].process.join()
        (second,) = pool.grade([GradeRequest("</think> \\boxed{2}", "2")])
        killer = threading.Timer(1.0, lambda: pool._workers[0].process.kill())  # dies mid-item
        killer.start()
        results = pool.grade(
            [GradeRequest("</think> \\boxed{10^{10^{10^{10}}}}", "1"), GradeRequest("</think> \\boxed{3}", "3")]
        )
        killer.join()
    assert first.correct and second.correct
    assert results[0].error.startswith("grading worker died") and not results[0].correct
    assert not results[0].timed_out and results[1].correct
    assert pool.stats.restarts == 2


def math_rows() -> list[tuple[str, dict]]:
    rows = []
    for name in sorted(MATH_ROWS):
        for line in real_file(f"math/{name}.jsonl").read_text().splitlines():
            rows.append((name, json.loads(line)))
    return rows


@pytest.mark.slow
def test_real_gold_answers_grade_correct_and_shifted_wrong():
    """See the module docstring for the rows that fail and why."""
    rows = math_rows()
    styles = {
        "boxed": "<think>\nLet me work through this.\n</think>\nThe final answer is $\\boxed{{{answer}}}$.",
        "plain": "<think>\nwork\n</think>\nThe answer is ${answer}$.",
    }
    requests, labels = [], []
    for name, row in rows:
        for style, text in styles.items():
            requests.append(GradeRequest(text.format(answer=row["answer"]), row["answer"]))
            labels.append((style, row["id"]))
        same_set = [r for n, r in rows if n == name]
        position = same_set.index(row)
        shifted = same_set[(position + 1) % len(same_set)]["answer"]
        requests.append(GradeRequest(styles["boxed"].format(answer=shifted), row["answer"]))
        labels.append(("shifted", row["id"]))
    results, stats = grade_all(requests, progress=False)
    failures = {style: [] for style in (*styles, "shifted")}
    for (style, row_id), result in zip(labels, results):
        if result.correct != (style != "shifted"):
            failures[style].append(row_id)
    print({style: ids for style, ids in failures.items()}, stats)
    for style in styles:
        assert len(failures[style]) <= 0.01 * len(rows), failures[style]
    assert len(failures["shifted"]) <= 0.01 * len(rows), failures["shifted"]
