"""Our "authors" grader against the authors' own scoring code, label by label, on the same responses.

    python bench/authors_code_parity.py --authors-scripts <helldog-star/TGPO checkout>/eval_scripts \
        [--step 1] [--workers 2] [--out report.json]

The authors' labels come from their code, run as it is from a checkout the user supplies (this repository
holds none of it): `generate_vllm.main` of github helldog-star/TGPO `eval_scripts/` (LUFFY's script with
their edits; it imports `oat_math_grader.py` beside it), called with the flags of their
`eval_scripts/my_eval_sh.sh` (`--remove_system False --force_generate False --any_true True
--add_oat_evaluate True`). With `force_generate=False` their `main` re-reads an existing
`<output>.decoded.jsonl` instead of generating, so this script writes the responses there (each with a
prompt that ends in `<think>\\n`, as their `own` template's) and lets their code label them: the segment
after `</think>`, Math-Verify on it, OR Oat's `boxed_reward_fn`. Their module imports vLLM at the top; it
is installed with the `verl-cpu` extra and not used here.

Responses: every `step`-th real gold of the six maths sets and ARC-c (tests/data/benchmarks), rendered by
`bench/grader_cross_check.py`'s `responses_for` (each style of `eval.response_styles`, with the gold, the
gold as a model writes it, and the next row's gold). Ours: `eval.grading_pool.grade_responses(...,
protocol="authors", think_opened=True)`.

Prints per benchmark the responses, the disagreements and each side's accuracy; the last line is the
total number of disagreements (0 is parity).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from grader_cross_check import MATH_SETS, finish, rendered_and_ours  # noqa: E402

PROMPT = "<|im_start|>user\nSolve the problem.<|im_end|>\n<|im_start|>assistant\n<think>\n"
AUTHORS_FLAGS = {"remove_system": False, "force_generate": False, "any_true": True, "add_oat_evaluate": True}


def authors_module(scripts: Path):
    """The authors' `generate_vllm` module, imported from the user's checkout (it imports its
    `oat_math_grader` beside it)."""
    sys.path.insert(0, str(scripts))
    import generate_vllm

    return generate_vllm


def authors_labels(generate_vllm, items: list[tuple[str, str, str, str]], workdir: Path) -> list[bool]:
    """Labels from the authors' `generate_vllm.main`, re-reading `items` as an already decoded file."""
    input_file, output_file = workdir / "responses.parquet", workdir / "labels.jsonl"
    pd.DataFrame({"data_source": [f"{style}/{kind}" for style, kind, _, _ in items]}).to_parquet(input_file)
    decoded = workdir / "labels.decoded.jsonl"
    with decoded.open("w") as stream:
        for _, _, response, gold in items:
            stream.write(json.dumps({"prompt": PROMPT, "generated_text": response, "answer": gold}) + "\n")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # their printout, tqdm
        generate_vllm.main(str(input_file), str(output_file), model_path=None, **AUTHORS_FLAGS)
    labels = [json.loads(line)["correctness"] for line in output_file.read_text().splitlines()]
    if len(labels) != len(items):
        raise RuntimeError(f"{output_file}: {len(labels)} labels for {len(items)} responses")
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors-scripts", type=Path, required=True, help="helldog-star/TGPO eval_scripts/")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "tests" / "data" / "benchmarks")
    parser.add_argument("--step", type=int, default=1, help="every step-th gold of each set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON")
    args = parser.parse_args()
    for needed in ("generate_vllm.py", "oat_math_grader.py"):
        if not (args.authors_scripts / needed).is_file():
            parser.error(f"--authors-scripts {args.authors_scripts}: no {needed} (expected TGPO's eval_scripts/)")
    generate_vllm = authors_module(args.authors_scripts)
    report, disagreements, total = {}, 0, 0
    with tempfile.TemporaryDirectory() as workdir:
        for name in (*MATH_SETS, "arc_c"):
            items, ours = rendered_and_ours(args.data_dir, name, args.step, args.workers)
            theirs = authors_labels(generate_vllm, items, Path(workdir))
            differ = Counter(f"{style}/{kind}" for (style, kind, _, _), a, b in zip(items, ours, theirs) if a != b)
            count = sum(differ.values())
            disagreements, total = disagreements + count, total + len(items)
            report[name] = {
                "responses": len(items),
                "disagreements": count,
                "ours_accuracy": 100 * sum(ours) / len(items),
                "authors_accuracy": 100 * sum(theirs) / len(items),
                "by_style": dict(differ.most_common()),
            }
            row = report[name]
            accuracies = f"ours={row['ours_accuracy']:5.1f}% authors={row['authors_accuracy']:5.1f}%"
            print(f"{name:14s} n={len(items):5d} disagree={count:4d} {accuracies} {row['by_style']}", flush=True)
    return finish(report, args.out, f"disagreements {disagreements} of {total} responses")


if __name__ == "__main__":
    raise SystemExit(main())
