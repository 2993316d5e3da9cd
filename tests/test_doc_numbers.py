"""Every measured number in the README and docs/ names the command that produced it (issue 21).

A floor, not a proof: the check finds the measurements that have a recognisable form (a benchmark's
`..._ratio=` line, a test run's `M min S s`, CPU seconds, wall time, the grading benchmark's line) and
asserts that the paragraph or list item holding one also holds a command in backticks (`python ...`,
`snakemake ...`, `pytest ...`, `grep ...`). A measurement written in another form, or a paragraph naming an
unrelated command, passes unnoticed. docs/results.md and docs/miniature.md are left out: they are
regenerated from a run whose command they state at the top.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DOCS = [
    "README.md",
    "config/README.md",
    "docs/architecture.md",
    "docs/cluster.md",
    "docs/evaluation.md",
    "docs/performance.md",
    "docs/testing.md",
    "docs/verl-0.9.md",
]

MEASUREMENT = re.compile(
    r"\b[a-z_]*ratio=\d"  # a benchmark's last line, e.g. time_ratio=1.009
    r"|\b\d+ min \d+ s\b"  # a test run's time, e.g. 2 min 20 s
    r"|\b\d+(?:\.\d+)? ?CPU-s\b|\b\d+ s CPU\b"  # CPU time of a build or an evaluation
    r"|\b\d+(?:\.\d+)? (?:s|min) wall\b"  # wall time
    r"|\bgraded \d+ responses\b"  # bench/grading.py's last line
)

COMMAND = re.compile(r"`(?:[A-Z_]+=\S+\s+)*(?:python3?|snakemake|pytest|grep)\s[^`]*`")

ITEM_START = re.compile(r"(?:- |\d+\. |\|)")


def blocks(text: str) -> list[tuple[int, str]]:
    """The paragraphs and top-level list items of a Markdown text, each with its first line's number."""
    found, lines, first = [], [], 0
    for number, line in enumerate(text.splitlines(), 1):
        if (not line.strip() or ITEM_START.match(line)) and lines:
            found.append((first, "\n".join(lines)))
            lines = []
        if line.strip():
            first = first if lines else number
            lines.append(line)
    if lines:
        found.append((first, "\n".join(lines)))
    return found


def measurements_without_command(text: str) -> list[str]:
    return [
        f"line {first}: {match.group(0)!r}"
        for first, block in blocks(text)
        if not COMMAND.search(block)
        for match in MEASUREMENT.finditer(block)
    ]


@pytest.mark.parametrize("path", DOCS)
def test_every_measurement_names_its_command(path):
    missing = measurements_without_command((ROOT / path).read_text())
    assert not missing, f"{path}: measured numbers without a command in their paragraph: {missing}"


def test_the_check_fails_on_a_measurement_without_a_command():
    text = (
        "- **Speed.** TGPO against GRPO++ on CPU: `time_ratio=1.009`.\n"
        "- **Tests.** The fast part (`python -m pytest -m 'not slow'`) in 2 min 20 s.\n"
        "\n"
        "A stand-in pretrains in 103 CPU-s (586 s wall).\n"
    )
    assert measurements_without_command(text) == [
        "line 1: 'time_ratio=1'",
        "line 4: '103 CPU-s'",
        "line 4: '586 s wall'",
    ]
