"""Verb `traces`: the off-policy data of SFT and LUFFY, re-sampled from a teacher and filtered.

    python -m tgpo traces --world results/mini/world --teacher results/mini/models/teacher_cross \
        --out results/mini/data/traces.parquet --seed 0

As the paper's data pipeline (Section 4, Appendix B.1): one teacher response per training prompt at
temperature 0.7, kept only when Math-Verify judges its final answer equal to the gold,
verify(parse("$gold$"), parse("$answer$")), with the answer extracted by ANSWER_REGEX (a response
cut off before its final `.` has none and is dropped). The paper resized both vocabularies to a unified
one; here the teacher-only tokens (<think>, </think>) are removed from the kept text instead, so every
trace is written in the student's vocabulary. Output columns: prompt_id, prompt, answer, response;
`<out>.json` holds the counts and the kept fraction.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tgpo.mini.task import extract_answer, response_style
from tgpo.mini.tokenizer import TEACHER_EXTRA_TOKENS
from tgpo.results import io

TEMPERATURE = 0.7
MAX_NEW_TOKENS = 48


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--world", required=True, type=Path, help="folder written by `python -m tgpo world`")
    parser.add_argument("--teacher", required=True, type=Path, help="teacher checkpoint folder")
    parser.add_argument("--out", required=True, type=Path, help="output parquet, e.g. results/mini/data/traces.parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=TEMPERATURE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--min-kept",
        type=int,
        default=1,
        help="fail when fewer responses pass the filter (0 allows an empty file, e.g. CI teachers)",
    )


def run(args: argparse.Namespace) -> int:
    from tgpo.numerics import pin_torch

    pin_torch(args.threads)
    stats = write_traces(
        args.world, args.teacher, args.out, seed=args.seed, temperature=args.temperature, min_kept=args.min_kept
    )
    print(json.dumps(stats, indent=1))
    return 0


def math_verify_correct(response_text: str, gold_answer: str) -> bool:
    """Math-Verify on the extracted answer, gold first (verify is not symmetric)."""
    from math_verify import parse, verify

    answer = extract_answer(response_text.rstrip())
    if answer is None or not answer:
        return False
    gold = parse(f"${gold_answer}$")
    predicted = parse(f"${answer}$")
    return bool(gold) and bool(predicted) and bool(verify(gold, predicted))


def student_text(response_text: str) -> str:
    """The response without the teacher-only tokens."""
    for token in TEACHER_EXTRA_TOKENS:
        response_text = response_text.replace(token, "")
    return response_text


def write_traces(
    world: str | Path,
    teacher: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    temperature: float = TEMPERATURE,
    min_kept: int = 1,
) -> dict:
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tgpo.engine.sampling import sample

    train_path = Path(world) / "train.parquet"
    if not train_path.exists():
        raise FileNotFoundError(f"{train_path} not found; run `python -m tgpo world --out {world}` first")
    train = pd.read_parquet(train_path)
    model = AutoModelForCausalLM.from_pretrained(str(teacher), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(teacher))
    rollouts = sample(
        model,
        tokenizer,
        train["prompt"].tolist(),
        1,
        temperature=temperature,
        max_new_tokens=MAX_NEW_TOKENS,
        seed=seed,
        batch_size=256,
    )
    kept = []
    for rollout in rollouts:
        row = train.iloc[rollout.prompt_index]
        if rollout.finish_reason == "stop" and math_verify_correct(rollout.response_text, row["answer"]):
            kept.append(
                {
                    "prompt_id": int(row["prompt_id"]),
                    "prompt": row["prompt"],
                    "answer": row["answer"],
                    "response": student_text(rollout.response_text),
                }
            )
    if len(kept) < min_kept:
        raise RuntimeError(
            f"teacher {teacher} answered {len(kept)} of the {len(train)} training prompts correctly, "
            f"fewer than --min-kept {min_kept}; pretrain it longer (build-model --steps)"
        )
    frame = pd.DataFrame(kept, columns=["prompt_id", "prompt", "answer", "response"]).astype(
        {"prompt_id": "int64", "prompt": str, "answer": str, "response": str}
    )
    io.write_parquet(out, frame)
    stats = {
        "teacher": str(teacher),
        "temperature": temperature,
        "seed": seed,
        "prompts": len(train),
        "kept": len(frame),
        "kept_fraction": len(frame) / len(train),
        "style_shares_kept": {
            style: float(share)
            for style, share in frame["response"].map(response_style).value_counts(normalize=True).items()
        },
    }
    io.write_json(Path(out).with_suffix(".json"), stats)
    return stats
