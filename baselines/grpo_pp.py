"""GRPO++ (Table 1): GRPO (Eq. 4) without KL penalty, token-level (token-mean) aggregation.

Interpretation: the TGPO authors' GRPO baseline (helldog-star/TGPO exp_scripts_qwen2d5_math_7b/train_grpo_7b.sh) - std-normalised group advantage,
PPO clip 0.2, entropy 1e-3, no KL, DAPO-style token-level loss. No teacher.
"""

from tgpo.methods.spec import method_spec

GRPO_PP = method_spec(
    "grpo_pp",
    "GRPO++",
    "GRPO (Eq. 4) without KL, token-mean aggregation over the batch (the authors' train_grpo_7b.sh); no teacher",
    defaults_source={
        "entropy_coef": "helldog-star/TGPO exp_scripts_qwen2d5_math_7b/train_grpo_7b.sh: entropy_coeff 0.001",
    },
)

METHODS = (GRPO_PP,)
