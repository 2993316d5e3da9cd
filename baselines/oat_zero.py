"""Oat-Zero / Dr.GRPO (Liu et al. 2025): mean-only advantages, per-sequence token sums over a constant.

Loss = (1 / (G * L_max)) sum_i sum_t max(-A_i rho_i,t, -A_i clip(rho_i,t, 1 +- eps)): `seq-mean-token-sum-norm`
with loss_scale_factor = max response length (8192 at paper scale; set it to the run's max_new_tokens), and
no dual clip (sail-sg/oat oat/algorithms/ppo.py: the plain PPO clip).
"""

from tgpo.methods.spec import method_spec

OAT_ZERO = method_spec(
    "oat_zero",
    "Oat-Zero",
    "Dr.GRPO: advantage r - mean (no std), sequence token-sums divided by a constant max length, no KL",
    advantage_estimator="drgrpo",
    loss_agg_mode="seq-mean-token-sum-norm",
    defaults={"loss_scale_factor": 8192, "entropy_coef": 0.0, "clip_ratio_c": None},
    defaults_source={
        "loss_scale_factor": "Dr.GRPO (Liu et al. 2025, arXiv 2503.20783) Modification 1: masked_sum with "
        "constant_normalizer=generate_max_length (sail-sg/understand-r1-zero train_zero_math.py); 8192 = the "
        "paper's max response length (App. B.1); use the run's max_new_tokens",
        "entropy_coef": "sail-sg/oat oat/algorithms/ppo.py: entropy is only logged, no entropy bonus in the loss",
        "clip_ratio_c": "sail-sg/oat oat/algorithms/ppo.py: PPO clip max(-A rho, -A clip(rho)) without a dual clip",
    },
)

METHODS = (OAT_ZERO,)
