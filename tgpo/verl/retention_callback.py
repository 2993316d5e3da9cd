"""verl's driver-side checkpoint callbacks that keep the last save whole and, for a checkpoint choice, every
save's model (tgpo.verl.checkpoint_retention explains why; `trainer.checkpoint_callback_class`, verl-project/verl v0.9.1
verl/trainer/ppo/checkpoint_callback.py: called after each save, on the driver, exceptions abort training)."""

from __future__ import annotations

from pathlib import Path

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from tgpo.verl.checkpoint_retention import drop_earlier_saves, drop_old_optimizer_state


class KeepModelsDropOldOptimizer(CheckpointCallback):
    """After each save (on verl's driver): drop the optimizer state of the earlier saves."""

    def on_save(self, trainer, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        if async_save:  # the new save may still be in flight: keep the old optimizer state for now
            return
        removed = drop_old_optimizer_state(Path(checkpoint_dir).parent, global_step)
        if removed:
            print(
                f"tgpo checkpoint retention: removed {len(removed)} optimizer/extra-state shards of saves "
                f"before step {global_step}",
                flush=True,
            )


class KeepLastSave(CheckpointCallback):
    """After each save (on verl's driver): remove every earlier save, those of earlier attempts included."""

    def on_save(self, trainer, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        if async_save:  # the new save may still be in flight: keep the previous one for now
            return
        removed = drop_earlier_saves(Path(checkpoint_dir).parent, global_step)
        if removed:
            print(
                f"tgpo checkpoint retention: removed saves {[p.name for p in removed]} (kept step {global_step})",
                flush=True,
            )
