"""The comparison tools in bench/: benchmark copies matched problem by problem, and numerics fingerprints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchmark_copies import compare, gold_forms, problem_key  # noqa: E402


def test_gold_forms_reads_strings_numbers_and_lists():
    assert gold_forms("204") == ["204"]
    assert gold_forms(142.0) == ["142.0"]
    assert gold_forms(["41.8^\\circ\n", "41.8^{\\circ}"]) == ["41.8^\\circ", "41.8^{\\circ}"]


def test_compare_sorts_golds_into_equal_one_of_different_and_unmatched():
    luffy = {problem_key("What is  1+1?"): "2", "b": "8.7e8", "c": "41.8", "d": "5"}
    oat = {problem_key("What is 1+1?\n"): ["2"], "b": ["8.7 \\times 10^{8}"], "c": ["41.8^\\circ", "41.8"]}
    kinds, examples = compare(luffy, oat)
    assert kinds == {"equal": 1, "different": 1, "one of": 1, "unmatched": 1}
    assert examples == [("8.7e8", ["8.7 \\times 10^{8}"])]


def fingerprint_lines(extra_env: dict[str, str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "numerics_fingerprint.py"), "--no-build"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [line for line in result.stdout.splitlines() if not line.startswith("#")]


def test_numerics_fingerprints_are_stable_and_pinned_against_the_users_variables():
    """Two processes print the same fingerprints, also when the user asks for other kernels and threads
    (the script pins the numerics as `python -m tgpo` does); every layer is named once."""
    plain = fingerprint_lines({})
    assert len(plain) == len({line.split()[0] for line in plain}) >= 10
    assert fingerprint_lines({"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "2", "MKL_CBWR": "AUTO"}) == plain
