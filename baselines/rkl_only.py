"""RKL-only (Section 2.3, Figure 2 / 4): the sequence reward r(y) = -sum_t (log pi_s - log pi_T) is the sole reward.

The reward replaces the verifier's; group advantages (GRPO) and the clipped loss are unchanged.
"""

from tgpo.methods import method_spec, register_method

RKL_ONLY = register_method(
    method_spec(
        "rkl_only",
        "RKL",
        "GRPO whose only reward is the sequence reverse-KL reward -sum_t log(pi_s / pi_T) (Section 2.3)",
        reward_source="sequence_rkl",
        teacher_signal="sampled_log_prob",
        verl_overrides={
            "distillation.enabled": True,
            "distillation.distillation_loss.loss_mode": "rkl_reward",
            "distillation.distillation_loss.use_task_rewards": True,
            "distillation.distillation_loss.use_policy_gradient": False,
            "distillation.distillation_loss.distillation_loss_coef": 0.0,
            "trainer.v1.trainer_mode": "rkl_reward_sync",
        },
    )
)
