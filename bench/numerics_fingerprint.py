"""Fingerprints of the floating-point layers under the pinned numerics, to compare two machines line by line.

    python bench/numerics_fingerprint.py [--no-build]

Run it on two machines from the same commit and diff the output: the first line that differs names the
layer whose kernels differ between them (MKL's SGEMM, ATen's vectorised kernels, the C maths library,
NumPy's SIMD dispatch), and the last lines say whether a small pretraining (`python -m tgpo world --size ci`,
`build-model --kind student_large --size ci --no-probe`, what tests/test_numerics.py builds) writes the same
weights. Each line is `<name> <first 16 hex digits of a SHA-256 of the result's bytes>`; the header names
the CPU. The numerics are pinned as `python -m tgpo` pins them (tgpo/numerics.py) before torch loads.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tgpo.numerics import PINNED_ENV, pin_process_environment  # noqa: E402

pin_process_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def digest(value: torch.Tensor | np.ndarray | bytes) -> str:
    if isinstance(value, torch.Tensor):
        value = value.detach().contiguous().numpy()
    return hashlib.sha256(value if isinstance(value, bytes) else value.tobytes()).hexdigest()[:16]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def layer_fingerprints() -> dict[str, str]:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(257, 129, generator=generator), torch.randn(129, 263, generator=generator)
    x = torch.randn(4, 37, 96, generator=generator)
    q, k, v = (torch.randn(2, 4, 37, 16, generator=generator) for _ in range(3))
    parameter = torch.nn.Parameter(torch.randn(64, 32, generator=generator))
    parameter.grad = torch.randn(64, 32, generator=generator)
    torch.optim.AdamW([parameter], lr=1e-3).step()
    array = np.linspace(-5.0, 5.0, 10_001)
    return {
        "mkl_sgemm": digest(a @ b),
        "mkl_sgemm_transposed": digest(a.t().contiguous().t() @ b),
        "aten_exp_log": digest(torch.cat([x.exp().flatten(), x.abs().add(1e-3).log().flatten()])),
        "aten_softmax": digest(torch.cat([x.softmax(-1).flatten(), x.log_softmax(-1).flatten()])),
        "aten_silu_rmsnorm": digest(F.silu(x) * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)),
        "aten_sum_cumsum": digest(torch.cat([x.sum(-1).flatten(), x.cumsum(-1).flatten()])),
        "aten_sdpa_causal": digest(F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        "aten_adamw_step": digest(parameter),
        "aten_multinomial": digest(torch.multinomial(x[0].softmax(-1), 8, generator=generator)),
        "numpy_exp_log_tanh": digest(np.concatenate([np.exp(array), np.log1p(np.abs(array)), np.tanh(array)])),
        "numpy_float32_exp": digest(np.exp(array.astype(np.float32))),
        "libm_scalar": digest(np.array([math.exp(t) + math.log1p(abs(t)) + math.cos(t) for t in array])),
    }


def build_fingerprints() -> dict[str, str]:
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as workdir:
        world, model = Path(workdir) / "world", Path(workdir) / "model"
        for args in (
            ["world", "--out", str(world), "--size", "ci", "--seed", "0"],
            ["build-model", "--world", str(world), "--kind", "student_large", "--out", str(model), "--size", "ci"]
            + ["--no-probe"],
        ):
            subprocess.run([sys.executable, "-m", "tgpo", *args], cwd=ROOT, check=True, capture_output=True)
        weights = load_file(model / "model.safetensors")
        combined = hashlib.sha256()
        for name in sorted(weights):
            combined.update(weights[name].numpy().tobytes())
        return {
            "world_train_file": digest((world / "train.parquet").read_bytes()),
            "build_student_large_ci": combined.hexdigest()[:16],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="only the kernel layers (seconds)")
    args = parser.parse_args()
    print(f"# cpu: {cpu_name()} | torch {torch.__version__} | numpy {np.__version__} | pins {PINNED_ENV}")
    lines = layer_fingerprints()
    if not args.no_build:
        lines.update(build_fingerprints())
    for name, value in lines.items():
        print(f"{name} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
