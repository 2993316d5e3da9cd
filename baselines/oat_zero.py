"""Oat-Zero / Dr.GRPO (Liu et al. 2025): mean-only advantages, per-sequence token sums over a constant.

Loss = (1 / (G * L_max)) sum_i sum_t clipped_i,t: `seq-mean-token-sum-norm` with
loss_scale_factor = max response length (8192 at paper scale; set it to the run's max_new_tokens).
"""

from tgpo.methods import method_spec, register_method

OAT_ZERO = register_method(
    method_spec(
        "oat_zero",
        "Oat-Zero",
        "Dr.GRPO: advantage r - mean (no std), sequence token-sums divided by a constant max length, no KL",
        advantage_estimator="drgrpo",
        loss_agg_mode="seq-mean-token-sum-norm",
        defaults={"loss_scale_factor": 8192, "entropy_coef": 0.0},
        defaults_source={
            "loss_scale_factor": "Dr.GRPO constant_normalizer = generate_max_length (notes 1.5, verl docs "
            "notes 1.3); 8192 = the paper's max_response_length (notes 0.1); use the run's max_new_tokens",
            "entropy_coef": "understand-r1-zero recipe (notes 1.5): no entropy term, beta 0",
        },
    )
)
