"""SimpleRL-Zero (hkust-nlp, SimpleRL-Zoo recipe): GRPO + k3 KL-to-reference loss (coef 1e-4) + entropy 1e-3."""

from tgpo.methods.spec import method_spec

SIMPLERL_ZERO = method_spec(
    "simplerl_zero",
    "SimpleRL-Zero",
    "GRPO with a KL-to-reference loss (k3 / low_var_kl, coef 1e-4) and entropy bonus 1e-3 (SimpleRL-Zoo)",
    needs_reference_model=True,
    defaults={"kl_coef": 1e-4, "kl_estimator": "k3", "entropy_coef": 1e-3},
    defaults_source={
        "kl_coef": "hkust-nlp/simpleRL-reason README.md: --kl_loss_coef 1e-4",
        "kl_estimator": "hkust-nlp/simpleRL-reason train_grpo_math_tune_ray.sh: kl_loss_type low_var_kl (= k3)",
        "entropy_coef": "hkust-nlp/simpleRL-reason README.md: --entropy_coeffient 0.001",
        "lr": "paper App. B.1 shared lr 1e-6 (hkust-nlp/simpleRL-reason train_grpo_math_tune_ray.sh uses 5e-7; the shared setup is chosen)",
    },
)

METHODS = (SIMPLERL_ZERO,)
