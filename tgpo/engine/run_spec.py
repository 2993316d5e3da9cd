"""RunSpec: everything one local-engine training run needs, validated on construction.

Built by `tgpo.config.resolve_run(config, experiment, seed)` from a config, or read from a JSON file
(`RunSpec.from_json`, used by tests and by `python -m tgpo train --run-spec`). Method-dependent checks
(a teacher for teacher-signal methods, traces for SFT/LUFFY) are in `check_against_method`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PATH_FIELDS = ("output_dir", "student_path", "teacher_path", "reference_path", "train_data", "traces_data")
POSITIVE_INT_FIELDS = ("steps", "prompts_per_step", "group_size", "max_new_tokens", "updates_per_step",
                       "micro_batch_size", "save_every", "threads", "sft_epochs")


class RunSpecError(ValueError):
    """A RunSpec field is missing or invalid; the message names the field and the value."""


@dataclass(kw_only=True)
class RunSpec:
    experiment: str
    method: str
    hparams: dict
    seed: int
    output_dir: Path
    student_path: Path
    teacher_path: Path | None = None
    reference_path: Path | None = None  # PRIME's reference / reward-model init, KL reference; None: the student
    train_data: Path  # parquet: prompt_id, prompt, answer
    traces_data: Path | None = None  # parquet: prompt_id, prompt, answer, response (SFT, LUFFY)
    verifier: str = "math_verify"
    steps: int
    prompts_per_step: int
    group_size: int
    temperature: float = 1.0
    max_new_tokens: int
    updates_per_step: int = 1  # mini-batches per rollout batch
    micro_batch_size: int  # sequences per forward/backward
    lr: float
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    save_every: int
    threads: int = 1
    sft_epochs: int = 3
    config_hash: str = ""
    top_p: float = 1.0
    extra: dict = field(default_factory=dict)  # free-form notes carried into run.json

    def __post_init__(self) -> None:
        for name in PATH_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        for name in ("experiment", "method"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise RunSpecError(f"RunSpec.{name}: expected a non-empty string, got {getattr(self, name)!r}")
        if not isinstance(self.hparams, dict):
            raise RunSpecError(f"RunSpec.hparams: expected a mapping, got {type(self.hparams).__name__}")
        self.hparams = dict(self.hparams)
        for name in POSITIVE_INT_FIELDS + ("seed", "warmup_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise RunSpecError(f"RunSpec.{name}: expected an integer, got {value!r}")
        for name in POSITIVE_INT_FIELDS:
            if getattr(self, name) < 1:
                raise RunSpecError(f"RunSpec.{name}: expected >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise RunSpecError(f"RunSpec.warmup_steps: expected >= 0, got {self.warmup_steps}")
        for name, low_exclusive in (("temperature", True), ("lr", True), ("grad_clip", True), ("weight_decay", False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RunSpecError(f"RunSpec.{name}: expected a number, got {value!r}")
            setattr(self, name, float(value))
            if value < 0 or (low_exclusive and value == 0):
                raise RunSpecError(f"RunSpec.{name}: expected {'> 0' if low_exclusive else '>= 0'}, got {value}")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise RunSpecError(f"RunSpec.top_p: expected in (0, 1], got {self.top_p}")
        rollout_batch = self.prompts_per_step * self.group_size
        if rollout_batch % self.updates_per_step:
            raise RunSpecError(
                f"RunSpec.updates_per_step: {self.updates_per_step} does not divide the rollout batch "
                f"prompts_per_step * group_size = {self.prompts_per_step} * {self.group_size} = {rollout_batch}"
            )

    # ------------------------------------------------------------------ method-dependent checks
    def check_against_method(self, method) -> None:
        """Raise RunSpecError when the method needs something this spec lacks (teacher, traces)."""
        where = f"experiment {self.experiment!r} (method {method.name!r})"
        if method.teacher_signal != "none" and self.teacher_path is None:
            raise RunSpecError(f"{where}: teacher_signal={method.teacher_signal!r} needs RunSpec.teacher_path")
        if method.uses_teacher_traces and self.traces_data is None:
            raise RunSpecError(f"{where}: the method trains on teacher traces; RunSpec.traces_data is missing")
        if method.policy_loss == "off_policy_mix":
            off_policy = int(self.hparams.get("off_policy_per_group", method.defaults.get("off_policy_per_group", 1)))
            if not 0 <= off_policy < self.group_size:
                raise RunSpecError(
                    f"{where}: hparams.off_policy_per_group={off_policy} must be in [0, group_size={self.group_size})"
                )
        for name in ("student_path", "train_data", "teacher_path", "reference_path", "traces_data"):
            path = getattr(self, name)
            if path is not None and not path.exists():
                raise RunSpecError(f"{where}: RunSpec.{name} = {str(path)!r} does not exist")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in PATH_FIELDS:
            out[name] = None if out[name] is None else str(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "RunSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RunSpecError(f"{source}: unknown RunSpec field(s) {unknown}; expected some of {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as error:  # a missing required field
            raise RunSpecError(f"{source}: {error}") from error

    @classmethod
    def from_json(cls, path: str | Path) -> "RunSpec":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunSpecError(f"{path}: cannot read a RunSpec JSON object: {error}") from error
        if not isinstance(data, dict):
            raise RunSpecError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))
