"""TGPO's three registered methods (Section 3.2): the guidance term of Eq. 3 on top of GRPO (Eq. 4).

- `tgpo`: differentiable regulariser (Eq. 6) with a constant weight w = 2e-3 (delta = 0);
- `tgpo_annealing`: the same with w_t = max(2e-3 - 1e-5 * t, 0), zero from step 200 (the paper's main method);
- `tgpo_r`: reward shaping (Eq. 5), A_hat = A + lambda * sg[log pi_theta(y^T)] inside the clipped loss.
"""

from __future__ import annotations

from tgpo.methods import method_spec, register_method

_TEACHER_POOL = {
    "distillation.enabled": True,
    "distillation.distillation_loss.topk": 1,
    "distillation.distillation_loss.use_task_rewards": True,
    "distillation.distillation_loss.distillation_loss_coef": 1.0,
    "distillation.distillation_loss.loss_max_clamp": None,
    "distillation.distillation_loss.log_prob_min_clamp": None,
    # the entropy bonus (entropy_coef 1e-3) reads it; the guidance term no longer needs it: it shares verl's
    # log-prob pass and reads no logits in backward (tgpo/verl/losses.py, docs/verl-0.9.md section 2)
    "actor_rollout_ref.actor.calculate_entropy": True,
    "actor_rollout_ref.model.use_fused_kernels": False,
    "trainer.v1.trainer_mode": "tgpo_sync",
}

_GUIDANCE_SOURCES = {
    "w_init": "paper Section 5.3: w_init = 2e-3 (helldog-star/TGPO exp_scripts_qwen2d5_math_7b/train_tipo_reg_7b.sh: "
    "teacher_coef 0.002)",
}


def _regulariser(name: str, display_name: str, summary: str, delta: float, delta_source: str):
    return method_spec(
        name,
        display_name,
        summary,
        teacher_signal="argmax",
        guidance="regulariser",
        defaults={"w_init": 2e-3, "delta": delta},
        defaults_source={**_GUIDANCE_SOURCES, "delta": delta_source},
        verl_overrides={
            **_TEACHER_POOL,
            "distillation.distillation_loss.loss_mode": "tgpo_d",
            "distillation.distillation_loss.use_policy_gradient": False,
            "+tgpo.w_init": 2e-3,
            "+tgpo.delta": delta,
        },
    )


TGPO = register_method(
    _regulariser(
        "tgpo",
        "TGPO",
        "GRPO + w * J_Guidance, the student NLL of the teacher's argmax token on its own prefix (Eq. 6), constant w",
        delta=0.0,
        delta_source="paper Section 5.3 'Constant Weight' (w_init 2e-3, delta 0)",
    )
)

TGPO_ANNEALING = register_method(
    _regulariser(
        "tgpo_annealing",
        "TGPO-annealing",
        "TGPO (Eq. 6) with the linearly decaying weight w_t = max(w_init - delta * t, 0) (Section 3.2)",
        delta=1e-5,
        delta_source="paper Section 5.3 'Ours' (delta 1e-5, zero at step 200); helldog-star/TGPO "
        "train_tipo_reg_7b.sh decay_rate 1e-5, luffy/verl/verl/mix_src/mix_trainer.py",
    )
)

TGPO_R = register_method(
    method_spec(
        "tgpo_r",
        "TGPO_R",
        "GRPO with the advantage shaped by lambda * sg[log pi_theta(y^T)] (Eq. 5): guidance as a reward, no gradient path",
        teacher_signal="argmax",
        guidance="reward_shaping",
        defaults={"shaping_lambda": 0.02},
        defaults_source={
            "shaping_lambda": "not given in the paper; authors' earlier reward-shaping script tipo_adv used "
            "teacher_coef 0.02 (helldog-star/TGPO exp_scripts_qwen2d5_math_7b/train_tipo_adv_7b.sh) - a choice, "
            "constant over training",
        },
        verl_overrides={
            **_TEACHER_POOL,
            "distillation.distillation_loss.loss_mode": "tgpo_r",
            "distillation.distillation_loss.use_policy_gradient": False,
            "+tgpo.shaping_lambda": 0.02,
        },
    )
)
