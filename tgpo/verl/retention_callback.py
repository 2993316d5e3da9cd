"""verl's driver-side checkpoint callback that keeps every save's model and only the last optimizer state
(tgpo.verl.checkpoint_retention explains why; `trainer.checkpoint_callback_class`, verl-project/verl v0.9.1
verl/trainer/ppo/checkpoint_callback.py: called after each save, on the driver, exceptions abort training)."""

from __future__ import annotations

from pathlib import Path

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from tgpo.verl.checkpoint_retention import drop_old_optimizer_state


class KeepModelsDropOldOptimizer(CheckpointCallback):
    """After each save (on verl's driver): drop the optimizer state of the earlier saves."""

    def on_save(self, trainer, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        if async_save:  # the new save may still be in flight: keep the old optimizer state for now
            return
        removed = drop_old_optimizer_state(Path(checkpoint_dir).parent, global_step)
        if removed:
            print(f"tgpo checkpoint retention: removed {len(removed)} optimizer/extra-state shards of saves "
                  f"before step {global_step}", flush=True)
