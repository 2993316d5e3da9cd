"""verl 0.9.1's SFT trainer for real on CPU: `python -m tgpo verl-train` runs SFT for 2 steps (torchrun,
one process, FSDP2 over gloo) on a tiny Qwen2 with the verl world's tokenizer and chat template, on
(system, user, assistant) conversations as prepare-data writes them, and exports the last checkpoint
to the Hugging Face checkpoint eval-experiment loads.

Step 1's loss is computed before any update, so it must equal the initial model's mean negative
log-likelihood of the first batch's assistant tokens + EOS (computed here with transformers): the
evidence that verl trains on the assistant turn, and on nothing else.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROWS, BATCH, STEPS = 8, 4, 2


def build_student(directory: Path) -> None:
    """A 2-layer Qwen2 (head_dim 32) with the verl world's student tokenizer, saved with save_pretrained."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tgpo.mini.tokenizer import build_student_tokenizer

    tokenizer = build_student_tokenizer(for_verl=True)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=128,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def conversations() -> list[list[dict]]:
    """ROWS (system, user, assistant) conversations in the miniature's addition format."""
    rows = []
    for index in range(ROWS):
        left, right = 100 + 37 * index, 200 + 11 * index
        rows.append(
            [
                {"role": "system", "content": "Reason step by step."},
                {"role": "user", "content": f"{left}+{right}="},
                {"role": "assistant", "content": f"{left % 10}+{right % 10}={left % 10 + right % 10};#{left + right}."},
            ]
        )
    return rows


def write_config(path: Path, student: Path) -> None:
    config = {
        "name": "verl-sft-cpu",
        "description": "verl SFT on CPU, tiny Qwen2",
        "engine": "verl",
        "seed": 0,
        "models": {"student": {"path": str(student), "label": "tiny", "family": "qwen2"}},
        # the conversations are written here where prepare-data writes the curated traces (tgpo.results.layout)
        "data": {"train": {"path": "results/verl-sft-cpu/world/train.parquet"}, "traces": {"teacher": "student"}},
        "benchmarks": {"math500": {}},
        "training": {
            "steps": STEPS,
            "prompts_per_step": BATCH,
            "group_size": 1,
            "temperature": 1.0,
            "max_new_tokens": 24,
            "max_prompt_length": 24,
            "updates_per_step": 1,
            "lr": 1.0e-2,
            "warmup_steps": 0,
            "grad_clip": 1.0,
            "save_every": 1,
            "sft_epochs": 1,
            "verifier": "math_verify",
            "n_gpus": 1,
            "teacher_gpus": 0,
        },
        "evaluation": {
            "backend": "vllm",
            "temperature": 0.6,
            "top_p": 0.95,
            "max_new_tokens": 24,
            "template": "raw",
            "seed": 0,
            "n_gpus": 1,
        },
        "experiments": {"sft": {"method": "sft", "student": "student", "teacher": "student"}},
        "report": {"table1": {"groups": [{"title": "SFT", "rows": [{"experiment": "sft", "label": "SFT"}]}]}},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def first_batch_response_nll(student: Path, rows: list[list[dict]]) -> float:
    """Mean NLL of the assistant tokens + EOS over the first batch verl's SFT trainer draws: its sampler is
    DistributedSampler(shuffle=True, drop_last=True) with the default seed 0, epoch 0
    (verl-project/verl v0.9.1 verl/trainer/sft_trainer.py, _build_dataloader)."""
    import torch
    from torch.utils.data import DistributedSampler
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(student)
    model = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32)
    sampler = DistributedSampler(range(len(rows)), num_replicas=1, rank=0, shuffle=True, drop_last=True)
    sampler.set_epoch(0)
    total, tokens = 0.0, 0
    for index in list(sampler)[:BATCH]:
        prompt = tokenizer.encode(rows[index][1]["content"], add_special_tokens=False)
        response = tokenizer.encode(rows[index][2]["content"], add_special_tokens=False) + [tokenizer.eos_token_id]
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            log_probs = model(ids).logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None])[:, 0]
        total -= log_probs[len(prompt) - 1 :].sum().item()  # positions predicting the response tokens
        tokens += len(response)
    return total / tokens


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sft_runs_real_verl_steps_on_cpu(tmp_path):
    pytest.importorskip("verl")
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM

    from tgpo.verl.cpu.settings import accelerator_present

    if accelerator_present():
        pytest.skip("this machine has an accelerator: verl-train does not take the CPU path")
    student = tmp_path / "models" / "student"
    build_student(student)
    rows = conversations()
    data_dir = tmp_path / "results" / "verl-sft-cpu" / "data" / "verl"
    data_dir.mkdir(parents=True)
    pd.DataFrame({"prompt_id": range(ROWS), "messages": rows}).to_parquet(data_dir / "curated_sft.parquet")
    write_config(tmp_path / "verl-sft-cpu.yaml", student)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "tgpo", "verl-train", "--config", "verl-sft-cpu.yaml", "--experiment", "sft"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # ~1 min measured on 2 idle cores
    wall_time = time.time() - started
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    run_dir = tmp_path / "results" / "verl-sft-cpu" / "runs" / "sft" / "seed0"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in metrics] == list(range(1, STEPS + 1))
    for line in metrics:
        for name in ["train/loss", "train/grad_norm", "train/lr", "train/global_tokens"]:
            assert math.isfinite(line[name]), (line["step"], name, line[name])
        assert line["train/grad_norm"] > 0
    expected = first_batch_response_nll(student, rows)
    assert metrics[0]["train/loss"] == pytest.approx(expected, rel=0.02), "step 1 loss is not the response NLL"
    # the exported checkpoint loads and holds the trained weights (2 Adam steps at lr 1e-2 move every
    # weight by ~1e-2; the bfloat16 export rounds the initial weights (std 0.02) by ~1e-4)
    trained = AutoModelForCausalLM.from_pretrained(run_dir / "checkpoint", dtype=torch.float32)
    initial = AutoModelForCausalLM.from_pretrained(student, dtype=torch.float32)
    change = torch.cat([(a - b).abs().flatten() for a, b in zip(trained.parameters(), initial.parameters())])
    assert change.mean().item() > 1e-3, change.mean().item()
    assert json.loads((run_dir / "run.json").read_text())["steps_logged"] == STEPS
    print(f"verl-train SFT {STEPS} steps on CPU: {wall_time:.0f} s; losses {[line['train/loss'] for line in metrics]}")
