"""Verb `build-model`: build and pretrain one tiny model of the miniature world, save it as an HF checkpoint.

    python -m tgpo build-model --world results/mini/world --kind student_large \
        --out results/mini/models/student --seed 0 [--steps N] [--size ci|default] [--layout qwen2.5-math-7b]

Kinds (the paper's models -> their analogue here):
    student_large      Qwen2.5-Math-7B     Qwen2, students' corpus (no hard problem; 90 % chain of thought)
    student_small      Qwen2.5-Math-1.5B   Qwen2, narrower (hidden 56 vs 64), same corpus and steps: weaker, not hopeless
    teacher_in_family  Qwen2.5-Math-7B as Section 2.3's in-family teacher: Qwen2, wider, same style, all problems
    teacher_cross      Qwen3-30B-A3B       Llama (RoPE, RMSNorm, SwiGLU), teacher tokenizer, 70 % think-style answers
                                           (`#7+5+0=12;...;</think>#632.`), 30 % the students' chain of thought
    teacher_cross_r1   R1-Distill-Qwen-32B Mistral, teacher tokenizer, 40 % think-style answers, 60 % chain of thought
                                           (closer to the students, as R1-Distill-Qwen is built on Qwen2.5)

The folder is loadable with AutoModelForCausalLM / AutoTokenizer; build.json records the settings,
the pretraining loss and time, and the probe (tgpo.mini.probe) on held-out benchmark problems.

`--layout <name>` (tgpo.mini.standins.LAYOUTS) makes a stand-in for a real checkpoint instead: the kind's
corpus rendered the way the pipeline renders prompts (that model's chat template, system prompts), pretrained
with that model's RoPE base and re-laid into its token layout (special-token ids, embedding rows, EOS / PAD /
BOS, chat template, generation_config.json, context); build.json records the filler mass and the probe.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from tgpo.mini.model_kinds import (  # noqa: F401  (tgpo.mini.models.X for the build's callers)
    MODEL_KINDS,
    MODEL_SHAPES,
    ModelKind,
    load_corpus,
    load_world_tokenizer,
    model_config,
    resolve_kind,
)
from tgpo.results import io

PROBE_MATH_ROWS, PROBE_CHOICE_ROWS = 256, 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", required=True, type=Path, help="folder written by `python -m tgpo world`")
    parser.add_argument("--kind", required=True, choices=sorted(MODEL_KINDS))
    parser.add_argument("--out", required=True, type=Path, help="checkpoint folder, e.g. results/mini/models/student")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps (default: the kind's)")
    parser.add_argument(
        "--size",
        choices=["default", *MODEL_SHAPES],
        default="default",
        help="ci: hidden 32, 20 steps (tests and CI); verl: hidden 64 / 2 heads (vLLM on CPU)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-probe", action="store_true", help="skip the accuracy probe written to build.json")
    parser.add_argument(
        "--layout",
        help="re-lay into this real checkpoint's token layout (tgpo.mini.standins.LAYOUTS; "
        "'<name>@<regular vocabulary>' for a shrunk one)",
    )


def run(args: argparse.Namespace) -> int:
    from tgpo.numerics import pin_torch

    pin_torch(args.threads)
    kind = resolve_kind(args.kind, size=args.size, steps=args.steps)
    record = build_model(args.world, kind, args.out, seed=args.seed, probe=not args.no_probe, layout=args.layout)
    print(
        json.dumps(
            {key: record[key] for key in ("kind", "parameters", "pretrain", "probe", "standin") if key in record},
            indent=1,
        )
    )
    return 0


def probe_rows(world: Path) -> tuple[list[dict], list[dict]]:
    """Held-out probe problems: graded maths benchmarks, then multiple-choice ones."""

    def read(name: str) -> list[dict]:
        path = Path(world) / "benchmarks" / f"{name}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    math_rows = [row for name in ("math500", "minerva", "olympiadbench") for row in read(name)][:PROBE_MATH_ROWS]
    choice_rows = [row for name in ("arc_c", "mmlu_pro") for row in read(name)][:PROBE_CHOICE_ROWS]
    return math_rows, choice_rows


def build_model(
    world: str | Path, kind: ModelKind, out: str | Path, *, seed: int = 0, probe: bool = True, layout: str | None = None
) -> dict:
    """Pretrain `kind` on its corpus and save it to `out`; with `layout`, as a stand-in re-laid into that
    real checkpoint's token layout (tgpo.mini.standins)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from tgpo.mini.pretrain import pretrain

    if layout is not None:
        from tgpo.mini.standins import build_standin

        return build_standin(world, kind, out, seed=seed, layout_name=layout, probe=probe)
    world = Path(world)
    tokenizer = load_world_tokenizer(world, kind.tokenizer)
    corpus = load_corpus(world, kind.corpus)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config(kind, tokenizer), attn_implementation="sdpa")
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        do_sample=True,
        temperature=1.0,
    )
    start = time.perf_counter()
    stats = pretrain(
        model,
        tokenizer,
        corpus["prompt"].tolist(),
        corpus["response"].tolist(),
        steps=kind.steps,
        batch_size=kind.batch_size,
        lr=kind.lr,
        warmup=kind.warmup,
        seed=seed,
    )
    record = {
        "kind": asdict(kind),
        "seed": seed,
        "world": str(world),
        "parameters": sum(p.numel() for p in model.parameters()),
        "pretrain": stats,
    }
    if probe:
        math_rows, choice_rows = probe_rows(world)
        from tgpo.mini.probe import probe_model

        record["probe"] = probe_model(model, tokenizer, math_rows, choice_rows, seed=seed)
    record["total_seconds"] = time.perf_counter() - start
    with io.atomic_dir(out) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "build.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
