"""Every source the code cites is one a user of this repository can read: the paper, a baseline's paper, a
public repository and file, or a page of docs/ (issue 10, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tgpo.methods import get_method, list_methods

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("tgpo", "baselines", "eval", "figures", "workflows", "config")
SUFFIXES = {".py", ".yaml", ".smk", ".json", ".rst", ".sh", ".md"}
# citations of material outside the repository: the development notes, the design document, shared/
OUTSIDE = re.compile(
    r"\.\./shared|shared/(notes|paper)|(?<![\w-])DESIGN\.md|notes/|\bnotes?\s+(section|§|\d)"
    r"|\bnotes (baselines|verl|miniature)|\bverl notes\b|miniature-findings",
    re.IGNORECASE,
)
# a readable source: the paper (section, appendix, equation, table, figure), an arXiv paper, a repository
# path "owner/name ..." or a hub id, or this repository's docs/
READABLE = re.compile(
    r"\bpaper\b|\bApp(endix|\.)\s|\bSection\s|\bEq\.|\bTable\s|\bFig(ure|\.)\s|arXiv"
    r"|\b[\w.-]+/[\w.-]+\b|docs/"
)


def code_files():
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                yield path


def test_no_citation_leaves_the_repository():
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in code_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "citations of material outside the repository:\n" + "\n".join(hits)


def test_the_pattern_catches_what_the_code_used_to_cite():
    for old in (
        "notes 1.7",
        "(notes section 2.1)",
        "notes/baselines-and-eval.md section 3",
        "../shared/notes",
        "DESIGN.md §4",
        "(verl notes 2.2)",
        "notes verl-0.9 pitfall 7",
    ):
        assert OUTSIDE.search(old), old
    assert not OUTSIDE.search("free-form remarks carried into run.json")


@pytest.mark.parametrize("name", list_methods())
def test_every_default_names_a_readable_source(name):
    method = get_method(name)
    unreadable = {key: source for key, source in method.defaults_source.items() if not READABLE.search(source)}
    assert not unreadable, f"method {name!r}: sources that name no paper, repository or docs/ page: {unreadable}"
    leaving = {key: source for key, source in method.defaults_source.items() if OUTSIDE.search(source)}
    assert not leaving, f"method {name!r}: sources outside the repository: {leaving}"
    for page in re.findall(r"docs/[\w.-]+\.md", " ".join(method.defaults_source.values())):
        assert (ROOT / page).is_file(), f"method {name!r} cites {page}, which does not exist"
