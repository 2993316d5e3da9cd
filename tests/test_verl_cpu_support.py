"""tgpo.verl.cpu: verl 0.9.1 + vllm-cpu 0.29.0 without an accelerator.

Each patch is shown to be needed (the unpatched upstream code fails) and to work; the CPU path is
chosen on the driver only and, on a (simulated) GPU machine, nothing of it is applied.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tgpo.verl.cpu import patches as cpu_patches
from tgpo.verl.cpu import platform as cpu_platform
from tgpo.verl.cpu import settings as cpu_settings

ROOT = Path(__file__).resolve().parents[1]
PAPER_7B = ROOT / "config" / "paper-7b.yaml"

pytest.importorskip("verl")


# ------------------------------------------------------------------ the driver's decision and overrides


def run_dry(monkeypatch, capsys, experiment: str, gpu: bool) -> str:
    """`tgpo verl-train --dry-run` with torch.cuda.is_available() forced to `gpu`; the printed command."""
    import argparse

    import torch

    from tgpo.verl import run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    args = argparse.Namespace(config=str(PAPER_7B), experiment=experiment, seed=0, nodes=1, dry_run=True)
    assert run.run(args) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("experiment", ["grpo_pp", "tgpo", "sft"])
def test_gpu_machine_gets_no_cpu_setting(monkeypatch, capsys, experiment):
    command = run_dry(monkeypatch, capsys, experiment, gpu=True)
    for cpu_only in [
        "TGPO_VERL_CPU",
        "VERL_PLATFORM",
        "trainer.device=cpu",
        "enable_sleep_mode",
        "num_gpus=",
        "VLLM_CPU",
    ]:
        assert cpu_only not in command, cpu_only
    assert "override_config.attn_implementation=sdpa" in command  # both paths (tgpo.verl.translate)


def test_cpu_machine_gets_cpu_settings_for_every_ray_worker(monkeypatch, capsys):
    command = run_dry(monkeypatch, capsys, "tgpo", gpu=False).split()
    assert "trainer.device=cpu" in command
    # paper-7b: 4 student GPUs + 4 teacher GPUs -> 8 logical Ray GPUs
    assert "+ray_kwargs.ray_init.num_gpus=8" in command
    assert "distillation.teacher_models.teacher_model.inference.free_cache_engine=false" in command
    for name, value in cpu_settings.cpu_environment().items():
        assert f"+ray_kwargs.ray_init.runtime_env.env_vars.{name}='{value}'" in command
    keys = [item.partition("=")[0].lstrip("+") for item in command if "=" in item]
    assert len(keys) == len(set(keys)), "a key set twice (Hydra takes one value per key)"


def test_cpu_machine_gets_the_sft_trainers_cpu_settings(monkeypatch, capsys):
    command = run_dry(monkeypatch, capsys, "sft", gpu=False).split()
    assert command[command.index("-m", 2) + 1] == "verl.trainer.sft_trainer"
    for item in ["trainer.device=cpu", "engine.strategy=fsdp2", "+model.override_config.attn_implementation=sdpa"]:
        assert item in command, item
    assert not any("ray_kwargs" in item for item in command), "the SFT trainer has no Ray"
    keys = [item.partition("=")[0].lstrip("+") for item in command if "=" in item]
    assert len(keys) == len(set(keys)), "a key set twice (Hydra takes one value per key)"


def test_sft_cpu_overrides_replace_the_translated_values():
    translated = ["trainer.device=cuda", "engine.strategy=fsdp", "trainer.seed=0"]
    assert cpu_settings.with_sft_cpu_overrides(translated) == [
        "trainer.seed=0",
        "trainer.device=cpu",
        "engine.strategy=fsdp2",
        "+model.override_config.attn_implementation=sdpa",
    ]


def test_cpu_overrides_replace_the_translated_values():
    from tgpo.config import load_config
    from tgpo.verl.translate import experiment_overrides

    translated = experiment_overrides(load_config(PAPER_7B), "tgpo", 0)
    assert "distillation.teacher_models.teacher_model.inference.gpu_memory_utilization=0.85" in translated
    merged = cpu_settings.with_cpu_overrides(translated)
    assert "distillation.teacher_models.teacher_model.inference.gpu_memory_utilization=0.1" in merged
    assert not any(item.endswith("gpu_memory_utilization=0.85") for item in merged)


def test_parse_overrides_rejects_a_bare_word():
    with pytest.raises(ValueError, match="'trainer.device' is not key=value"):
        cpu_settings.parse_overrides(["trainer.device"])


def test_accelerator_present_follows_torch(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cpu_settings.accelerator_present()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not cpu_settings.accelerator_present()


def test_register_reads_the_same_flag():
    source = (ROOT / "tgpo" / "verl" / "register.py").read_text()
    assert f'CPU_FLAG = "{cpu_settings.CPU_FLAG}"' in source


# ------------------------------------------------------------------ what `import verl` applies, per machine

PROBE = """
import importlib.metadata, json, sys
import verl
from verl.plugin.platform.platform_manager import PlatformRegistry
from vllm.model_executor.layers import utils
try:
    vllm_version = importlib.metadata.version("vllm")
except importlib.metadata.PackageNotFoundError:
    vllm_version = None
print(json.dumps({
    "cpu_support_loaded": "tgpo.verl.cpu.patches" in sys.modules,
    "cpu_platform": "cpu" in PlatformRegistry.registered_names(),
    "vllm_version": vllm_version,
    "linear_patched": getattr(utils.dispatch_cpu_unquantized_gemm, "tgpo_cpu_patch", False),
}))
"""


def probe_plugin(flag: str | None) -> dict:
    env = {key: value for key, value in os.environ.items() if key != cpu_settings.CPU_FLAG}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if flag is not None:
        env[cpu_settings.CPU_FLAG] = flag
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plugin_applies_nothing_without_the_flag_and_everything_with_it():
    """A GPU cluster's processes (no flag) never load tgpo.verl.cpu.patches; a CPU run's processes apply it all."""
    pytest.importorskip("vllm")
    without = probe_plugin(None)
    assert without == {
        "cpu_support_loaded": False,
        "cpu_platform": False,
        "vllm_version": None,
        "linear_patched": False,
    }
    with_flag = probe_plugin("1")
    assert with_flag == {
        "cpu_support_loaded": True,
        "cpu_platform": True,
        "vllm_version": importlib.metadata.version("vllm-cpu") + "+cpu",
        "linear_patched": True,
    }


# ------------------------------------------------------------------ the CPU platform


@pytest.fixture
def fresh_platform_registry(monkeypatch):
    """verl's platform registry and singleton as they are before any registration of ours."""
    from verl.plugin.platform import platform_manager

    registry = {name: cls for name, cls in platform_manager.PlatformRegistry._platforms.items() if name != "cpu"}
    monkeypatch.setattr(platform_manager.PlatformRegistry, "_platforms", registry)
    monkeypatch.setattr(platform_manager, "_current_platform", None)
    monkeypatch.setenv("VERL_PLATFORM", "cpu")
    return platform_manager


def test_verl_has_no_cpu_platform_of_its_own(fresh_platform_registry):
    with pytest.raises(ValueError, match="Unknown platform 'cpu'"):
        fresh_platform_registry.get_platform()


def test_cpu_platform_places_workers_on_logical_ray_gpus(fresh_platform_registry):
    cpu_platform.register_platform()
    platform = fresh_platform_registry.get_platform()
    assert platform.device_name == "cpu"
    assert platform.communication_backend_name() == "gloo"
    assert platform.ray_resource_name() == "GPU"
    assert platform.ray_resource_options(1) == {"num_gpus": 1}
    assert not platform.is_ipc_supported()
    assert not platform.is_platform_available(use_smi_check=True)  # never auto-detected on a GPU cluster
    import torch

    module = torch.nn.Linear(2, 2)
    assert module.to(device=platform.current_device()).weight.device.type == "cpu"
    assert platform.rollout_env_vars()["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    free, total = platform.device_module.mem_get_info()
    assert 0 < free <= total
    platform.device_module.empty_cache()


def test_fsdp_engine_needs_the_engine_device_override(fresh_platform_registry, monkeypatch):
    """verl registers its FSDP engine for cuda/npu; VERL_ENGINE_DEVICE=cuda (configuration) selects it."""
    from verl.workers.engine.base import EngineRegistry

    cpu_platform.register_platform()
    monkeypatch.delenv("VERL_ENGINE_DEVICE", raising=False)
    with pytest.raises(ValueError, match="No engine registered for device='cpu'"):
        EngineRegistry.get_engine_cls("language_model", "fsdp2")
    monkeypatch.setenv("VERL_ENGINE_DEVICE", cpu_settings.cpu_environment()["VERL_ENGINE_DEVICE"])
    assert EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__ == "FSDPEngineWithLMHead"


# ------------------------------------------------------------------ patch: the process-group backend


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def single_rank(fresh_platform_registry, monkeypatch):
    import torch.distributed

    cpu_platform.register_platform()
    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }.items():
        monkeypatch.setenv(name, value)
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def test_verl_process_group_fails_on_cpu_unpatched(single_rank, monkeypatch):
    from verl.utils import distributed as verl_distributed

    original = getattr(
        verl_distributed.initialize_global_process_group_ray,
        "__wrapped__",
        verl_distributed.initialize_global_process_group_ray,
    )
    with pytest.raises(ValueError, match="Duplicate device type cpu"):
        original(timeout_second=30)


def test_verl_torchrun_process_group_fails_on_cpu_unpatched(single_rank, monkeypatch):
    from verl.utils import distributed as verl_distributed

    monkeypatch.setenv("LOCAL_RANK", "0")
    original = getattr(
        verl_distributed.initialize_global_process_group,
        "__wrapped__",
        verl_distributed.initialize_global_process_group,
    )
    with pytest.raises(ValueError, match="Duplicate device type cpu"):
        original(timeout_second=30)


def test_verl_torchrun_process_group_starts_on_cpu_patched(single_rank, monkeypatch):
    import torch
    import torch.distributed
    from verl.utils import distributed as verl_distributed

    monkeypatch.setenv("LOCAL_RANK", "0")
    for name in ("initialize_global_process_group", "initialize_global_process_group_ray"):
        monkeypatch.setattr(verl_distributed, name, getattr(verl_distributed, name))
    cpu_patches.patch_process_group_backend()
    assert verl_distributed.initialize_global_process_group(timeout_second=30) == (0, 0, 1)
    tensor = torch.ones(2)
    torch.distributed.all_reduce(tensor)
    assert tensor.tolist() == [1.0, 1.0]


def test_verl_process_group_starts_on_cpu_patched(single_rank, monkeypatch):
    import torch
    import torch.distributed
    import verl.workers.engine_workers as engine_workers
    from verl.utils import distributed as verl_distributed

    for name in ("initialize_global_process_group", "initialize_global_process_group_ray"):
        monkeypatch.setattr(verl_distributed, name, getattr(verl_distributed, name))
    monkeypatch.setattr(
        engine_workers, "initialize_global_process_group_ray", engine_workers.initialize_global_process_group_ray
    )
    cpu_patches.patch_process_group_backend()
    verl_distributed.initialize_global_process_group_ray(timeout_second=30)
    tensor = torch.ones(2)
    torch.distributed.all_reduce(tensor)
    assert tensor.tolist() == [1.0, 1.0]
    assert engine_workers.initialize_global_process_group_ray is verl_distributed.initialize_global_process_group_ray


# ------------------------------------------------------------------ patch: vLLM's CPU linear repack


class Linear2D:
    """What dispatch_cpu_unquantized_gemm reads of a vLLM linear layer: `weight` (N, K), `bias`."""

    def __new__(cls, out_features=8, in_features=16):
        import torch

        layer = torch.nn.Module()
        layer.weight = torch.nn.Parameter(torch.randn(out_features, in_features), requires_grad=False)
        layer.bias = None
        return layer


def sync_weights(layer, dispatch):
    """What verl's weight sync does to a vLLM layer: write the actor's weight into the live parameter
    (model.load_weights), then run vLLM's post-load processing again (update_weights_from_ipc)."""
    import torch

    new_weight = torch.randn(layer.weight.shape)
    layer.weight.data.copy_(new_weight)
    dispatch(layer, remove_weight=True)
    return new_weight


def test_vllm_cpu_linear_dispatch_removes_the_weight_unpatched():
    pytest.importorskip("vllm")
    import torch
    from vllm import _custom_ops
    from vllm.model_executor.layers import utils as layer_utils

    original = getattr(
        layer_utils.dispatch_cpu_unquantized_gemm, "__wrapped__", layer_utils.dispatch_cpu_unquantized_gemm
    )
    if not _custom_ops._supports_onednn and not torch.cpu._is_amx_tile_supported():
        pytest.skip("this CPU takes vLLM's F.linear fallback: no weight is removed")
    linear = Linear2D()
    original(linear, remove_weight=True)  # what vllm/model_executor/layers/linear.py asks for
    assert linear.weight.numel() == 0  # verl's load_weights has no weight (and no weight_loader) to write to
    assert not hasattr(linear.weight, "weight_loader")


def test_vllm_cpu_linear_follows_each_weight_sync_patched(monkeypatch):
    pytest.importorskip("vllm")
    import torch
    from vllm.model_executor.layers import utils as layer_utils

    monkeypatch.setattr(layer_utils, "dispatch_cpu_unquantized_gemm", layer_utils.dispatch_cpu_unquantized_gemm)
    cpu_patches.patch_vllm_cpu_linear(layer_utils)
    dispatch = layer_utils.dispatch_cpu_unquantized_gemm
    layer = Linear2D()
    dispatch(layer, remove_weight=True)
    assert layer.weight.shape == (8, 16)
    x = torch.randn(3, 16)
    for _ in range(2):
        new_weight = sync_weights(layer, dispatch)
        torch.testing.assert_close(
            layer_utils.cpu_unquantized_gemm(layer, x, layer.weight), x @ new_weight.T, rtol=1e-4, atol=1e-4
        )


def test_patch_when_imported_patches_a_module_on_first_import(tmp_path, monkeypatch):
    (tmp_path / "tgpo_probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, "tgpo_probe_module", raising=False)
    cpu_patches.patch_when_imported("tgpo_probe_module", lambda module: setattr(module, "VALUE", 2))
    import tgpo_probe_module

    assert tgpo_probe_module.VALUE == 2
    monkeypatch.delitem(sys.modules, "tgpo_probe_module")


# ------------------------------------------------------------------ patch: the `vllm` distribution name


def test_vllm_cpu_is_not_found_as_vllm_unpatched(monkeypatch):
    """verl/third_party/vllm/__init__.py: version("vllm") -> None -> "vllm version None not supported"."""
    pytest.importorskip("vllm")
    monkeypatch.setattr(
        sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, cpu_patches.VllmDistributionFinder)]
    )
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")


def test_vllm_distribution_finder_reports_the_cpu_build(monkeypatch):
    pytest.importorskip("vllm")
    monkeypatch.setattr(
        sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, cpu_patches.VllmDistributionFinder)]
    )
    cpu_patches.install_vllm_distribution_finder()
    expected = importlib.metadata.version("vllm-cpu") + "+cpu"
    assert importlib.metadata.version("vllm") == expected
    from vllm.platforms import vllm_version_matches_substr

    assert vllm_version_matches_substr("cpu")  # vLLM infers its CPU platform from the same version
    assert importlib.metadata.distribution("vllm").metadata["Name"] == "vllm"
    cpu_patches.install_vllm_distribution_finder()  # idempotent
    assert sum(isinstance(f, cpu_patches.VllmDistributionFinder) for f in sys.meta_path) == 1


def test_reference_model_offload_does_not_pin_memory_on_cpu():
    """verl's FSDP2 engine gives forward-only models (the KL reference) CPUOffloadPolicy(pin_memory=True);
    pinning needs an accelerator. The patched policy shards a model on the CPU without pinning."""
    import importlib

    import torch

    from tgpo.verl.cpu import patches as cpu_patches

    transformer_impl = importlib.import_module(cpu_patches.FSDP_ENGINE_MODULE)
    if torch.cuda.is_available():
        pytest.skip("an accelerator is present: pinned memory works here")
    with pytest.raises(RuntimeError, match="accelerator"):
        torch.zeros(4).pin_memory()  # what verl's policy makes FSDP2 do on a CPU-only machine
    original = transformer_impl.CPUOffloadPolicy
    try:
        cpu_patches.patch_fsdp_offload_policy(transformer_impl)
        policy = transformer_impl.CPUOffloadPolicy(pin_memory=True)
        assert policy.pin_memory is False
        assert transformer_impl.CPUOffloadPolicy is cpu_patches.unpinned_cpu_offload_policy
    finally:
        transformer_impl.CPUOffloadPolicy = original
