"""OP Distill (Lu & Thinking Machines 2025): the per-token RKL log-ratio is the advantage, no task reward.

A_t = -(log pi_student(y_t) - log pi_teacher(y_t)), detached (kl_penalty_coef 1, discount 0), used with the
clipped loss of Eq. 4 and nothing else: no entropy bonus (tinker-cookbook's importance-sampling loss has
none, and verl's distillation path with use_task_rewards=False drops the whole ppo_loss, entropy included).
"""

from tgpo.methods.spec import method_spec

_COOKBOOK = "thinking-machines-lab/tinker-cookbook tinker_cookbook/distillation/train_on_policy.py"

OP_DISTILL = method_spec(
    "op_distill",
    "OP Distill",
    "Clipped loss with the per-token reverse-KL log-ratio -(log pi_s - log pi_T) as advantage; no verifier reward",
    advantage_estimator="none",
    reward_source="none",
    teacher_signal="sampled_log_prob",
    rkl="token_advantage",
    defaults={"rkl_coef": 1.0, "entropy_coef": 0.0},
    defaults_source={
        "rkl_coef": f"{_COOKBOOK}: kl_penalty_coef 1.0, kl_discount_factor 0",
        "entropy_coef": f"{_COOKBOOK}: no entropy bonus; verl 0.9.1 trainer/distillation/losses.py "
        "(distillation_ppo_loss) zeroes ppo_loss, entropy included, when use_task_rewards=False",
    },
    verl_overrides={
        "distillation.enabled": True,
        "distillation.distillation_loss.loss_mode": "k1",
        "distillation.distillation_loss.use_policy_gradient": True,
        "distillation.distillation_loss.use_task_rewards": False,
        "distillation.distillation_loss.loss_max_clamp": None,
    },
)

METHODS = (OP_DISTILL,)
