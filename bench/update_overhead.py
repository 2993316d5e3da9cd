"""Cost of TGPO's guidance term: one full update (forward, loss, backward) of TGPO vs GRPO++ on one batch.

Model: a Qwen2 body (hidden 64, 2 layers) with the real Qwen2.5 vocabulary (151,936), so the [B, T, V]
logits dominate as they do at scale. Both methods run `tgpo.objectives.compose.compute_loss` on the same batch
with their registered defaults (clipped loss, token-mean, entropy bonus 1e-3); TGPO additionally gathers
the teacher-token log-prob from the same logsumexp and adds w * guidance. The teacher ids are given (the
teacher's forward pass is not part of the student update).

Time: one process builds the model and batch once and alternates TGPO / GRPO++ updates (so load drift
hits both alike) after one warm-up update each. Each update's process CPU time (time.process_time) is
recorded, and the ratio of the per-method medians is reported: on a shared machine CPU time does not
count the time other processes hold the cores, unlike wall-clock (printed too, for reference).
Memory (CPU): one fresh subprocess per method and repeat, started with MALLOC_MMAP_THRESHOLD_=65536 so
that every buffer above 64 KiB is its own mmap, returned to the OS when freed: resident memory then
tracks live tensor bytes. Peak = ru_maxrss (the kernel's resident high-water mark) after one update minus
the resident memory just before it (imports, model and batch already loaded). On CUDA: the
torch.cuda.max_memory_allocated increase over the pre-update allocation, after a warm-up update.

Last line: `tgpo_vs_grpo time_ratio=<median TGPO / median GRPO++> mem_ratio=<median peak TGPO / GRPO++>`.
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
VOCAB_SIZE = 151_936
PROMPT_LENGTH = 16
METHODS = ("tgpo", "grpo_pp")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=1, help="sequences per update (default 1)")
    parser.add_argument("--response-length", type=int, default=256, help="response tokens per sequence (default 256)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--timed-updates", type=int, default=3, help="timed updates per method (default 3)")
    parser.add_argument("--memory-repeats", type=int, default=1, help="fresh subprocesses per method for memory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--memory-worker", choices=METHODS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class UpdateBench:
    """A tiny-body, full-vocabulary Qwen2 student and one fixed batch; `update(method)` runs one update."""

    def __init__(self, args: argparse.Namespace):
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM

        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        self.torch = torch
        self.device = torch.device(args.device)
        config = Qwen2Config(
            vocab_size=VOCAB_SIZE,
            hidden_size=args.hidden_size,
            intermediate_size=4 * args.hidden_size,
            num_hidden_layers=args.layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=PROMPT_LENGTH + args.response_length + 1,
            tie_word_embeddings=False,
        )
        self.model = Qwen2ForCausalLM(config).to(self.device)
        batch, length = args.batch_size, args.response_length
        generator = torch.Generator().manual_seed(1)
        self.sequence = torch.randint(0, VOCAB_SIZE, (batch, PROMPT_LENGTH + length), generator=generator).to(
            self.device
        )
        self.response_ids = self.sequence[:, PROMPT_LENGTH:]
        self.teacher_ids = torch.randint(0, VOCAB_SIZE, (batch, length), generator=generator).to(self.device)
        self.mask = torch.ones(batch, length, device=self.device)
        advantages = torch.randn(batch, 1, generator=generator).expand(batch, length).contiguous()
        self.advantages = advantages.to(self.device)
        self.old_log_probs = torch.full((batch, length), -12.0, device=self.device)

    def update(self, method_name: str) -> tuple[float, float]:
        """One forward + compute_loss + backward; returns its (CPU, wall-clock) seconds."""
        from tgpo.methods import get_method
        from tgpo.objectives.compose import LossInputs, compute_loss

        method = get_method(method_name)
        start, start_cpu = time.perf_counter(), time.process_time()
        hidden = self.model.model(input_ids=self.sequence).last_hidden_state
        logits = self.model.lm_head(hidden[:, PROMPT_LENGTH - 1 : -1])  # row t predicts response token t
        inputs = LossInputs(
            logits=logits,
            response_ids=self.response_ids,
            response_mask=self.mask,
            old_log_probs=self.old_log_probs,
            advantages=self.advantages,
            teacher_token_ids=self.teacher_ids if method.teacher_signal == "argmax" else None,
        )
        loss, _ = compute_loss(
            method, inputs, {}, 0, total_tokens=float(self.mask.sum()), total_sequences=self.mask.shape[0]
        )
        loss.backward()
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        self.model.zero_grad(set_to_none=True)
        return elapsed_cpu, elapsed


def memory_worker(args: argparse.Namespace) -> int:
    """Peak bytes of one update above the pre-update level, in this fresh process."""
    bench = UpdateBench(args)
    if bench.device.type == "cuda":
        bench.update(args.memory_worker)
        bench.torch.cuda.reset_peak_memory_stats()
        before = bench.torch.cuda.memory_allocated()
        bench.update(args.memory_worker)
        return bench.torch.cuda.max_memory_allocated() - before
    before = current_rss_bytes()
    bench.update(args.memory_worker)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def measure_peak(args: argparse.Namespace, method: str) -> int:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-worker",
        method,
        "--batch-size",
        str(args.batch_size),
        "--response-length",
        str(args.response_length),
        "--hidden-size",
        str(args.hidden_size),
        "--layers",
        str(args.layers),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
    ]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"bench memory worker for {method} failed (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    return int(json.loads(result.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_worker:
        print(json.dumps(memory_worker(args)))
        return 0
    logits_mib = args.batch_size * args.response_length * VOCAB_SIZE * 4 / 2**20
    print(
        f"batch {args.batch_size} x response {args.response_length} x vocab {VOCAB_SIZE}: one fp32 logits "
        f"tensor = {logits_mib:.0f} MiB; device {args.device}, {args.threads} thread(s)",
        flush=True,
    )
    peaks: dict[str, list[int]] = {method: [] for method in METHODS}
    for repeat in range(args.memory_repeats):
        for method in METHODS if repeat % 2 == 0 else METHODS[::-1]:
            peaks[method].append(measure_peak(args, method))
            print(f"memory {method:8s} peak above pre-update: {peaks[method][-1] / 2**20:8.1f} MiB", flush=True)
    bench = UpdateBench(args)
    for method in METHODS:
        bench.update(method)  # warm-up
    times: dict[str, list[float]] = {method: [] for method in METHODS}
    wall: dict[str, list[float]] = {method: [] for method in METHODS}
    for repeat in range(args.timed_updates):
        for method in METHODS if repeat % 2 == 0 else METHODS[::-1]:
            cpu_seconds, wall_seconds = bench.update(method)
            times[method].append(cpu_seconds)
            wall[method].append(wall_seconds)
    for method in METHODS:
        print(
            f"time   {method:8s} CPU {', '.join(f'{t:.3f}' for t in times[method])} s "
            f"(median {statistics.median(times[method]):.3f}); wall median {statistics.median(wall[method]):.3f} s"
        )
    print(
        f"wall-clock ratio (load-sensitive): {statistics.median(wall['tgpo']) / statistics.median(wall['grpo_pp']):.3f}"
    )
    time_ratio = statistics.median(times["tgpo"]) / statistics.median(times["grpo_pp"])
    mem_ratio = statistics.median(peaks["tgpo"]) / statistics.median(peaks["grpo_pp"])
    print(f"tgpo_vs_grpo time_ratio={time_ratio:.3f} mem_ratio={mem_ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
