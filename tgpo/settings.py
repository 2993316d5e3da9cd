"""Every setting a config may give an experiment, in one table: name, JSON type, default, meaning.

`HPARAMS` are the hyper-parameters (a config's or an experiment's `hparams:`); their defaults are each
method's (`MethodSpec.defaults`), so the table gives none. `TRAINING` are the engine settings
(`training:`), with the default used when nothing sets them (None: no default; the engine that needs
the setting says so). `training:` may also set the hyper-parameters of `HPARAMS_IN_TRAINING`.

Derived from this table, nowhere else written down: `tgpo.methods.spec.HPARAM_NAMES`,
`tgpo.config.resolve.TRAINING_DEFAULTS`, the `$defs.hparams` and `$defs.training` of the config schema
(tgpo/config/schema.json) and the settings tables of config/README.md. `python -m tgpo.settings --write`
rewrites those two files from the table; tests/test_settings.py checks that they match it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "tgpo" / "config" / "schema.json"
README_PATH = ROOT / "config" / "README.md"
TABLES_BEGIN = "<!-- settings tables: python -m tgpo.settings --write -->"
TABLES_END = "<!-- end of settings tables -->"


@dataclass(frozen=True)
class Setting:
    name: str
    schema: Mapping[str, Any]  # JSON schema of the value
    default: Any  # TRAINING: the engine default (None: none); HPARAMS: unused (the method's)
    help: str


def _number(**bounds: float) -> dict[str, Any]:
    return {"type": "number", **bounds}


def _integer(minimum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum}


ESTIMATORS = {"enum": ["k1", "k2", "k3"]}

HPARAMS: tuple[Setting, ...] = (
    Setting("clip_ratio_low", _number(minimum=0), None, "PPO clip (Eq. 4): the ratio's lower bound is 1 - this"),
    Setting("clip_ratio_high", _number(minimum=0), None, "PPO clip (Eq. 4): the ratio's upper bound is 1 + this"),
    Setting(
        "clip_ratio_c", _number(exclusiveMinimum=1), None, "dual clip of negative advantages (verl's clip_ratio_c)"
    ),
    Setting("entropy_coef", _number(minimum=0), None, "weight of the entropy bonus"),
    Setting("kl_coef", _number(minimum=0), None, "weight of the KL-to-reference loss (0: no reference model)"),
    Setting("kl_estimator", ESTIMATORS, None, "estimator of the KL to the reference"),
    Setting("w_init", _number(minimum=0), None, "TGPO: guidance weight at step 0 (Eq. 6)"),
    Setting(
        "delta",
        _number(minimum=0),
        None,
        "per-step decrease of the guidance weight, w_t = max(w_init - delta * t, 0), or of TGPO_R's lambda; "
        "0: constant",
    ),
    Setting("shaping_lambda", _number(minimum=0), None, "TGPO_R: the shaping coefficient lambda at step 0 (Eq. 5)"),
    Setting(
        "shaping_signal",
        {"enum": ["log_prob", "prob"]},
        None,
        "TGPO_R: shape with the teacher token's probability (the authors' script) or its log-probability (Eq. 5)",
    ),
    Setting("rkl_coef", _number(minimum=0), None, "KDRL: weight beta of the reverse-KL loss"),
    Setting("rkl_estimator", ESTIMATORS, None, "KDRL: estimator of KL(student ‖ teacher)"),
    Setting("reward_mask_correct", {"type": "boolean"}, None, "KDRL: no reverse-KL term on correct responses"),
    Setting("luffy_gamma", _number(exclusiveMinimum=0), None, "LUFFY: off-policy shaping f(p) = p / (p + gamma)"),
    Setting("off_policy_per_group", _integer(1), None, "LUFFY: teacher traces per group of rollouts"),
    Setting("prime_beta", _number(exclusiveMinimum=0), None, "PRIME: implicit reward beta * (log pi_phi - log pi_ref)"),
    Setting("prime_coef", _number(minimum=0), None, "PRIME: weight of the implicit process rewards"),
    Setting("prime_outcome_coef", _number(minimum=0), None, "PRIME: weight of the verifier (outcome) reward"),
    Setting("prime_rm_lr", _number(exclusiveMinimum=0), None, "PRIME: learning rate of the implicit reward model"),
    Setting("prime_accuracy_low", _number(minimum=0, maximum=1), None, "PRIME: lowest group accuracy trained on"),
    Setting("prime_accuracy_high", _number(minimum=0, maximum=1), None, "PRIME: highest group accuracy trained on"),
    Setting("prime_oversample", _integer(1), None, "PRIME: prompts sampled per prompt trained on (before the filter)"),
    Setting(
        "loss_scale_factor",
        _number(exclusiveMinimum=0),
        None,
        "Dr.GRPO / LUFFY: the constant token sums are divided by (verl's loss_scale_factor)",
    ),
    Setting("lr", _number(exclusiveMinimum=0), None, "the policy's learning rate (AdamW), constant after warm-up"),
    Setting("sft_epochs", _integer(1), None, "SFT: epochs over the teacher traces"),
)
HPARAMS_IN_TRAINING = ("lr",)  # hyper-parameters `training:` may set besides TRAINING's

TRAINING: tuple[Setting, ...] = (
    Setting("steps", _integer(1), None, "training steps (rollout batches)"),
    Setting("prompts_per_step", _integer(1), None, "prompts per step"),
    Setting("group_size", _integer(1), None, "rollouts per prompt (the group of Eq. 4's advantage)"),
    Setting("max_new_tokens", _integer(1), None, "response length limit"),
    Setting("micro_batch_size", _integer(1), None, "local engine: sequences per forward pass (verl packs by tokens)"),
    Setting("temperature", _number(exclusiveMinimum=0), 1.0, "rollout sampling temperature (verl's default)"),
    Setting("updates_per_step", _integer(1), 1, "optimizer steps (mini-batches) per rollout batch"),
    Setting("warmup_steps", _integer(0), 0, "linear lr warm-up (paper App. B.1: constant lr, no warm-up)"),
    Setting("weight_decay", _number(minimum=0), 0.0, "AdamW weight decay"),
    Setting("grad_clip", _number(exclusiveMinimum=0), 1.0, "gradient-norm clip (verl's actor default)"),
    Setting("save_every", _integer(1), 50, "checkpoint every this many steps"),
    Setting("threads", _integer(1), 1, "local engine: torch CPU threads"),
    Setting("sft_epochs", _integer(1), 3, "SFT: epochs over the teacher traces (paper App. B.1)"),
    Setting("verifier", {"type": "string"}, "math_verify", "the training reward (tgpo.verifiers)"),
    Setting("max_prompt_length", _integer(1), 1024, "verl: prompt length limit"),
    Setting("teacher_gpus", _integer(0), 0, "verl: GPUs of the vLLM teacher pool"),
    Setting(
        "n_gpus",
        _integer(0),
        None,
        "verl: GPUs of one training node (default: the engine's, tgpo.config.resolve.ENGINE_DEFAULTS)",
    ),
    Setting(
        "runtime_min",
        _integer(1),
        None,
        "SLURM time limit of a training job, minutes (default: the engine's, ENGINE_DEFAULTS)",
    ),
    Setting(
        "stop_length_fraction",
        _number(exclusiveMinimum=0, maximum=1),
        None,
        "verl: stop once a step's mean response length reaches this fraction of max_new_tokens (App. B.3, KDRL "
        "and RKL in Table 3)",
    ),
    Setting(
        "checkpoint_choice",
        {"enum": ["last", "validation", "test"]},
        None,
        "verl: the save reported: the last, the best on verl's validation set, or the best Avg. on the test "
        "benchmarks (App. B.3's 'best-performing checkpoints', the paper's choice: every save is evaluated)",
    ),
    Setting(
        "loggers",
        {"type": "array", "uniqueItems": True, "items": {"enum": ["console", "wandb", "tensorboard", "mlflow"]}},
        None,
        "trackers beside metrics.jsonl (verl's trainer.logger; the local engine's tgpo.engine.loggers)",
    ),
)


def _by_name(settings: tuple[Setting, ...]) -> dict[str, Setting]:
    return {setting.name: setting for setting in settings}


def _properties(settings) -> dict[str, Any]:
    return {setting.name: {**setting.schema, "description": setting.help} for setting in settings}


def schema_defs() -> dict[str, Any]:
    """The config schema's `$defs.hparams` and `$defs.training`."""
    hparams = _by_name(HPARAMS)
    training = [*TRAINING, *(hparams[name] for name in HPARAMS_IN_TRAINING)]
    return {
        "hparams": {"type": "object", "additionalProperties": False, "properties": _properties(HPARAMS)},
        "training": {"type": "object", "additionalProperties": False, "properties": _properties(training)},
    }


def _schema_text(setting: Setting) -> str:
    schema = setting.schema
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if schema.get("type") == "array":
        return "list of " + " \\| ".join(f"`{value}`" for value in schema["items"]["enum"])
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<="}
    limits = [f"{sign} {schema[key]}" for key, sign in bounds.items() if key in schema]
    return ", ".join([schema["type"], *limits]).replace(", ", " ", 1)


def markdown_tables() -> str:
    """config/README.md's two settings tables."""
    lines = ["### `training:`", "", "| setting | type | default | meaning |", "|---|---|---|---|"]
    for setting in TRAINING:
        default = "-" if setting.default is None else f"`{json.dumps(setting.default)}`"
        lines.append(f"| `{setting.name}` | {_schema_text(setting)} | {default} | {setting.help} |")
    lines.append(f"| `{'`, `'.join(HPARAMS_IN_TRAINING)}` | | | as under `hparams:` |")
    lines += ["", "### `hparams:` (defaults: each method's)", "", "| setting | type | meaning |", "|---|---|---|"]
    lines += [f"| `{setting.name}` | {_schema_text(setting)} | {setting.help} |" for setting in HPARAMS]
    return "\n".join(lines) + "\n"


def written_tables(readme_text: str) -> str:
    """The tables between the markers of config/README.md."""
    return readme_text.split(TABLES_BEGIN, 1)[1].split(TABLES_END, 1)[0].strip("\n") + "\n"


def write() -> None:
    """Rewrite the schema's $defs.hparams / $defs.training and config/README.md's tables from the table."""
    schema = json.loads(SCHEMA_PATH.read_text())
    schema["$defs"].update(schema_defs())
    SCHEMA_PATH.write_text(json.dumps(schema, indent=2) + "\n")
    text = README_PATH.read_text()
    before, rest = text.split(TABLES_BEGIN, 1)
    after = rest.split(TABLES_END, 1)[1]
    README_PATH.write_text(f"{before}{TABLES_BEGIN}\n\n{markdown_tables()}\n{TABLES_END}{after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tgpo.settings", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the schema and config/README.md's tables")
    args = parser.parse_args(argv)
    if args.write:
        write()
    else:
        print(markdown_tables(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
