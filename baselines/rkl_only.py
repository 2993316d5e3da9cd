"""RKL-only (Section 2.3, Figure 2): the sequence reward r(y) = -sum_t (log pi_s - log pi_T) is the sole reward.

The reward is the advantage itself, unnormalised and without a baseline: the REINFORCE weight of App. A,
Eq. 9 (g(y) ~ -grad log pi(y) * log rho(y)). A z-scored (GRPO) reward would bound a penalty of any size
to a few standard deviations and remove the unbounded-penalty mechanism of Eq. 10-12 that Figure 2 is
about; the authors' RKL script (helldog-star/TGPO exp_scripts_qwen2d5_math_1d5b/train_rkl_1d5b.sh,
adv_estimator=rkl: luffy/verl/verl/mix_src/mix_core_alg.py compute_rkl_advantage) normalises nothing
either. Its per-token form (advantage log pi_T - log pi_old per token) is OP Distill's (baselines/op_distill.py),
Figure 2's token-level series. The clipped loss of Eq. 4 is unchanged.
"""

from tgpo.methods.spec import method_spec

RKL_ONLY = method_spec(
    "rkl_only",
    "RKL",
    "Policy gradient whose only reward, unnormalised, is the sequence reverse-KL -sum_t log(pi_s / pi_T) (Section 2.3)",
    advantage_estimator="none",
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

METHODS = (RKL_ONLY,)
