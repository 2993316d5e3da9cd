"""Verb `eval-experiment`: evaluate one experiment x seed of a config on every benchmark of the config.

    python -m tgpo eval-experiment --config config/default.yaml --experiment tgpo --seed 0
    python -m tgpo eval-experiment --config config/default.yaml --experiment tgpo --seeds 0 1 2

The model is loaded once (trained experiments: `results/<name>/runs/<experiment>/seed<k>/checkpoint`;
eval-only ones: their model key or hub id) and each benchmark is generated and graded with
`eval.cli.evaluate`, exactly as `python -m tgpo eval` does for one benchmark. Settings: the config's
`evaluation:` block, overridden per benchmark by its `benchmarks:` entry and per experiment by the
experiment's `evaluation:` block. Each benchmark's parquet is written atomically as soon as it is done.
`--seeds` evaluates several seeds' runs one after the other in one process. `--benchmarks` restricts the
run to some benchmarks (the cluster pipeline runs one job per benchmark, so that a retry redoes only the
benchmarks whose file is missing). The vLLM backend's tensor-parallel size is the experiment's
`evaluation.n_gpus` (else the config's; tgpo.config.evaluation_setting), the GPUs its job asks for.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any, Mapping

from tgpo import config as tgpo_config
from tgpo.layout import ResultsLayout


def experiment_model(config: Mapping[str, Any], experiment: str, seed: int) -> str:
    spec = config["experiments"][experiment]
    if spec.get("eval_only"):
        return tgpo_config.model_location(config, spec["model"])
    checkpoint = ResultsLayout.of(config).run(experiment, seed).final_checkpoint
    if not checkpoint.exists():
        raise FileNotFoundError(f"experiments.{experiment}: no trained checkpoint at {checkpoint} (train it first)")
    return str(checkpoint)


def benchmark_settings(config: Mapping[str, Any], experiment: str, benchmark: str) -> dict:
    """Generation settings of one benchmark for one experiment (experiment > benchmark > evaluation)."""
    evaluation = dict(config.get("evaluation", {}))
    entry = dict(config["benchmarks"][benchmark])
    own = config["experiments"][experiment].get("evaluation", {})
    return {
        "path": entry.get("path"),
        "k": entry.get("k"),
        "answer_regex": entry.get("answer_regex", evaluation.get("answer_regex")),
        "template": own.get("template", entry.get("template", evaluation.get("template"))),
        "max_new_tokens": own.get("max_new_tokens", entry.get("max_new_tokens", evaluation.get("max_new_tokens"))),
        "shuffle_options": entry.get("shuffle_options"),
        "temperature": evaluation.get("temperature", 0.6),
        "top_p": evaluation.get("top_p", 1.0),
    }


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
        evaluate_run(config, args.experiment, seed, threads=args.threads, grading_workers=args.grading_workers,
                     benchmarks=args.benchmarks)  # fmt: skip
    return 0


def evaluate_run(config: Mapping[str, Any], experiment: str, seed: int, *, threads: int, grading_workers: int,
                 benchmarks: list[str] | None = None) -> None:
    """Generate, grade and write every benchmark of the config (or of `benchmarks`) for one experiment x seed."""
    from eval.benchmarks import get_benchmark
    from eval.cli import evaluate
    from eval.generation import make_backend
    from eval.metrics import correctness_matrix, score
    from tgpo.hub import benchmark_source
    from tgpo.io import write_parquet

    model = experiment_model(config, experiment, seed)
    evaluation = config.get("evaluation", {})
    backend_name = evaluation.get("backend", "local")
    if backend_name == "vllm":
        n_gpus = tgpo_config.evaluation_setting(config, experiment, "n_gpus")
        backend = make_backend("vllm", model, n_gpus=n_gpus, seed=evaluation.get("seed", 0))
    else:
        backend = make_backend("local", model, threads=threads)
    layout = ResultsLayout.of(config)
    for benchmark in benchmarks or config["benchmarks"]:
        settings = benchmark_settings(config, experiment, benchmark)
        spec = get_benchmark(benchmark, path=settings["path"], k=settings["k"], answer_regex=settings["answer_regex"],
                             template=settings["template"], max_new_tokens=settings["max_new_tokens"],
                             shuffle_options=settings["shuffle_options"])
        local = benchmark_source(config, benchmark)
        if local:  # the pinned hub data set's snapshot (tgpo.hub): no network in the job
            spec = replace(spec, hub_id=local)
        frame, stats = evaluate(spec, backend, model=model, template=settings["template"],
                                temperature=settings["temperature"], top_p=settings["top_p"],
                                max_new_tokens=settings["max_new_tokens"], seed=evaluation.get("seed", 0),
                                grading_workers=grading_workers, progress=False)
        out = layout.eval_file(experiment, seed, benchmark)
        write_parquet(out, frame)
        value = score(correctness_matrix(frame, source=str(out)))
        print(f"{experiment} seed{seed} {benchmark}: {spec.metric_name} = {value:.2f} "
              f"({frame.attrs['n_problems']} problems, {stats.timeouts} grading timeouts)", flush=True)
