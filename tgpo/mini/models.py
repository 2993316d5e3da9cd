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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tgpo.results import io

# RoPE base: 100 rather than 10,000, so that the rotation frequencies resolve offsets within the ~100-token
# sequences of this world (the paper rescaled rope_theta too, to 40,000, for 16k-token contexts).
ROPE_THETA = 100.0


@dataclass(frozen=True)
class ModelKind:
    name: str
    architecture: str  # "qwen2" | "llama" | "mistral"
    corpus: str  # tgpo.mini.world.CORPORA key
    tokenizer: str  # "tokenizer" (student vocabulary) | "teacher_tokenizer" (student vocabulary + extras)
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    intermediate_size: int
    steps: int
    batch_size: int
    lr: float
    warmup: int
    analogue: str
    rope_theta: float = ROPE_THETA


MODEL_KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in [
        ModelKind(
            "student_large",
            "qwen2",
            "student",
            "tokenizer",
            64,
            2,
            4,
            2,
            192,
            800,
            64,
            3e-3,
            30,
            "Qwen2.5-Math-7B (student)",
        ),
        ModelKind(
            "student_small",
            "qwen2",
            "student",
            "tokenizer",
            56,
            2,
            4,
            2,
            160,
            800,
            64,
            3e-3,
            30,
            "Qwen2.5-Math-1.5B (student)",
        ),
        ModelKind(
            "teacher_in_family",
            "qwen2",
            "teacher_in_family",
            "tokenizer",
            96,
            2,
            4,
            2,
            256,
            1400,
            64,
            3e-3,
            30,
            "Qwen2.5-Math-7B as in-family teacher of the 1.5B student (Section 2.3)",
        ),
        ModelKind(
            "teacher_cross",
            "llama",
            "teacher_cross",
            "teacher_tokenizer",
            96,
            2,
            4,
            4,
            256,
            800,
            64,
            3e-3,
            30,
            "Qwen3-30B-A3B (cross-family teacher)",
        ),
        ModelKind(
            "teacher_cross_r1",
            "mistral",
            "teacher_cross_r1",
            "teacher_tokenizer",
            80,
            2,
            4,
            2,
            224,
            800,
            64,
            3e-3,
            30,
            "R1-Distill-Qwen-32B (second cross-family teacher)",
        ),
    ]
}

CI_SHAPE = dict(hidden_size=32, layers=2, heads=4, kv_heads=2, intermediate_size=64, steps=20, batch_size=32, warmup=5)
# The verl engine on CPU: vLLM's CPU attention supports head sizes 32, 64, 80, ... only
# (vllm/v1/attention/backends/cpu_attn.py, vLLM 0.29), so hidden 64 over 2 heads.
VERL_SHAPE = dict(
    hidden_size=64, layers=2, heads=2, kv_heads=2, intermediate_size=128, steps=300, batch_size=32, warmup=10
)
MODEL_SHAPES = {"ci": CI_SHAPE, "verl": VERL_SHAPE}
MAX_POSITIONS = 160
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


def resolve_kind(name: str, *, size: str = "default", steps: int | None = None) -> ModelKind:
    if name not in MODEL_KINDS:
        raise KeyError(f"unknown model kind {name!r}; known: {sorted(MODEL_KINDS)}")
    kind = MODEL_KINDS[name]
    if size in MODEL_SHAPES:
        kind = replace(kind, **MODEL_SHAPES[size])
    elif size != "default":
        raise ValueError(f"unknown model size {size!r}; expected 'default' or one of {sorted(MODEL_SHAPES)}")
    return replace(kind, steps=steps) if steps is not None else kind


def model_config(kind: ModelKind, tokenizer):
    """The HF config of `kind` for `tokenizer`'s vocabulary (no BOS; EOS and pad from the tokenizer)."""
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=kind.hidden_size,
        intermediate_size=kind.intermediate_size,
        num_hidden_layers=kind.layers,
        num_attention_heads=kind.heads,
        num_key_value_heads=kind.kv_heads,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-6,
        initializer_range=0.02,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if kind.architecture == "qwen2":
        return Qwen2Config(tie_word_embeddings=True, rope_theta=kind.rope_theta, use_sliding_window=False, **common)
    if kind.architecture == "llama":
        return LlamaConfig(tie_word_embeddings=False, rope_theta=kind.rope_theta, **common)
    if kind.architecture == "mistral":
        return MistralConfig(
            tie_word_embeddings=False, rope_theta=kind.rope_theta, sliding_window=MAX_POSITIONS, **common
        )
    raise ValueError(f"model kind {kind.name!r}: unknown architecture {kind.architecture!r}")


def load_world_tokenizer(world: Path, which: str):
    from transformers import AutoTokenizer

    path = Path(world) / which
    if not (path / "tokenizer.json").exists():
        raise FileNotFoundError(f"{path}/tokenizer.json not found; run `python -m tgpo world --out {world}` first")
    return AutoTokenizer.from_pretrained(str(path))


def load_corpus(world: Path, corpus: str):
    import pandas as pd

    path = Path(world) / "corpora" / f"{corpus}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"pretraining corpus {path} not found; rebuild the world")
    return pd.read_parquet(path)


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
