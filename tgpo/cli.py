"""The command line: `python -m tgpo <verb> [--help]`.

Each verb lives in its own module, which defines `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their verb runs, so `python -m tgpo methods` does not import
transformers, math-verify or verl.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module, one-line help). Add a verb by adding one line here.
VERBS: dict[str, tuple[str, str]] = {
    "verl-overrides": ("tgpo.verl.overrides_cli", "print the verl Hydra overrides of one experiment (cluster engine)"),
    "figures": ("figures.cli", "render tables/figures (table1-3, fig2, fig4-6, all) from results/<name>/"),
    "methods": ("tgpo.methods.cli", "list every registered method, one name per line"),
    "train": ("tgpo.engine.cli", "train one experiment with the local engine"),
    "eval": ("eval.cli", "sample and grade one model on one benchmark -> per-sample parquet"),
    "summarize": ("eval.summary", "per-sample eval parquets of results/<name>/ -> summary.parquet"),
    "lm-eval-check": ("eval.lm_eval_check", "score a model with lm-evaluation-harness next to our eval (ARC-c, ...)"),
    "world": ("tgpo.mini.world", "write the miniature world: tokenizers, prompts, corpora, benchmarks"),
    "build-model": ("tgpo.mini.models", "build and pretrain one tiny model of the miniature world"),
    "draw-config": (
        "tgpo.mini.draws",
        "a config's copy under another draw of its base models (build_seed), own results folder",
    ),
    "sweep": ("tgpo.mini.sweep", "the miniature's tuning rule: one sweep per method on the validation split"),
    "traces": ("tgpo.mini.traces", "re-sample training prompts with a teacher, keep verified-correct responses"),
    "verl-train": ("tgpo.verl.run", "train one experiment on the cluster engine (verl 0.9.1)"),
    "prepare-model": (
        "tgpo.models.prepare",
        "prepare a cluster checkpoint: RoPE theta/context in config.json, aligned vocabulary, <think> template",
    ),
    "prepare-data": ("tgpo.verl.data_prep", "OpenR1-Math-46k-8192 to the prompt table and verl's RL parquet"),
    "teacher-traces": (
        "tgpo.verl.teacher_traces",
        "re-sample the training prompts with the teacher (vLLM), keep Math-Verify-correct traces",
    ),
    "download": ("tgpo.hub", "fetch every pinned hub model / data set of a config (login node; the download rule)"),
    "eval-experiment": ("eval.experiment", "evaluate one experiment x seed on every benchmark of a config"),
    "choose-checkpoint": (
        "eval.checkpoint_choice",
        "checkpoint_choice test: report the save with the best Avg. on the test benchmarks (App. B.3)",
    ),
    "timing": ("tgpo.timing", "list the slowest pipeline jobs from Snakemake's benchmark files"),
    "validate-config": ("eval.preflight", "merge config files as Snakemake does, validate, resolve every experiment"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser_for(argv)
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    from tgpo.config import ConfigError

    try:
        return int(module.run(args) or 0)
    except ConfigError as error:  # a bad config: its message names the file and key; no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


def build_parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The parser, with argument definitions loaded only for the verb named in `argv`."""
    parser = argparse.ArgumentParser(
        prog="python -m tgpo",
        description="TGPO reproduction suite: data, training, evaluation and figures.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    sub.required = True
    for verb, (module_name, help_text) in VERBS.items():
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        verb_parser.set_defaults(_module=module_name)
        if argv and argv[0] == verb:
            importlib.import_module(module_name).add_arguments(verb_parser)
    return parser
