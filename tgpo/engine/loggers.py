"""Trackers beside metrics.jsonl for the local engine: the config's `training.loggers` (issue 18, item 15).

The same names as verl's `trainer.logger` (verl/utils/tracking.py `Tracking`; tgpo.verl.translate passes
them there): "console" prints each step's metrics, "tensorboard" writes events to the run's
`tensorboard/` folder (torch.utils.tensorboard), "wandb" and "mlflow" log to those services, configured by
their own environment variables (WANDB_*, MLFLOW_TRACKING_URI). metrics.jsonl is always written
(tgpo.engine.metrics): the figures read it, never a tracker. A tracker whose package is missing is an
error when the run starts, naming the setting and the package.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TRACKERS = ("console", "wandb", "tensorboard", "mlflow")
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def _numbers(record: Mapping[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in record.items()
        if key != "step" and isinstance(value, (int, float)) and math.isfinite(float(value))
    }


class ConsoleTracker:
    def log(self, record: Mapping[str, Any], step: int) -> None:
        print(f"step:{step} " + json.dumps(_numbers(record), sort_keys=True), flush=True)

    def close(self) -> None:
        pass


class TensorboardTracker:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))

    def log(self, record: Mapping[str, Any], step: int) -> None:
        for key, value in _numbers(record).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, project: str, name: str, run_dir: Path):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=project, name=name, dir=str(run_dir))

    def log(self, record: Mapping[str, Any], step: int) -> None:
        self.run.log(_numbers(record), step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowTracker:
    def __init__(self, project: str, name: str):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_experiment(project)
        self.run = mlflow.start_run(run_name=name)

    def log(self, record: Mapping[str, Any], step: int) -> None:
        self.mlflow.log_metrics({key.replace("@", "_at_"): value for key, value in _numbers(record).items()}, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


class Trackers:
    """The trackers `names` name, for one run (`project`/`name` as verl's project_name/experiment_name)."""

    def __init__(self, names: Sequence[str] | None, project: str, name: str, run_dir: Path):
        self.trackers: list = []
        for tracker in dict.fromkeys(names or []):
            if tracker not in TRACKERS:
                raise ValueError(f"training.loggers: unknown logger {tracker!r}; known: {list(TRACKERS)}")
            try:
                self.trackers.append(self._open(tracker, project, name, Path(run_dir)))
            except ImportError as error:
                raise ImportError(
                    f"training.loggers names {tracker!r} but its package is not installed "
                    f"(pip install {PACKAGES[tracker]}): {error}"
                ) from None

    @staticmethod
    def _open(tracker: str, project: str, name: str, run_dir: Path):
        if tracker == "console":
            return ConsoleTracker()
        if tracker == "tensorboard":
            return TensorboardTracker(run_dir / "tensorboard")
        if tracker == "wandb":
            return WandbTracker(project, name, run_dir)
        return MlflowTracker(project, name)

    def log(self, record: Mapping[str, Any], step: int) -> None:
        for tracker in self.trackers:
            tracker.log(record, step)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()
