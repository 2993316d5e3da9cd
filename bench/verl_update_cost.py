"""Cost of TGPO's guidance term on verl: one actor update of TGPO (`tgpo_d`) vs GRPO++ through verl's FSDP engine.

What runs: verl 0.9.1's own `FSDPEngineWithLMHead` (FSDP2, world size 1 over gloo, on CPU through the
CPU platform of tgpo/verl/cpu/, which our plugin applies in the worker processes), built from
verl's Hydra config with each method's registered overrides (`tgpo.methods`), runs
`forward_backward_batch` on one packed micro-batch: the model forward, `prepare_model_outputs` (the
logits processor for TGPO, the sampled-token log-prob, the entropy), the actor loss
(`distillation_ppo_loss` for TGPO, `ppo_loss` for GRPO++) and the backward. No optimizer step.

Model: a Qwen2 body (hidden 64, 2 layers, head_dim 32, sdpa attention) with the paper's vocabulary
151,936 (Qwen2.5), saved with save_pretrained, so the [N, V] logits dominate as they do at scale. The
micro-batch: `--sequences` sequences of `--prompt-length` + `--response-length` tokens, packed (verl's
remove-padding path) into N tokens; teacher ids, advantages and old log-probs are random but fixed.
The engine runs with verl's default mixed precision (bf16 parameters and autocast), as on a cluster.

Alternations: one fresh worker process (`--worker`) builds both engines (TGPO's and GRPO++'s, on the same
saved student), runs one warm-up update of each, then `--rounds` rounds of one TGPO and one GRPO++ update,
the order alternating (TGPO first, GRPO++ first, ...), so load drift within a round hits both alike.
Time: each update's process CPU time (time.process_time; on a shared machine it does not count time
other processes hold the cores; wall-clock is printed for reference). Each round gives one paired ratio
TGPO / GRPO++; the last line reports their median, spread and distribution-free 95 % interval
(bench/ratio_stats.py). 12 rounds give the interval (x_(3), x_(10)) of the sorted ratios; on the shared
2-core development machine (load ~15) the round-to-round spread was IQR 0.977-1.036, and 12 rounds put
the interval at 0.970-1.040, within 5 % of the median: resolved. The default, 20 rounds (interval
(x_(6), x_(15))), leaves margin for a noisier machine; the last line says whether each run resolved 5 %.
Memory: peak resident memory of the process (the kernel's VmHWM, reset through /proc/self/clear_refs
before each timed update) during the update minus the resident memory just before it, median over
updates, ratio of the medians; the process starts with MALLOC_MMAP_THRESHOLD_=65536 so that freed tensors
return to the OS and resident memory tracks live tensor bytes (torch keeps no allocator statistics for
CPU memory).

Path: without flash-attn (this CPU machine) verl's `logprobs_from_logits` takes
`logprobs_from_logits_v2` (for bf16 logits it keeps one log-softmax row per token for backward); a GPU
node with flash-attn installed, as verl's default `attn_implementation=flash_attention_2` needs, takes
flash-attn's Triton cross-entropy (`flash_attn.ops.triton.cross_entropy`). The path in effect is printed.

Last line: `verl_update tgpo_vs_grpo time_ratio=<median of the paired CPU-time ratios> (IQR, 95% CI, n,
resolves_5pct) mem_ratio=<median peak TGPO / median peak GRPO++>`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ratio_stats import ratio_summary, summary_text  # noqa: E402

VOCAB_SIZE = 151_936
METHODS = ("tgpo", "grpo_pp")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=8, help="sequences in the micro-batch (default 8)")
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--response-length", type=int, default=480, help="default 480: N = 8 x 512 = 4096 tokens")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument(
        "--rounds",
        type=int,
        default=20,
        help="alternations: rounds of one TGPO and one GRPO++ update (default 20, at least 6)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE, help=f"default {VOCAB_SIZE} (the paper's)")
    parser.add_argument(
        "--param-dtype",
        choices=("bf16", "fp32"),
        default="bf16",
        help="FSDP mixed-precision compute dtype (default bf16, verl's default)",
    )
    parser.add_argument(
        "--guidance-weight", type=float, help="TGPO's w_t for the update (default: the method's registered w_init)"
    )
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 6:
        parser.error(f"--rounds {args.rounds}: need >= 6 for a 95 % interval of the median ratio")
    return args


def packed_tokens(args: argparse.Namespace) -> int:
    return args.sequences * (args.prompt_length + args.response_length)


def check_cpu_platform() -> None:
    """verl's engine module must see the CPU platform: `import verl` loads our plugin, which applies
    tgpo/verl/cpu/ when the worker's environment (cpu_environment()) asks for it."""
    import verl.workers.engine.fsdp.transformer_impl as transformer_impl

    if transformer_impl.device_name != "cpu":
        raise RuntimeError(
            f"bench: verl's FSDP engine runs on {transformer_impl.device_name!r}, not the CPU platform; start the "
            "worker with tgpo.verl.cpu.settings.cpu_environment() (TGPO_VERL_CPU=1, VERL_PLATFORM=cpu)"
        )


def init_single_process_group() -> None:
    """World size 1 over gloo, the backend the CPU platform uses (tgpo.verl.cpu)."""
    import torch.distributed

    from tgpo.verl.cpu.patches import CPU_PROCESS_GROUP_BACKEND

    if torch.distributed.is_initialized():
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    torch.distributed.init_process_group(CPU_PROCESS_GROUP_BACKEND, rank=0, world_size=1)


def save_student(directory: Path, args: argparse.Namespace) -> None:
    """A Qwen2 body with the full vocabulary, saved with save_pretrained (no tokenizer: the engine needs none)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    heads = args.hidden_size // args.head_dim
    config = Qwen2Config(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        intermediate_size=4 * args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        head_dim=args.head_dim,
        max_position_embeddings=args.prompt_length + args.response_length + 1,
        tie_word_embeddings=False,
    )
    Qwen2ForCausalLM(config).save_pretrained(directory)


def method_overrides(method_name: str) -> list[str]:
    """verl Hydra overrides for the actor and loss of `method_name` (the trainer-only keys are dropped)."""
    from tgpo.methods import get_method
    from tgpo.verl.translate import MODEL_SETTINGS, distillation_defaults

    def value(v):
        return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

    method = get_method(method_name)
    settings = dict(method.verl_overrides)
    if method.teacher_signal != "none":  # the teacher pool's keys, as tgpo.verl.translate sets them
        settings = {"distillation.enabled": True, **distillation_defaults(method), **MODEL_SETTINGS, **settings}
    overrides = [f"{key}={value(v)}" for key, v in settings.items() if not key.startswith(("+tgpo.", "trainer."))]
    if any(key.startswith("distillation.") for key in settings):
        overrides += [
            "distillation.teacher_models.teacher_model.model_path=/nonexistent/teacher",
            "distillation.teacher_models.teacher_model.inference.name=vllm",
            "distillation.teacher_models.teacher_model.inference.max_model_len=20000",
        ]
    return overrides


class VerlActorUpdate:
    """verl's FSDP actor engine for one method and one fixed packed micro-batch; `update()` runs one update."""

    def __init__(self, args: argparse.Namespace, method_name: str):
        import torch

        torch.set_num_threads(args.threads)
        check_cpu_platform()
        init_single_process_group()
        from functools import partial

        import verl
        from hydra import compose, initialize_config_dir
        from verl.trainer.distillation.losses import distillation_ppo_loss
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.engine import EngineRegistry
        from verl.workers.utils.losses import ppo_loss

        import tgpo.verl.register  # noqa: F401  (loaded by `import verl` already: loss modes, compute_topk_loss)
        from tgpo.verl.cpu.settings import EAGER_ENTROPY, accelerator_present

        n_tokens = packed_tokens(args)
        engine_overrides = [
            f"actor_rollout_ref.model.path={args.model_dir}",
            "+actor_rollout_ref.model.load_tokenizer=false",
            "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
            "actor_rollout_ref.model.use_remove_padding=true",
            "actor_rollout_ref.model.use_fused_kernels=false",
            "actor_rollout_ref.actor.strategy=fsdp2",
            "actor_rollout_ref.actor.calculate_entropy=true",
            "actor_rollout_ref.actor.use_dynamic_bsz=true",
            "critic.enable=false",
            f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu={n_tokens}",
        ]
        if not accelerator_present():
            engine_overrides += [f"{key}={str(value).lower()}" for key, value in EAGER_ENTROPY.items()]
        if args.param_dtype != "bf16":
            engine_overrides.append(
                f"+actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype={args.param_dtype}"
            )
        config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            cfg = compose(config_name="ppo_trainer", overrides=method_overrides(method_name) + engine_overrides)
        model_config = omega_conf_to_dataclass(cfg.actor_rollout_ref.model)
        actor_config = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
        actor_config.model_config = model_config
        # as verl/workers/engine_workers.py (ActorRolloutRefWorker.init_model, TrainingWorker.__init__) does
        engine_config = actor_config.engine
        engine_config.use_dynamic_bsz = True
        engine_config.max_token_len_per_gpu = n_tokens
        engine_config.use_remove_padding = True
        engine_config.use_fused_kernels = False
        self.distillation = bool(cfg.distillation.enabled)
        if self.distillation:
            distillation_config = omega_conf_to_dataclass(cfg.distillation)
            self.loss_fn = partial(distillation_ppo_loss, config=actor_config, distillation_config=distillation_config)
            self.use_topk = distillation_config.distillation_loss.loss_settings.use_topk
        else:
            self.loss_fn = partial(ppo_loss, config=actor_config)
            self.use_topk = False
        self.engine = EngineRegistry.new(
            model_type="language_model",
            backend=actor_config.strategy,
            model_config=model_config,
            engine_config=engine_config,
            optimizer_config=actor_config.optim,
            checkpoint_config=actor_config.checkpoint,
        )
        self.engine.initialize()
        self.args, self.method_name, self.actor_config = args, method_name, actor_config
        self.torch = torch

    def batch(self):
        """The packed micro-batch as verl's actor receives it (nested tensors + the trainer's extra_info)."""
        from verl.utils import tensordict_utils as tu

        from tgpo.methods import get_method
        from tgpo.verl.losses import COEF_KEY
        from tgpo.verl.trainer import tgpo_step_info

        torch, args = self.torch, self.args
        generator = torch.Generator().manual_seed(1)
        length = args.prompt_length + args.response_length

        def nested(rows):
            return torch.nested.as_nested_tensor(rows, layout=torch.jagged)

        vocab_size = args.vocab_size
        input_ids = [torch.randint(0, vocab_size, (length,), generator=generator) for _ in range(args.sequences)]
        response = args.response_length
        tensors = {
            "input_ids": nested(input_ids),
            "position_ids": nested([torch.arange(length) for _ in input_ids]),
            "prompts": nested([ids[: args.prompt_length] for ids in input_ids]),
            "responses": nested([ids[args.prompt_length :] for ids in input_ids]),
            "response_mask": nested([torch.ones(response, dtype=torch.int64) for _ in input_ids]),
            "loss_mask": nested([torch.ones(response, dtype=torch.int64) for _ in input_ids]),
            "old_log_probs": nested([torch.full((response,), -12.0) for _ in input_ids]),
            "advantages": nested(
                [torch.full((response,), float(torch.randn(1, generator=generator))) for _ in input_ids]
            ),
        }
        if self.distillation:
            teacher_ids = [torch.randint(0, vocab_size, (length, 1), generator=generator) for _ in input_ids]
            tensors["teacher_ids"] = nested(teacher_ids)
            tensors["teacher_logprobs"] = nested([torch.zeros(length, 1) for _ in input_ids])
        extra = {
            # V1 trainer (verl/trainer/ppo/v1/trainer_base.py, _update_actor) and TrainingWorker.train_batch
            "calculate_entropy": True,
            "distillation_use_topk": self.use_topk,
            "distillation_only": False,
            "global_batch_size": args.sequences,
            "use_remove_padding": True,
            "use_dynamic_bsz": True,
            "max_token_len_per_gpu": packed_tokens(args),
            "micro_batch_size_per_gpu": args.sequences,
            "use_fused_kernels": False,
            "temperature": 1.0,
        }
        method = get_method(self.method_name)
        if self.distillation:
            extra.update(tgpo_step_info(dict(method.defaults), global_steps=1, tokenizer_size=vocab_size))
            if args.guidance_weight is not None:
                extra[COEF_KEY] = args.guidance_weight
        return tu.get_tensordict(tensors, extra)

    def update(self) -> tuple[float, float, int]:
        """One forward + loss + backward of the whole micro-batch; (CPU s, wall s, micro-batches)."""
        data = self.batch()
        self.engine.optimizer_zero_grad()
        start, start_cpu = time.perf_counter(), time.process_time()
        with self.engine.train_mode(disable_auto_offload=True):
            output = self.engine.forward_backward_batch(data, loss_function=self.loss_fn, forward_only=False)
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        micro_batches = len(output["loss"])  # one loss per micro-batch
        if micro_batches != 1:
            raise RuntimeError(f"bench: the update ran {micro_batches} micro-batches, expected the whole batch in one")
        if self.distillation and "tgpo/guidance_loss" not in output["metrics"]:
            raise RuntimeError(
                f"bench: the {self.method_name} update did not run the plugin's loss: {sorted(output['metrics'])}"
            )
        return elapsed_cpu, elapsed, micro_batches


def memory_status_kib() -> dict[str, int]:
    with open("/proc/self/status") as status:
        text = status.read()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) for key in ("VmRSS", "VmHWM")}


def reset_peak_rss() -> None:
    """Reset the kernel's resident high-water mark (VmHWM) of this process (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def round_order(round_index: int) -> tuple[str, ...]:
    """TGPO first in even rounds, GRPO++ first in odd ones."""
    return METHODS if round_index % 2 == 0 else METHODS[::-1]


def timed_update(bench: VerlActorUpdate) -> dict:
    reset_peak_rss()
    before = memory_status_kib()["VmRSS"]
    cpu_seconds, wall_seconds, micro_batches = bench.update()
    return {
        "cpu": cpu_seconds,
        "wall": wall_seconds,
        "peak_bytes": (memory_status_kib()["VmHWM"] - before) * 1024,
        "micro_batches": micro_batches,
    }


def worker(args: argparse.Namespace) -> dict:
    """Both engines in this process; a warm-up update of each, then `args.rounds` alternating rounds."""
    benches = {method: VerlActorUpdate(args, method) for method in METHODS}
    from verl.utils import torch_functional as verl_F

    for bench in benches.values():
        bench.update()  # warm-up
    rounds = []
    for index in range(args.rounds):
        rounds.append({method: timed_update(benches[method]) for method in round_order(index)})
        print(json.dumps({"round": index, **{m: rounds[-1][m]["cpu"] for m in METHODS}}), file=sys.stderr, flush=True)
    return {"rounds": rounds, "flash_attn_cross_entropy": verl_F.FLAH_ATTN_CROSS_ENTROPY_LOSS_AVAILABLE}


def worker_environment() -> dict[str, str]:
    """verl on the CPU platform (tgpo.verl.cpu: the FSDP engine picked through VERL_ENGINE_DEVICE,
    gloo), offline, this checkout's tgpo first."""
    from tgpo.verl.cpu.settings import cpu_environment

    return {**cpu_environment(), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def run_worker(args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--model-dir",
        args.model_dir,
        "--sequences",
        str(args.sequences),
        "--prompt-length",
        str(args.prompt_length),
        "--response-length",
        str(args.response_length),
        "--hidden-size",
        str(args.hidden_size),
        "--layers",
        str(args.layers),
        "--head-dim",
        str(args.head_dim),
        "--rounds",
        str(args.rounds),
        "--threads",
        str(args.threads),
        "--vocab-size",
        str(args.vocab_size),
        "--param-dtype",
        args.param_dtype,
    ]
    if args.guidance_weight is not None:
        command += ["--guidance-weight", str(args.guidance_weight)]
    from tgpo.numerics import without_kernel_pins

    env = {**without_kernel_pins(os.environ), **worker_environment(), "MALLOC_MMAP_THRESHOLD_": "65536",
           "OMP_NUM_THREADS": str(args.threads)}  # fmt: skip
    # the worker's stderr (verl's log and one line per round) goes to ours, so progress is visible
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench worker failed (exit {result.returncode}); its log is above")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    n_tokens = packed_tokens(args)
    print(
        f"verl FSDP engine, {args.sequences} sequences x ({args.prompt_length} + {args.response_length}) = "
        f"{n_tokens} packed tokens in one micro-batch, vocab {args.vocab_size}: one fp32 [N, V] tensor = "
        f"{n_tokens * args.vocab_size * 4 / 2**30:.2f} GiB; compute {args.param_dtype}; "
        f"{args.threads} thread(s)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="verl_update_cost_") as model_dir:
        save_student(Path(model_dir), args)
        args.model_dir = model_dir
        result = run_worker(args)
    rounds = result["rounds"]
    for index, timed in enumerate(rounds):
        print(
            f"round {index:2d} ({' then '.join(round_order(index))}): "
            + ", ".join(
                f"{m} CPU {timed[m]['cpu']:.2f} s peak {timed[m]['peak_bytes'] / 2**20:.0f} MiB" for m in METHODS
            )
            + f", ratio {timed['tgpo']['cpu'] / timed['grpo_pp']['cpu']:.3f}",
            flush=True,
        )
    micro_batches = {timed[m]["micro_batches"] for timed in rounds for m in METHODS}
    path = (
        "flash-attn Triton cross-entropy"
        if result["flash_attn_cross_entropy"]
        else "logprobs_from_logits_v2 (no flash-attn)"
    )
    print(f"verl log-prob path: {path}; micro-batches per update: {sorted(micro_batches)}")
    cpu = {m: statistics.median(timed[m]["cpu"] for timed in rounds) for m in METHODS}
    wall = {m: statistics.median(timed[m]["wall"] for timed in rounds) for m in METHODS}
    peak = {m: statistics.median(timed[m]["peak_bytes"] for timed in rounds) for m in METHODS}
    for method in METHODS:
        print(
            f"{method:8s} median CPU {cpu[method]:.2f} s, wall {wall[method]:.2f} s, peak RSS above pre-update "
            f"{peak[method] / 2**20:.0f} MiB"
        )
    print(f"wall-clock ratio of medians (load-sensitive): {wall['tgpo'] / wall['grpo_pp']:.3f}")
    time_ratios = [timed["tgpo"]["cpu"] / timed["grpo_pp"]["cpu"] for timed in rounds]
    time_summary = ratio_summary(time_ratios)
    print(
        f"verl_update tgpo_vs_grpo {summary_text('time_ratio', time_summary)} "
        f"mem_ratio={peak['tgpo'] / peak['grpo_pp']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
