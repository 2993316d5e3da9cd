"""verl's FSDP checkpoints -> the Hugging Face checkpoint eval-experiment loads (tgpo/verl/export.py).

The checkpoints are real: a tiny Qwen2 wrapped with verl's FSDP2 helper (`apply_fsdp2`) in one gloo
process (world size 1) and saved by verl's FSDPCheckpointManager, as verl's actor worker saves them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("verl")

import torch  # noqa: E402
from verl_fixtures import free_port, tiny_qwen2  # noqa: E402

from tgpo.config import load_config  # noqa: E402
from tgpo.verl import export  # noqa: E402
from tgpo.verl.run import checkpoint_model_subdir  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def full_state(model) -> dict[str, torch.Tensor]:
    """The unsharded weights of an FSDP2 model (DTensor -> full tensor)."""
    return {
        name: (value.full_tensor() if hasattr(value, "full_tensor") else value).detach().clone()
        for name, value in model.state_dict().items()
    }


@pytest.fixture(scope="module")
def verl_run(tmp_path_factory):
    """A run folder as verl's trainer leaves it: checkpoints/global_step_{1,2}/actor (one optimizer step in
    between) and the tracker naming step 2. Returns (checkpoints dir, source model dir, step-2 weights)."""
    from torch.distributed.device_mesh import init_device_mesh
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from verl.utils.checkpoint.checkpoint_manager import get_checkpoint_tracker_filename
    from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager
    from verl.utils.fsdp_utils import apply_fsdp2

    root = tmp_path_factory.mktemp("verl_run")
    source = tiny_qwen2(root / "source")
    checkpoints = root / "checkpoints"
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        # the mesh verl's FSDP engine builds (verl/workers/engine/fsdp/utils.py create_device_mesh), on CPU
        mesh = init_device_mesh("cpu", mesh_shape=(1,), mesh_dim_names=("fsdp",))
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        apply_fsdp2(model, {"mesh": mesh}, {})
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        manager = FSDPCheckpointManager(
            model=model, optimizer=optimizer, lr_scheduler=None, processing_class=AutoTokenizer.from_pretrained(source)
        )
        manager.save_checkpoint(str(checkpoints / "global_step_1" / "actor"), global_step=1)
        loss = model(input_ids=torch.tensor([[5, 6, 7, 8]]), labels=torch.tensor([[5, 6, 7, 8]])).loss
        loss.backward()
        optimizer.step()
        manager.save_checkpoint(str(checkpoints / "global_step_2" / "actor"), global_step=2)
        trained = full_state(model)
    finally:
        torch.distributed.destroy_process_group()
    Path(get_checkpoint_tracker_filename(str(checkpoints))).write_text("2")  # as verl's trainer does
    return checkpoints, source, trained


def test_last_checkpoint_is_the_one_verls_tracker_names(verl_run):
    checkpoints, _, _ = verl_run
    assert export.last_checkpoint(checkpoints, "actor") == checkpoints / "global_step_2" / "actor"
    with pytest.raises(FileNotFoundError, match="not a verl FSDP checkpoint"):
        export.last_checkpoint(checkpoints, "critic")
    with pytest.raises(FileNotFoundError, match="no verl checkpoint"):
        export.last_checkpoint(checkpoints / "global_step_2", "actor")


@pytest.mark.slow  # verl's merger in a subprocess: ~50 s on 2 shared cores
def test_export_merges_the_last_checkpoint_with_its_tokenizer(verl_run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoints, source, trained = verl_run
    target = tmp_path / "seed0" / "checkpoint"
    export.export_last_checkpoint(checkpoints, target, "actor")
    merged = AutoModelForCausalLM.from_pretrained(target, dtype="auto").state_dict()
    initial = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).state_dict()
    assert set(merged) == set(trained)
    for name, weight in trained.items():  # verl's merger stores bf16 (fsdp_model_merger.py: .bfloat16())
        assert merged[name].dtype == torch.bfloat16 and torch.equal(merged[name], weight.bfloat16()), name
    assert any(not torch.equal(initial[name], trained[name]) for name in trained), "step 2 must differ from step 1"
    text = "<|im_start|>user\n1+1=\\boxed{2}<|im_end|>"
    exported_ids = AutoTokenizer.from_pretrained(target)(text)["input_ids"]
    assert exported_ids == AutoTokenizer.from_pretrained(source)(text)["input_ids"]
    assert not list(target.parent.glob(".checkpoint.*")), "temporary folders left behind"


@pytest.mark.slow  # ~35 s (the merger's imports)
def test_a_failed_merge_fails_loudly_and_keeps_the_previous_export(verl_run, tmp_path):
    checkpoints, _, _ = verl_run
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "fsdp_config.json").write_text((checkpoints / "global_step_2" / "actor" / "fsdp_config.json").read_text())
    target = tmp_path / "checkpoint"
    target.mkdir()
    (target / "previous").write_text("kept")
    with pytest.raises(RuntimeError, match="verl model merger failed"):
        export.export_hf_checkpoint(broken, target)
    assert [path.name for path in target.iterdir()] == ["previous"]
    assert not list(tmp_path.glob(".checkpoint.*"))


def test_model_shards_live_in_actor_for_rl_and_in_the_step_folder_for_sft():
    config = load_config(ROOT / "config" / "paper-7b.yaml")
    assert checkpoint_model_subdir(config, "grpo_pp") == "actor"
    assert checkpoint_model_subdir(config, "sft") == ""
