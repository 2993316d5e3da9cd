"""Verb `sweep`: the miniature's tuning rule, one sweep per method on the validation split.

    python -m tgpo sweep --config config/default.yaml [--jobs 2] [--methods tgpo kdrl ...]

Every method trains with the shared settings of the config's `training:` block (steps, batch, ...).
Two stages, each ONE sweep per method over a fixed grid (SWEEPS), on the method's Table 1 experiment
(Student-L, the cross-family teacher, seed 0), scored by the mean accuracy on the world's validation
split (`validation.parquet`: held-out problems of the training mix, in no benchmark and no pretraining
corpus; VALIDATION_SAMPLES samples per problem at the evaluation temperature):
  1. the shared RL learning rate: GRPO++ (no teacher, so no method's verdict is tuned into it);
  2. at that learning rate, each method's own coefficient (SFT: its learning rate).
The best value (ties: the smaller) is the one `config/default.yaml` uses for every student, teacher
and seed. Benchmarks are never looked at. Derived settings follow the paper's ratios, not a sweep:
TGPO-annealing's delta brings w to 0 at 2/3 of training (paper: step 200 of 300), and Figure 5's
schedules are defined from it (Sec. 5.3).

Writes <results>/sweep/sweep.json (every value's score) and prints a table; run folders go to
<results>/sweep/runs/<experiment>-<value>/ (a rerun reuses finished ones).
"""

from __future__ import annotations

import argparse
import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# experiment of the config -> (hyperparameter, grid). The grid spans a factor of 30 in steps of ~3.
SWEEPS: dict[str, tuple[str, tuple[float, ...]]] = {
    "grpo_pp": ("lr", (3.0e-5, 1.0e-4, 3.0e-4)),  # stage 1: the shared RL learning rate
    "tgpo": ("w_init", (0.03, 0.1, 0.3, 1.0)),
    "tgpo_annealing": ("w_init", (0.03, 0.1, 0.3, 1.0)),
    "kdrl": ("rkl_coef", (0.03, 0.1, 0.3, 1.0)),
    "tgpo_r": ("shaping_lambda", (0.03, 0.1, 0.3, 1.0)),
    "sft": ("lr", (3.0e-5, 1.0e-4, 3.0e-4)),
}
ANNEAL_FRACTION = 2 / 3  # TGPO-annealing: w reaches 0 at this fraction of training (paper: 200 of 300 steps)
VALIDATION_SAMPLES = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="config/default.yaml")
    parser.add_argument(
        "--methods", nargs="+", default=list(SWEEPS), choices=list(SWEEPS), help="experiments to sweep (default: all)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one thread each)")


def annealing_delta(w_init: float, steps: int) -> float:
    """The per-step decrease that brings w_init to 0 at ANNEAL_FRACTION of `steps`."""
    return w_init / (ANNEAL_FRACTION * steps)


def sweep_points(config: dict, experiments: list[str]) -> list[tuple[str, str, float]]:
    points = []
    for experiment in experiments:
        if experiment not in config["experiments"]:
            raise SystemExit(f"sweep: experiments.{experiment} is not in the config")
        name, grid = SWEEPS[experiment]
        points += [(experiment, name, value) for value in grid]
    return points


def run_point(config_path: str, experiment: str, name: str, value: float, shared_lr: float | None = None) -> dict:
    """Train one experiment with one value (seed 0; `shared_lr`: the stage-1 learning rate) and score it
    on the validation split."""
    from tgpo.config import load_config
    from tgpo.config.resolve import resolve_experiment
    from tgpo.engine.run_spec import RunSpec
    from tgpo.engine.trainer import train
    from tgpo.numerics import pin_torch
    from tgpo.results.layout import ResultsLayout

    pin_torch(1)
    config = load_config(config_path)
    spec = RunSpec.from_resolved(resolve_experiment(config, experiment, 0))
    if name == "lr":
        spec.lr = value
    else:
        if shared_lr is not None:
            spec.lr = shared_lr
        spec.hparams = {**spec.hparams, name: value}
        if experiment == "tgpo_annealing":
            spec.hparams["delta"] = annealing_delta(value, spec.steps)
    spec.output_dir = ResultsLayout.of(config).root / "sweep" / "runs" / f"{experiment}-{value:g}"
    result = train(spec, progress=False)
    world = Path(spec.train_data).parent
    evaluation = config["evaluation"]
    accuracy = validation_accuracy(
        result.final_checkpoint,
        world / "validation.parquet",
        temperature=float(evaluation.get("temperature", 0.6)),
        max_new_tokens=int(evaluation["max_new_tokens"]),
    )
    return {
        "experiment": experiment,
        "hyperparameter": name,
        "value": value,
        "validation_accuracy": accuracy,
        "hparams": spec.hparams,
        "lr": spec.lr,
    }


def validation_accuracy(checkpoint: Path, validation: Path, *, temperature: float, max_new_tokens: int) -> float:
    """Mean reward of VALIDATION_SAMPLES samples per validation problem (the training verifier)."""
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tgpo.engine.sampling import sample
    from tgpo.mini.task import reward

    table = pd.read_parquet(validation)
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    rollouts = sample(
        model,
        tokenizer,
        table["prompt"].tolist(),
        VALIDATION_SAMPLES,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=0,
        batch_size=64,
    )
    answers = table["answer"].tolist()
    return sum(reward(r.response_text, answers[r.prompt_index]) for r in rollouts) / len(rollouts)


def best_values(results: list[dict]) -> dict[str, dict]:
    """experiment -> its best result (ties: the smaller value)."""
    best: dict[str, dict] = {}
    for result in sorted(results, key=lambda r: (r["experiment"], r["value"])):
        current = best.get(result["experiment"])
        if current is None or result["validation_accuracy"] > current["validation_accuracy"]:
            best[result["experiment"]] = result
    return best


def run(args: argparse.Namespace) -> int:
    from tgpo.config import load_config
    from tgpo.results.io import write_json
    from tgpo.results.layout import ResultsLayout

    config = load_config(args.config)
    stages = [
        [name for name in args.methods if name == "grpo_pp"],
        [name for name in args.methods if name != "grpo_pp"],
    ]
    results: list[dict] = []
    shared_lr = None
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for stage in stages:
            points = sweep_points(config, stage)
            if not points:
                continue
            print(
                f"sweep: {len(points)} runs ({', '.join(stage)}), {args.jobs} at a time"
                + (f", shared lr {shared_lr:g}" if shared_lr is not None else ""),
                flush=True,
            )
            futures = [pool.submit(run_point, args.config, *point, shared_lr) for point in points]
            for future in futures:
                result = future.result()
                results.append(result)
                print(
                    f"  {result['experiment']:<16} {result['hyperparameter']}={result['value']:<8g} "
                    f"validation accuracy {result['validation_accuracy']:.3f}",
                    flush=True,
                )
            if stage == ["grpo_pp"]:
                shared_lr = best_values(results)["grpo_pp"]["value"]
    best = best_values(results)
    out = ResultsLayout.of(config).root / "sweep" / "sweep.json"
    write_json(
        out,
        {
            "rule": __doc__.split("\n\n")[2],
            "results": results,
            "best": {
                name: {
                    "hyperparameter": r["hyperparameter"],
                    "value": r["value"],
                    "validation_accuracy": r["validation_accuracy"],
                }
                for name, r in best.items()
            },
        },
    )
    print(
        "best:",
        ", ".join(
            f"{name} {r['hyperparameter']}={r['value']:g} ({r['validation_accuracy']:.3f})" for name, r in best.items()
        ),
    )
    print(f"wrote {out}")
    return 0 if all(math.isfinite(r["validation_accuracy"]) for r in results) else 1
