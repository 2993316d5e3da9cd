"""The configuration of a CPU run (tgpo.verl.cpu, 1): whether an accelerator is present, the environment of
the driver and every Ray worker, and the Hydra overrides added to an experiment's (RL and SFT)."""

from __future__ import annotations

import re
from typing import Any

CPU_FLAG = "TGPO_VERL_CPU"
PLATFORM_NAME = "cpu"
VLLM_CPU_DISTRIBUTION = "vllm-cpu"

# Logical Ray CPUs: TransferQueue's storage actors and verl's workers each hold one; with the real
# count (2 cores) `tq.init` waits forever for its actors. Fewer storage actors than the default 8, too.
RAY_LOGICAL_CPUS = 32
TRANSFER_QUEUE_STORAGE_UNITS = 2
VLLM_MAX_NUM_SEQS = 16


def accelerator_present() -> bool:
    """True when this process sees a CUDA/ROCm GPU or an Ascend NPU (decided on the driver only)."""
    import torch

    if torch.cuda.is_available():
        return True
    npu = getattr(torch, "npu", None)
    return bool(npu is not None and npu.is_available())


def vllm_cpu_environment() -> dict[str, str]:
    """vLLM CPU settings (vllm/envs.py), the evaluation's (eval.generation.VLLM_CPU_ENV)."""
    from eval.generation import VLLM_CPU_ENV

    return dict(VLLM_CPU_ENV)


def vllm_kv_cache_bytes() -> int:
    """KV-cache bytes of every vLLM server of a CPU run, the evaluation's (eval.generation)."""
    from eval.generation import VLLM_CPU_KV_CACHE_BYTES

    return VLLM_CPU_KV_CACHE_BYTES


def cpu_environment() -> dict[str, str]:
    """Environment of a CPU run, for the driver and (through Ray's runtime_env) every Ray worker."""
    return {
        CPU_FLAG: "1",
        "VERL_PLATFORM": PLATFORM_NAME,  # verl/plugin/platform/platform_manager.py _detect_platform_name
        # verl/workers/engine/fsdp/transformer_impl.py registers the FSDP engine for cuda/npu only;
        # EngineRegistry.get_engine_cls (verl/workers/engine/base.py) reads this override. Its code
        # then runs on the platform's device, "cpu".
        "VERL_ENGINE_DEVICE": "cuda",
        "TOKENIZERS_PARALLELISM": "false",
        **vllm_cpu_environment(),
    }


# verl's FSDP engine compiles its entropy function with torch.compile (transformer_impl.py, `use_torch_compile`,
# on by default). On CPU, inductor's C++ kernel for it corrupted the heap ("double free or corruption",
# exit -6, in entropy_from_logits) with ATen's AVX-512 kernels on an AMD EPYC and in CI
# (tests/test_verl_update_cost.py, which builds the engine itself: bench/verl_update_cost.py applies this).
# Not yet in cpu_overrides: with it, tests/test_verl_cpu_run.py's verl-train ran past its 900-s limit on
# the loaded machine (cause not found), and verl-train's runs have not crashed with the compiled kernel.
EAGER_ENTROPY = {
    "actor_rollout_ref.actor.use_torch_compile": False,
    "actor_rollout_ref.actor.fsdp_config.use_torch_compile": False,
    "actor_rollout_ref.ref.fsdp_config.use_torch_compile": False,
}


def cpu_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Hydra overrides a CPU run adds to an experiment's `overrides` (tgpo.verl.translate, key -> value).

    Sized from `overrides`: logical Ray GPUs for the student ranks and the teacher replicas.
    """
    rollout = "actor_rollout_ref.rollout."
    student_ranks = int(overrides["trainer.n_gpus_per_node"]) * int(overrides.get("trainer.nnodes", 1))
    teacher = overrides.get("distillation.enabled", False)
    teacher_ranks = int(overrides.get("distillation.n_gpus_per_node", 0)) if teacher else 0
    max_model_len = int(overrides[rollout + "max_model_len"])
    out: dict[str, Any] = {
        "trainer.device": "cpu",
        "actor_rollout_ref.actor.strategy": "fsdp2",
        "actor_rollout_ref.actor.fsdp_config.param_offload": False,
        "actor_rollout_ref.actor.fsdp_config.optimizer_offload": False,
        # verl's default is flash_attention_2, a CUDA kernel
        "+actor_rollout_ref.model.override_config.attn_implementation": "sdpa",
        rollout + "tensor_model_parallel_size": 1,
        rollout + "enforce_eager": True,  # no graph capture on CPU
        rollout + "dtype": "float32",
        rollout + "gpu_memory_utilization": 0.1,  # unused on CPU: the KV cache is given in bytes
        f"+{rollout}engine_kwargs.vllm.kv_cache_memory_bytes": vllm_kv_cache_bytes(),
        rollout + "max_num_batched_tokens": max(512, max_model_len),
        rollout + "max_num_seqs": VLLM_MAX_NUM_SEQS,
        rollout + "free_cache_engine": False,  # vLLM on CPU has no sleep mode
        "+" + rollout + "enable_sleep_mode": False,
        rollout + "agent.num_workers": 1,
        "reward.num_workers": 1,
        # verl's default of 8 forked dataloader workers holds ~0.6 GB each (a copy of the TaskRunner) for
        # prompts a few characters long; with several runs on one machine Ray's OOM monitor kills them
        "data.dataloader_num_workers": 0,
        "ray_kwargs.ray_init.num_cpus": RAY_LOGICAL_CPUS,
        "+ray_kwargs.ray_init.num_gpus": student_ranks + teacher_ranks,
        "transfer_queue.backend.SimpleStorage.num_data_storage_units": TRANSFER_QUEUE_STORAGE_UNITS,
    }
    if teacher:
        inference = "distillation.teacher_models.teacher_model.inference."
        out.update(
            {
                inference + "tensor_model_parallel_size": 1,
                inference + "enforce_eager": True,
                inference + "dtype": "float32",
                inference + "gpu_memory_utilization": 0.1,
                f"+{inference}engine_kwargs.vllm.kv_cache_memory_bytes": vllm_kv_cache_bytes(),
                inference + "max_num_batched_tokens": max(512, int(overrides.get(inference + "max_model_len", 0))),
                inference + "max_num_seqs": VLLM_MAX_NUM_SEQS,
                inference + "free_cache_engine": False,
                "+" + inference + "enable_sleep_mode": False,
            }
        )
    return out


def sft_cpu_overrides() -> dict[str, Any]:
    """Hydra overrides a CPU run adds to those of verl 0.9.1's SFT trainer (`verl.trainer.sft_trainer`,
    config `sft_trainer_engine.yaml`, tgpo.verl.translate.sft_overrides), key -> value. Its process group
    is gloo through the patched initialize_global_process_group (`patch_process_group_backend`), its
    FSDP engine is found through VERL_ENGINE_DEVICE (`cpu_environment`)."""
    return {
        # SFTTrainer moves each batch's sequence lengths to trainer.device (default cuda)
        "trainer.device": "cpu",
        # FSDP2, as the RL actor on CPU (cpu_overrides); the SFT config's default is FSDP1
        "engine.strategy": "fsdp2",
        # verl/workers/config/model.py HFModelConfig builds the model with flash_attention_2 (a CUDA
        # kernel) unless override_config names another attention
        "+model.override_config.attn_implementation": "sdpa",
    }


def replace_overrides(overrides: list[str], replacements: dict[str, Any]) -> list[str]:
    """`overrides` (key=value) without the keys of `replacements`, then `replacements` formatted."""
    from tgpo.verl.translate import format_value

    kept = [item for item in overrides if item.partition("=")[0] not in replacements]
    return [*kept, *(f"{key}={format_value(value)}" for key, value in replacements.items())]


def ray_environment_overrides(environment: dict[str, str]) -> list[str]:
    """`environment` for every Ray worker: verl passes ray_kwargs.ray_init.runtime_env to ray.init, whose
    env_vars must be strings (Hydra would read `1` as an integer, so every value is quoted)."""
    return [f"+ray_kwargs.ray_init.runtime_env.env_vars.{name}='{value}'" for name, value in environment.items()]


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`key=value` Hydra overrides (as tgpo.verl.translate formats them) -> {key: value}, values of
    `true`/`false`/integers as Python values, others as their text."""
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, separator, text = item.partition("=")
        if not separator:
            raise ValueError(f"verl override {item!r} is not key=value")
        value: Any = text
        if text in ("true", "false"):
            value = text == "true"
        elif re.fullmatch(r"-?\d+", text):
            value = int(text)
        parsed[key] = value
    return parsed


def with_cpu_overrides(overrides: list[str]) -> list[str]:
    """An experiment's verl overrides for a CPU run: CPU settings replace same-named ones, then the
    CPU environment for every Ray worker."""
    return [
        *replace_overrides(overrides, cpu_overrides(parse_overrides(overrides))),
        *ray_environment_overrides(cpu_environment()),
    ]


def with_sft_cpu_overrides(overrides: list[str]) -> list[str]:
    """The SFT trainer's verl overrides for a CPU run: CPU settings replace same-named ones (torchrun
    passes the CPU environment on to its process; there are no Ray workers)."""
    return replace_overrides(overrides, sft_cpu_overrides())
