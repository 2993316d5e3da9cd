"""Translate one experiment of a paper config (config/paper-*.yaml) into verl 0.9.1 Hydra overrides.

Shared paper settings (Section 4, App. B.1): lr 1e-6 constant, K = 8 rollouts per prompt, 300 steps,
max response 8192 tokens, no KL to a reference unless the method needs one. Method specifics come from
the method's `MethodSpec.verl_overrides` (tgpo.methods), its hyper-parameters and engine settings
(resolved by `tgpo.config.resolve`, the same values the local engine uses) are mapped onto verl keys here, and the teacher pool is sized from
`training.teacher_gpus`. Divisibility constraints verl checks only at run time are checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tgpo import config as tgpo_config
from tgpo.config.resolve import resolve_experiment
from tgpo.methods import VERL_NO_DUAL_CLIP, MethodSpec, get_method
from tgpo.results.layout import ResultsLayout

# Methods the verl engine does not train (each with what to do instead).
NOT_TRAINED_ON_VERL = {
    "sft": "SFT runs with verl's SFT trainer (torchrun -m verl.trainer.sft_trainer), not main_ppo; "
    "see tgpo.verl.translate.sft_overrides",
    "prime_zero": "PRIME-Zero is evaluated from its released checkpoint, as the paper did "
    "(an eval_only experiment with the hub id)",
}
ACTOR = "actor_rollout_ref.actor."
ROLLOUT = "actor_rollout_ref.rollout."
TEACHER = "distillation.teacher_models.teacher_model."
KL_LOSS_TYPES = {"k1": "kl", "k2": "mse", "k3": "low_var_kl"}  # our estimator names -> verl's kl_loss_type
TEACHER_TP = 2  # tensor parallel size of one teacher vLLM replica (30B-A3B bf16 ~ 61 GB over 2 GPUs)
# The attention of verl's FSDP actor (and KL reference), named on every path, GPU included. verl 0.9.1
# defaults to flash_attention_2 (verl/workers/config/model.py, HFModelConfig: override_config's
# attn_implementation, else "flash_attention_2"), which needs the flash-attn package; PyPI has only its
# source (a CUDA build of about an hour), and the prebuilt wheel verl's own install routes to for torch
# 2.11 / CUDA 13 is a cp312 build on a third-party release page (verl-project/verl pyproject.toml,
# `flash-attn-cu130torch211`; docs/start/install.rst), not installable on our Python 3.11 environment nor
# on an offline compute node. We choose PyTorch's SDPA, which needs nothing installed. Correctness with
# verl's padding-free batches (use_remove_padding: sequences packed into one row, attention_mask None):
# transformers builds a block-diagonal causal mask from the position ids (transformers 5.x
# masking_utils.find_packed_sequence_indices), so no token attends across sequences
# (tests/test_verl_translate.py checks it on a tiny Qwen2). Cost: SDPA runs its memory-efficient kernel with
# that dense mask over each packed micro-batch (<= max_prompt_length + max_response_length tokens) instead
# of flash-attn's per-sequence varlen kernel: attention over the cross-sequence blocks is computed and
# masked. For the 7B student at 9,216 tokens attention is ~12 % of the actor's forward/backward FLOPs, so
# at most ~1.1-1.3x the actor's update time when several sequences share a micro-batch, not the rollout
# (vLLM brings its own attention kernels). Not measured: no GPU has run this path.
ATTN_IMPLEMENTATION = "sdpa"
# Model settings of every RL experiment (docs/verl-0.9.md section 2): the entropy bonus (entropy_coeff) reads
# the entropy, which also keeps verl's log-prob cross-entropy off its in-place backward; fused kernels never
# materialise the logits on FSDP, where TGPO's teacher-token hook reads them.
MODEL_SETTINGS = {ACTOR + "calculate_entropy": True, "actor_rollout_ref.model.use_fused_kernels": False}
# What verl keeps of its saves (tgpo.verl.checkpoint_retention): the last save whole; with
# checkpoint_choice: validation or test also every save's model shards.
KEEP_LAST_CALLBACK = "tgpo.verl.retention_callback.KeepLastSave"
CHECKPOINT_CALLBACK = "tgpo.verl.retention_callback.KeepModelsDropOldOptimizer"
FILE_LOGGERS = ["console", "file"]  # file: verl's metrics, which tgpo.verl.run turns into metrics.jsonl


def trainer_loggers(training: Mapping) -> list[str]:
    """verl's trainer.logger: console and file (metrics.jsonl is made from it) plus `training.loggers`."""
    return list(dict.fromkeys(FILE_LOGGERS + list(training.get("loggers") or [])))


def checkpoint_overrides(training: Mapping, experiment: str) -> dict[str, Any]:
    """Retention and validation for the checkpoint choice (App. B.3): `last` keeps the last save (earlier
    ones removed after each save); `validation` keeps every save's model, drops older optimizer state, and
    validates at every save so each kept checkpoint has a score; `test` keeps every save's model (each is
    exported and evaluated on the benchmarks). verl's own rotation stays off (null)."""
    choice = training.get("checkpoint_choice") or "last"
    if choice == "last":
        return {"trainer.max_actor_ckpt_to_keep": None, "trainer.checkpoint_callback_class": KEEP_LAST_CALLBACK}
    if choice == "test":
        return {"trainer.max_actor_ckpt_to_keep": None, "trainer.checkpoint_callback_class": CHECKPOINT_CALLBACK}
    if choice == "validation":
        return {
            "trainer.max_actor_ckpt_to_keep": None,
            "trainer.checkpoint_callback_class": CHECKPOINT_CALLBACK,
            "trainer.test_freq": int(training["save_every"]),
        }
    raise ValueError(
        f"experiment {experiment!r}: training.checkpoint_choice {choice!r}: expected last, validation or test"
    )


def format_value(value: Any) -> str:
    """A Hydra override value: null, true/false, numbers as repr, lists as [a,b], strings quoted if needed."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    text = str(value)
    if any(char in text for char in " ,[]{}()=:'\"\\") or text == "":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return text


def model_location(config: Mapping, key: str) -> str:
    """Where verl loads model `key` (tgpo.config.model_location); an unknown key is an error here."""
    models = config.get("models", {})
    if key not in models:
        raise KeyError(f"config {config.get('name')!r}: unknown model key {key!r}; known: {sorted(models)}")
    return tgpo_config.model_location(config, key)


def shared_overrides(config: Mapping, experiment: str, training: Mapping, seed: int) -> dict[str, Any]:
    """Data, batch, rollout, trainer and checkpoint settings every RL experiment shares."""
    prompts = int(training["prompts_per_step"])
    updates = int(training["updates_per_step"])
    if prompts % updates:
        raise ValueError(
            f"experiment {experiment!r}: prompts_per_step {prompts} not divisible by updates_per_step {updates}"
        )
    max_response = int(training["max_new_tokens"])
    max_prompt = int(training["max_prompt_length"])
    run = ResultsLayout.of(config).run(experiment, seed)
    return {
        # verl's default estimator is GAE (a critic); no method here has a critic. A spec may replace it.
        "algorithm.adv_estimator": "grpo",
        "critic.enable": False,
        # App. B.1: every RL experiment trains on the curated set (its trace is LUFFY's target)
        "data.train_files": str(tgpo_config.verl_train_files(config, experiment)),
        "data.val_files": str(tgpo_config.verl_val_path(config)),
        "data.train_batch_size": prompts,
        "data.max_prompt_length": max_prompt,
        "data.max_response_length": max_response,
        "data.filter_overlong_prompts": True,
        "data.seed": seed,
        ACTOR + "ppo_mini_batch_size": prompts // updates,
        ACTOR + "ppo_epochs": 1,
        ACTOR + "use_dynamic_bsz": True,
        ACTOR + "ppo_max_token_len_per_gpu": max_prompt + max_response,
        ACTOR + "grad_clip": float(training["grad_clip"]),
        ACTOR + "optim.lr": float(training["lr"]),
        ACTOR + "optim.lr_warmup_steps": int(training["warmup_steps"]),
        ACTOR + "optim.weight_decay": float(training["weight_decay"]),
        **MODEL_SETTINGS,
        ACTOR + "data_loader_seed": seed,
        "actor_rollout_ref.model.use_remove_padding": True,
        "+actor_rollout_ref.model.override_config.attn_implementation": ATTN_IMPLEMENTATION,
        ROLLOUT + "name": "vllm",
        ROLLOUT + "n": int(training["group_size"]),
        ROLLOUT + "temperature": float(training["temperature"]),
        ROLLOUT + "max_model_len": max_prompt + max_response,
        ROLLOUT + "log_prob_max_token_len_per_gpu": max_prompt + max_response,
        "trainer.total_training_steps": int(training["steps"]),
        "trainer.n_gpus_per_node": int(training["n_gpus"]) - int(training["teacher_gpus"]),
        "trainer.nnodes": 1,
        "trainer.save_freq": int(training["save_every"]),
        "trainer.test_freq": -1,
        "trainer.val_before_train": False,
        "trainer.logger": trainer_loggers(training),
        "trainer.project_name": config["name"],
        "trainer.experiment_name": f"{experiment}-seed{seed}",
        "trainer.default_local_dir": str(run.checkpoints),  # the run folder is claimed first (tgpo.results.run_guard)
        "trainer.resume_mode": "auto",
        **checkpoint_overrides(training, experiment),
    }


def reward_overrides(training: Mapping) -> dict[str, Any]:
    """The training reward: our verifier (`training.verifier`) through verl's custom_reward_function, loaded
    by verl from this checkout's tgpo/verl/reward.py (an absolute path, resolved here)."""
    from tgpo.verl import reward

    verifier = training.get("verifier", "math_verify")
    reward.grading_rule(verifier)  # an unknown verifier fails here, not at verl's first step
    return {
        "reward.custom_reward_function.path": reward.module_path(),
        "reward.custom_reward_function.name": reward.FUNCTION_NAME,
        "+reward.custom_reward_function.reward_kwargs.verifier": verifier,
    }


def hparam_overrides(method: MethodSpec, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The experiment's resolved hyper-parameters (tgpo.config.resolve) on verl keys."""
    out: dict[str, Any] = {}
    simple = {
        "lr": ACTOR + "optim.lr",
        "clip_ratio_low": ACTOR + "clip_ratio_low",
        "clip_ratio_high": ACTOR + "clip_ratio_high",
        "clip_ratio_c": ACTOR + "clip_ratio_c",
        "entropy_coef": ACTOR + "entropy_coeff",
        "loss_scale_factor": ACTOR + "loss_scale_factor",
    }
    for ours, theirs in simple.items():
        if hparams.get(ours) is not None:
            out[theirs] = hparams[ours]
    if method.rollouts and hparams.get("clip_ratio_c") is None:  # the recipe has no dual clip (Oat-Zero, LUFFY)
        out[ACTOR + "clip_ratio_c"] = VERL_NO_DUAL_CLIP
    out[ACTOR + "use_kl_loss"] = float(hparams.get("kl_coef") or 0.0) > 0
    if out[ACTOR + "use_kl_loss"]:
        out[ACTOR + "kl_loss_coef"] = hparams["kl_coef"]
        out[ACTOR + "kl_loss_type"] = KL_LOSS_TYPES.get(hparams["kl_estimator"], hparams["kl_estimator"])
    if method.guidance == "regulariser":
        out["+tgpo.w_init"] = float(hparams["w_init"])
        out["+tgpo.delta"] = float(hparams["delta"])
    if method.guidance == "reward_shaping":
        out["+tgpo.shaping_lambda"] = float(hparams["shaping_lambda"])
        out["+tgpo.delta"] = float(hparams.get("delta") or 0.0)
        out["+tgpo.shaping_signal"] = hparams.get("shaping_signal", "log_prob")
    if method.rkl == "regulariser" and hparams.get("rkl_coef") is not None:
        out["distillation.distillation_loss.distillation_loss_coef"] = float(hparams["rkl_coef"])
    if method.rkl == "regulariser" and hparams.get("rkl_estimator") is not None:
        out["distillation.distillation_loss.loss_mode"] = hparams["rkl_estimator"]
    if method.policy_loss == "off_policy_mix":
        for key in ("luffy_gamma", "off_policy_per_group"):
            if hparams.get(key) is not None:
                out["+luffy." + key.removeprefix("luffy_")] = hparams[key]
        # LUFFY's loss_remove_clip: clip ratios None (the recipe) -> the plugin's loss clips nothing
        out["+luffy.remove_clip"] = hparams.get("clip_ratio_low") is None and hparams.get("clip_ratio_high") is None
    return out


def teacher_overrides(config: Mapping, experiment: str, teacher_key: str, training: Mapping) -> dict[str, Any]:
    """verl's built-in vLLM teacher pool on its own GPUs (verl 0.9 has no colocated teacher)."""
    teacher_gpus = int(training["teacher_gpus"])
    if teacher_gpus < 1:
        raise ValueError(f"experiment {experiment!r}: has a teacher but training.teacher_gpus is {teacher_gpus}")
    tensor_parallel = min(TEACHER_TP, teacher_gpus)
    if teacher_gpus % tensor_parallel:
        raise ValueError(
            f"experiment {experiment!r}: teacher_gpus {teacher_gpus} not a multiple of TP {tensor_parallel}"
        )
    max_len = int(training["max_prompt_length"]) + int(training["max_new_tokens"]) + 1
    return {
        "distillation.enabled": True,
        "distillation.n_gpus_per_node": teacher_gpus,
        "distillation.nnodes": 1,
        TEACHER + "model_path": model_location(config, teacher_key),
        TEACHER + "inference.name": "vllm",
        TEACHER + "inference.tensor_model_parallel_size": tensor_parallel,
        TEACHER + "inference.gpu_memory_utilization": 0.85,
        TEACHER + "inference.max_model_len": max_len,
    }


def distillation_defaults(method: MethodSpec) -> dict[str, Any]:
    """Keys whose YAML and dataclass defaults differ in verl 0.9.1 (docs/verl-0.9.md section 3): set explicitly."""
    loss = "distillation.distillation_loss."
    out = {
        loss + "loss_max_clamp": None,
        loss + "log_prob_min_clamp": None,
        loss + "use_task_rewards": True,
        loss + "distillation_loss_coef": 1.0,
        loss + "use_policy_gradient": False,
    }
    out[loss + "topk"] = 1  # argmax for TGPO; unused by the estimator modes (sampled-token log-prob)
    return out


def check_divisibility(overrides: Mapping[str, Any], experiment: str) -> None:
    """Constraints verl 0.9.1 asserts only at run time (TrainingWorker.train_mini_batch) or in vLLM."""
    dp_size = int(overrides["trainer.n_gpus_per_node"]) * int(overrides["trainer.nnodes"])
    n = int(overrides[ROLLOUT + "n"])
    mini = int(overrides[ACTOR + "ppo_mini_batch_size"])
    batch = int(overrides["data.train_batch_size"])
    errors = []
    if dp_size < 1:
        errors.append(f"student GPUs {dp_size} < 1 (n_gpus minus teacher_gpus)")
    elif (mini * n) % dp_size:
        errors.append(f"(ppo_mini_batch_size {mini} * n {n}) % dp_size {dp_size} != 0")
    if dp_size >= 1 and (batch * n) % dp_size:
        errors.append(f"(train_batch_size {batch} * n {n}) % dp_size {dp_size} != 0")
    if batch % mini:
        errors.append(f"train_batch_size {batch} not a multiple of ppo_mini_batch_size {mini}")
    tp = int(overrides.get(ROLLOUT + "tensor_model_parallel_size", 1))
    if dp_size >= 1 and dp_size % tp:
        errors.append(f"student GPUs {dp_size} not a multiple of rollout TP {tp}")
    if errors:
        raise ValueError(f"experiment {experiment!r}: " + "; ".join(errors))


def experiment_overrides(config: dict, experiment: str, seed: int) -> list[str]:
    """Hydra overrides (`key=value` strings) for `python -m verl.trainer.main_ppo` of one experiment."""
    resolved = resolve_experiment(config, experiment, seed)  # unknown and eval_only experiments raise here
    entry = config["experiments"][experiment]
    method = get_method(resolved.method)
    if method.name in NOT_TRAINED_ON_VERL:
        raise ValueError(f"experiment {experiment!r} (method {method.name}): {NOT_TRAINED_ON_VERL[method.name]}")
    training, hparams = resolved.training, resolved.hparams

    overrides: dict[str, Any] = {"actor_rollout_ref.model.path": model_location(config, entry["student"])}
    overrides.update(shared_overrides(config, experiment, training, seed))
    overrides.update(reward_overrides(training))
    if method.teacher_signal != "none":
        if not entry.get("teacher"):
            raise ValueError(f"experiment {experiment!r}: method {method.name} needs a teacher")
        overrides.update(teacher_overrides(config, experiment, entry["teacher"], training))
        overrides.update(distillation_defaults(method))
    else:
        overrides["trainer.n_gpus_per_node"] = int(training["n_gpus"])  # no teacher pool: all GPUs train
    overrides.update(method.verl_overrides)
    overrides.update(hparam_overrides(method, hparams))
    if method.needs_reference_model and not overrides.get(ACTOR + "use_kl_loss"):
        raise ValueError(f"experiment {experiment!r}: {method.name} needs a reference model but kl_coef is 0")
    check_divisibility(overrides, experiment)
    return [f"{key}={format_value(value)}" for key, value in overrides.items()]


# App. B.1, SFT ("the training protocols established by OpenR1"): 3 epochs, global batch 64, lr 5e-5,
# warmup ratio 0.1, maximum sequence length 16,384. Epochs and lr resolve like every hyper-parameter
# (experiment > config training > method default); the global batch is the experiment's
# prompts_per_step (traces per optimizer step, as on the local engine).
SFT_WARMUP_RATIO = 0.1
SFT_MAX_LENGTH = 16384


def sft_overrides(config: dict, experiment: str, seed: int) -> list[str]:
    """Hydra overrides for verl 0.9.1's SFT trainer (`verl.trainer.sft_trainer`, config sft_trainer_engine)."""
    entry = config["experiments"][experiment]
    resolved = resolve_experiment(config, experiment, seed)
    values = {
        "data.train_files": str(tgpo_config.verl_train_files(config, experiment)),
        "data.val_files": None,  # App. B.1 reports no SFT validation; verl's would re-read every trace
        "data.messages_key": "messages",
        "data.train_batch_size": int(resolved.value("prompts_per_step")),
        "data.max_length": SFT_MAX_LENGTH,
        "data.max_token_len_per_gpu": SFT_MAX_LENGTH,  # dynamic batching: one 16k trace fits a micro-batch
        "data.truncation": "right",
        "model.path": model_location(config, entry["student"]),
        "+model.override_config.attn_implementation": ATTN_IMPLEMENTATION,
        "optim.lr": float(resolved.value("lr")),
        "optim.lr_warmup_steps_ratio": SFT_WARMUP_RATIO,
        "trainer.total_epochs": int(resolved.value("sft_epochs")),
        "trainer.n_gpus_per_node": int(resolved.value("n_gpus")),
        "trainer.nnodes": 1,
        "trainer.save_freq": int(resolved.value("save_every")),
        "trainer.max_ckpt_to_keep": 1,  # the last save resumes; it is the one exported (no choice for SFT)
        "trainer.logger": trainer_loggers(resolved.training),  # file: VERL_FILE_LOGGER_PATH (tgpo.verl.run)
        "trainer.project_name": config["name"],
        "trainer.experiment_name": f"{experiment}-seed{seed}",
        "trainer.default_local_dir": str(resolved.run.checkpoints),
        "trainer.resume_mode": "auto",
        "trainer.seed": seed,
    }
    return [f"{key}={format_value(value)}" for key, value in values.items()]
