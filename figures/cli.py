"""Command lines of the figure scripts, and the `python -m tgpo figures` verb.

    python -m figures.table1 --summary results/mini/summary.parquet --config config/default.yaml \
        --out-dir results/mini/figures [--mode reproduced|paper|compare] [--no-ci]
    python -m figures.table1 --mode paper --out-dir /tmp/paper          # the paper's numbers alone
    python -m figures.fig5 --runs results/mini/runs --config config/default.yaml --out-dir results/mini/figures
    python -m tgpo figures fig5 --config config/default.yaml            # same, paths from the config's name

`--spec '<json>'` replaces `--config` (the Snakemake rules pass the report section that way).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from figures import FIGURES, OUTPUTS, TABLES
from figures.results import MissingResultsError
from figures.spec import load_spec
from figures.tables import MODES, make_table
from tgpo.results.layout import ResultsLayout


def _spec_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="the pipeline config (YAML); its report.<output> section is used")
    source.add_argument("--spec", help="the report.<output> section as JSON (instead of --config)")
    parser.add_argument("--out-dir", required=True, help="directory for the outputs (results/<name>/figures)")


def table_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m figures.{name}", description=f"Render {name} as Markdown, LaTeX and CSV."
    )
    parser.add_argument("--summary", help="results/<name>/summary.parquet (not needed with --mode paper)")
    _spec_arguments(parser)
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="reproduced numbers, the paper's alone, or both with the difference "
        "(default: the spec's `mode`, else reproduced)",
    )
    parser.add_argument("--no-ci", action="store_true", help="omit the 95%% intervals from .md/.tex")
    return parser


def table_main(name: str, argv: Sequence[str] | None = None) -> int:
    args = table_parser(name).parse_args(argv)
    spec = None
    if args.config or args.spec:
        spec = load_spec(name, config_path=args.config, spec_json=args.spec)
    mode = args.mode or (spec or {}).get("mode") or "reproduced"
    return _report(
        name,
        lambda: make_table(
            name, out_dir=args.out_dir, mode=mode, summary=args.summary, spec=spec, show_ci=not args.no_ci
        ),
    )


def figure_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m figures.{name}", description=f"Render {name} as PDF and PNG from metrics.jsonl files."
    )
    parser.add_argument("--runs", required=True, help="results/<name>/runs (holds <experiment>/seed<k>/metrics.jsonl)")
    _spec_arguments(parser)
    return parser


def figure_main(name: str, make: Callable, argv: Sequence[str] | None = None) -> int:
    args = figure_parser(name).parse_args(argv)
    if not (args.config or args.spec):
        figure_parser(name).error("one of --config or --spec is required")
    spec = load_spec(name, config_path=args.config, spec_json=args.spec)
    return _report(name, lambda: make(spec=spec, runs_dir=args.runs, out_dir=args.out_dir))


def _report(name: str, render: Callable[[], dict]) -> int:
    try:
        paths = render()
    except MissingResultsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(path)
    return 0


# ------------------------------------------------------------------------------- `python -m tgpo figures`
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "outputs",
        nargs="+",
        choices=[*OUTPUTS, "all"],
        metavar="OUTPUT",
        help=f"one or more of {', '.join(OUTPUTS)}, or all",
    )
    parser.add_argument("--config", required=True, help="the pipeline config (YAML)")
    parser.add_argument("--results", help="results directory (default results/<config name>)")
    parser.add_argument("--mode", choices=MODES, default=None, help="table mode (default: the spec's, else reproduced)")


def run(args: argparse.Namespace) -> int:
    config = yaml.safe_load(Path(args.config).read_text())
    layout = ResultsLayout(Path(args.results)) if args.results else ResultsLayout.of(config)
    outputs = OUTPUTS if "all" in args.outputs else args.outputs
    status = 0
    for output in outputs:
        module = importlib.import_module(f"figures.{output}")
        argv = ["--config", args.config, "--out-dir", str(layout.figures)]
        if output in TABLES:
            argv += ["--summary", str(layout.summary)] + (["--mode", args.mode] if args.mode else [])
        elif output in FIGURES:
            argv += ["--runs", str(layout.runs)]
        status = max(status, module.main(argv))
    return status
