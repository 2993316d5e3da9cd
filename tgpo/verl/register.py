"""verl plugin entry point (`[project.entry-points."verl.plugins"] tgpo = "tgpo.verl.register"`).

`import verl` imports this module in every process (driver, TaskRunner, every Ray worker), which
registers TGPO's distillation loss modes, the compute_topk_loss patch and the tgpo_sync trainer, the
RKL-only `rkl_reward` loss mode and `rkl_reward_sync` trainer, and LUFFY's `luffy_agent` agent loop and
`luffy_sync` trainer, and wraps verl's per-sample teacher scoring so that a step whose guidance weight
is 0 sends nothing to the teacher pool (tgpo.verl.teacher_skip).
verl logs plugin import errors only at DEBUG, so the trainer entry calls `assert_registered()`.
On a machine without an accelerator `tgpo verl-train` sets CPU_FLAG=1 for verl and every Ray worker;
only then is `tgpo.verl.cpu.patches` imported and applied (a GPU cluster never loads it).
"""

from __future__ import annotations

import os

CPU_FLAG = "TGPO_VERL_CPU"  # == tgpo.verl.cpu.settings.CPU_FLAG (tested); not imported from there on purpose

if os.environ.get(CPU_FLAG) == "1":
    from tgpo.verl.cpu import patches as cpu_patches

    cpu_patches.apply()

from tgpo.verl import losses, luffy, rkl_trainer, teacher_skip, trainer  # noqa: E402


def register_all() -> None:
    """Every registration of the plugin; idempotent."""
    losses.register()
    trainer.register()
    rkl_trainer.register()
    luffy.register()
    teacher_skip.patch()


def assert_registered() -> None:
    """Raise RuntimeError unless every registration of the plugin is active in this process."""
    import verl.trainer.distillation.losses as verl_distillation_losses
    from verl.trainer.ppo.v1.trainer_base import get_trainer_cls

    problems = []
    for name in losses.TGPO_LOSS_MODES:
        try:
            settings = verl_distillation_losses.get_distillation_loss_settings(name)
            if not settings.use_topk:
                problems.append(f"distillation loss '{name}' is not a top-k loss")
        except ValueError:
            problems.append(f"distillation loss '{name}' is not registered")
    if not getattr(verl_distillation_losses.compute_topk_loss, "tgpo_patch", False):
        problems.append("verl.trainer.distillation.losses.compute_topk_loss is not patched")
    try:
        if get_trainer_cls(trainer.TRAINER_NAME) is not trainer.TGPOTrainerSync:
            problems.append(f"trainer '{trainer.TRAINER_NAME}' is registered to another class")
    except ValueError:
        problems.append(f"trainer '{trainer.TRAINER_NAME}' is not registered")
    problems += (
        rkl_trainer.registration_problems() + luffy.registration_problems() + teacher_skip.registration_problems()
    )
    if os.environ.get(CPU_FLAG) == "1":
        from tgpo.verl.cpu import patches as cpu_patches

        problems += cpu_patches.application_problems()
    if problems:
        raise RuntimeError("tgpo verl plugin not active: " + "; ".join(problems) + " (is tgpo-repro pip-installed?)")


register_all()
