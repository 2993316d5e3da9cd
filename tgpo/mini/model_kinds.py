"""The miniature's model kinds (the paper's models -> their analogues: tgpo.mini.models lists them), their
sizes, their HF configs, and the world files (tokenizers, corpora) they are pretrained on."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

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
