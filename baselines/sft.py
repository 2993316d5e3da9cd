"""SFT (OpenR1 recipe as used by LUFFY): token-level NLL of the filtered teacher traces; no rollouts."""

from tgpo.methods.spec import method_spec

SFT = method_spec(
    "sft",
    "SFT",
    "Supervised fine-tuning on teacher traces: token-mean NLL, 3 epochs, lr 5e-5 (App. B.1)",
    advantage_estimator="none",
    reward_source="none",
    policy_loss="nll",
    uses_teacher_traces=True,
    rollouts=False,
    defaults={"lr": 5e-5, "sft_epochs": 3, "entropy_coef": 0.0},
    defaults_source={
        "lr": "paper App. B.1: SFT lr 5e-5 (OpenR1 protocol, warmup ratio 0.1)",
        "sft_epochs": "paper App. B.1: 3 epochs, global batch 64",
        "entropy_coef": "plain NLL (OpenRLHF openrlhf/cli/train_sft.py, the command in ElliottYan/LUFFY README.md): no entropy term",
    },
)

METHODS = (SFT,)
