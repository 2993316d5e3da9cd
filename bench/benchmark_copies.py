"""LUFFY's evaluation sets (the authors' files) against Oat's copies of the same benchmarks, problem by problem.

    python bench/benchmark_copies.py --oat-suite <sail-sg/understand-r1-zero checkout>/datasets/evaluation_suite

LUFFY's side is tests/data/benchmarks (the six maths sets of ElliottYan/LUFFY `data/valid.all.parquet`;
`tests/test_eval_protocols.py::test_luffy_files_match_the_registry_copies` checks they equal the real file
when TGPO_LUFFY_DATA_DIR is set). Oat's side is `datasets/evaluation_suite` of sail-sg/understand-r1-zero
(saved with `datasets`; the hub's lkevinzc/math-eval, the registry's source for Minerva and OlympiadBench).
Problems are matched by their text (whitespace collapsed), since the two files order them differently.

Prints per benchmark: problems on each side, matched problems, and how the golds of matched problems
compare: `equal` (after stripping whitespace), `one of` (Oat lists several forms and LUFFY's is one),
`different` (written another way, or another value), with a few examples of the last. The last line sums
the golds that differ.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
SPLITS = {"aime24": "aime", "amc": "amc", "math500": "math", "minerva": "minerva", "olympiadbench": "olympiad_bench"}


def problem_key(text: str) -> str:
    return " ".join(text.split())


def oat_rows(suite: Path, split: str) -> dict[str, list[str]]:
    """Problem text -> gold forms, from one split saved by `datasets` (Arrow stream files)."""
    files = sorted((suite / split).glob("data-*.arrow"))
    if not files:
        raise SystemExit(f"{suite / split}: no data-*.arrow files (expected Oat's datasets/evaluation_suite)")
    rows = [row for path in files for row in pa.ipc.open_stream(path).read_all().to_pylist()]
    return {problem_key(row["problem"]): gold_forms(row["answer"]) for row in rows}


def gold_forms(answer) -> list[str]:
    """A string or number is one form; Minerva's and OlympiadBench's lists hold equivalent forms."""
    return [str(form).strip() for form in answer] if isinstance(answer, list) else [str(answer).strip()]


def luffy_rows(data_dir: Path, name: str) -> dict[str, str]:
    lines = (data_dir / "math" / f"{name}.jsonl").read_text().splitlines()
    return {problem_key(row["problem"]): str(row["answer"]).strip() for row in map(json.loads, lines)}


def compare(luffy: dict[str, str], oat: dict[str, list[str]]) -> tuple[Counter, list[tuple[str, list[str]]]]:
    kinds, examples = Counter(), []
    for key, gold in luffy.items():
        if key not in oat:
            kinds["unmatched"] += 1
            continue
        forms = oat[key]
        if forms == [gold]:
            kinds["equal"] += 1
        elif gold in forms:
            kinds["one of"] += 1
        else:
            kinds["different"] += 1
            examples.append((gold, forms))
    return kinds, examples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oat-suite", type=Path, required=True, help="understand-r1-zero datasets/evaluation_suite")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "tests" / "data" / "benchmarks")
    args = parser.parse_args()
    differing = 0
    for name, split in SPLITS.items():
        luffy, oat = luffy_rows(args.data_dir, name), oat_rows(args.oat_suite, split)
        kinds, examples = compare(luffy, oat)
        several = sum(len(forms) > 1 for forms in oat.values())
        differing += kinds["different"]
        print(
            f"{name:14s} LUFFY {len(luffy):4d}  Oat {len(oat):4d}  matched {len(luffy) - kinds['unmatched']:4d}  "
            f"equal {kinds['equal']:4d}  one of {kinds['one of']:3d}  different {kinds['different']:3d}  "
            f"Oat rows with several forms {several:3d}"
        )
        for gold, forms in examples[:3]:
            print(f"{'':16s}LUFFY {gold!r}  Oat {forms!r}")
    print(f"golds that differ: {differing}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
