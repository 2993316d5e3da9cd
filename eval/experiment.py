"""Verb `eval-experiment`: evaluate one experiment x seed of a config on every benchmark of the config.

    python -m tgpo eval-experiment --config config/default.yaml --experiment tgpo --seed 0
    python -m tgpo eval-experiment --config config/default.yaml --experiment tgpo --seeds 0 1 2

The model is loaded once (trained experiments: `results/<name>/runs/<experiment>/seed<k>/checkpoint`;
eval-only ones: their model key or hub id) and each benchmark is generated and graded with
`eval.cli.evaluate`, exactly as `python -m tgpo eval` does for one benchmark. Settings:
`eval.protocols.resolve_evaluation` (the config's `evaluation.protocol`, overridden by the config's
`evaluation:` keys, per benchmark by its `benchmarks:` entry and per experiment by the experiment's
`evaluation:` block; a released checkpoint keeps its own template). Each benchmark's parquet is written
atomically as soon as it is done.
`--seeds` evaluates several seeds' runs one after the other in one process. `--benchmarks` restricts the
run to some benchmarks (the cluster pipeline runs one job per benchmark, so that a retry redoes only the
benchmarks whose file is missing). The vLLM backend's tensor-parallel size is the experiment's
`evaluation.n_gpus` (else the config's; tgpo.config.evaluation_setting), the GPUs its job asks for.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from tgpo import config as tgpo_config
from tgpo.results.layout import ResultsLayout


def experiment_model(config: Mapping[str, Any], experiment: str, seed: int) -> str:
    spec = config["experiments"][experiment]
    if spec.get("eval_only"):
        return tgpo_config.model_location(config, spec["model"])
    checkpoint = ResultsLayout.of(config).run(experiment, seed).final_checkpoint
    if not checkpoint.exists():
        raise FileNotFoundError(f"experiments.{experiment}: no trained checkpoint at {checkpoint} (train it first)")
    return str(checkpoint)


def benchmark_settings(config: Mapping[str, Any], experiment: str, benchmark: str, model: str = ""):
    """Generation and grading settings of one benchmark for one experiment (eval.protocols)."""
    from eval.protocols import resolve_evaluation

    return resolve_evaluation(config, experiment, benchmark, model)


def benchmark_spec(benchmark: str, settings):
    """The benchmark's spec (eval.benchmarks) under one experiment's resolved settings (`benchmark_settings`)."""
    from eval.benchmarks import get_benchmark

    return get_benchmark(
        benchmark,
        path=settings.path,
        k=settings.k,
        answer_regex=settings.answer_regex,
        template=settings.template,
        max_new_tokens=settings.max_new_tokens,
        shuffle_options=settings.shuffle_options,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config YAML")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, default=None, help="the training seed of the run to evaluate (default 0)")
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds' runs, evaluated one after the other")
    parser.add_argument("--benchmarks", nargs="+", help="only these benchmarks of the config (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="local backend: torch threads")
    parser.add_argument("--grading-workers", type=int, default=1, help="grading processes")


def run(args: argparse.Namespace) -> int:
    if args.seed is not None and args.seeds:
        raise SystemExit("eval-experiment: give --seed or --seeds, not both")
    config = tgpo_config.load_config(args.config)
    if args.experiment not in config["experiments"]:
        raise SystemExit(f"{args.config}: experiments.{args.experiment}: no such experiment")
    unknown = sorted(set(args.benchmarks or []) - set(config["benchmarks"]))
    if unknown:
        raise SystemExit(f"{args.config}: --benchmarks {unknown}: not in `benchmarks` ({sorted(config['benchmarks'])})")
    for seed in args.seeds or [0 if args.seed is None else args.seed]:
        evaluate_run(
            config,
            args.experiment,
            seed,
            threads=args.threads,
            grading_workers=args.grading_workers,
            benchmarks=args.benchmarks,
        )
    return 0


def evaluate_run(
    config: Mapping[str, Any],
    experiment: str,
    seed: int,
    *,
    threads: int,
    grading_workers: int,
    benchmarks: list[str] | None = None,
) -> None:
    """Generate, grade and write every benchmark of the config (or of `benchmarks`) for one experiment x seed.

    A `checkpoint_choice: test` run (App. B.3) has every save evaluated: one saves file per benchmark, with
    column checkpoint_step, from which `choose-checkpoint` (eval.checkpoint_choice) reports the best."""
    from tgpo.config.resolve import checkpoint_choice
    from tgpo.results.io import write_parquet

    wanted = list(benchmarks or config["benchmarks"])
    layout = ResultsLayout.of(config)
    if checkpoint_choice(config, experiment) != "test":
        model = experiment_model(config, experiment, seed)
        for benchmark, frame in evaluate_model(config, experiment, model, wanted, threads, grading_workers):
            write_parquet(layout.eval_file(experiment, seed, benchmark), frame)
        return
    from eval.checkpoint_choice import STEP_COLUMN, evaluated_saves

    run = layout.run(experiment, seed)
    if not run.run_json.is_file():
        raise FileNotFoundError(f"experiments.{experiment}: no finished run at {run.run_json} (train it first)")
    saves = evaluated_saves(json.loads(run.run_json.read_text()), run.final_checkpoint)
    frames: dict[str, list] = {benchmark: [] for benchmark in wanted}
    for step, model in saves.items():
        print(f"{experiment} seed{seed}: save {step} of {list(saves)} (checkpoint_choice test)", flush=True)
        for benchmark, frame in evaluate_model(config, experiment, model, wanted, threads, grading_workers):
            frames[benchmark].append(frame.assign(**{STEP_COLUMN: step}))
    for benchmark, parts in frames.items():
        merged = pd.concat(parts, ignore_index=True)
        merged.attrs = {key: value for key, value in parts[0].attrs.items() if key != "model"} | {
            "models": {str(step): model for step, model in saves.items()}
        }
        write_parquet(layout.saves_eval_file(experiment, seed, benchmark), merged)


def evaluate_model(
    config: Mapping[str, Any],
    experiment: str,
    model: str,
    wanted: list[str],
    threads: int,
    grading_workers: int,
) -> Iterator[tuple[str, Any]]:
    """(benchmark, per-sample frame) for each benchmark in `wanted`, generated by `model` (one engine)."""
    from eval.cli import evaluate
    from eval.generation import make_backend
    from eval.metrics import correctness_matrix, score
    from tgpo.hub import benchmark_source

    evaluation = config.get("evaluation", {})
    backend_name = evaluation.get("backend", "local")
    settings = {benchmark: benchmark_settings(config, experiment, benchmark, model) for benchmark in wanted}
    if backend_name == "vllm":
        context = {settings[benchmark].max_model_len for benchmark in wanted}
        if len(context) > 1:
            raise ValueError(
                f"experiments.{experiment}: one vLLM engine serves every benchmark, but the benchmarks "
                f"resolve to different max_model_len values {sorted(context, key=str)}"
            )
        n_gpus = tgpo_config.evaluation_setting(config, experiment, "n_gpus")
        backend = make_backend(
            "vllm",
            model,
            n_gpus=n_gpus,
            seed=evaluation.get("seed", 0),
            max_model_len=context.pop() if context else None,
        )
    else:
        backend = make_backend("local", model, threads=threads)
    for benchmark in wanted:
        resolved = settings[benchmark]
        spec = benchmark_spec(benchmark, resolved)
        local = benchmark_source(config, benchmark)
        if local:  # the pinned hub data set's snapshot (tgpo.hub): no network in the job
            spec = replace(spec, hub_id=local)
        frame, stats = evaluate(
            spec,
            backend,
            model=model,
            template=resolved.template,
            temperature=resolved.temperature,
            top_p=resolved.top_p,
            max_new_tokens=resolved.max_new_tokens,
            seed=evaluation.get("seed", 0),
            grader=resolved.grader,
            protocol=resolved.protocol,
            grading_workers=grading_workers,
            progress=False,
        )
        value = score(correctness_matrix(frame, source=f"{experiment} {benchmark}"))
        print(
            f"{experiment} {model} {benchmark}: {spec.metric_name} = {value:.2f} "
            f"({frame.attrs['n_problems']} problems, {stats.timeouts} grading timeouts)",
            flush=True,
        )
        yield benchmark, frame
