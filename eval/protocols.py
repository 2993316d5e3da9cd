"""Evaluation protocols: one name in a config's `evaluation.protocol` selects the prompt template, the
generation settings, the multiple-choice option handling and the grader; explicit keys override them.

| protocol | template | temperature | top_p | max new tokens | max model len | grader | MC options |
|---|---|---|---|---|---|---|---|
| `authors` | `authors` | 0.6 | 1.0 | 8,192 | 16,384 | `authors` | as in the authors' files |
| `suite` | `auto` | 0.6 | 1.0 | 8,192 | model's | `suite` | registry (shuffled) |

`authors` is how the TGPO authors evaluated (helldog-star/TGPO eval_scripts/my_eval_sh.sh calling
eval_scripts/generate_vllm.py: `--template own --remove_system False`, temperature 0.6, top_p 1.0 by
`main`'s default, max_tokens 8192, max_model_len 16384, `--add_oat_evaluate True --any_true True`;
their benchmark files ElliottYan/LUFFY data/valid.*.parquet keep ARC-c's original option order and
labels). `suite` is this project's first protocol, which the miniature configs use (with their own
template, answer regex and token budget).

Settings resolve, for one experiment x benchmark, as: the experiment's `evaluation:` > the benchmark's
entry in `benchmarks:` > the config's `evaluation:` > (template only) the released checkpoint's own
template (`eval.prompts.RELEASED_CHECKPOINT_TEMPLATES`) > the protocol. `check_evaluation` validates the
names in a config (protocol, every template) and is called by `tgpo validate-config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PROTOCOL = "suite"


@dataclass(frozen=True)
class Protocol:
    name: str
    template: str  # a key of eval.prompts.TEMPLATES, or "auto"
    temperature: float
    top_p: float
    max_new_tokens: int
    max_model_len: int | None  # None: the model config's
    grader: str  # a name of eval.grading.GRADERS
    shuffle_options: Mapping[str, bool] = field(default_factory=dict)  # benchmark -> override of the registry
    source: str = ""


PROTOCOLS: dict[str, Protocol] = {
    "authors": Protocol(
        name="authors",
        template="authors",
        temperature=0.6,
        top_p=1.0,
        max_new_tokens=8192,
        max_model_len=16384,
        grader="authors",
        # LUFFY's valid.arc_c.parquet: original ARC-Challenge order and labels; MMLU-Pro: the hub's order
        # (LUFFY's file could not be read); GPQA-Diamond: the hub has no order, so it stays shuffled once.
        shuffle_options={"arc_c": False, "mmlu_pro": False},
        source="helldog-star/TGPO eval_scripts/my_eval_sh.sh + eval_scripts/generate_vllm.py",
    ),
    "suite": Protocol(
        name="suite",
        template="auto",
        temperature=0.6,
        top_p=1.0,
        max_new_tokens=8192,
        max_model_len=None,
        grader="suite",
        source="this project's first protocol (paper Sec. 4 settings)",
    ),
}

SETTING_KEYS = ("template", "temperature", "top_p", "max_new_tokens", "max_model_len")


@dataclass(frozen=True)
class EvalSettings:
    """Everything one experiment x benchmark evaluation needs, resolved."""

    protocol: str
    grader: str
    template: str
    temperature: float
    top_p: float
    max_new_tokens: int
    max_model_len: int | None
    path: str | None
    k: int | None
    answer_regex: str | None
    shuffle_options: bool | None
    sources: Mapping[str, str]  # setting -> where its value came from


def get_protocol(name: str, *, where: str = "evaluation.protocol") -> Protocol:
    if name not in PROTOCOLS:
        raise KeyError(f"{where}: unknown protocol {name!r}; allowed values: {', '.join(sorted(PROTOCOLS))}")
    return PROTOCOLS[name]


def resolve_evaluation(config: Mapping[str, Any], experiment: str, benchmark: str, model: str = "") -> EvalSettings:
    """The evaluation settings of one benchmark for one experiment (precedence in the module docstring).
    `model`: the checkpoint location (a released checkpoint's hub id selects its own template)."""
    from eval.prompts import RELEASED_CHECKPOINT_TEMPLATES

    evaluation = dict(config.get("evaluation") or {})
    entry = dict((config.get("benchmarks") or {}).get(benchmark) or {})
    own = dict((config["experiments"][experiment].get("evaluation")) or {})
    protocol = get_protocol(evaluation.get("protocol", DEFAULT_PROTOCOL))
    levels = (
        (f"experiments.{experiment}.evaluation", own),
        (f"benchmarks.{benchmark}", entry),
        ("evaluation", evaluation),
    )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in SETTING_KEYS:
        for where, block in levels:
            if block.get(key) is not None:
                values[key], sources[key] = block[key], where
                break
        else:
            if key == "template" and str(model) in RELEASED_CHECKPOINT_TEMPLATES:
                values[key] = RELEASED_CHECKPOINT_TEMPLATES[str(model)]
                sources[key] = "eval.prompts.RELEASED_CHECKPOINT_TEMPLATES"
            else:
                values[key], sources[key] = getattr(protocol, key), f"protocol {protocol.name}"
    shuffle = entry.get("shuffle_options", protocol.shuffle_options.get(benchmark))
    return EvalSettings(
        protocol=protocol.name,
        grader=protocol.grader,
        path=entry.get("path"),
        k=entry.get("k"),
        answer_regex=entry.get("answer_regex", evaluation.get("answer_regex")),
        shuffle_options=shuffle,
        sources=sources,
        **values,
    )


def check_evaluation(config: Mapping[str, Any], source: str) -> None:
    """Every protocol and template name in `config` is known; raises ValueError naming the file, the key
    and the allowed values."""
    from eval.prompts import TEMPLATES

    allowed_templates = sorted(TEMPLATES) + ["auto"]
    evaluation = config.get("evaluation") or {}
    if "protocol" in evaluation and evaluation["protocol"] not in PROTOCOLS:
        raise ValueError(
            f"{source}: evaluation.protocol: unknown protocol {evaluation['protocol']!r}; "
            f"allowed values: {', '.join(sorted(PROTOCOLS))}"
        )
    blocks = [("evaluation", evaluation)]
    blocks += [(f"benchmarks.{name}", entry or {}) for name, entry in (config.get("benchmarks") or {}).items()]
    blocks += [
        (f"experiments.{name}.evaluation", spec.get("evaluation") or {}) for name, spec in config["experiments"].items()
    ]
    for where, block in blocks:
        template = block.get("template")
        if template is not None and template not in allowed_templates:
            raise ValueError(
                f"{source}: {where}.template: unknown template {template!r}; "
                f"allowed values: {', '.join(allowed_templates)}"
            )
