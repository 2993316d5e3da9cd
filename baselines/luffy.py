"""LUFFY (Yan et al. 2025): one teacher trace per group, shaped by f(p) = p / (p + 0.1), no ratio, no clip.

Advantages over the whole mixed group (Dr.GRPO mean-only, as LUFFY's train.sh grpo_use_std=False);
token sums over a constant (loss_remove_token_mean=True); on-policy rows keep the clipped loss.
"""

from tgpo.methods import method_spec, register_method

LUFFY = register_method(
    method_spec(
        "luffy",
        "LUFFY",
        "Mixed-policy GRPO: 1 teacher trace per group with off-policy shaping f(p)=p/(p+gamma), gamma 0.1",
        advantage_estimator="drgrpo",
        loss_agg_mode="seq-mean-token-sum-norm",
        policy_loss="off_policy_mix",
        uses_teacher_traces=True,
        defaults={"luffy_gamma": 0.1, "off_policy_per_group": 1, "loss_scale_factor": 8192},
        defaults_source={
            "luffy_gamma": "LUFFY off_policy_reshape p_div_p_0.1 (notes 1.2)",
            "off_policy_per_group": "LUFFY train.sh n_prefix 1 of 8, prefix ratio 1.0 (notes 1.2)",
            "loss_scale_factor": "LUFFY loss_remove_token_mean=True: token sums over the max response length "
            "8192 (notes 1.2); use the run's max_new_tokens",
        },
        verl_overrides={
            "actor_rollout_ref.rollout.agent.default_agent_loop": "luffy_agent",
            "actor_rollout_ref.rollout.calculate_log_probs": False,
            "+luffy.gamma": 0.1,
            "+luffy.off_policy_per_group": 1,
            "trainer.v1.trainer_mode": "luffy_sync",
        },
    )
)
