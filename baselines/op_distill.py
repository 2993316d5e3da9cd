"""OP Distill (Lu & Thinking Machines 2025): the per-token RKL log-ratio is the advantage, no task reward.

A_t = -(log pi_student(y_t) - log pi_teacher(y_t)), detached (kl_penalty_coef 1, discount 0), used with the
clipped loss of Eq. 4.
"""

from tgpo.methods import method_spec, register_method

OP_DISTILL = register_method(
    method_spec(
        "op_distill",
        "OP Distill",
        "Clipped loss with the per-token reverse-KL log-ratio -(log pi_s - log pi_T) as advantage; no verifier reward",
        advantage_estimator="none",
        reward_source="none",
        teacher_signal="sampled_log_prob",
        rkl="token_advantage",
        defaults={"rkl_coef": 1.0},
        defaults_source={
            "rkl_coef": "tinker-cookbook train_on_policy.py (notes 1.8): kl_penalty_coef 1.0, kl_discount 0",
        },
        verl_overrides={
            "distillation.enabled": True,
            "distillation.distillation_loss.loss_mode": "k1",
            "distillation.distillation_loss.use_policy_gradient": True,
            "distillation.distillation_loss.use_task_rewards": False,
            "distillation.distillation_loss.loss_max_clamp": None,
        },
    )
)
