"""SFT on verl 0.9.1: `verl.trainer.sft_trainer` (config sft_trainer_engine) under torchrun.

Every override tgpo.verl.translate.sft_overrides emits is composed with Hydra against verl's own
sft_trainer_engine.yaml (struct mode: an unknown key such as the pre-0.9 `model.partial_pretrain` fails)
and converted to verl's dataclasses as its trainer does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("verl")

from hydra import compose, initialize_config_dir  # noqa: E402
from verl_fixtures import tiny_qwen2  # noqa: E402

from tgpo.config import load_config  # noqa: E402
from tgpo.verl.run import driver_command  # noqa: E402
from tgpo.verl.translate import sft_overrides  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER_7B = ROOT / "config" / "paper-7b.yaml"


def compose_sft(overrides: list[str]):
    import verl

    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return compose(config_name="sft_trainer_engine", overrides=overrides)


def test_sft_overrides_compose_strictly_with_verls_sft_config(tmp_path):
    from verl.utils.config import omega_conf_to_dataclass

    overrides = sft_overrides(load_config(PAPER_7B), "sft", 0)
    cfg = compose_sft(overrides)
    # verl's model dataclass loads the checkpoint's config: convert with a real (tiny) model in its place
    converted = compose_sft([*overrides, f"model.path={tiny_qwen2(tmp_path / 'student')}"])
    for section in ("model", "engine", "optim", "checkpoint"):  # as SFTTrainer._build_config converts them
        omega_conf_to_dataclass(converted[section])
    # App. B.1: 3 epochs, global batch 64, lr 5e-5, warmup ratio 0.1, maximum sequence length 16,384
    assert cfg.trainer.total_epochs == 3 and cfg.data.train_batch_size == 64
    assert cfg.optim.lr == 5e-5 and cfg.optim.lr_warmup_steps_ratio == 0.1 and cfg.data.max_length == 16384
    assert cfg.model.path.endswith("qwen25_math_7b") and cfg.data.messages_key == "messages"
    assert "file" in cfg.trainer.logger and cfg.trainer.resume_mode == "auto"
    assert cfg.trainer.default_local_dir == "results/paper-7b/runs/sft/seed0/checkpoints"


def test_sft_cpu_overrides_compose_with_verls_sft_config_and_select_sdpa(tmp_path):
    """On CPU the SFT trainer runs on device cpu with FSDP2 and sdpa attention: verl's model config
    otherwise asks transformers for flash_attention_2, which cannot build a model without flash-attn."""
    from transformers import AutoModelForCausalLM
    from verl.utils.config import omega_conf_to_dataclass

    from tgpo.verl.cpu.settings import with_sft_cpu_overrides

    overrides = [*sft_overrides(load_config(PAPER_7B), "sft", 0), f"model.path={tiny_qwen2(tmp_path / 'student')}"]
    cpu = compose_sft(with_sft_cpu_overrides(overrides))
    assert cpu.trainer.device == "cpu" and omega_conf_to_dataclass(cpu.engine).strategy == "fsdp2"
    assert omega_conf_to_dataclass(cpu.model).hf_config._attn_implementation == "sdpa"
    # the GPU path names sdpa too (tgpo.verl.translate.ATTN_IMPLEMENTATION); without it verl asks for
    # flash_attention_2, which cannot build a model where flash-attn is not installed
    assert omega_conf_to_dataclass(compose_sft(overrides).model).hf_config._attn_implementation == "sdpa"
    without = [item for item in overrides if "attn_implementation" not in item]
    default = omega_conf_to_dataclass(compose_sft(without).model).hf_config
    assert default._attn_implementation == "flash_attention_2"
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="FlashAttention2"):
            AutoModelForCausalLM.from_config(default)


def test_a_key_verl_does_not_know_fails_composition():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_sft(["model.partial_pretrain=/some/model"])


def test_sft_command_is_torchrun_of_verls_sft_trainer(tmp_path):
    command = driver_command(load_config(PAPER_7B), "sft", 0, 1, tmp_path / "verl_metrics.1.jsonl")
    assert command[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=8" in command
    assert command[command.index("verl.trainer.sft_trainer") - 1] == "-m"
    with pytest.raises(ValueError, match="one node"):
        driver_command(load_config(PAPER_7B), "sft", 0, 2, tmp_path / "verl_metrics.1.jsonl")


def test_verls_sft_dataset_trains_on_the_verl_worlds_assistant_turn(tmp_path):
    """verl 0.9.1's MultiTurnSFTDataset renders each turn alone and sets the loss mask on the assistant
    turns' tokens only: with the verl world's chat template the sequence is prompt + trace + EOS and the
    mask covers trace + EOS (a template without the assistant turn leaves an all-zero mask)."""
    import pandas as pd
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    from tgpo.mini.tokenizer import build_student_tokenizer

    tokenizer = build_student_tokenizer(for_verl=True)
    conversation = [
        {"role": "system", "content": "Reason step by step."},
        {"role": "user", "content": "320+126="},
        {"role": "assistant", "content": "6+0=06;#446."},
    ]
    pd.DataFrame({"messages": [conversation]}).to_parquet(tmp_path / "sft.parquet")
    config = OmegaConf.create(
        {"messages_key": "messages", "max_length": 64, "truncation": "right", "pad_mode": "no_padding"}
    )
    item = MultiTurnSFTDataset(str(tmp_path / "sft.parquet"), tokenizer, config)[0]
    prompt = tokenizer.encode("320+126=", add_special_tokens=False)
    response = tokenizer.encode("6+0=06;#446.", add_special_tokens=False) + [tokenizer.eos_token_id]
    assert item["input_ids"].tolist() == prompt + response
    assert item["loss_mask"].tolist() == [0] * len(prompt) + [1] * len(response)
