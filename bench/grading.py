"""Grading throughput and robustness: the paper's whole maths evaluation plus adversarial responses.

Grades every row of the six maths benchmarks times its sample count (AIME24, AIME25, AMC x 32; MATH-500,
Minerva, OlympiadBench x 1: 6,023 responses, as the authors' valid.all.parquet) with the gold answer
written in the usual response styles, plus an adversarial set (100k-character responses, deeply nested
fractions, unbalanced braces, huge exponents), through eval.grading's process pool with its hard
per-item timeout. Target on 2 cores: <= 60 s, no response over its timeout.

    python bench/grading.py [BENCHMARK_DIR] [--workers 2] [--timeout 10]

Last line: `graded <n> responses in <s> s, slowest <t> s, timeouts <k>`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SAMPLES = {"aime24": 32, "aime25": 32, "amc": 32, "math500": 1, "minerva": 1, "olympiadbench": 1}
REASONING = (
    "Let $x$ be the unknown. Then $x^2 - 5x + 6 = 0$, so $(x-2)(x-3)=0$ and we check both roots. "
    "Substituting, $\\frac{a+b}{2} \\ge \\sqrt{ab}$ holds with equality iff $a=b$. "
) * 12
STYLES = (
    "<think>\n{reasoning}\n</think>\nThe final answer is $\\boxed{{{answer}}}$.",
    "<think>\n{reasoning}\n</think>\nThe answer is ${answer}$.",
    "<think>\n{reasoning}\n</think>\n**Final Answer**\n\\[\n\\boxed{{{answer}}}\n\\]",
    "{reasoning}\nTherefore, the answer is $\\boxed{{{answer}}}$.",
)


def benchmark_requests(benchmark_dir: Path):
    from eval.grading import GradeRequest

    requests = []
    for name, samples in SAMPLES.items():
        path = benchmark_dir / "math" / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for row_index, row in enumerate(rows):
            for sample in range(samples):
                style = STYLES[(row_index + sample) % len(STYLES)]
                requests.append(GradeRequest(style.format(reasoning=REASONING, answer=row["answer"]), row["answer"]))
    return requests


def adversarial_requests():
    from eval.grading import GradeRequest

    responses = [
        "x" * 100_000 + " \\boxed{5}",
        ("$x^2+1$ and " * 8_500) + "\\boxed{5}",
        "<think>" + "\\frac{" * 20_000 + "</think> \\boxed{5}",
        "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}",
        "$" + "\\frac{1}{" * 3_000 + "2" + "}" * 3_000 + "$",
        "\\boxed{\\frac{1}{2" + "{" * 5_000,
        "}" * 5_000 + "\\boxed{" + "{" * 5_000 + "5",
        "\\boxed{" + "(" * 2_000 + "5",
        "\\boxed{10^{10^{10^{10}}}}",
        "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",
        "\\boxed{9^{9^{9^{9}}}}",
        "\\boxed{(10^{10})!}",
    ]
    return [GradeRequest(response, "5") for response in responses]


def main() -> int:
    from eval.grading_pool import DEFAULT_TIMEOUT_S, grade_all

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark_dir", nargs="?", type=Path, default=ROOT / "tests" / "data" / "benchmarks")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args()

    gold = benchmark_requests(args.benchmark_dir)
    adversarial = adversarial_requests()
    started = time.perf_counter()
    results, stats = grade_all(gold + adversarial, workers=args.workers, timeout_s=args.timeout, progress=False)
    elapsed = time.perf_counter() - started
    gold_correct = sum(result.correct for result in results[: len(gold)])
    adversarial_timeouts = sum(result.timed_out for result in results[len(gold) :])
    print(
        f"gold-style responses correct: {gold_correct}/{len(gold)}; adversarial: {len(adversarial)} "
        f"({adversarial_timeouts} killed at the {args.timeout:g} s timeout); worker errors {stats.errors}; "
        f"workers {args.workers}"
    )
    print(
        f"graded {len(results)} responses in {elapsed:.1f} s, slowest {stats.slowest_s:.2f} s, "
        f"timeouts {stats.timeouts}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
