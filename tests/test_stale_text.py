"""Text that described an earlier state of the code and must not come back (issue 18, item 18)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

STALE = [
    ("config/paper-7b.yaml", "DRAFT by helper"),
    ("config/paper-1.5b.yaml", "DRAFT by helper"),
    ("docs/verl-0.9.md", "A second use of the\n  same logits"),
    ("docs/verl-0.9.md", "Hence every teacher method sets `calculate_entropy=True`"),
    ("tgpo/methods/tgpo_family.py", "required: in-place CE backward"),
    # issue 21: the architecture page named a function and a schema path that no longer exist
    ("docs/architecture.md", "resolve_run("),
    ("docs/architecture.md", "against `config/schema.json`"),
    ("docs/architecture.md", "`tgpo.methods` imports every module of `baselines/`"),
]


@pytest.mark.parametrize(("path", "phrase"), STALE, ids=[f"{p}:{t[:24]}" for p, t in STALE])
def test_stale_phrase_is_gone(path, phrase):
    assert phrase not in (ROOT / path).read_text(), f"{path} still says {phrase!r}"
