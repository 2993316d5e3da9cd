"""Verb `lm-eval-check`: lm-evaluation-harness on the same model and problems, next to our own score.

An independent implementation of the generate-then-grade loop catches mistakes in ours (prompt
assembly, stop handling, letter extraction). We write our loader's problems (shuffled options, the prompt
our template builds) to a JSONL, fill the task templates of `eval/lm_eval_tasks/` (dataset_path json +
data_files) and run `lm_eval.simple_evaluate` on

    <benchmark>_generative      generate_until, regex filter on the last \\boxed{X}, exact_match
    <benchmark>_loglikelihood   multiple_choice on the option texts (lm-eval's arc_challenge style), acc

Our side runs `eval.cli.evaluate` with the same greedy (or sampled) settings. The report gives both
scores and, per problem, how often our extracted letter equals lm-eval's filtered one. Multiple-choice
benchmarks only (arc_c; gpqa_diamond and mmlu_pro where the user has the data). No network: models and
data come from local paths.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from eval.benchmarks import BenchmarkSpec, Problem, get_benchmark, load_problems
from eval.prompts import build_prompt, template_for_model

TASK_TEMPLATES = Path(__file__).resolve().parent / "lm_eval_tasks"


def write_documents(problems: list[Problem], prompts: list[str], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for problem, prompt in zip(problems, prompts):
            document = {
                "problem_id": problem.problem_id,
                "prompt": prompt,
                "question": problem.question,
                "options": list(problem.options),
                "gold_letter": problem.gold_letter,
                "gold_index": problem.option_labels.index(problem.gold_letter),
            }
            handle.write(json.dumps(document) + "\n")


def write_tasks(
    spec: BenchmarkSpec, data_file: Path, task_dir: Path, *, temperature: float, max_new_tokens: int
) -> dict[str, str]:
    """Fill the YAML templates into `task_dir`; returns {kind: task name}."""
    names = {}
    for kind in ("generative", "loglikelihood"):
        name = f"tgpo_check_{spec.name}_{kind}"
        text = (TASK_TEMPLATES / f"{kind}.yaml").read_text()
        filled = (
            text.replace("__TASK_NAME__", name)
            .replace("__DATA_FILE__", str(data_file))
            .replace("__DO_SAMPLE__", "true" if temperature > 0 else "false")
            .replace("__TEMPERATURE__", repr(float(temperature)))
            .replace("__MAX_GEN_TOKS__", str(int(max_new_tokens)))
        )
        (task_dir / f"{name}.yaml").write_text(filled)
        names[kind] = name
    return names


def run_lm_eval(
    model: str, task_dir: Path, tasks: list[str], *, lm_eval_model: str, device: str, batch_size: int, seed: int
) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    if lm_eval_model == "hf":
        model_args = f"pretrained={model},dtype=float32,device={device}"
    else:
        model_args = f"pretrained={model},dtype=bfloat16"
    return lm_eval.simple_evaluate(
        model=lm_eval_model,
        model_args=model_args,
        tasks=tasks,
        task_manager=TaskManager(include_path=str(task_dir)),
        batch_size=batch_size,
        log_samples=True,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )


def metric(results: dict[str, Any], task: str, name: str) -> float:
    """A metric of one task from simple_evaluate's results, in percent ("exact_match,boxed_letter", ...)."""
    values = results["results"][task]
    matches = [value for key, value in values.items() if key.split(",")[0] == name and "stderr" not in key]
    if not matches:
        raise KeyError(f"lm-eval task {task!r} reports no metric {name!r}; it reports {sorted(values)}")
    return 100.0 * float(matches[0])


def lm_eval_letters(results: dict[str, Any], task: str) -> dict[str, str]:
    """problem_id -> the letter lm-eval's filter extracted ("" when none)."""
    letters = {}
    for sample in results["samples"][task]:
        filtered = sample["filtered_resps"]
        letter = filtered[0] if isinstance(filtered, list) else filtered
        letters[sample["doc"]["problem_id"]] = "" if letter == "[invalid]" else str(letter)
    return letters


def check(args: argparse.Namespace) -> dict[str, Any]:
    from eval.cli import evaluate
    from eval.generation import make_backend
    from eval.metrics import correctness_matrix, score

    spec = get_benchmark(args.benchmark, path=args.path, k=1, template=args.template)
    if spec.kind != "choice":
        raise ValueError(f"lm-eval-check supports multiple-choice benchmarks; {spec.name!r} is {spec.kind}")
    problems = load_problems(spec, shuffle_seed=args.shuffle_seed, limit=args.limit)
    if any(not problem.options for problem in problems):
        raise ValueError(
            f"{spec.path}: lm-eval-check needs the options as a list (a canonical or hub-layout file); "
            "a LUFFY evaluation file carries them inside the question text"
        )
    options: dict[str, Any] = {"threads": args.threads} if args.backend == "local" else {"seed": args.seed}
    backend = make_backend(args.backend, args.model, **options)
    template = template_for_model(args.model, args.template)
    ours, _ = evaluate(
        spec,
        backend,
        model=args.model,
        template=template,
        temperature=args.temperature,
        top_p=1.0,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        shuffle_seed=args.shuffle_seed,
        limit=args.limit,
        grading_workers=args.grading_workers,
        progress=False,
    )
    prompts = [build_prompt(problem, template, backend.tokenizer) for problem in problems]
    with tempfile.TemporaryDirectory(prefix="tgpo_lm_eval_") as scratch:
        scratch_dir = Path(scratch)
        data_file = scratch_dir / f"{spec.name}.jsonl"
        write_documents(problems, prompts, data_file)
        tasks = write_tasks(
            spec, data_file, scratch_dir, temperature=args.temperature, max_new_tokens=args.max_new_tokens
        )
        results = run_lm_eval(
            args.model,
            scratch_dir,
            list(tasks.values()),
            lm_eval_model=args.lm_eval_model,
            device=args.device,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    theirs = lm_eval_letters(results, tasks["generative"])
    our_letters = dict(zip(ours["prompt_id"], ours["extracted_answer"]))
    agreement = sum(theirs.get(problem_id) == letter for problem_id, letter in our_letters.items()) / len(our_letters)
    return {
        "benchmark": spec.name,
        "model": str(args.model),
        "template": template,
        "n_problems": len(problems),
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "ours_pass@1": score(correctness_matrix(ours)),
        "lm_eval_generative_exact_match": metric(results, tasks["generative"], "exact_match"),
        "lm_eval_loglikelihood_acc": metric(results, tasks["loglikelihood"], "acc"),
        "lm_eval_loglikelihood_acc_norm": metric(results, tasks["loglikelihood"], "acc_norm"),
        "extracted_letter_agreement": 100.0 * agreement,
        "lm_eval_n_documents": len(results["samples"][tasks["generative"]]),
        "lm_eval_version": getattr(__import__("lm_eval"), "__version__", "unknown"),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint folder (lm-eval loads it with --lm-eval-model)")
    parser.add_argument("--benchmark", default="arc_c", help="arc_c | gpqa_diamond | mmlu_pro")
    parser.add_argument("--path", default=None, help="local JSONL / parquet of the benchmark")
    parser.add_argument("--template", default=None, help="prompt template (default auto)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy on both sides (default)")
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shuffle-seed", type=int, default=0)
    parser.add_argument("--backend", choices=["local", "vllm"], default="local", help="our generation backend")
    parser.add_argument("--lm-eval-model", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--device", default="cpu", help="hf: torch device")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grading-workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON here")


def run(args: argparse.Namespace) -> int:
    report = check(args)
    if args.out:
        from tgpo.results.io import write_json

        write_json(args.out, report)
    width = max(len(key) for key in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value:.2f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0
