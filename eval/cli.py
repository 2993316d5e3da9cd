"""Verb `eval`: sample k responses per problem of one benchmark from one model, grade them, write a parquet.

    python -m tgpo eval --model <dir | hub id> --benchmark <name> [--protocol authors|suite]
        [--path <local file>] [--k K] [--answer-regex RE] [--template NAME] [--max-new-tokens N]
        [--temperature T] [--top-p P] [--max-model-len L] --seed S --backend local|vllm
        --out results/<name>/eval/<experiment>/seed<S>/<benchmark>.parquet

`--protocol` (eval.protocols) sets the template, generation settings and grader; the other options
override it. `--path`, `--k`, `--answer-regex`, `--template` and `--max-new-tokens` are the keys of a
config's `benchmarks:` entry (they override the registry); the others are the config's `evaluation:` keys. The
output has one row per sample (prompt_id, sample_index, response, finish_reason, n_tokens,
extracted_answer, correct, timed_out); its parquet metadata records the benchmark, domain, metric and
every generation setting, which `summarize` reads.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pandas as pd

from eval.benchmarks import BenchmarkSpec, Problem, get_benchmark, load_problems
from eval.grading import COMBINE_RULES, GRADERS, GradeRequest
from eval.grading_pool import DEFAULT_TIMEOUT_S, GradingStats, grade_all
from eval.metrics import correctness_matrix, score
from eval.prompts import RELEASED_CHECKPOINT_TEMPLATES, build_prompt, template_for_model, think_opened
from eval.protocols import DEFAULT_PROTOCOL, PROTOCOLS

DEFAULT_MAX_NEW_TOKENS = 8192  # helldog-star/TGPO eval_scripts/generate_vllm.py (max_tokens)
SAMPLE_COLUMNS = [
    "prompt_id",
    "sample_index",
    "response",
    "finish_reason",
    "n_tokens",
    "extracted_answer",
    "correct",
    "timed_out",
]


def grade_request(
    problem: Problem, response: str, spec: BenchmarkSpec, combine: str, grader: str = "suite", opened: bool = True
) -> GradeRequest:
    """How a response to `problem` is graded: the benchmark's regex if it has one, else maths or MC, by
    `grader` ("suite" | "authors"; `opened`: its prompt ended with `<think>\\n`)."""
    if spec.answer_regex:
        return GradeRequest(response=response, gold=problem.answer, kind="regex", answer_regex=spec.answer_regex)
    if problem.is_choice:
        return GradeRequest(
            response=response,
            gold=problem.gold_letter or problem.answer,
            kind="choice",
            grader=grader,
            think_opened=opened,
        )
    return GradeRequest(
        response=response, gold=problem.answer, kind="math", combine=combine, grader=grader, think_opened=opened
    )


def evaluate(
    spec: BenchmarkSpec,
    backend: Any,
    *,
    model: str,
    template: str | None,
    temperature: float,
    top_p: float,
    max_new_tokens: int | None,
    seed: int,
    shuffle_seed: int = 0,
    limit: int | None = None,
    combine: str = "any",
    grader: str = "suite",
    protocol: str = DEFAULT_PROTOCOL,
    grading_workers: int | None = None,
    grading_timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> tuple[pd.DataFrame, GradingStats]:
    """Generate and grade one benchmark; returns (per-sample frame with metadata in `.attrs`, grading stats).
    `protocol` is recorded; the settings it resolved to are the other arguments."""
    if grader not in GRADERS:
        raise ValueError(f"unknown grader {grader!r}; expected one of {GRADERS}")
    problems = load_problems(spec, shuffle_seed=shuffle_seed, limit=limit)
    template_name = template_for_model(model, template or spec.template)
    new_tokens = max_new_tokens or spec.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
    prompts = [build_prompt(problem, template_name, backend.tokenizer) for problem in problems]
    started = time.perf_counter()
    generations = backend.generate(
        prompts, n=spec.k, temperature=temperature, top_p=top_p, max_new_tokens=new_tokens, seed=seed
    )
    generation_s = time.perf_counter() - started
    if len(generations) != len(problems) * spec.k:
        raise RuntimeError(f"backend returned {len(generations)} generations for {len(problems)} prompts x k={spec.k}")
    opened = [think_opened(prompt) for prompt in prompts]
    requests = [
        grade_request(problems[g.prompt_index], g.text, spec, combine, grader, opened[g.prompt_index])
        for g in generations
    ]
    results, stats = grade_all(requests, workers=grading_workers, timeout_s=grading_timeout_s, progress=progress)
    frame = pd.DataFrame(
        [
            {
                "prompt_id": problems[g.prompt_index].problem_id,
                "sample_index": g.sample_index,
                "response": g.text,
                "finish_reason": g.finish_reason,
                "n_tokens": g.n_tokens,
                "extracted_answer": r.extracted_answer,
                "correct": bool(r.correct),
                "timed_out": bool(r.timed_out),
            }
            for g, r in zip(generations, results)
        ],
        columns=SAMPLE_COLUMNS,
    )
    frame.attrs = {
        "benchmark": spec.name,
        "domain": spec.domain,
        "metric": spec.metric_name,
        "k": spec.k,
        "model": str(model),
        "template": template_name,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": new_tokens,
        "seed": seed,
        "shuffle_seed": shuffle_seed,
        "combine": combine,
        "protocol": protocol,
        "grader": grader,
        "think_opened": sum(opened) / max(len(opened), 1),
        "answer_regex": spec.answer_regex or "",
        "source": spec.path or spec.hub_id,
        "n_problems": len(problems),
        "grading_timeouts": stats.timeouts,
        "grading_errors": stats.errors,
        "generation_s": round(generation_s, 3),
    }
    return frame, stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint folder or hub id")
    parser.add_argument("--benchmark", required=True, help="registry name (eval.benchmarks.REGISTRY)")
    parser.add_argument("--path", default=None, help="local JSONL / parquet replacing the hub dataset")
    parser.add_argument(
        "--k",
        "--n",
        dest="k",
        type=int,
        default=None,
        help="samples per problem (default: the benchmark's, 32 for avg@32 sets, else 1)",
    )
    parser.add_argument("--answer-regex", default=None, help="regex whose first group is the answer")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default=DEFAULT_PROTOCOL,
        help="template + generation settings + grader (eval.protocols); options below override it",
    )
    parser.add_argument(
        "--template", default=None, help="prompt template (authors, tgpo, tgpo_chat, qwen, qwen_math, prime, raw, auto)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--max-model-len", type=int, default=None, help="vllm: context length (prompt + response)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--shuffle-seed", type=int, default=0, help="multiple-choice option shuffling seed")
    parser.add_argument("--backend", choices=["local", "vllm"], default="local")
    parser.add_argument("--n-gpus", type=int, default=None, help="vllm: tensor-parallel GPUs (default all)")
    parser.add_argument("--threads", type=int, default=1, help="local: torch threads")
    parser.add_argument("--batch-size", type=int, default=None, help="local: prompts per generate call")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems (smoke tests)")
    parser.add_argument(
        "--combine",
        choices=COMBINE_RULES,
        default="any",
        help="maths: math_verify OR boxed ('any', the paper's setting), or one of them",
    )
    parser.add_argument("--grading-workers", type=int, default=None, help="grading processes (default: CPUs)")
    parser.add_argument("--grading-timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per response")
    parser.add_argument("--out", required=True, type=Path, help="per-sample parquet")


def run(args: argparse.Namespace) -> int:
    from eval.generation import make_backend
    from tgpo.results.io import write_parquet

    protocol = PROTOCOLS[args.protocol]
    released = RELEASED_CHECKPOINT_TEMPLATES.get(str(args.model))
    template = args.template or released or (None if protocol.template == "auto" else protocol.template)
    max_model_len = args.max_model_len or protocol.max_model_len
    spec = get_benchmark(
        args.benchmark,
        path=args.path,
        k=args.k,
        answer_regex=args.answer_regex,
        template=args.template,
        max_new_tokens=args.max_new_tokens,
        shuffle_options=protocol.shuffle_options.get(args.benchmark),
    )
    if args.backend == "vllm":
        backend = make_backend("vllm", args.model, n_gpus=args.n_gpus, seed=args.seed, max_model_len=max_model_len)
    else:
        backend = make_backend("local", args.model, threads=args.threads, batch_size=args.batch_size)
    frame, stats = evaluate(
        spec,
        backend,
        model=args.model,
        template=template,
        temperature=protocol.temperature if args.temperature is None else args.temperature,
        top_p=protocol.top_p if args.top_p is None else args.top_p,
        max_new_tokens=args.max_new_tokens or protocol.max_new_tokens,
        seed=args.seed,
        shuffle_seed=args.shuffle_seed,
        limit=args.limit,
        combine=args.combine,
        grader=protocol.grader,
        protocol=protocol.name,
        grading_workers=args.grading_workers,
        grading_timeout_s=args.grading_timeout,
    )
    write_parquet(args.out, frame)
    value = score(correctness_matrix(frame, source=str(args.out)))
    print(
        f"{spec.name}: {spec.metric_name} = {value:.2f} on {frame.attrs['n_problems']} problems "
        f"({len(frame)} samples, {stats.timeouts} grading timeouts) -> {args.out}"
    )
    return 0
