"""What verl keeps of each save, and the disk a run needs (issue 18, item 2).

verl 0.9.1 keeps every save (`trainer.max_actor_ckpt_to_keep: null`), each holding the actor's fp32 model
shards (4 bytes a parameter), Adam's two fp32 moments (8 bytes a parameter) and a little extra state
(`model_` / `optim_` / `extra_state_world_size_<W>_rank_<r>.pt`, verl/utils/checkpoint/fsdp_checkpoint_manager.py).
For a 7.6B student that is ~91 GB a save, ~550 GB for the 6 saves of a 300-step run. What a run needs:

- resume: the last save, whole (model, optimizer, extra state, dataloader state);
- App. B.3's checkpoint choice (`training.checkpoint_choice: validation`, tgpo.verl.lifecycle.choose_checkpoint,
  or `test`, eval.checkpoint_choice): the model of every save, which tgpo.verl.export merges into the
  evaluated checkpoint(s).

Retention is ours, in verl's driver-side checkpoint callback (`trainer.checkpoint_callback_class`,
tgpo.verl.retention_callback), called after each save once verl's tracker names it: `drop_earlier_saves`
removes every earlier save (the default), `drop_old_optimizer_state` only their optimizer and extra state
when the experiment chooses among its saves (`training.checkpoint_choice: validation` or `test`). verl's own
rotation (`max_actor_ckpt_to_keep: 1`) is not used: it forgets, across a resume, the saves of the attempt
before, so a resumed run would keep its resume point's 91 GB to the end. The previous save stays until
the new one is complete, so a save's peak is two. `run_disk_bytes` is the arithmetic (no verl import).
"""

from __future__ import annotations

import math
from pathlib import Path

CALLBACK_FQN = "tgpo.verl.retention_callback.KeepModelsDropOldOptimizer"  # checkpoint_choice: validation, test
KEEP_LAST_FQN = "tgpo.verl.retention_callback.KeepLastSave"  # checkpoint_choice: last (the default)
OPTIMIZER_SHARDS = ("optim_world_size_*.pt", "extra_state_world_size_*.pt")
MODEL_BYTES_PER_PARAM = 4  # fp32 shards (verl's actor keeps fp32 master weights)
ADAM_BYTES_PER_PARAM = 8  # exp_avg + exp_avg_sq, fp32
EXPORT_BYTES_PER_PARAM = 2  # the merged Hugging Face checkpoint, bf16 (tgpo.verl.export)


def earlier_saves(checkpoints: Path, keep_step: int) -> list[Path]:
    """The global_step_<n> folders under `checkpoints` with n < keep_step."""
    folders = []
    for folder in sorted(Path(checkpoints).glob("global_step_*")):
        suffix = folder.name.removeprefix("global_step_")
        if suffix.isdigit() and int(suffix) < keep_step:
            folders.append(folder)
    return folders


def drop_earlier_saves(checkpoints: Path, keep_step: int) -> list[Path]:
    """Delete every save before `keep_step` (the one verl's tracker names); returns the folders removed."""
    import shutil

    removed = earlier_saves(checkpoints, keep_step)
    for folder in removed:
        shutil.rmtree(folder)
    return removed


def drop_old_optimizer_state(checkpoints: Path, keep_step: int, model_subdir: str = "actor") -> list[Path]:
    """Delete the optimizer and extra-state shards of every save before `keep_step`; returns what was
    deleted. The model shards, fsdp_config.json and huggingface/ stay (tgpo.verl.export merges them)."""
    removed = []
    for folder in earlier_saves(checkpoints, keep_step):
        shard_dir = folder / model_subdir if model_subdir else folder
        for pattern in OPTIMIZER_SHARDS:
            for shard in shard_dir.glob(pattern):
                shard.unlink()
                removed.append(shard)
    return removed


def saves_of(steps: int, save_every: int) -> int:
    """How many saves verl makes in a run: every save_every steps and at the last step."""
    return math.ceil(steps / save_every) if save_every > 0 else 1


def run_disk_bytes(
    params: float, steps: int, save_every: int, keep_every_model: bool, export_every_save: bool = False
) -> dict[str, float]:
    """Bytes one run's checkpoints take (`params` student parameters): at the end and at the peak (during a
    save, before verl removes the previous one). A whole save is model + Adam; a kept model alone is
    the fp32 shards; the export for evaluation is bf16, one per save with `export_every_save`
    (checkpoint_choice: test)."""
    whole = params * (MODEL_BYTES_PER_PARAM + ADAM_BYTES_PER_PARAM)
    model = params * MODEL_BYTES_PER_PARAM
    export = params * EXPORT_BYTES_PER_PARAM
    saves = saves_of(steps, save_every)
    if keep_every_model:
        final = (saves - 1) * model + whole + export
        peak = max(saves - 2, 0) * model + 2 * whole if saves > 1 else whole
    else:
        final = whole + export
        peak = 2 * whole if saves > 1 else whole
    if export_every_save:
        final += (saves - 1) * export
    return {"save": whole, "saves": saves, "final": final, "peak": max(peak, final)}
