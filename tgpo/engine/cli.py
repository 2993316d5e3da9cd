"""`python -m tgpo train`: train one experiment with the local engine.

Either from a config (`--config <yaml> --experiment <name> --seed <k>`, resolved by
`tgpo.config.resolve.resolve_experiment`) or from a RunSpec JSON file (`--run-spec <json>`).
`--seeds 0 1 2` trains several seeds one after the other in one process, and `--evaluate` evaluates
each on every benchmark of the config right after its training (`eval.experiment.evaluate_run`): the
miniature's pipeline does both, so that a run of seconds does not pay for starting Python and importing
transformers again.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="experiment config YAML (with --experiment and --seed)")
    parser.add_argument("--experiment", help="experiment name in the config")
    parser.add_argument("--seed", type=int, help="seed (one of the experiment's seeds)")
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds, trained one after the other")
    parser.add_argument("--run-spec", dest="run_spec", help="a RunSpec JSON file (instead of --config)")
    parser.add_argument("--output-dir", dest="output_dir", help="override the run's output directory")
    parser.add_argument(
        "--stop-after-step",
        dest="stop_after_step",
        type=int,
        default=None,
        help="stop after this step without the final checkpoint (as if killed; for tests)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar / step lines")
    parser.add_argument(
        "--evaluate", action="store_true", help="after each seed's training, evaluate it on every benchmark of --config"
    )


def resolve_specs(args: argparse.Namespace) -> tuple[dict | None, list]:
    """(the loaded config, None with --run-spec; the RunSpec of every run to train, in order)."""
    from tgpo.engine.run_spec import RunSpec

    if args.seed is not None and args.seeds:
        raise SystemExit("train: give --seed or --seeds, not both")
    if args.run_spec:
        if args.config or args.experiment or args.seeds:
            raise SystemExit("train: give either --run-spec or --config/--experiment/--seed, not both")
        config, specs = None, [RunSpec.from_json(args.run_spec)]
    else:
        seeds = args.seeds or ([args.seed] if args.seed is not None else [])
        missing = [
            flag
            for flag, value in (("--config", args.config), ("--experiment", args.experiment), ("--seed", seeds or None))
            if value is None
        ]
        if missing:
            raise SystemExit(f"train: missing {', '.join(missing)} (or give --run-spec <json>)")
        from tgpo.config import load_config
        from tgpo.config.resolve import resolve_experiment

        config = load_config(args.config)
        specs = [RunSpec.from_resolved(resolve_experiment(config, args.experiment, seed)) for seed in seeds]
    if args.output_dir:
        if len(specs) > 1:
            raise SystemExit("train: --output-dir names one run's folder; give one --seed with it")
        from pathlib import Path

        specs[0].output_dir = Path(args.output_dir)
    return config, specs


def run(args: argparse.Namespace) -> int:
    from tgpo.engine.trainer import TrainingDiverged, train

    if args.evaluate and (not args.config or args.output_dir or args.stop_after_step is not None):
        raise SystemExit(
            "train: --evaluate needs --config, and evaluates the config's own run folders "
            "(not with --output-dir or --stop-after-step)"
        )
    config, specs = resolve_specs(args)
    for spec in specs:
        try:
            result = train(spec, stop_after_step=args.stop_after_step, progress=args.progress)
        except TrainingDiverged as error:
            print(f"train: {error}", file=sys.stderr)
            return 1
        where = (
            result.final_checkpoint
            if result.final_checkpoint is not None
            else f"stopped after step {result.steps_done}"
        )
        print(f"train: {spec.experiment} seed {spec.seed}: {result.steps_done} steps; {where}", flush=True)
        if args.evaluate:
            from eval.experiment import evaluate_run

            evaluate_run(config, spec.experiment, spec.seed, threads=1, grading_workers=1)
    return 0
