"""TGPO's three registered methods (Section 3.2): the guidance term of Eq. 3 on top of GRPO (Eq. 4).

- `tgpo`: differentiable regulariser (Eq. 6) with a constant weight w = 2e-3 (delta = 0);
- `tgpo_annealing`: the same with w_t = max(2e-3 - 1e-5 * t, 0), zero from step 200 (the paper's main method);
- `tgpo_r`: reward shaping (Eq. 5) inside the clipped loss, as the authors ran it (their `tipo_adv` script):
  A_hat = A + lambda_t * sg[pi_theta(y^T)], lambda_t = max(0.02 - 1e-4 * t, 0). Eq. 5 prints log pi_theta;
  `hparams: {shaping_signal: log_prob}` gives that form (whose lambda no source gives).
"""

from __future__ import annotations

from tgpo.methods.spec import method_spec

# Only what is TGPO's own reaches verl from here: the trainer and the loss modes. The teacher pool and the
# distillation defaults every teacher method shares are tgpo.verl.translate's (teacher_overrides,
# distillation_defaults, shared_overrides); hyper-parameter values are the defaults below, which the
# translation maps onto verl keys (+tgpo.w_init, +tgpo.delta, ...).
_TGPO_TRAINER = {"trainer.v1.trainer_mode": "tgpo_sync"}

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
        verl_overrides={**_TGPO_TRAINER, "distillation.distillation_loss.loss_mode": "tgpo_d"},
    )


TGPO = _regulariser(
    "tgpo",
    "TGPO",
    "GRPO + w * J_Guidance, the student NLL of the teacher's argmax token on its own prefix (Eq. 6), constant w",
    delta=0.0,
    delta_source="paper Section 5.3 'Constant Weight' (w_init 2e-3, delta 0)",
)

TGPO_ANNEALING = _regulariser(
    "tgpo_annealing",
    "TGPO-annealing",
    "TGPO (Eq. 6) with the linearly decaying weight w_t = max(w_init - delta * t, 0) (Section 3.2)",
    delta=1e-5,
    delta_source="paper Section 5.3 'Ours' (delta 1e-5, zero at step 200); helldog-star/TGPO "
    "train_tipo_reg_7b.sh decay_rate 1e-5, luffy/verl/verl/mix_src/mix_trainer.py",
)

TGPO_R = method_spec(
    "tgpo_r",
    "TGPO_R",
    "GRPO with the advantage shaped by lambda_t * sg[pi_theta(y^T)] (Eq. 5 as the authors ran it): guidance as a "
    "reward, no gradient path",
    teacher_signal="argmax",
    guidance="reward_shaping",
    defaults={"shaping_lambda": 0.02, "delta": 1e-4, "shaping_signal": "prob"},
    defaults_source={
        # Eq. 5 prints lambda * sg[log pi]; the paper gives no lambda. The only source of a lambda is the
        # authors' TGPO_R script, and it shapes with the probability, so lambda and signal are taken
        # together from it rather than 0.02 applied to log pi (<= 0, unbounded), a pairing no one ran.
        "shaping_lambda": "not given in the paper; helldog-star/TGPO config/tasks.sh tipo_adv (the reward-shaping "
        "algo of both students, as TGPO_R is in Tables 1 and 3): teacher_coef 0.02",
        "delta": "helldog-star/TGPO config/tasks.sh tipo_adv: decay_rate 1e-4, min_teacher_coef 0 "
        "(luffy/verl/verl/mix_src/mix_trainer.py: coef - (step - 1) * decay_rate, floored): zero from step 201",
        "shaping_signal": "helldog-star/TGPO luffy/verl/verl/mix_src/mix_core_alg.py compute_tipo_advantage: the "
        "shaping term is teacher_coef * exp(log-prob of the teacher's token), a probability in [0, 1]; "
        "paper Eq. 5 prints log pi (set shaping_signal: log_prob for that form)",
    },
    verl_overrides={**_TGPO_TRAINER, "distillation.distillation_loss.loss_mode": "tgpo_r"},
)

METHODS = (TGPO, TGPO_ANNEALING, TGPO_R)
