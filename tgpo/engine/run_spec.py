"""RunSpec: everything one local-engine training run needs, validated on construction.

Built from the resolved experiment (`RunSpec.from_resolved(tgpo.config.resolve.resolve_experiment(config,
experiment, seed))`), or read from a JSON file (`RunSpec.from_json`, used by tests and by
`python -m tgpo train --run-spec`). A spec written by hand may give only some hyper-parameters: the
rest come from the method's defaults through `tgpo.config.resolve.layered_settings` (its `lr` and
`sft_epochs` fields rank above them), so `hparams` always holds every value the run uses. Method-
dependent checks (a teacher for teacher-signal methods, traces for SFT/LUFFY) are in
`check_against_method`. `run_hash` identifies what the run trains (tgpo.results.run_guard).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tgpo.config.resolve import TRAINING_DEFAULTS, layered_settings, settings_hash

# Fields that do not change what is trained (where it is written, remarks, provenance): not in run_hash.
NOT_DETERMINING = frozenset({"output_dir", "run_hash", "extra", "sources", "experiment", "loggers"})
# App. B.3's stop rule and checkpoint choice run around verl's loop (tgpo.verl.lifecycle) only.
VERL_ONLY_SETTINGS = frozenset({"stop_length_fraction", "checkpoint_choice"})
PATH_FIELDS = ("output_dir", "student_path", "teacher_path", "reference_path", "train_data", "traces_data")
POSITIVE_INT_FIELDS = (
    "steps",
    "prompts_per_step",
    "group_size",
    "max_new_tokens",
    "updates_per_step",
    "micro_batch_size",
    "save_every",
    "threads",
    "sft_epochs",
)


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
    verifier: str = TRAINING_DEFAULTS["verifier"]
    steps: int
    prompts_per_step: int
    group_size: int
    temperature: float = TRAINING_DEFAULTS["temperature"]
    max_new_tokens: int
    updates_per_step: int = TRAINING_DEFAULTS["updates_per_step"]  # mini-batches per rollout batch
    micro_batch_size: int  # sequences per forward/backward
    lr: float
    warmup_steps: int = TRAINING_DEFAULTS["warmup_steps"]
    weight_decay: float = TRAINING_DEFAULTS["weight_decay"]
    grad_clip: float = TRAINING_DEFAULTS["grad_clip"]
    save_every: int = TRAINING_DEFAULTS["save_every"]
    threads: int = TRAINING_DEFAULTS["threads"]
    sft_epochs: int = TRAINING_DEFAULTS["sft_epochs"]
    loggers: list = field(default_factory=list)  # trackers beside metrics.jsonl (tgpo.engine.loggers)
    run_hash: str = ""  # tgpo.config.resolve's hash of what the run trains; "" -> the hash of this spec's settings
    top_p: float = 1.0
    sources: dict = field(default_factory=dict)  # setting name -> where its value came from (tgpo.config.resolve)
    extra: dict = field(default_factory=dict)  # free-form remarks carried into run.json

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
        self.sources = dict(self.sources)
        self.hparams = self.complete_hparams()
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
        if not self.run_hash:
            self.run_hash = settings_hash({k: v for k, v in self.to_dict().items() if k not in NOT_DETERMINING})

    def complete_hparams(self) -> dict:
        """Every hyper-parameter the run uses: the given ones, then the spec's lr / sft_epochs, then the
        method's defaults; a given `lr` or `sft_epochs` that disagrees with the field is an error."""
        from tgpo.methods import get_method

        try:
            method = get_method(self.method)
        except KeyError as error:
            raise RunSpecError(f"RunSpec.method: {error.args[0]}") from None
        for name in ("lr", "sft_epochs"):
            given = self.hparams.get(name)
            if given is not None and given != getattr(self, name):
                raise RunSpecError(
                    f"RunSpec: hparams.{name} = {given!r} disagrees with RunSpec.{name} = {getattr(self, name)!r}"
                )
        settings = layered_settings(
            [
                ("run spec hparams", self.hparams),
                ("run spec", {"lr": self.lr, "sft_epochs": self.sft_epochs}),
                ("method default", method.defaults),
            ]
        )
        for name, setting in settings.items():
            self.sources.setdefault(name, setting.source)
        return {name: setting.value for name, setting in settings.items()}

    # ------------------------------------------------------------------ method-dependent checks
    def check_against_method(self, method) -> None:
        """Raise RunSpecError when the method needs something this spec lacks (teacher, traces)."""
        where = f"experiment {self.experiment!r} (method {method.name!r})"
        if method.teacher_signal != "none" and self.teacher_path is None:
            raise RunSpecError(f"{where}: teacher_signal={method.teacher_signal!r} needs RunSpec.teacher_path")
        if method.uses_teacher_traces and self.traces_data is None:
            raise RunSpecError(f"{where}: the method trains on teacher traces; RunSpec.traces_data is missing")
        if method.policy_loss == "off_policy_mix":
            off_policy = int(self.hparams["off_policy_per_group"])
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
    def from_resolved(cls, resolved) -> RunSpec:
        """The local engine's spec of a `tgpo.config.resolve.ResolvedExperiment` (every value and source kept)."""
        verl_only = sorted(VERL_ONLY_SETTINGS & set(resolved.settings))
        if verl_only:
            raise RunSpecError(
                f"experiments.{resolved.experiment}: training {verl_only} are implemented by the "
                f"verl engine only (tgpo.verl.lifecycle); the local engine would ignore them"
            )
        settings = {f.name for f in dataclasses.fields(cls)} & (set(TRAINING_DEFAULTS) | {"lr"})
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        # a required setting nothing sets: ConfigError naming `training.<name>`
        engine_fields = (settings & set(resolved.settings)) | (settings & required)
        return cls(
            experiment=resolved.experiment,
            method=resolved.method,
            hparams=resolved.hparams,
            seed=resolved.seed,
            output_dir=resolved.run.root,
            student_path=Path(resolved.student),
            teacher_path=Path(resolved.teacher) if resolved.teacher else None,
            reference_path=Path(resolved.reference) if resolved.reference else None,
            train_data=Path(resolved.train_data),
            traces_data=Path(resolved.traces_data) if resolved.traces_data else None,
            run_hash=resolved.run_hash,
            sources=resolved.sources,
            **{name: resolved.value(name) for name in sorted(engine_fields)},
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> RunSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RunSpecError(f"{source}: unknown RunSpec field(s) {unknown}; expected some of {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as error:  # a missing required field
            raise RunSpecError(f"{source}: {error}") from error

    @classmethod
    def from_json(cls, path: str | Path) -> RunSpec:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunSpecError(f"{path}: cannot read a RunSpec JSON object: {error}") from error
        if not isinstance(data, dict):
            raise RunSpecError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))
