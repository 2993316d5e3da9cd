"""TGPO through verl 0.9.1's real FSDP engine (the one bench/verl_update_cost.py measures) on CPU: the
gradient the engine's update puts on the logits equals tgpo.objectives.compose.compute_loss's on the same logits.

The engine runs in a fresh process (it sets verl's platform and a world-size-1 gloo process group), in
fp32, with a tiny Qwen2 body saved with save_pretrained. A forward hook on the model's lm_head keeps the
logits and their gradient; the parent rebuilds the same micro-batch and compares. Marked slow: importing
verl and building the engine take 30-80 s on 2 shared cores (the fast check of the same equality on
verl's engine functions is tests/test_verl_plugin.py).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tgpo.numerics import without_kernel_pins

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "verl_update_cost.py"
VOCAB, SEQUENCES, PROMPT, RESPONSE = 97, 3, 4, 6
GUIDANCE_WEIGHT = 0.5  # large, so that a wrong guidance term cannot hide in the tolerance
BENCH_ARGS = [
    "--vocab-size",
    str(VOCAB),
    "--sequences",
    str(SEQUENCES),
    "--prompt-length",
    str(PROMPT),
    "--response-length",
    str(RESPONSE),
    "--param-dtype",
    "fp32",
    "--guidance-weight",
    str(GUIDANCE_WEIGHT),
]


def load_bench():
    spec = importlib.util.spec_from_file_location("verl_update_cost", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def engine_logits_and_gradient(model_dir: str, out_path: str) -> None:
    """In a fresh process: one TGPO update through verl's FSDP engine; saves the packed logits and their gradient."""
    import torch

    bench = load_bench()
    update = bench.VerlActorUpdate(bench.parse_args(BENCH_ARGS + ["--model-dir", model_dir]), "tgpo")
    captured = {}

    def keep(module, inputs, logits):
        captured["logits"] = logits.detach().clone()
        logits.register_hook(lambda grad: captured.__setitem__("grad", grad.detach().clone()))

    update.engine.module.lm_head.register_forward_hook(keep)
    update.update()
    torch.save(
        {"logits": captured["logits"][0], "grad": captured["grad"][0], "batch": update.batch().to_dict()}, out_path
    )


def library_gradient(logits, batch, guidance_weight: float):
    """dL/dlogits [N, V] of tgpo.objectives.compose.compute_loss (method "tgpo") on the engine's packed logits."""
    import torch

    from tgpo.methods import get_method
    from tgpo.objectives.compose import LossInputs, compute_loss

    logits = logits.detach().requires_grad_(True)
    length = PROMPT + RESPONSE
    rows = torch.tensor([s * length + PROMPT - 1 + t for s in range(SEQUENCES) for t in range(RESPONSE)])
    response_logits = logits[rows].reshape(SEQUENCES, RESPONSE, VOCAB)  # row t predicts response token t
    teacher = batch["teacher_ids"].values()[:, 0][rows].reshape(SEQUENCES, RESPONSE)
    inputs = LossInputs(
        logits=response_logits,
        response_ids=batch["responses"].values().reshape(SEQUENCES, RESPONSE),
        response_mask=torch.ones(SEQUENCES, RESPONSE),
        old_log_probs=batch["old_log_probs"].values().reshape(SEQUENCES, RESPONSE),
        advantages=batch["advantages"].values().reshape(SEQUENCES, RESPONSE),
        teacher_token_ids=teacher,
        teacher_valid_mask=torch.ones(SEQUENCES, RESPONSE),
    )
    hparams = {"w_init": guidance_weight, "delta": 0.0}
    loss, _ = compute_loss(
        get_method("tgpo"), inputs, hparams, 0, total_tokens=float(SEQUENCES * RESPONSE), total_sequences=SEQUENCES
    )
    (grad,) = torch.autograd.grad(loss, logits)
    return grad


@pytest.mark.slow
def test_tgpo_logits_gradient_through_verls_fsdp_engine_equals_library(tmp_path):
    pytest.importorskip("verl")
    import torch

    bench = load_bench()
    bench.save_student(tmp_path / "student", bench.parse_args(BENCH_ARGS))
    env = {**without_kernel_pins(os.environ), **bench.worker_environment(), "OMP_NUM_THREADS": "1"}
    out_path = tmp_path / "engine.pt"
    result = subprocess.run(
        [sys.executable, __file__, str(tmp_path / "student"), str(out_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    engine = torch.load(out_path, weights_only=False)
    from tensordict import TensorDict

    batch = TensorDict(engine["batch"])
    expected = library_gradient(engine["logits"], batch, GUIDANCE_WEIGHT)
    assert torch.allclose(engine["grad"], expected, atol=1e-6, rtol=1e-4), (engine["grad"] - expected).abs().max()
    without_guidance = library_gradient(engine["logits"], batch, 0.0)
    assert (expected - without_guidance).abs().max() > 1e-3  # the guidance term is part of what was compared


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    engine_logits_and_gradient(sys.argv[1], sys.argv[2])
