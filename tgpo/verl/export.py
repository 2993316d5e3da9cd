"""The bridge from training to evaluation: verl's last sharded FSDP checkpoint -> one Hugging Face checkpoint.

verl 0.9.1 saves sharded FSDP checkpoints (`model_world_size_<W>_rank_<r>.pt` + `fsdp_config.json` +
`huggingface/` with the model config and tokenizer) under `trainer.default_local_dir/global_step_<n>/`:
in its `actor/` folder for `verl.trainer.main_ppo`, in the step folder itself for `verl.trainer.sft_trainer`
(verl-project/verl v0.9.1: `verl/trainer/ppo/v1/trainer_base.py`, `verl/utils/checkpoint/checkpoint_handler.py`).
The last complete one is the step its tracker file `latest_checkpointed_iteration.txt` names (verl's
`find_latest_ckpt_path`). eval-experiment loads `runs/<exp>/seed<k>/checkpoint` (eval/experiment.py), so
after a successful run we merge that checkpoint with verl's own merger (`python -m verl.model_merger merge
--backend fsdp`, `verl/model_merger/`), which writes the weights (in bfloat16: the merger casts every
shard), config and tokenizer, into a temporary folder that replaces the target only when the merge
succeeded (tgpo.results.io.atomic_dir).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tgpo.results import io

TOKENIZER_FILES = ("tokenizer_config.json",)


def last_checkpoint(checkpoints_dir: str | Path, model_subdir: str = "") -> Path:
    """The sharded model folder of verl's last complete checkpoint under `checkpoints_dir`
    (`global_step_<n>/<model_subdir>`); FileNotFoundError when there is none."""
    from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

    step_dir = find_latest_ckpt_path(str(checkpoints_dir))
    if step_dir is None:
        raise FileNotFoundError(
            f"{checkpoints_dir}: no verl checkpoint (no latest_checkpointed_iteration.txt "
            f"naming an existing global_step_<n>); set trainer.save_freq or check the run"
        )
    model_dir = Path(step_dir) / model_subdir if model_subdir else Path(step_dir)
    if not (model_dir / "fsdp_config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a verl FSDP checkpoint (no fsdp_config.json)")
    return model_dir


def merge_command(fsdp_dir: str | Path, target_dir: str | Path) -> list[str]:
    """verl's merger CLI for one FSDP checkpoint folder."""
    return [
        sys.executable,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(fsdp_dir),
        "--target_dir",
        str(target_dir),
    ]


def export_hf_checkpoint(fsdp_dir: str | Path, target: str | Path) -> Path:
    """Merge the FSDP checkpoint in `fsdp_dir` into a Hugging Face checkpoint at `target` (model, config,
    tokenizer), atomically; RuntimeError naming the folder and command when verl's merger fails."""
    target = Path(target)
    with io.atomic_dir(target) as tmp:
        command = merge_command(fsdp_dir, tmp)
        completed = subprocess.run(command)
        if completed.returncode != 0:
            raise RuntimeError(
                f"verl model merger failed (exit status {completed.returncode}) on {fsdp_dir}; "
                f"{target} left unchanged. Command: {' '.join(command)}"
            )
        missing = [name for name in TOKENIZER_FILES if not (tmp / name).is_file()]
        if missing:
            raise RuntimeError(
                f"verl model merger wrote no tokenizer ({', '.join(missing)}) from "
                f"{Path(fsdp_dir) / 'huggingface'}; {target} left unchanged"
            )
    return target


def export_last_checkpoint(checkpoints_dir: str | Path, target: str | Path, model_subdir: str = "") -> Path:
    """Merge verl's last checkpoint under `checkpoints_dir` into the Hugging Face checkpoint `target`."""
    source = last_checkpoint(checkpoints_dir, model_subdir)
    print(f"exporting {source} -> {target}", flush=True)
    return export_hf_checkpoint(source, target)
