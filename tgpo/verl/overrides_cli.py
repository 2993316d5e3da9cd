"""`python -m tgpo verl-overrides --config config/paper-7b.yaml --experiment tgpo_annealing --seed 0`:
print the verl Hydra overrides of one experiment, one per line (for `python -m verl.trainer.main_ppo`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config YAML, e.g. config/paper-7b.yaml")
    parser.add_argument("--experiment", required=True, help="an experiment of that config")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sft", action="store_true", help="overrides for verl's SFT trainer (verl.trainer.sft_trainer) instead"
    )


def run(args: argparse.Namespace) -> int:
    from tgpo.config import load_config
    from tgpo.verl.translate import experiment_overrides, sft_overrides

    config = load_config(args.config)
    translate = sft_overrides if args.sft else experiment_overrides
    print("\n".join(translate(config, args.experiment, args.seed)))
    return 0
