"""What makes each training method different: `MethodSpec`, built by `method_spec`.

A `MethodSpec` names the pieces of the objective library a method composes (advantage estimator, reward,
aggregation, policy loss, teacher signal, guidance, reverse-KL use) plus its default hyper-parameters
(each with its source) and its verl overrides. `tgpo.objectives.compose` turns a spec into a loss.

A leaf: the registrants (tgpo.methods.tgpo_family, the modules of `baselines`) import it to declare their
specs; tgpo.methods.registry collects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from tgpo.settings import HPARAMS

ADVANTAGE_ESTIMATORS = ("grpo", "drgrpo", "rloo", "none")
REWARD_SOURCES = ("verifier", "sequence_rkl", "verifier+implicit_prm", "none")
LOSS_AGG_MODES = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")
POLICY_LOSSES = ("clipped", "off_policy_mix", "nll")
TEACHER_SIGNALS = ("none", "argmax", "sampled_log_prob")
GUIDANCE_KINDS = ("none", "regulariser", "reward_shaping")
RKL_KINDS = ("none", "token_advantage", "regulariser")

# Every hyper-parameter a method may default or a config `hparams:` may override (tgpo.settings).
HPARAM_NAMES = tuple(setting.name for setting in HPARAMS)

# verl's compute_policy_loss_vanilla always applies the dual clip and asserts clip_ratio_c > 1. A recipe
# without one (clip_ratio_c None) is given this bound instead: verl clamps the log-ratio to [-20, 20], so
# the ratio never exceeds e^20 < 1e9 and the bound never binds (the same loss as no dual clip).
VERL_NO_DUAL_CLIP = 1e9

# The paper's shared setup (Section 4, Appendix B.1) and the authors' common recipe (helldog-star/TGPO
# exp_scripts_qwen2d5_math_7b/train_*_7b.sh, config/tasks.sh).
SHARED_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "lr": 1e-6,
        "clip_ratio_low": 0.2,
        "clip_ratio_high": 0.2,
        "clip_ratio_c": 3.0,
        "entropy_coef": 1e-3,
        "kl_coef": 0.0,
        "kl_estimator": "k3",
    }
)
SHARED_DEFAULTS_SOURCE: Mapping[str, str] = MappingProxyType(
    {
        "lr": "paper App. B.1: constant learning rate 1e-6 for all RL runs",
        "clip_ratio_low": "helldog-star/TGPO train scripts: PPO clip_ratio 0.2 (the default of their verl fork)",
        "clip_ratio_high": "helldog-star/TGPO train scripts: PPO clip_ratio 0.2 (the default of their verl fork)",
        "clip_ratio_c": "volcengine/verl verl/workers/config/actor.py: ActorConfig clip_ratio_c 3.0, the dual clip of "
        "verl/trainer/ppo/core_algos.py compute_policy_loss_vanilla",
        "entropy_coef": "helldog-star/TGPO exp_scripts_qwen2d5_math_7b/train_*_7b.sh: entropy_coeff 0.001 in every script",
        "kl_coef": "paper Section 3.2: no explicit KL penalty to the reference (use_kl_loss False)",
        "kl_estimator": "volcengine/verl verl/trainer/config/actor/actor.yaml: kl_loss_type low_var_kl (= k3); unused while "
        "kl_coef is 0",
    }
)


@dataclass(frozen=True)
class MethodSpec:
    """What makes a training method different; see docs/architecture.md for the field meanings."""

    name: str
    display_name: str
    summary: str
    advantage_estimator: str
    reward_source: str
    loss_agg_mode: str
    policy_loss: str
    teacher_signal: str
    guidance: str
    rkl: str
    needs_reference_model: bool
    needs_reward_model: bool
    uses_teacher_traces: bool
    rollouts: bool
    defaults: Mapping[str, Any] = field(default_factory=dict)
    defaults_source: Mapping[str, str] = field(default_factory=dict)
    verl_overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        choices = {
            "advantage_estimator": ADVANTAGE_ESTIMATORS,
            "reward_source": REWARD_SOURCES,
            "loss_agg_mode": LOSS_AGG_MODES,
            "policy_loss": POLICY_LOSSES,
            "teacher_signal": TEACHER_SIGNALS,
            "guidance": GUIDANCE_KINDS,
            "rkl": RKL_KINDS,
        }
        for attribute, allowed in choices.items():
            value = getattr(self, attribute)
            if value not in allowed:
                raise ValueError(f"MethodSpec {self.name!r}: {attribute}={value!r}, expected one of {allowed}")
        unknown = sorted(set(self.defaults) - set(HPARAM_NAMES))
        if unknown:
            raise ValueError(f"MethodSpec {self.name!r}: unknown hyper-parameters {unknown}; known: {HPARAM_NAMES}")
        unsourced = sorted(set(self.defaults) - set(self.defaults_source))
        if unsourced:
            raise ValueError(f"MethodSpec {self.name!r}: defaults without a source string: {unsourced}")
        if self.guidance != "none" and self.teacher_signal != "argmax":
            raise ValueError(f"MethodSpec {self.name!r}: guidance={self.guidance!r} needs teacher_signal='argmax'")
        if self.rkl != "none" and self.teacher_signal != "sampled_log_prob":
            raise ValueError(f"MethodSpec {self.name!r}: rkl={self.rkl!r} needs teacher_signal='sampled_log_prob'")
        unclipped = [
            key for key in ("clip_ratio_low", "clip_ratio_high") if key in self.defaults and self.defaults[key] is None
        ]
        if unclipped and self.policy_loss != "off_policy_mix":
            raise ValueError(
                f"MethodSpec {self.name!r}: {unclipped} None (no PPO clip) is only implemented by the "
                "off_policy_mix loss on verl (verl's own loss falls back to clip_ratio)"
            )
        for attribute in ("defaults", "defaults_source", "verl_overrides"):
            object.__setattr__(self, attribute, MappingProxyType(dict(getattr(self, attribute))))


def verl_overrides_from_fields(spec_fields: Mapping[str, Any]) -> dict[str, Any]:
    """The Hydra overrides every method shares, derived from its estimator and aggregation mode.

    Hyper-parameter values (lr, clip ratios, KL, ...) are not here: tgpo.verl.translate maps the
    resolved experiment's values (tgpo.config.resolve) onto verl keys, so a method default has one home.
    """
    overrides: dict[str, Any] = {"algorithm.use_kl_in_reward": False}
    estimator = spec_fields["advantage_estimator"]
    if estimator in ("grpo", "drgrpo"):
        overrides["algorithm.adv_estimator"] = "grpo"
        overrides["algorithm.norm_adv_by_std_in_grpo"] = estimator == "grpo"
    elif estimator == "rloo":
        overrides["algorithm.adv_estimator"] = "rloo"
    elif spec_fields["rollouts"]:
        # the advantage comes from elsewhere (verl's distillation loss or the plugin's advantage hook);
        # GRPO only keeps verl critic-free, without a std normalisation the method does not have
        overrides["algorithm.adv_estimator"] = "grpo"
        overrides["algorithm.norm_adv_by_std_in_grpo"] = False
    overrides["actor_rollout_ref.actor.loss_agg_mode"] = spec_fields["loss_agg_mode"]
    return overrides


def method_spec(
    name: str,
    display_name: str,
    summary: str,
    *,
    defaults: Mapping[str, Any] | None = None,
    defaults_source: Mapping[str, str] | None = None,
    verl_overrides: Mapping[str, Any] | None = None,
    **differences: Any,
) -> MethodSpec:
    """A MethodSpec that is GRPO with a verifier reward except for `differences`.

    `defaults` extend and override SHARED_DEFAULTS (same for sources); `verl_overrides` extend the
    overrides derived by `verl_overrides_from_fields`. A baseline module passes only what differs.
    """
    fields: dict[str, Any] = {
        "advantage_estimator": "grpo",
        "reward_source": "verifier",
        "loss_agg_mode": "token-mean",
        "policy_loss": "clipped",
        "teacher_signal": "none",
        "guidance": "none",
        "rkl": "none",
        "needs_reference_model": False,
        "needs_reward_model": False,
        "uses_teacher_traces": False,
        "rollouts": True,
    }
    unknown = sorted(set(differences) - set(fields))
    if unknown:
        raise TypeError(f"method_spec({name!r}): unknown MethodSpec fields {unknown}; known: {sorted(fields)}")
    fields.update(differences)
    merged_defaults = {**SHARED_DEFAULTS, **(defaults or {})}
    merged_sources = {**SHARED_DEFAULTS_SOURCE, **(defaults_source or {})}
    merged_overrides = {**verl_overrides_from_fields(fields), **(verl_overrides or {})}
    return MethodSpec(
        name=name,
        display_name=display_name,
        summary=summary,
        defaults=merged_defaults,
        defaults_source=merged_sources,
        verl_overrides=merged_overrides,
        **fields,
    )


def resolve_hparams(method: MethodSpec, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The method's defaults updated by `overrides` (a config's `hparams:`); unknown keys raise KeyError."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(HPARAM_NAMES))
    if unknown:
        raise KeyError(f"hparams for method {method.name!r}: unknown keys {unknown}; known: {', '.join(HPARAM_NAMES)}")
    return {**method.defaults, **overrides}


def with_overrides(method: MethodSpec, **changes: Any) -> MethodSpec:
    """A copy of `method` with some fields changed (tests, ablations); not registered."""
    return replace(method, **changes)
