"""PRIME-Zero (Cui et al. 2025): RLOO on verifier + implicit process rewards of an online reward model.

r_t = beta * (log pi_phi - log pi_ref); pi_phi trained by BCE(sigmoid(beta * sum_t q_t), r); process
rewards weighted by prime_coef (rm_coef 5) before returns and whitening (tgpo/implicit_reward.py).
"""

from tgpo.methods import method_spec, register_method

PRIME_ZERO = register_method(
    method_spec(
        "prime_zero",
        "PRIME-Zero",
        "PPO-clip with leave-one-out advantages of verifier + implicit process rewards from an online PRM",
        advantage_estimator="rloo",
        reward_source="verifier+implicit_prm",
        needs_reference_model=True,
        needs_reward_model=True,
        defaults={"prime_beta": 0.05, "prime_coef": 5.0, "prime_rm_lr": 1e-6, "entropy_coef": 0.0},
        defaults_source={
            "prime_beta": "PRIME run_prime_main.sh (notes 1.4): beta_train 0.05",
            "prime_coef": "PRIME run_prime_main.sh (notes 1.4): rm_coef 5",
            "prime_rm_lr": "PRIME run_prime_main.sh (notes 1.4): PRM lr 1e-6",
            "entropy_coef": "PRIME run_prime_main.sh (notes 1.4): entropy 0",
        },
        verl_overrides={"+prime.beta": 0.05, "+prime.rm_coef": 5.0, "+prime.rm_lr": 1e-6},
    )
)
