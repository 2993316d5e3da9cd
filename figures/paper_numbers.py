"""The paper's own numbers (`figures/paper_numbers.yaml`): tables 1-3 as data."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


@cache
def _load(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_paper_numbers(path: str | Path = PAPER_NUMBERS) -> dict:
    """The whole YAML: `benchmarks` (key -> paper column name) and `tables`."""
    return _load(str(path))


def paper_table(name: str, path: str | Path = PAPER_NUMBERS) -> dict:
    """One table: `columns` [{key, name, domain, average_of?}], `groups` [{title, rows}], `marks`, `caption`."""
    tables = load_paper_numbers(path)["tables"]
    if name not in tables:
        raise KeyError(f"{path}: no table {name!r} (has {sorted(tables)})")
    return tables[name]


def benchmark_names(path: str | Path = PAPER_NUMBERS) -> dict[str, str]:
    return dict(load_paper_numbers(path)["benchmarks"])
