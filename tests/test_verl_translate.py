"""Paper configs -> verl 0.9.1 Hydra overrides: compose verl's real ppo_trainer.yaml and validate (CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("verl")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from tgpo.config import load_config  # noqa: E402
from tgpo.verl.translate import (  # noqa: E402
    NOT_TRAINED_ON_VERL,
    check_divisibility,
    experiment_overrides,
    format_value,
)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = [ROOT / "config" / "paper-7b.yaml", ROOT / "config" / "paper-1.5b.yaml"]


def verl_config_dir() -> str:
    import verl

    return str(Path(verl.__file__).parent / "trainer" / "config")


def compose_and_validate(overrides: list[str]):
    """verl's own path: Hydra compose of ppo_trainer.yaml, validate_config, dataclass conversion."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    with initialize_config_dir(config_dir=verl_config_dir(), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    if cfg.distillation.enabled:  # checks the loss mode against verl's registry (our plugin's modes included)
        import tgpo.verl.register  # noqa: F401  (the entry point does this when tgpo-repro is pip-installed)

        omega_conf_to_dataclass(cfg.distillation.distillation_loss)
    return cfg


def trained_experiments(config):
    return [
        name
        for name, entry in config["experiments"].items()
        if not entry.get("eval_only") and entry["method"] not in NOT_TRAINED_ON_VERL
    ]


def test_methods_without_a_verl_path_are_exactly_the_known_ones():
    # shrinks as rkl_only / luffy get their verl trainer / agent loop
    assert set(NOT_TRAINED_ON_VERL) == {"sft", "prime_zero"}


@pytest.mark.parametrize("config_path", PAPER_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_paper_experiment_composes_and_validates(config_path):
    config = load_config(config_path)
    experiments = trained_experiments(config)
    assert experiments, f"{config_path}: no trained experiments"
    for experiment in experiments:
        overrides = experiment_overrides(config, experiment, seed=0)
        cfg = compose_and_validate(overrides)
        actor = cfg.actor_rollout_ref.actor
        dp = cfg.trainer.n_gpus_per_node * cfg.trainer.nnodes
        assert (actor.ppo_mini_batch_size * cfg.actor_rollout_ref.rollout.n) % dp == 0, experiment
        assert cfg.actor_rollout_ref.rollout.n == 8 and cfg.trainer.total_training_steps == 300, experiment
        assert cfg.data.max_response_length == 8192, experiment
        if cfg.distillation.enabled:
            assert cfg.trainer.n_gpus_per_node + cfg.distillation.n_gpus_per_node == config["training"]["n_gpus"]


@pytest.mark.parametrize("config_path", PAPER_CONFIGS[:1], ids=lambda p: p.name)
def test_paper_settings_reach_verl(config_path):
    config = load_config(config_path)
    cfg = compose_and_validate(experiment_overrides(config, "tgpo_annealing", seed=3))
    assert cfg.actor_rollout_ref.actor.optim.lr == pytest.approx(1e-6)
    assert cfg.actor_rollout_ref.actor.use_kl_loss is False and cfg.algorithm.use_kl_in_reward is False
    assert cfg.actor_rollout_ref.actor.calculate_entropy is True
    assert cfg.trainer.v1.trainer_mode == "tgpo_sync"
    assert cfg.distillation.distillation_loss.loss_mode == "tgpo_d" and cfg.distillation.distillation_loss.topk == 1
    assert cfg.tgpo.w_init == pytest.approx(2e-3) and cfg.tgpo.delta == pytest.approx(1e-5)
    assert cfg.data.seed == 3
    simplerl = compose_and_validate(experiment_overrides(config, "simplerl_zero", seed=0))
    assert simplerl.actor_rollout_ref.actor.use_kl_loss is True
    oat = compose_and_validate(experiment_overrides(config, "oat_zero", seed=0))
    assert oat.algorithm.norm_adv_by_std_in_grpo is False
    assert oat.actor_rollout_ref.actor.loss_agg_mode == "seq-mean-token-sum-norm"
    op = compose_and_validate(experiment_overrides(config, "op_distill", seed=0))
    assert op.distillation.distillation_loss.use_policy_gradient is True
    assert op.distillation.distillation_loss.use_task_rewards is False


def test_divisibility_that_verl_does_not_check_is_rejected():
    config = load_config(PAPER_CONFIGS[0])
    bad = dict(config, training={**config["training"], "teacher_gpus": 2, "prompts_per_step": 128})
    with pytest.raises(ValueError, match=r"% dp_size 6"):
        experiment_overrides(bad, "tgpo_annealing", seed=0)
    # verl's own validation accepts it (the assert fires only inside TrainingWorker at run time)
    config_ok = dict(bad, training={**bad["training"], "prompts_per_step": 96, "updates_per_step": 1})
    compose_and_validate(experiment_overrides(config_ok, "tgpo_annealing", seed=0))
    with pytest.raises(ValueError, match="ppo_mini_batch_size"):
        check_divisibility(
            {
                "trainer.n_gpus_per_node": 6,
                "trainer.nnodes": 1,
                "actor_rollout_ref.rollout.n": 8,
                "actor_rollout_ref.actor.ppo_mini_batch_size": 64,
                "data.train_batch_size": 128,
            },
            "x",
        )


def test_format_value():
    assert format_value(None) == "null" and format_value(True) == "true" and format_value(2e-3) == "0.002"
    assert format_value(["console", "file"]) == "[console,file]"
    assert format_value("a b") == "'a b'" and format_value("Qwen/Qwen3-30B-A3B") == "Qwen/Qwen3-30B-A3B"
