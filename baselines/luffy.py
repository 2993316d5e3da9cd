"""LUFFY (Yan et al. 2025): one teacher trace per group, shaped by f(p) = p / (p + 0.1), no clipping anywhere.

Advantages over the whole mixed group (Dr.GRPO mean-only, as LUFFY's train.sh grpo_use_std=False);
token sums over a constant (loss_remove_token_mean=True); loss_remove_clip=True: on-policy rows use the
unclipped importance-weighted loss -A * rho (no PPO clip, no dual clip), off-policy rows -A * f(p).
Recipe: ElliottYan/LUFFY exp_scripts/train.sh; loss: luffy/verl/verl/mix_src/mix_core_alg.py
(compute_token_on_off_policy_loss).
"""

from tgpo.methods.spec import method_spec

_RECIPE = "ElliottYan/LUFFY exp_scripts/train.sh"
_NO_CLIP = f"{_RECIPE}: loss_remove_clip=True, no clipping of on-policy rows (mix_core_alg.py)"

LUFFY = method_spec(
    "luffy",
    "LUFFY",
    "Mixed-policy GRPO: 1 teacher trace per group with off-policy shaping f(p)=p/(p+gamma), gamma 0.1; no clipping",
    advantage_estimator="drgrpo",
    loss_agg_mode="seq-mean-token-sum-norm",
    policy_loss="off_policy_mix",
    uses_teacher_traces=True,
    defaults={
        "luffy_gamma": 0.1,
        "off_policy_per_group": 1,
        "loss_scale_factor": 8192,
        "clip_ratio_low": None,
        "clip_ratio_high": None,
        "clip_ratio_c": None,
    },
    defaults_source={
        "luffy_gamma": f"{_RECIPE}: off_policy_reshape=p_div_p_0.1",
        "off_policy_per_group": f"{_RECIPE}: n_prefix=1 of rollout.n=8, prefix ratio 1.0",
        "loss_scale_factor": f"{_RECIPE}: loss_remove_token_mean=True, token sums over the max response "
        "length 8192 (mix_core_alg.py divides by eos_mask.shape[-1]); use the run's max_new_tokens",
        "clip_ratio_low": _NO_CLIP,
        "clip_ratio_high": _NO_CLIP,
        "clip_ratio_c": f"{_RECIPE}: no dual clip (mix_core_alg.py has none)",
    },
    verl_overrides={
        "actor_rollout_ref.rollout.agent.default_agent_loop": "luffy_agent",
        "actor_rollout_ref.rollout.calculate_log_probs": False,
        "trainer.v1.trainer_mode": "luffy_sync",
    },
)

METHODS = (LUFFY,)
