"""What the GPU path's verl overrides say (issue 18): the attention implementation (item 1), what verl keeps
of its saves and the disk that takes (item 2), and the trackers (item 15). verl's own config composes
them (tests/test_verl_translate.py composes every paper experiment)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("verl")

import torch  # noqa: E402

from tgpo.config import load_config  # noqa: E402
from tgpo.verl import checkpoint_retention as retention  # noqa: E402
from tgpo.verl.cpu.settings import parse_overrides  # noqa: E402
from tgpo.verl.translate import ATTN_IMPLEMENTATION, experiment_overrides, sft_overrides  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
PAPER_7B = ROOT / "config" / "paper-7b.yaml"
PAPER_1P5B = ROOT / "config" / "paper-1.5b.yaml"


def overrides(config, experiment, sft=False) -> dict:
    return parse_overrides((sft_overrides if sft else experiment_overrides)(config, experiment, 0))


# ------------------------------------------------------------------------------------------------
# item 1: attention
# ------------------------------------------------------------------------------------------------


def test_gpu_path_names_sdpa_for_the_actor_and_the_sft_trainer():
    """verl 0.9.1 would otherwise load the actor with flash_attention_2, a package we do not install."""
    config = load_config(PAPER_7B)
    assert ATTN_IMPLEMENTATION == "sdpa"
    assert overrides(config, "tgpo_annealing")["+actor_rollout_ref.model.override_config.attn_implementation"] == "sdpa"
    assert overrides(config, "sft", sft=True)["+model.override_config.attn_implementation"] == "sdpa"


def test_verl_model_config_loads_the_named_attention(tmp_path):
    """verl's HFModelConfig reads override_config.attn_implementation (else flash_attention_2)."""
    from transformers import Qwen2Config
    from verl.workers.config.model import HFModelConfig

    Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        architectures=["Qwen2ForCausalLM"],
    ).save_pretrained(tmp_path)
    config = HFModelConfig(
        path=str(tmp_path), load_tokenizer=False, override_config={"attn_implementation": ATTN_IMPLEMENTATION}
    )
    assert config.hf_config._attn_implementation == "sdpa"


def test_sdpa_keeps_packed_sequences_apart():
    """verl's padding-free batches (use_remove_padding) pack sequences into one row with restarting
    position ids and no attention mask; under SDPA each sequence's logits equal those of running it alone."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        attn_implementation=ATTN_IMPLEMENTATION,
    )
    model = Qwen2ForCausalLM(config).eval()
    first, second = torch.randint(0, 97, (1, 7)), torch.randint(0, 97, (1, 5))
    packed_ids = torch.cat([first, second], dim=1)
    position_ids = torch.cat([torch.arange(7), torch.arange(5)]).unsqueeze(0)
    with torch.no_grad():
        packed = model(input_ids=packed_ids, position_ids=position_ids, use_cache=False).logits
        alone = [model(input_ids=ids, use_cache=False).logits for ids in (first, second)]
    torch.testing.assert_close(packed[:, :7], alone[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(packed[:, 7:], alone[1], rtol=1e-4, atol=1e-4)


def test_nothing_installs_or_needs_flash_attn():
    """The choice needs no package: neither the [gpu] extra nor environment.yml names flash-attn, and the
    environment file does not call it optional (verl would need it without our override)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    environment = (ROOT / "environment.yml").read_text()
    gpu_extra = pyproject.split("gpu = [", 1)[1].split("]", 1)[0]
    assert "flash" not in gpu_extra.lower()
    assert "flash-attn is optional" not in environment
    assert "sdpa" in environment.lower()


# ------------------------------------------------------------------------------------------------
# item 2: what verl keeps, and the disk
# ------------------------------------------------------------------------------------------------


def test_runs_keep_one_save_unless_they_choose_among_them():
    config = load_config(PAPER_7B)
    plain = overrides(config, "tgpo_annealing")
    assert plain["trainer.max_actor_ckpt_to_keep"] == "null"  # verl's rotation forgets earlier attempts' saves
    assert plain["trainer.checkpoint_callback_class"] == retention.KEEP_LAST_FQN
    assert plain["trainer.test_freq"] == -1
    assert overrides(config, "sft", sft=True)["trainer.max_ckpt_to_keep"] == 1
    chooser = overrides(load_config(PAPER_1P5B), "kdrl")  # checkpoint_choice: test (every save is evaluated)
    assert chooser["trainer.max_actor_ckpt_to_keep"] == "null"
    assert chooser["trainer.checkpoint_callback_class"] == retention.CALLBACK_FQN
    assert chooser["trainer.test_freq"] == -1 and chooser["trainer.save_freq"] == 10
    validating = load_config(PAPER_1P5B)
    validating["experiments"]["kdrl"]["training"]["checkpoint_choice"] = "validation"
    chooser = overrides(validating, "kdrl")
    assert chooser["trainer.checkpoint_callback_class"] == retention.CALLBACK_FQN
    assert chooser["trainer.test_freq"] == chooser["trainer.save_freq"] == 10  # a validation score at every save


@pytest.mark.parametrize("fqn", [retention.CALLBACK_FQN, retention.KEEP_LAST_FQN])
def test_callbacks_are_classes_verl_loads(fqn):
    from verl.trainer.ppo.checkpoint_callback import CheckpointCallback
    from verl.utils.import_utils import load_class_from_fqn

    assert issubclass(load_class_from_fqn(fqn, "CheckpointCallback"), CheckpointCallback)


def test_keep_last_removes_earlier_saves_of_every_attempt(tmp_path):
    """verl's own rotation (max_actor_ckpt_to_keep: 1) remembers only the saves of the running attempt; the
    callback also removes the resume point of an earlier attempt once a newer save is complete."""
    from verl.utils.import_utils import load_class_from_fqn

    for step in (50, 100, 150):
        (tmp_path / f"global_step_{step}" / "actor").mkdir(parents=True)
        (tmp_path / f"global_step_{step}" / "data.pt").write_bytes(b"x")
    callback = load_class_from_fqn(retention.KEEP_LAST_FQN, "CheckpointCallback")(config=None)
    callback.on_save(trainer=None, global_step=150, checkpoint_dir=str(tmp_path / "global_step_150"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["global_step_150"]


def test_callback_drops_the_optimizer_state_of_earlier_saves(tmp_path):
    from verl.utils.import_utils import load_class_from_fqn

    for step in (50, 100, 150):
        actor = tmp_path / f"global_step_{step}" / "actor"
        actor.mkdir(parents=True)
        for name in (
            "model_world_size_4_rank_0.pt",
            "optim_world_size_4_rank_0.pt",
            "extra_state_world_size_4_rank_0.pt",
            "fsdp_config.json",
        ):
            (actor / name).write_bytes(b"x")
    callback = load_class_from_fqn(retention.CALLBACK_FQN, "CheckpointCallback")(config=None)
    callback.on_save(trainer=None, global_step=150, checkpoint_dir=str(tmp_path / "global_step_150"))
    for step in (50, 100):
        left = sorted(p.name for p in (tmp_path / f"global_step_{step}" / "actor").iterdir())
        assert left == ["fsdp_config.json", "model_world_size_4_rank_0.pt"]
    assert len(list((tmp_path / "global_step_150" / "actor").iterdir())) == 4  # the last save resumes


def test_disk_per_run_for_the_7b_student():
    """Qwen2.5-Math-7B, 7.62e9 parameters, 300 steps, a save every 50: 91 GB a save; 549 GB if verl kept
    all six; 107 GB kept by a run (one save + the bf16 export); 259 GB when every model is kept."""
    params = 7.62e9
    last = retention.run_disk_bytes(params, 300, 50, keep_every_model=False)
    every = retention.run_disk_bytes(params, 300, 50, keep_every_model=True)
    assert round(last["save"] / 1e9) == 91 and last["saves"] == 6
    assert round(6 * last["save"] / 1e9) == 549
    assert round(last["final"] / 1e9) == 107 and round(last["peak"] / 1e9) == 183
    assert round(every["final"] / 1e9) == 259


def test_disk_of_a_run_whose_saves_are_all_evaluated():
    """paper-1.5b's KDRL (1.54e9 parameters, a save every 10 steps, checkpoint_choice: test): every save's
    fp32 model is kept and each earlier save also exported in bf16 (3.1 GB each)."""
    params = 1.54e9
    for steps, kept, exported in ((60, 52, 68), (300, 200, 290)):
        assert round(retention.run_disk_bytes(params, steps, 10, keep_every_model=True)["final"] / 1e9) == kept
        both = retention.run_disk_bytes(params, steps, 10, keep_every_model=True, export_every_save=True)
        assert round(both["final"] / 1e9) == exported


# ------------------------------------------------------------------------------------------------
# item 15: trackers
# ------------------------------------------------------------------------------------------------


def test_training_loggers_reach_verl_beside_the_file_logger():
    config = load_config(PAPER_7B)
    assert overrides(config, "grpo_pp")["trainer.logger"] == "[console,file]"
    config["training"]["loggers"] = ["wandb", "tensorboard", "console"]
    assert overrides(config, "grpo_pp")["trainer.logger"] == "[console,file,wandb,tensorboard]"
    assert overrides(config, "sft", sft=True)["trainer.logger"] == "[console,file,wandb,tensorboard]"


def test_tensorboard_writes_into_the_run_folder(tmp_path):
    from tgpo.verl.run import tracker_environment

    assert tracker_environment(tmp_path, {"loggers": ["tensorboard"]}) == {
        "TENSORBOARD_DIR": str(tmp_path / "tensorboard")
    }
    assert tracker_environment(tmp_path, {}) == {}


def test_loggers_setting_is_validated_by_the_schema(tmp_path):
    import yaml

    from tgpo.config import ConfigError

    config = yaml.safe_load(PAPER_7B.read_text())
    config["training"]["loggers"] = ["wandb", "neptune"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="loggers"):
        load_config(path)


def test_loggers_do_not_change_the_run_hash():
    from tgpo.config.resolve import resolve_experiment

    config = load_config(PAPER_7B)
    before = resolve_experiment(config, "grpo_pp", 0).run_hash
    config["training"]["loggers"] = ["tensorboard"]
    assert resolve_experiment(config, "grpo_pp", 0).run_hash == before


def test_local_engine_trackers(tmp_path, capsys):
    from tgpo.engine.loggers import Trackers

    trackers = Trackers(["console", "tensorboard"], "tgpo", "grpo_pp-seed0", tmp_path)
    trackers.log({"step": 1, "critic/score/mean": 0.5, "actor/grad_norm": 1.5}, 1)
    trackers.close()
    assert "step:1" in capsys.readouterr().out
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    with pytest.raises(ValueError, match="training.loggers: unknown logger 'neptune'"):
        Trackers(["neptune"], "tgpo", "x", tmp_path)
