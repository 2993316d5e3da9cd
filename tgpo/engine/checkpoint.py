"""Checkpoints of a local-engine run, written atomically, and automatic resume.

Layout under the run's output_dir:
  checkpoints/step_<n>/            intermediate (the last KEEP_INTERMEDIATE are kept):
      config.json, model.safetensors, tokenizer files   the student (save_pretrained)
      reward_model/                                     PRIME's online reward model, when there is one
      trainer_state.pt                                  step, optimizer, scheduler, RNG states,
                                                        metrics line count, run_hash (written last)
  checkpoint/                      the final student (save_pretrained, tokenizer included)

Every directory is built under a temporary name and renamed into place (`tgpo.results.io.atomic_dir`), so a
directory named step_<n> is always complete.
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tgpo.results.io import atomic_dir
from tgpo.results.layout import RunLayout

KEEP_INTERMEDIATE = 2
TRAINER_STATE = "trainer_state.pt"
REWARD_MODEL_DIR = "reward_model"
_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class TrainerState:
    step: int  # last completed step
    metrics_lines: int  # lines of metrics.jsonl that belong to steps <= step
    optimizer: dict
    scheduler: dict
    rng: dict
    reward_model_optimizer: dict | None = None
    wall_s: float = 0.0  # training wall time up to this checkpoint
    run_hash: str = ""  # the resolved experiment this checkpoint trains (tgpo.results.run_guard); "" = not recorded


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    try:
        import numpy

        state["numpy"] = numpy.random.get_state()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "numpy" in state:
        import numpy

        numpy.random.set_state(state["numpy"])


def checkpoints_dir(output_dir: Path) -> Path:
    return RunLayout(Path(output_dir)).checkpoints


def final_checkpoint_dir(output_dir: Path) -> Path:
    return RunLayout(Path(output_dir)).final_checkpoint


def intermediate_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Complete intermediate checkpoints as (step, dir), oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / TRAINER_STATE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = intermediate_checkpoints(output_dir)
    return found[-1][1] if found else None


def save_model(model, tokenizer, directory: Path) -> None:
    model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)


def save_checkpoint(output_dir: Path, state: TrainerState, model, tokenizer, reward_model=None) -> Path:
    """Write checkpoints/step_<state.step>/ atomically, then drop all but the last KEEP_INTERMEDIATE."""
    target = checkpoints_dir(output_dir) / f"step_{state.step}"
    with atomic_dir(target) as tmp:
        save_model(model, tokenizer, tmp)
        if reward_model is not None:
            save_model(reward_model, None, tmp / REWARD_MODEL_DIR)
        torch.save(state.__dict__, tmp / TRAINER_STATE)
    for _, old in intermediate_checkpoints(output_dir)[:-KEEP_INTERMEDIATE]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_trainer_state(checkpoint_dir: Path, run_hash: str) -> TrainerState:
    """The state of a checkpoint of the run `run_hash`; RuntimeError when it belongs to another run."""
    path = Path(checkpoint_dir) / TRAINER_STATE
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - name the file in the error
        raise RuntimeError(f"{path}: cannot load the trainer state: {error}") from error
    state = TrainerState(**data)
    if state.run_hash != run_hash:
        raise RuntimeError(
            f"{path}: checkpoint of run hash {state.run_hash or 'none'}, not of this run ({run_hash}); "
            "refusing to resume it (tgpo.results.run_guard moves such runs aside before training)"
        )
    return state


def save_final(output_dir: Path, model, tokenizer) -> Path:
    target = final_checkpoint_dir(output_dir)
    with atomic_dir(target) as tmp:
        save_model(model, tokenizer, tmp)
    return target
