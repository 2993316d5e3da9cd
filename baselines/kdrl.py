"""KDRL (Xu et al. 2025): GRPO + beta * reverse KL(student || teacher) as a loss (k2 estimator).

Optional reward-guided masking (reward_mask_correct): no RKL term on correct responses.
"""

from tgpo.methods import method_spec, register_method

KDRL = register_method(
    method_spec(
        "kdrl",
        "KDRL",
        "GRPO + beta * k2 estimate of KL(student || teacher) on sampled tokens as a differentiable loss",
        teacher_signal="sampled_log_prob",
        rkl="regulariser",
        defaults={"rkl_coef": 2e-3, "rkl_estimator": "k2", "reward_mask_correct": False},
        defaults_source={
            "rkl_coef": "authors' KDRL re-implementation teacher_coef 0.002, constant (notes 1.7)",
            "rkl_estimator": "KDRL: k2 as loss beats k3 (notes 1.7); authors' compute_token_on_kdrl_loss uses k2",
            "reward_mask_correct": "off, as the authors' script (notes 1.7); KDRL's reward-guided masking is optional",
        },
        verl_overrides={
            "distillation.enabled": True,
            "distillation.distillation_loss.loss_mode": "k2",
            "distillation.distillation_loss.use_policy_gradient": False,
            "distillation.distillation_loss.use_task_rewards": True,
            "distillation.distillation_loss.distillation_loss_coef": 2e-3,
        },
    )
)
