"""The same bits on another CPU: `python -m tgpo` pins its numerics (tgpo/numerics.py).

An AVX2 machine is emulated on this one from the user's side, as issue 19 measured it:
`MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2` makes MKL and ATen run the kernels an AVX2 CPU
runs. Each command runs as a subprocess (the variables are read when torch loads) under

- `native`: no numerics variable and no thread variable set (a plain shell on this machine),
- `avx2`: the emulated AVX2 machine,
- `default`: ATen's non-vectorised kernels asked for (`ATEN_CPU_CAPABILITY=default`), which
  `python -m tgpo` must override: on a machine without AVX-512, `avx2` is what it runs anyway and
  this is the variant that still asks for other kernels,
- `threads`: two threads asked for (`OMP_NUM_THREADS=MKL_NUM_THREADS=2`, a 2-core machine's default),

and every variant must write bit-identical weights: pretraining a tiny model (`build-model`), and a few
RL steps of TGPO with a cross-family teacher (`train`). Before the pin, `avx2` and `native` differed on
an AVX-512 machine (issue 19: max |dw| = 0.15 after a full pretraining).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMERICS_VARIABLES = (
    "MKL_CBWR",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)
VARIANTS = {
    "native": {},
    "avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
    "threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
}


def user_environment(variant: str) -> dict[str, str]:
    """This process's environment without any numerics variable, plus `variant`'s, as a user sets them."""
    env = {key: value for key, value in os.environ.items() if key not in NUMERICS_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return {**env, **VARIANTS[variant]}


def tgpo(args: list[str], variant: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tgpo", *args],
        cwd=ROOT,
        env=user_environment(variant),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"python -m tgpo {' '.join(args)} ({variant}):\n{result.stderr[-3000:]}"


def weights(checkpoint: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(checkpoint / "model.safetensors")


def max_difference(reference: dict, other: dict) -> float:
    """max |difference| over every weight; 0.0 only when bit-identical (no NaN is equal to itself)."""
    assert reference.keys() == other.keys()
    if all(bool((reference[name] == other[name]).all()) for name in reference):
        return 0.0
    return max(float((reference[name] - other[name]).abs().max()) for name in reference) or float("nan")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("numerics") / "world"
    tgpo(["world", "--out", str(out), "--size", "ci", "--seed", "0"], "native")
    return out


def build(world: Path, kind: str, out: Path, variant: str) -> Path:
    tgpo(
        ["build-model", "--world", str(world), "--kind", kind, "--out", str(out), "--size", "ci", "--no-probe"], variant
    )
    return out


def test_pin_sets_every_variable_and_keeps_the_rest():
    from tgpo.numerics import PINNED_ENV, pinned_environment

    env = pinned_environment({"ATEN_CPU_CAPABILITY": "avx512", "OMP_NUM_THREADS": "8", "HOME": "/x"})
    assert env == {**PINNED_ENV, "HOME": "/x"}
    assert "MKL_ENABLE_INSTRUCTIONS" not in PINNED_ENV  # the emulation below sets it: it must not matter


def test_verl_processes_get_the_environment_without_the_kernel_pins_only():
    from tgpo.numerics import KERNEL_PINS, PINNED_ENV, pinned_environment, without_kernel_pins

    env = without_kernel_pins(pinned_environment({"HOME": "/x"}))
    assert not set(KERNEL_PINS) & set(env)
    assert env == {"HOME": "/x", **{key: value for key, value in PINNED_ENV.items() if key not in KERNEL_PINS}}
    users_own = {"ATEN_CPU_CAPABILITY": "avx512"}  # set by the user, not by us: kept
    assert without_kernel_pins(users_own) == users_own


def test_mkl_runs_its_compatible_branch_under_the_pins():
    """MKL honours MKL_CBWR=AVX2 on Intel CPUs only (AMD EPYC: CNR:AUTO, so another machine's bits);
    COMPATIBLE is its one branch for every x86-64 CPU. Asks MKL what it ran, from the user's side too."""
    from tgpo.numerics import is_x86_64, mkl_code_path, pinned_environment

    if not is_x86_64():
        pytest.skip("the pins are x86-64 ones")
    for variant in VARIANTS.values():
        assert mkl_code_path(pinned_environment({**os.environ, **variant})) == "COMPATIBLE", variant


def test_missing_cpu_flags_reads_cpuinfo():
    from tgpo.numerics import missing_cpu_flags

    assert missing_cpu_flags("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f\n") == []
    assert missing_cpu_flags("flags\t\t: fpu sse2 avx\n") == ["avx2", "fma"]
    assert missing_cpu_flags("no flags here") == ["avx2", "fma"]


def test_cli_pins_the_environment_of_its_process():
    script = (
        "import os, sys; from tgpo.numerics import PINNED_ENV; import tgpo.__main__; "
        "sys.exit(0 if all(os.environ[k] == v for k, v in PINNED_ENV.items()) else 3)"
    )
    env = user_environment("avx2")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_pretraining_is_bit_identical_on_an_emulated_avx2_cpu(world, tmp_path):
    checkpoints = {variant: build(world, "student_large", tmp_path / variant, variant) for variant in VARIANTS}
    reference = weights(checkpoints["native"])
    assert {variant: max_difference(reference, weights(path)) for variant, path in checkpoints.items()} == {
        variant: 0.0 for variant in VARIANTS
    }


@pytest.mark.slow  # ~1 min: two builds and four short trainings
def test_rl_steps_are_bit_identical_on_an_emulated_avx2_cpu(world, tmp_path):
    """Three steps of TGPO (rollouts, teacher forward, guidance and GRPO losses, two updates a step)."""
    from tgpo.engine.run_spec import RunSpec

    student = build(world, "student_large", tmp_path / "student", "native")
    teacher = build(world, "teacher_cross", tmp_path / "teacher", "native")
    outputs = {}
    for variant in VARIANTS:
        spec = RunSpec(
            experiment="tgpo-numerics",
            method="tgpo",
            hparams={"w_init": 0.3, "delta": 0.0},
            seed=0,
            output_dir=tmp_path / "runs" / variant,
            student_path=student,
            teacher_path=teacher,
            train_data=world / "train.parquet",
            traces_data=None,
            verifier="mini_arith",
            steps=3,
            prompts_per_step=2,
            group_size=4,
            max_new_tokens=24,
            updates_per_step=2,
            micro_batch_size=4,
            lr=1e-3,
            warmup_steps=1,
            save_every=10,
            sft_epochs=1,
        )
        path = tmp_path / f"{variant}.json"
        path.write_text(json.dumps(spec.to_dict()))
        tgpo(["train", "--run-spec", str(path), "--no-progress"], variant)
        outputs[variant] = spec.output_dir
    reference = weights(outputs["native"] / "checkpoint")
    assert {
        variant: max_difference(reference, weights(output / "checkpoint")) for variant, output in outputs.items()
    } == {variant: 0.0 for variant in VARIANTS}
