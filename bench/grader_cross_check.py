"""Second opinion on the "authors" grader: lm-evaluation-harness's maths extraction on the same responses.

    python bench/grader_cross_check.py [--step 3] [--workers 2] [--out report.json]

Responses: every `step`-th real gold of the six maths sets and ARC-c (tests/data/benchmarks, LUFFY's
evaluation sets de-duplicated), rendered in each style of `eval.response_styles` with the right answer,
the right answer written as a model would (`as_a_model_writes`) and the next row's (different) gold.
Graders: ours (`eval.grading_pool.grade_responses`, protocol "authors", prompts that opened `<think>\\n`)
and lm-eval's answer extraction and equivalence for its AIME tasks (lm_eval/tasks/aime/utils.py
`process_results`: the last `\\boxed{}` of the whole response, else the text between its first and last
`$`, compared after Hendrycks' `strip_string`). lm-eval's
minerva_math scorer (Math-Verify + sympy) needs antlr4 4.11 and does not import beside our stack's 4.9.3.

Prints, per benchmark, the share of responses on which the two agree (all styles, and the common
"boxed after </think>" style alone), each grader's accuracy, and the styles where they disagree; the
last line is the overall agreement. The style mix is chosen to exercise the rules, so the overall
agreement describes these responses, not a model's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval import response_styles as styles  # noqa: E402
from eval.grading_pool import grade_responses  # noqa: E402

MATH_SETS = ("aime24", "aime25", "amc", "math500", "minerva", "olympiadbench")


def real_golds(data_dir: Path, name: str, step: int) -> list[str]:
    relative = "ood/arc_c.jsonl" if name == "arc_c" else f"math/{name}.jsonl"
    lines = (data_dir / relative).read_text().splitlines()
    return [json.loads(line)["answer"] for line in lines][::step]


def as_a_model_writes(gold: str) -> str:
    """The gold as a model would box it: `$` wrappers, `\\left`/`\\right` and `\\dfrac` dropped, integral
    numbers without `.0` or leading zeros (AMC's 142.0 -> 142, AIME's 025 -> 25)."""
    text = gold.strip().strip("$").replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac")
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value == int(value) else text


def responses_for(golds: list[str], renderers: dict) -> list[tuple[str, str, str, str]]:
    """(style, right|model_form|wrong, response, gold) for each gold and style: the gold as written, the
    gold as a model writes it (when that differs), and the next different gold."""
    items = []
    for index, gold in enumerate(golds):
        wrong = next((g for g in golds[index + 1 :] + golds[:index] if g != gold), None)
        for style, render in renderers.items():
            items.append((style, "right", render(gold), gold))
            if as_a_model_writes(gold) != gold:
                items.append((style, "model_form", render(as_a_model_writes(gold)), gold))
            if wrong is not None:
                items.append((style, "wrong", render(wrong), gold))
    return items


def rendered_and_ours(data_dir: Path, name: str, step: int, workers: int) -> tuple[list, list[bool]]:
    """One benchmark's rendered responses (`responses_for`) and our "authors" labels for them."""
    renderers = styles.LETTER_STYLES if name == "arc_c" else styles.STYLES
    items = responses_for(real_golds(data_dir, name, step), renderers)
    ours = grade_responses(
        [i[2] for i in items], [i[3] for i in items], protocol="authors", think_opened=True, workers=workers
    )
    return items, ours


def finish(report: dict, out: Path | None, last_line: str) -> int:
    """Write the report as JSON when asked, print the last line, exit status 0."""
    if out:
        out.write_text(json.dumps(report, indent=1))
    print(last_line)
    return 0


def lm_eval_label(response: str, gold: str) -> bool:
    from lm_eval.tasks.aime.utils import process_results

    return bool(process_results({"answer": gold}, [response])["exact_match"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "tests" / "data" / "benchmarks")
    parser.add_argument("--step", type=int, default=3, help="every step-th gold of each set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON")
    args = parser.parse_args()
    report = {}
    total_agree = total = 0
    for name in (*MATH_SETS, "arc_c"):
        items, ours = rendered_and_ours(args.data_dir, name, args.step, args.workers)
        theirs = [lm_eval_label(response, gold) for _, _, response, gold in items]
        disagree = Counter()
        by_direction = defaultdict(int)
        for (style, kind, _, _), a, b in zip(items, ours, theirs):
            if a != b:
                disagree[f"{style}/{kind}"] += 1
                by_direction["ours only" if a else "lm-eval only"] += 1
        agree = sum(a == b for a, b in zip(ours, theirs))
        plain = [(a, b) for (style, _, _, _), a, b in zip(items, ours, theirs) if style == "boxed_after_think"]
        plain_agreement = 100 * sum(a == b for a, b in plain) / len(plain)
        total_agree, total = total_agree + agree, total + len(items)
        report[name] = {
            "responses": len(items),
            "agreement": 100 * agree / len(items),
            "agreement_boxed_after_think": plain_agreement,
            "ours_accuracy": 100 * sum(ours) / len(items),
            "lm_eval_accuracy": 100 * sum(theirs) / len(items),
            "disagreements": dict(disagree.most_common()),
            "direction": dict(by_direction),
        }
        print(
            f"{name:14s} n={len(items):5d} agree={report[name]['agreement']:5.1f}% "
            f"(boxed after </think>: {plain_agreement:5.1f}% of {len(plain)}) "
            f"ours={report[name]['ours_accuracy']:5.1f}% lm-eval={report[name]['lm_eval_accuracy']:5.1f}% "
            f"{dict(by_direction)} {dict(disagree.most_common(6))}",
            flush=True,
        )
    return finish(report, args.out, f"overall agreement {100 * total_agree / total:.1f}% on {total} responses")


if __name__ == "__main__":
    raise SystemExit(main())
