"""KDRL (Xu et al. 2025): GRPO + beta * reverse KL(student || teacher) as a loss (k2 estimator).

Optional reward-guided masking (reward_mask_correct): no RKL term on correct responses.
"""

from tgpo.methods.spec import method_spec

KDRL = method_spec(
    "kdrl",
    "KDRL",
    "GRPO + beta * k2 estimate of KL(student || teacher) on sampled tokens as a differentiable loss",
    teacher_signal="sampled_log_prob",
    rkl="regulariser",
    defaults={"rkl_coef": 2e-3, "rkl_estimator": "k2", "reward_mask_correct": False},
    defaults_source={
        "rkl_coef": "helldog-star/TGPO exp_scripts_qwen2d5_math_7b/train_kdrl_7b.sh: teacher_coef 0.002, constant",
        "rkl_estimator": "KDRL (Xu et al. 2025, arXiv 2506.02208): k2 estimator; helldog-star/TGPO mix_core_alg.py compute_token_on_kdrl_loss uses k2",
        "reward_mask_correct": "off, as helldog-star/TGPO train_kdrl_7b.sh; KDRL's reward-guided masking (arXiv 2506.02208) is optional",
    },
)

METHODS = (KDRL,)
