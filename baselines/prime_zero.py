"""PRIME-Zero (Cui et al. 2025): RLOO on verifier + implicit process rewards of an online reward model.

r_t = beta * (log pi_phi - log pi_ref); pi_phi trained by BCE(sigmoid(beta * sum_t q_t), r); process rewards
batch-normalised, both reward sources weighted 5 (reward_dpo_coef = reward_gt_coef = 5) before returns and
whitening; only prompts whose group accuracy is in [0.2, 0.8] are trained on, from 4x oversampled prompts
(tgpo/objectives/implicit_reward.py). The cluster path evaluates the released checkpoint instead (docs/evaluation.md).
"""

from tgpo.methods.spec import method_spec

_PRIME = "PRIME-RL/PRIME training/examples/run_prime_main.sh"
_VERL_RECIPE = "volcengine/verl recipe/prime/config/prime_trainer.yaml"

PRIME_ZERO = method_spec(
    "prime_zero",
    "PRIME-Zero",
    "PPO-clip with leave-one-out advantages of verifier + implicit process rewards from an online PRM",
    advantage_estimator="rloo",
    reward_source="verifier+implicit_prm",
    needs_reference_model=True,
    needs_reward_model=True,
    defaults={
        "prime_beta": 0.05,
        "prime_coef": 5.0,
        "prime_outcome_coef": 5.0,
        "prime_accuracy_low": 0.2,
        "prime_accuracy_high": 0.8,
        "prime_oversample": 4,
        "prime_rm_lr": 1e-6,
        "entropy_coef": 0.0,
    },
    defaults_source={
        "prime_beta": f"{_PRIME}: reward_model.prime_model.beta_train=0.05",
        "prime_coef": f"{_VERL_RECIPE}: algorithm.reward_dpo_coef 5 (PRIME-RL/PRIME core_algos.py "
        "compute_rloo_returns sums the two sources with equal weight)",
        "prime_outcome_coef": f"{_VERL_RECIPE}: algorithm.reward_gt_coef 5",
        "prime_accuracy_low": f"{_PRIME}: data.accuracy_lower_bound=0.2 (filter_accuracy=True)",
        "prime_accuracy_high": f"{_PRIME}: data.accuracy_upper_bound=0.8 (filter_accuracy=True)",
        "prime_oversample": f"{_VERL_RECIPE}: data.oversample_factor 4.0",
        "prime_rm_lr": f"{_PRIME}: reward_model.prime_model.optim.lr=1e-6",
        "entropy_coef": f"{_PRIME}: actor_rollout_ref.actor.entropy_coeff=0.",
    },
)

METHODS = (PRIME_ZERO,)
