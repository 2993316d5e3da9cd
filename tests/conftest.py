"""Shared test setup: the repository root on sys.path, pinned numerics, offline hub, one thread."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the numerics every `python -m tgpo` job runs with (tgpo/numerics.py), set before any test imports torch
from tgpo.numerics import pin_process_environment  # noqa: E402

pin_process_environment()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest  # noqa: E402


# ------------------------------------------------------------------ what a test needs but this machine lacks
def in_ci() -> bool:
    """True under CI (`CI=true`, as .ci/run and hosted CI set it): there nothing is skipped."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def unavailable(reason: str) -> None:
    """Skip the calling test, saying why, on a machine without what it needs; fail it loudly under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: nothing is skipped)")
    pytest.skip(reason)


def slurm_status() -> tuple[bool, str]:
    """(up, detail): a SLURM controller answers and has a usable node."""
    import shutil
    import subprocess

    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False, "sinfo/sbatch not found"
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"sinfo failed: {error}"
    states = result.stdout.split()
    up = result.returncode == 0 and any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states)
    return up, f"sinfo rc={result.returncode} states={states} {result.stderr.strip()}"


@pytest.fixture(scope="session")
def slurm() -> None:
    """For tests that submit to a real SLURM: skipped with the reason when none is up (failed under CI).
    Session-scoped, so it is checked before any expensive module-scoped fixture of the test."""
    up, detail = slurm_status()
    if not up:
        unavailable(f"needs a running SLURM ({detail}); start one with `sudo .ci/slurm_setup.sh` (Debian 12)")


# ------------------------------------------------------------------ tiny HF models for the engine tests

TINY_CHARS = list("0123456789+-*=#.;: ")
TINY_SPECIAL = ["<pad>", "<eos>"]
TEACHER_EXTRA_TOKENS = 4  # teacher vocabulary = student vocabulary + this: ids the student does not have


def build_char_tokenizer(directory: Path):
    """A character-level PreTrainedTokenizerFast (pad id 0, eos id 1), saved with save_pretrained."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(TINY_SPECIAL + TINY_CHARS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")
    tokenizer.save_pretrained(directory)
    return tokenizer


def _save_tiny_model(config, directory: Path, tokenizer, seed: int, boost_ids_from: int | None = None) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if boost_ids_from is not None:  # make the ids the student lacks a frequent argmax
        with torch.no_grad():
            model.get_output_embeddings().weight[boost_ids_from:] *= 1.3
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """{"student": dir, "teacher": dir, "vocab_size": V}: a random Qwen2 student (hidden 32, 2 layers)
    and a random Llama teacher whose vocabulary has TEACHER_EXTRA_TOKENS more ids than the student's."""
    import torch
    from transformers import LlamaConfig, Qwen2Config

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny_models")
    tokenizer = build_char_tokenizer(root / "tokenizer")
    vocab_size = len(tokenizer)
    common = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    _save_tiny_model(
        Qwen2Config(vocab_size=vocab_size, tie_word_embeddings=True, **common), root / "student", tokenizer, 0
    )
    _save_tiny_model(
        LlamaConfig(vocab_size=vocab_size + TEACHER_EXTRA_TOKENS, **common),
        root / "teacher",
        tokenizer,
        1,
        boost_ids_from=vocab_size,
    )
    return {"student": root / "student", "teacher": root / "teacher", "vocab_size": vocab_size}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """{"train": parquet (prompt_id, prompt, answer), "traces": parquet (+ response)}: 2-digit additions."""
    import random

    import pandas as pd

    root = tmp_path_factory.mktemp("tiny_data")
    rng = random.Random(0)
    rows = []
    for prompt_id in range(16):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        rows.append({"prompt_id": prompt_id, "prompt": f"{a}+{b}=", "answer": str(a + b)})
    train = pd.DataFrame(rows)
    traces = train.assign(response=[f"#{int(answer)}." for answer in train["answer"]])
    train.to_parquet(root / "train.parquet", index=False)
    traces.to_parquet(root / "traces.parquet", index=False)
    return {"train": root / "train.parquet", "traces": root / "traces.parquet"}


def digit_fraction(response_text: str, gold_answer: str) -> float:
    """Test verifier: the fraction of digits in the response (a non-constant reward for random models)."""
    return sum(character.isdigit() for character in response_text) / max(len(response_text), 1)


@pytest.fixture
def digit_verifier(monkeypatch) -> str:
    """Registers `digit_fraction` as verifier "test_digits" for one test; returns the name."""
    import tgpo.verifiers

    monkeypatch.setitem(tgpo.verifiers.VERIFIERS, "test_digits", f"{__name__}:digit_fraction")
    return "test_digits"


# ------------------------------------------------------------------ configs over the tiny models
def tiny_config(
    tiny_models,
    tiny_data,
    verifier: str,
    *,
    method: str = "tgpo",
    training: dict | None = None,
    experiment: dict | None = None,
) -> dict:
    """A valid config over the tiny fixture models: one experiment `run` of `method`."""
    from tgpo.methods import get_method

    spec = get_method(method)
    entry = {"method": method, "student": "student", "seeds": [0], **(experiment or {})}
    if spec.teacher_signal != "none":
        entry["teacher"] = "teacher"
    data = {"train": {"path": str(tiny_data["train"])}}
    if spec.uses_teacher_traces:
        data["traces"] = {"teacher": "teacher", "path": str(tiny_data["traces"])}
    base_training = dict(
        steps=3,
        prompts_per_step=2,
        group_size=2,
        max_new_tokens=8,
        updates_per_step=1,
        micro_batch_size=4,
        save_every=2,
        verifier=verifier,
        n_gpus=2,
        teacher_gpus=1,
    )
    return {
        "name": "tiny",
        "engine": "local",
        "models": {"student": {"path": str(tiny_models["student"])}, "teacher": {"path": str(tiny_models["teacher"])}},
        "data": data,
        "benchmarks": {"mini_arith": {"path": str(tiny_data["train"])}},
        "training": {**base_training, **(training or {})},
        "evaluation": {},
        "experiments": {"run": entry},
        "report": {},
    }


def write_config(config: dict, directory: Path) -> Path:
    import yaml

    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
