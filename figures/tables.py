"""Tables 1-3: one cell per (row, column), marked and written as Markdown, LaTeX and CSV.

Modes: `reproduced` (our numbers, with 95 % intervals when known), `paper` (the paper's numbers from
paper_numbers.yaml alone) and `compare` (ours, the paper's and ours minus the paper's, side by side).

Marks follow the paper's captions: per column, the best value bold and (Table 1) the second best
underlined, teacher rows excluded. Values are ranked as displayed (one decimal) with competition
ranking: a tie for the best gives several bold cells and no underline, as in the paper's MMLU-Pro
column of Table 1 (50.1 twice).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from figures.paper_numbers import benchmark_names, paper_table
from figures.results import average_estimate, benchmark_domains, estimate, load_summary, select_scores
from figures.spec import RowSpec, checkpoint_choice_note, not_run_note, seeds_for, table_rows
from figures.stats import Estimate
from tgpo.results.io import write_text

MODES = ("reproduced", "paper", "compare")
DECIMALS = 1
DOMAIN_TITLES = {"id": "In-Distribution Performance", "ood": "Out-of-Distribution Performance"}


@dataclass(frozen=True)
class Column:
    key: str  # benchmark key, or an average's key (id_avg, ood_avg, avg)
    name: str  # as in the paper ("AMC", "Avg.")
    domain: str | None = None  # "id" | "ood" | None
    average_of: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Row:
    label: str
    group: str | None = None
    teacher: bool = False
    experiment: str | None = None
    paper_label: str | None = None


@dataclass
class Table:
    name: str
    caption: str
    columns: list[Column]
    rows: list[Row]
    marks: tuple[str, ...]
    ours: dict[tuple[int, str], Estimate] = field(default_factory=dict)
    paper: dict[tuple[int, str], float] = field(default_factory=dict)
    note: str | None = None  # e.g. the rows a selection did not run (figures.spec.not_run_note)


# ------------------------------------------------------------------------------------------- building
def paper_columns(name: str) -> list[Column]:
    return [
        Column(
            column["key"],
            column["name"],
            column.get("domain"),
            tuple(column["average_of"]) if column.get("average_of") else None,
        )
        for column in paper_table(name)["columns"]
    ]


def columns_from_spec(name: str, spec: Mapping, domains: Mapping[str, str]) -> list[Column]:
    """The spec's `benchmarks` (keys or {key, name}) + Avg. columns, or the paper's columns if absent.

    Table 1 has one Avg. per domain (ID benchmarks, ID Avg., OOD benchmarks, OOD Avg.); Tables 2 and 3
    one Avg. over every shown benchmark, as in the paper.
    """
    if not spec.get("benchmarks"):
        return paper_columns(name)
    names = {**benchmark_names(), **{column.key: column.name for column in paper_columns(name)}}
    entries = [entry if isinstance(entry, Mapping) else {"key": entry} for entry in spec["benchmarks"]]
    keys = [str(entry["key"]) for entry in entries]
    label = {
        str(entry["key"]): str(entry.get("name") or names.get(str(entry["key"]), entry["key"])) for entry in entries
    }
    if name != "table1":
        columns = [Column(key, label[key], domains.get(key)) for key in keys]
        return columns + [Column("avg", "Avg.", None, tuple(keys))]
    columns = []
    for domain in ("id", "ood"):
        in_domain = [key for key in keys if domains.get(key) == domain]
        if in_domain:
            columns += [Column(key, label[key], domain) for key in in_domain]
            columns.append(Column(f"{domain}_avg", "Avg.", domain, tuple(in_domain)))
    unplaced = [key for key in keys if domains.get(key) not in ("id", "ood")]
    if unplaced:
        raise ValueError(f"report.{name}.benchmarks: no id/ood domain in summary.parquet for {unplaced}")
    return columns


def paper_rows(name: str) -> list[tuple[Row, dict[str, float]]]:
    return [
        (
            Row(row["label"], group["title"], bool(row.get("teacher", False)), None, row["label"]),
            {key: float(value) for key, value in row["scores"].items()},
        )
        for group in paper_table(name)["groups"]
        for row in group["rows"]
    ]


def table_from_paper(name: str) -> Table:
    """The paper's table exactly as paper_numbers.yaml holds it (mode `paper`)."""
    definition = paper_table(name)
    table = Table(name, definition["caption"], paper_columns(name), [], tuple(definition.get("marks", ())))
    for index, (row, scores) in enumerate(paper_rows(name)):
        table.rows.append(row)
        table.paper.update({(index, key): value for key, value in scores.items()})
    return table


def table_from_results(name: str, spec: Mapping, summary: pd.DataFrame, source: str | Path, with_paper: bool) -> Table:
    """Our numbers for the spec's rows (and the paper's, matched by `paper_label` or label)."""
    row_specs: list[RowSpec] = table_rows(name, spec)
    columns = columns_from_spec(name, spec, benchmark_domains(summary))
    benchmarks = [column.key for column in columns if column.average_of is None]
    wanted = {row.experiment: seeds_for(spec, row.experiment) for row in row_specs}
    scores = select_scores(summary, name, source, wanted, benchmarks)
    definition = paper_table(name)
    table = Table(
        name,
        definition["caption"],
        columns,
        [Row(row.label, row.group, row.teacher, row.experiment, row.paper_label or row.label) for row in row_specs],
        tuple(definition.get("marks", ())),
        note=" ".join(
            note
            for note in (
                checkpoint_choice_note(spec, {row.experiment: row.label for row in row_specs}),
                not_run_note(spec),
            )
            if note
        )
        or None,
    )
    paper_by_label = {row.label: scores_ for row, scores_ in paper_rows(name)}
    paper_average_of = {column.key: column.average_of for column in paper_columns(name)}
    for index, row in enumerate(table.rows):
        for column in columns:
            table.ours[(index, column.key)] = (
                estimate(scores, row.experiment, column.key)
                if column.average_of is None
                else average_estimate(scores, row.experiment, column.average_of)
            )
            paper_scores = paper_by_label.get(row.paper_label) if with_paper else None
            same_definition = column.average_of is None or set(paper_average_of.get(column.key) or ()) == set(
                column.average_of
            )
            if paper_scores and column.key in paper_scores and same_definition:
                table.paper[(index, column.key)] = paper_scores[column.key]
    return table


# -------------------------------------------------------------------------------------------- marking
def rank_marks(values: Sequence[float | None], eligible: Sequence[bool], marks: Sequence[str]) -> list[str | None]:
    """Per value: "bold" (best), "underline" (second best) or None; competition ranking on displayed values."""
    shown = [
        round(value, DECIMALS) if value is not None and eligible[index] else None for index, value in enumerate(values)
    ]
    result: list[str | None] = []
    for value in shown:
        if value is None:
            result.append(None)
            continue
        rank = 1 + sum(1 for other in shown if other is not None and other > value)
        mark = {1: "bold", 2: "underline"}.get(rank)
        result.append(mark if mark in marks else None)
    return result


def column_marks(table: Table, source: str) -> dict[tuple[int, str], str]:
    """(row index, column key) -> mark, for `ours` or `paper` values."""
    values = table.ours if source == "ours" else table.paper
    eligible = [not row.teacher for row in table.rows]
    marked = {}
    for column in table.columns:
        column_values = [_score(values.get((index, column.key))) for index in range(len(table.rows))]
        for index, mark in enumerate(rank_marks(column_values, eligible, table.marks)):
            if mark:
                marked[(index, column.key)] = mark
    return marked


# ------------------------------------------------------------------------------------------ rendering
@dataclass(frozen=True)
class SubColumn:
    column: Column
    kind: str  # "ours" | "paper" | "delta"
    header: str


def sub_columns(table: Table, mode: str) -> list[SubColumn]:
    names = [column.name for column in table.columns]
    result = []
    for column in table.columns:
        header = column.name
        if names.count(column.name) > 1 and column.domain:
            header = f"{column.name} ({column.domain.upper()})"
        if mode == "compare":
            result += [
                SubColumn(column, "ours", header),
                SubColumn(column, "paper", f"{header} paper"),
                SubColumn(column, "delta", f"{header} Δ"),
            ]
        else:
            result.append(SubColumn(column, "paper" if mode == "paper" else "ours", header))
    return result


def cell_text(table: Table, index: int, sub: SubColumn, marks: Mapping, show_ci: bool, style: str) -> str:
    key = (index, sub.column.key)
    if sub.kind == "delta":
        ours, paper = table.ours.get(key), table.paper.get(key)
        return "–" if ours is None or paper is None else f"{ours.score - paper:+.{DECIMALS}f}"
    if sub.kind == "paper":
        value, half_width = table.paper.get(key), None
    else:
        found = table.ours.get(key)
        value, half_width = (found.score, found.half_width) if found else (None, None)
    if value is None:
        return "–"
    text = f"{value:.{DECIMALS}f}"
    mark = marks[sub.kind].get(key)
    if mark == "bold":
        text = f"**{text}**" if style == "md" else rf"\textbf{{{text}}}"
    elif mark == "underline":
        text = f"<u>{text}</u>" if style == "md" else rf"\underline{{{text}}}"
    if show_ci and half_width is not None:
        text += f" ± {half_width:.{DECIMALS}f}" if style == "md" else rf"{{\scriptsize$\pm${half_width:.{DECIMALS}f}}}"
    return text


def render_markdown(table: Table, mode: str, show_ci: bool) -> str:
    subs = sub_columns(table, mode)
    marks = {"ours": column_marks(table, "ours"), "paper": column_marks(table, "paper")}
    lines = [
        "| Model | " + " | ".join(sub.header for sub in subs) + " |",
        "|---|" + "|".join("---:" for _ in subs) + "|",
    ]
    group = None
    for index, row in enumerate(table.rows):
        if row.group and row.group != group:
            lines.append(f"| *{row.group}* | " + " | ".join("" for _ in subs) + " |")
        group = row.group
        cells = [cell_text(table, index, sub, marks, show_ci, "md") for sub in subs]
        lines.append(f"| {_md_escape(row.label)} | " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", _md_escape(table.note)]
    return "\n".join(lines) + "\n"


def render_latex(table: Table, mode: str, show_ci: bool) -> str:
    subs = sub_columns(table, mode)
    marks = {"ours": column_marks(table, "ours"), "paper": column_marks(table, "paper")}
    width = 1 + len(subs)
    lines = [r"\begin{table*}[t]", r"\centering", r"\small", r"\begin{tabular}{l" + "c" * len(subs) + "}", r"\toprule"]
    domains = [column.domain for column in table.columns]
    per_column = 3 if mode == "compare" else 1
    if len(set(domains)) > 1 and None not in domains:
        spans = []
        for domain in dict.fromkeys(domains):
            count = domains.count(domain) * per_column
            spans.append(rf"\multicolumn{{{count}}}{{c}}{{{DOMAIN_TITLES.get(domain, domain)}}}")
        lines.append(" & " + " & ".join(spans) + r" \\")
    if mode == "compare":
        lines.append(
            " & "
            + " & ".join(rf"\multicolumn{{3}}{{c}}{{{_tex_escape(column.name)}}}" for column in table.columns)
            + r" \\"
        )
        lines.append(
            "Model & "
            + " & ".join({"ours": "Ours", "paper": "Paper", "delta": r"$\Delta$"}[sub.kind] for sub in subs)
            + r" \\"
        )
    else:
        lines.append("Model & " + " & ".join(_tex_escape(sub.column.name) for sub in subs) + r" \\")
    lines.append(r"\midrule")
    group = None
    for index, row in enumerate(table.rows):
        if row.group and row.group != group:
            if group is not None:
                lines.append(r"\midrule")
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{{_tex_escape(row.group)}}}}} \\")
        group = row.group
        cells = [cell_text(table, index, sub, marks, show_ci, "tex").replace("–", "--") for sub in subs]
        lines.append(_tex_escape(row.label) + " & " + " & ".join(cells) + r" \\")
    caption = _tex_escape(
        (table.caption if mode == "paper" else f"Reproduction of the paper's {table.name}: " + table.caption)
        + (f" {table.note}" if table.note else "")
    )
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:{table.name}}}",
        r"\end{table*}",
    ]
    return "\n".join(lines) + "\n"


def render_csv(table: Table, mode: str) -> str:
    """Numbers only (no marks): label, group, experiment, teacher, then per column key the value,
    `_ci_low`, `_ci_high`, `_n_seeds` (ours) and `_paper`, `_delta` (compare)."""
    records = []
    for index, row in enumerate(table.rows):
        record = {"label": row.label, "group": row.group, "experiment": row.experiment, "teacher": row.teacher}
        for column in table.columns:
            key = (index, column.key)
            if mode == "paper":
                record[column.key] = table.paper.get(key)
                continue
            ours = table.ours.get(key)
            record[column.key] = ours.score if ours else None
            record[f"{column.key}_ci_low"] = ours.ci_low if ours else None
            record[f"{column.key}_ci_high"] = ours.ci_high if ours else None
            record[f"{column.key}_n_seeds"] = ours.n_seeds if ours else None
            if mode == "compare":
                paper = table.paper.get(key)
                record[f"{column.key}_paper"] = paper
                record[f"{column.key}_delta"] = (ours.score - paper) if ours and paper is not None else None
        records.append(record)
    buffer = io.StringIO()
    pd.DataFrame.from_records(records).to_csv(buffer, index=False)
    return buffer.getvalue()


def write_table(table: Table, out_dir: str | Path, mode: str, show_ci: bool = True) -> dict[str, Path]:
    """Write <out_dir>/<name>.md, .tex, .csv (atomically); returns the paths by format."""
    out_dir = Path(out_dir)
    paths = {suffix: out_dir / f"{table.name}.{suffix}" for suffix in ("md", "tex", "csv")}
    write_text(paths["md"], render_markdown(table, mode, show_ci))
    write_text(paths["tex"], render_latex(table, mode, show_ci))
    write_text(paths["csv"], render_csv(table, mode))
    return paths


def make_table(
    name: str,
    *,
    out_dir: str | Path,
    mode: str = "reproduced",
    summary: str | Path | None = None,
    spec: Mapping | None = None,
    show_ci: bool = True,
) -> dict[str, Path]:
    """Render table `name` in `mode`; `summary` and `spec` are needed unless mode is `paper`."""
    if mode not in MODES:
        raise ValueError(f"{name}: mode {mode!r} is not one of {MODES}")
    if mode == "paper":
        return write_table(table_from_paper(name), out_dir, mode, show_ci)
    if summary is None or spec is None:
        raise ValueError(f"{name}: mode {mode!r} needs --summary and the report spec (--config or --spec)")
    table = table_from_results(name, spec, load_summary(summary), summary, with_paper=mode == "compare")
    return write_table(table, out_dir, mode, show_ci)


def _score(value) -> float | None:
    if value is None:
        return None
    score = value.score if isinstance(value, Estimate) else float(value)
    return None if math.isnan(score) else score


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|")


def _tex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(char, escaped)
    return text
