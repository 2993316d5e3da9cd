"""The CPU platform (tgpo.verl.cpu, 2), registered with verl's platform registry (VERL_PLATFORM=cpu):
device "cpu", collective backend gloo, Ray resource name "GPU"."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any

from tgpo.verl.cpu.settings import CPU_FLAG, PLATFORM_NAME, vllm_cpu_environment


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


_PLATFORM_CLASS: type | None = None


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


def register_platform() -> None:
    """Register the CPU platform under PLATFORM_NAME with verl's PlatformRegistry."""
    from verl.plugin.platform.platform_manager import PlatformRegistry

    if PlatformRegistry.get(PLATFORM_NAME) is not platform_class():
        PlatformRegistry.register(platform=PLATFORM_NAME)(platform_class())
