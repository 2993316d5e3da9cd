"""Pinned CPU numerics: the same bits from the same config on x86-64 CPUs with AVX2 and FMA (one vendor).

The one home of every setting that decides which floating-point kernels run. Two parts:

- `pin_process_environment()`: environment variables read once, when torch and its libraries load,
  so they are set before `import torch`. `python -m tgpo` (tgpo/__main__.py) calls it first, so every
  verb gets it, whether Snakemake, SLURM or a user starts it, and every process it starts (Ray / verl
  workers, vLLM servers, grading workers) inherits it.
- `pin_torch(threads)`: torch's own settings (intra-op threads, deterministic algorithms), called
  where a verb starts computing.

Why each setting (measured on an AVX-512 machine, issue 19: without them an AVX2 machine pretrains other
base models, max |dw| = 0.15, and every table moves):

- `MKL_CBWR=COMPATIBLE`: MKL's conditional numerical reproducibility, its one code path that runs the
  same on every x86-64 CPU, Intel's and AMD's (SSE2 kernels; Intel oneMKL developer guide, "Getting
  Started with Conditional Numerical Reproducibility":
  https://www.intel.com/content/www/us/en/docs/onemkl/developer-guide-linux/2025-1/get-started-with-conditional-num-reproducibility.html).
  `MKL_CBWR=AVX2`, pinned before, is honoured on Intel CPUs only: on an AMD EPYC, `MKL_VERBOSE=1` reports
  `CNR:AUTO` for it (and for SSE4_2), `CNR:COMPATIBLE` for this, and the default run's tables written on
  an AMD machine under `AVX2` differed from the README's, written on another machine, in every row.
- `ATEN_CPU_CAPABILITY=avx2`: ATen's vectorised kernels (reductions, softmax, norms, activations) are
  compiled per instruction set and picked at start-up; this picks the AVX2 ones on an AVX-512 CPU
  (the variable is read in pytorch/pytorch aten/src/ATen/native/DispatchStub.cpp). An AVX2 CPU picks them anyway.
- `ONEDNN_MAX_CPU_ISA=AVX2`: the same cap for oneDNN, which torch's CPU build also ships and which
  dispatches on its own CPU detection.
- `OMP_NUM_THREADS` / `MKL_NUM_THREADS` / `OPENBLAS_NUM_THREADS` = 1, and `torch.set_num_threads(threads)`
  from the config: ATen splits a parallel reduction by the thread count, and torch's default thread
  count is the machine's core count; a fixed count makes the sums the same everywhere.
- `torch.use_deterministic_algorithms(True)`: torch's deterministic implementation wherever it has one
  (and an error where an op has none), https://docs.pytorch.org/docs/stable/generated/torch.use_deterministic_algorithms.html.

`MKL_ENABLE_INSTRUCTIONS` is left as the user set it: with `MKL_CBWR=COMPATIBLE` it must not matter, and the
test that emulates an AVX2 machine (tests/test_numerics.py) sets it to check exactly that.

Not reproduced across vendors: an Intel Xeon pretrained other base models than an AMD EPYC under these
pins, with MKL on its COMPATIBLE branch on both (docs/miniature.md, "Numerics"; bench/numerics_fingerprint.py
prints per-layer fingerprints to find the layer). Not covered: CPUs without AVX2 or FMA (a warning says so), other architectures (nothing is pinned on them: the variables are
x86 ones), other torch / MKL versions, and the verl engine's GPU kernels. `mkl_code_path()` asks MKL which
branch it runs (tests/test_numerics.py checks it is COMPATIBLE under the pins).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

PINNED_ENV: dict[str, str] = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
REQUIRED_CPU_FLAGS = ("avx2", "fma")
X86_64 = ("x86_64", "amd64")


def pinned_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with every pinned variable set to its pinned value (the rest untouched)."""
    return {**environ, **PINNED_ENV}


def is_x86_64(machine: str | None = None) -> bool:
    return (machine if machine is not None else platform.machine()).lower() in X86_64


def missing_cpu_flags(cpuinfo_text: str) -> list[str]:
    """The flags of REQUIRED_CPU_FLAGS absent from a /proc/cpuinfo text (its first `flags` line)."""
    for line in cpuinfo_text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [flag for flag in REQUIRED_CPU_FLAGS if flag not in flags]
    return list(REQUIRED_CPU_FLAGS)


def pin_process_environment() -> None:
    """Set PINNED_ENV in this process's environment (x86-64 only), before torch loads.

    Raises RuntimeError when torch is already imported with other values: they would not take effect.
    Warns on stderr when the CPU lacks AVX2 or FMA: results then differ from docs/results.md's.
    """
    if not is_x86_64():
        return
    stale = {key: os.environ.get(key) for key, value in PINNED_ENV.items() if os.environ.get(key) != value}
    if stale and "torch" in sys.modules:
        raise RuntimeError(
            f"tgpo.numerics: torch was imported before the numerics were pinned ({stale} should be "
            f"{ {key: PINNED_ENV[key] for key in stale} }); call pin_process_environment() before importing torch"
        )
    os.environ.update(PINNED_ENV)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        missing = missing_cpu_flags(cpuinfo.read_text(errors="replace"))
        if missing:
            print(
                f"tgpo.numerics: warning: this CPU lacks {missing}; MKL and ATen fall back to other kernels "
                "and results will differ from docs/results.md's (they are pinned for AVX2 + FMA)",
                file=sys.stderr,
            )


# The kernel choices above are the local engine's (issue 19's scope). verl's Ray workers (FSDP2 with bf16
# autocast on CPU) produced a NaN gradient norm at their first step with them set; `verl-train` releases
# them for the processes it starts (tests/test_verl_cpu_run.py fails with them, passes without).
KERNEL_PINS = ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def _our_kernel_pins(environ: Mapping[str, str]) -> list[str]:
    """The kernel pins in `environ` that hold this module's values (a user's own setting is not ours)."""
    return [key for key in KERNEL_PINS if environ.get(key) == PINNED_ENV[key]]


def without_kernel_pins(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` less the kernel pins this module sets: the environment of a process that runs verl's
    engine, as `verl-train` gives its workers (release_kernel_pins)."""
    ours = _our_kernel_pins(environ)
    return {key: value for key, value in environ.items() if key not in ours}


def release_kernel_pins() -> list[str]:
    """Remove the kernel pins this module set from os.environ (processes started afterwards choose their
    kernels as torch does by default); returns the names removed. The thread counts stay."""
    released = _our_kernel_pins(os.environ)
    for key in released:
        del os.environ[key]
    return released


def mkl_code_path(environ: Mapping[str, str]) -> str:
    """The CNR branch MKL reports (`MKL_VERBOSE=1`) for one SGEMM in a fresh process with `environ`,
    e.g. "COMPATIBLE" or "AUTO": what MKL ran, not what was asked. Raises if MKL reports nothing."""
    import re
    import subprocess

    script = "import torch; torch.ones(8, 8) @ torch.ones(8, 8)"
    result = subprocess.run(
        [sys.executable, "-c", script], env={**environ, "MKL_VERBOSE": "1"}, capture_output=True, text=True, timeout=120
    )
    found = re.search(r"SGEMM\(.*CNR:([A-Z0-9_]+)", result.stdout + result.stderr)
    if found is None:
        raise RuntimeError(
            f"MKL reported no SGEMM with MKL_VERBOSE=1 (is torch built with MKL?): {result.stderr[-500:]}"
        )
    return found.group(1)


def pin_torch(threads: int) -> None:
    """torch's side: `threads` intra-op threads (from the config, never the machine's core count) and
    deterministic algorithms."""
    import torch

    if threads < 1:
        raise ValueError(f"tgpo.numerics.pin_torch: threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
