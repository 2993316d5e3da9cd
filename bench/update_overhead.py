"""Cost of TGPO's guidance term: one full update (forward, loss, backward) of TGPO vs GRPO++ on one batch.

Model: a Qwen2 body (hidden 64, 2 layers) with the real Qwen2.5 vocabulary (151,936), so the [B, T, V]
logits dominate as they do at scale. Both methods run `tgpo.objective.compute_loss` on the same batch
(same entropy bonus, token-mean); TGPO additionally gathers the teacher-token log-prob from the same
logsumexp and adds w * guidance. The teacher ids are given (the teacher forward is not part of the update).

Memory (CPU): each measurement runs in a fresh subprocess with MALLOC_MMAP_THRESHOLD_=65536, so every
tensor buffer above 64 KiB is its own mmap, returned to the OS when freed, and resident memory tracks live
tensor bytes. The peak is ru_maxrss (the kernel's high-water mark of resident memory) minus the resident
memory measured just before the update (model, batch and imports already loaded). On CUDA it is
torch.cuda.max_memory_allocated above the pre-update allocation.
Time: wall-clock of one update (forward + compute_loss + backward), median over all timed updates.
Subprocesses alternate TGPO / GRPO++ so that machine load drifts hit both alike.

Last line: `tgpo_vs_grpo time_ratio=<median TGPO / median GRPO++> mem_ratio=<median peak ratio>`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB_SIZE = 151_936
PROMPT_LENGTH = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=1, help="sequences per update (default 1)")
    parser.add_argument("--response-length", type=int, default=1024, help="response tokens per sequence (default 1024)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="subprocesses per method (default 3)")
    parser.add_argument("--timed-updates", type=int, default=2, help="timed updates per subprocess after the memory one")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--worker", choices=["tgpo", "grpo_pp"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(args: argparse.Namespace) -> dict:
    """One fresh process: build model + batch, measure the first update's peak memory, then time updates."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tgpo.methods import get_method
    from tgpo.objective import LossInputs, compute_loss

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    config = Qwen2Config(
        vocab_size=VOCAB_SIZE, hidden_size=args.hidden_size, intermediate_size=4 * args.hidden_size,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=PROMPT_LENGTH + args.response_length + 1, tie_word_embeddings=False,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).to(device)
    method = get_method(args.worker)
    batch, length = args.batch_size, args.response_length
    generator = torch.Generator().manual_seed(1)
    sequence = torch.randint(0, VOCAB_SIZE, (batch, PROMPT_LENGTH + length), generator=generator).to(device)
    response_ids = sequence[:, PROMPT_LENGTH:]
    teacher_ids = torch.randint(0, VOCAB_SIZE, (batch, length), generator=generator).to(device)
    mask = torch.ones(batch, length, device=device)
    advantages = torch.randn(batch, 1, generator=generator).to(device).expand(batch, length).contiguous()
    old_log_probs = torch.full((batch, length), -float(torch.log(torch.tensor(float(VOCAB_SIZE)))), device=device)

    def update() -> None:
        hidden = model.model(input_ids=sequence).last_hidden_state
        logits = model.lm_head(hidden[:, PROMPT_LENGTH - 1 : -1])  # row t predicts response token t
        inputs = LossInputs(
            logits=logits, response_ids=response_ids, response_mask=mask, old_log_probs=old_log_probs,
            advantages=advantages, teacher_token_ids=teacher_ids if method.teacher_signal == "argmax" else None,
        )  # fmt: skip
        loss, _ = compute_loss(method, inputs, {}, 0, total_tokens=float(mask.sum()), total_sequences=batch)
        loss.backward()
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        update()  # warm-up kernels, then measure from a clean allocator high-water mark
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        update()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        before = current_rss_bytes()
        update()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    times = []
    for _ in range(args.timed_updates):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    return {"method": args.worker, "peak_bytes": peak, "times_s": times}


def run_worker(args: argparse.Namespace, method: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", method,
               "--batch-size", str(args.batch_size), "--response-length", str(args.response_length),
               "--hidden-size", str(args.hidden_size), "--layers", str(args.layers),
               "--timed-updates", str(args.timed_updates), "--threads", str(args.threads), "--device", args.device]  # fmt: skip
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench worker {method} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    logits_mib = args.batch_size * args.response_length * VOCAB_SIZE * 4 / 2**20
    print(f"batch {args.batch_size} x response {args.response_length} x vocab {VOCAB_SIZE}: "
          f"one fp32 logits tensor = {logits_mib:.0f} MiB; device {args.device}; {args.repeats} repeats", flush=True)  # fmt: skip
    results: dict[str, list[dict]] = {"tgpo": [], "grpo_pp": []}
    for repeat in range(args.repeats):
        order = ("tgpo", "grpo_pp") if repeat % 2 == 0 else ("grpo_pp", "tgpo")
        for method in order:
            outcome = run_worker(args, method)
            results[method].append(outcome)
            print(f"repeat {repeat} {method:8s} peak {outcome['peak_bytes'] / 2**20:8.1f} MiB  "
                  f"update times {', '.join(f'{t:.3f}' for t in outcome['times_s'])} s", flush=True)  # fmt: skip
    median_time = {m: statistics.median(t for r in rs for t in r["times_s"]) for m, rs in results.items()}
    median_peak = {m: statistics.median(r["peak_bytes"] for r in rs) for m, rs in results.items()}
    for method in results:
        print(f"{method:8s} median update {median_time[method]:.3f} s, median peak {median_peak[method] / 2**20:.1f} MiB")
    time_ratio = median_time["tgpo"] / median_time["grpo_pp"]
    mem_ratio = median_peak["tgpo"] / median_peak["grpo_pp"]
    print(f"tgpo_vs_grpo time_ratio={time_ratio:.3f} mem_ratio={mem_ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
