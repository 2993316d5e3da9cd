"""The life of one verl run on the cluster, around verl's own loop (tgpo.verl.run drives it).

Pure functions and small classes, each tested without verl running:

- Finished runs: verl 0.9.1 resumes `trainer.default_local_dir`'s last checkpoint (`resume_mode=auto`). A
  re-triggered job of a finished run would start Ray, vLLM, the teacher pool and load the checkpoint only
  to find nothing left to train (verl-project/verl v0.9.1 `verl/trainer/ppo/v1/trainer_base.py`, `fit`:
  `global_steps += 1` after the load, loop `while global_steps <= total_training_steps`), and a run the
  stop rule ended would train on past its stop. `finished_reason` says when verl need not run again: the
  last checkpoint is the final step, or FINISHED_MARKER (written when a stop rule ended the run, or when
  verl's SFT trainer, whose last step is not known beforehand, exited 0) names the last checkpoint.
- Non-finite values: verl's FSDP engine prints "WARN: grad_norm is not finite" and skips the update
  (`verl/workers/engine/fsdp/transformer_impl.py`, `optimizer_step`), and its file logger writes NaN and
  inf as JSON null (orjson, `verl/utils/tracking.py` FileLogger). `non_finite_metrics` finds them in a step's
  metrics, as the local engine stops on a non-finite loss, gradient norm or advantage (tgpo.engine.trainer).
- The stop rule of App. B.3 (KDRL and RKL on the 1.5B student, Table 3): "we terminated their training
  once the generation length reached the maximum context window ... we report the performance based on
  their best-performing checkpoints". `training.stop_length_fraction` f stops a run once a step's mean
  response length is at least f x max_new_tokens (after the next save, so there is a checkpoint);
  `training.checkpoint_choice` picks the checkpoint that is evaluated: `last`, `validation` (the best save
  on verl's validation set, `choose_checkpoint`) or `test` (the best save on the test benchmarks, the
  paper's "best-performing checkpoints": every kept save is exported and evaluated, and
  eval.checkpoint_choice picks the save with the best Avg.).
- Time limits: `time_limit_stop` stops verl right after a save when the next save cannot be reached before
  the SLURM job's end (so no step is trained only to be lost); the job exits TIME_LIMIT_EXIT and the
  profile's `retries` resubmit it, resuming from that save.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tgpo.results import io

VERL_TRACKER = "latest_checkpointed_iteration.txt"  # verl's tracker file (find_latest_ckpt_path)
FINISHED_MARKER = "tgpo_finished.json"  # ours, beside the tracker: {"step": n, "reason": "..."}
VERL_NON_FINITE_WARNING = "grad_norm is not finite"  # verl's FSDP engine, before it skips the update
TIME_LIMIT_EXIT = 75  # EX_TEMPFAIL: stopped before the job's time limit; re-running resumes
# The metrics whose non-finite value fails a run: every loss and gradient norm the actor logs, the
# advantages (verl's names; our plugin's losses arrive under actor/tgpo/...), and the SFT trainer's train/.
WATCHED = re.compile(r"^actor/(.*loss|grad_norm)$|^critic/advantages/|^train/(loss|grad_norm)$")
# verl's validation score: val-core/<data source>/<acc or reward>/mean@<n> (trainer_base._val_metrics_update)
VALIDATION_SCORE = re.compile(r"^val-core/.+/(acc|reward)/mean@\d+$")  # data sources may hold a /
CHECKPOINT_CHOICES = ("last", "validation", "test")
RESPONSE_LENGTH = "response_length/mean"
STEP_TIME = "timing_s/step"
SAVE_TIME = "timing_s/save_checkpoint"
SAVE_MARGIN_S = 120  # beyond the slowest recent step and the measured save time: step-time variance, a slow filesystem


# ------------------------------------------------------------------------------------------------
# Checkpoints and finished runs
# ------------------------------------------------------------------------------------------------


def latest_checkpoint_step(checkpoints: Path) -> int | None:
    """The step of verl's last complete checkpoint under `checkpoints` (its tracker names an existing
    global_step_<n>), or None."""
    tracker = Path(checkpoints) / VERL_TRACKER
    if not tracker.is_file():
        return None
    text = tracker.read_text().strip()
    if not text.isdigit() or not (Path(checkpoints) / f"global_step_{int(text)}").is_dir():
        return None
    return int(text)


def saved_steps(checkpoints: Path, model_subdir: str = "actor") -> list[int]:
    """Steps whose model shards are still on disk (global_step_<n>/<model_subdir>/fsdp_config.json)."""
    steps = []
    for folder in Path(checkpoints).glob("global_step_*"):
        suffix = folder.name.removeprefix("global_step_")
        model_dir = folder / model_subdir if model_subdir else folder
        if suffix.isdigit() and (model_dir / "fsdp_config.json").is_file():
            steps.append(int(suffix))
    return sorted(steps)


def mark_finished(checkpoints: Path, step: int, reason: str, **extra) -> None:
    """Record that the run ended at checkpoint `step` (a stop rule ended it, or the SFT trainer exited 0)."""
    io.write_json(Path(checkpoints) / FINISHED_MARKER, {"step": step, "reason": reason, **extra})


def finished_marker(checkpoints: Path) -> dict | None:
    path = Path(checkpoints) / FINISHED_MARKER
    return json.loads(path.read_text()) if path.is_file() else None


def finished_reason(checkpoints: Path, final_step: int | None) -> str | None:
    """Why verl need not run again for this run folder, or None when it must (no checkpoint, or training
    left). `final_step`: the run's last step (training.steps), None when unknown (SFT counts epochs)."""
    step = latest_checkpoint_step(checkpoints)
    if step is None:
        return None
    if final_step is not None and step >= final_step:
        return f"its last checkpoint is the final step {step} of {final_step}"
    marker = finished_marker(checkpoints)
    if marker is not None and marker.get("step") == step:
        return f"it ended at checkpoint {step}: {marker.get('reason')}"
    return None


# ------------------------------------------------------------------------------------------------
# verl's metrics as they arrive
# ------------------------------------------------------------------------------------------------


def parse_logger_lines(path: Path, text: str, *, complete: bool) -> list[tuple[int, dict]]:
    """(step, data) of each verl file-logger line of `text`. A last line without its newline that does not
    parse is a write cut short by a kill: it is left out (with `complete`, a warning names it). Any other
    bad line is an error naming file and line."""
    records = []
    lines = text.split("\n")
    unterminated = lines.pop()  # "" when the text ends with a newline
    for number, line in enumerate(lines, start=1):
        if line.strip():
            records.append(parse_logger_line(path, number, line))
    if unterminated.strip():
        try:
            records.append(parse_logger_line(path, len(lines) + 1, unterminated))
        except ValueError:
            if complete:
                print(
                    f"{path}:{len(lines) + 1}: ignoring a truncated last line (an attempt killed mid-write)", flush=True
                )
    return records


def parse_logger_line(path: Path, number: int, line: str) -> tuple[int, dict]:
    try:
        record = json.loads(line)
        return int(record["step"]), dict(record["data"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}:{number}: not a verl file-logger line ({error})") from None


class LogTail:
    """The complete lines verl's file logger has added to one file since the last call."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0

    def new_records(self) -> list[tuple[int, dict]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return parse_logger_lines(self.path, chunk[: end + 1].decode(errors="replace"), complete=False)


def non_finite_metrics(data: dict) -> list[str]:
    """The watched metrics of one step that are NaN, inf or null (how verl's file logger writes both)."""
    bad = []
    for key, value in data.items():
        if WATCHED.search(key) and (value is None or (isinstance(value, float) and not math.isfinite(value))):
            bad.append(f"{key}={value}")
    return bad


def length_stop(data: dict, fraction: float | None, max_new_tokens: int) -> str | None:
    """App. B.3's stop rule for one step's metrics: the mean response length reached `fraction` of the
    generation budget. None when the rule is off (`fraction` None) or not met."""
    if fraction is None or RESPONSE_LENGTH not in data or data[RESPONSE_LENGTH] is None:
        return None
    length = float(data[RESPONSE_LENGTH])
    if length >= fraction * max_new_tokens:
        return f"mean response length {length:.0f} >= {fraction} x max_new_tokens {max_new_tokens} (App. B.3 stop rule)"
    return None


# ------------------------------------------------------------------------------------------------
# Time limits
# ------------------------------------------------------------------------------------------------


def parse_slurm_time(text: str) -> float | None:
    """An squeue `%e` end time (e.g. 2026-12-07T17:00:00, local time) as epoch seconds; None for
    N/A, Unknown or an unlimited job."""
    text = text.strip()
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp()
    except ValueError:
        return None


def slurm_job_end(job_id: str | None = None) -> float | None:
    """The current SLURM job's end time (its time limit), from squeue; None outside SLURM or on error."""
    job_id = job_id or os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%e"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_slurm_time(out.stdout) if out.returncode == 0 else None


def time_limit_stop(
    step: int,
    save_freq: int,
    final_step: int | None,
    data: dict,
    step_seconds: list[float],
    job_end: float | None,
    now: float,
) -> str | None:
    """After a save at `step`: a reason to stop now when the next save (save_freq steps at the slowest
    recent step time, then a save) cannot finish before `job_end`; else None."""
    if job_end is None or save_freq <= 0 or step % save_freq or not step_seconds:
        return None
    if final_step is not None and step >= final_step:
        return None
    steps = save_freq if final_step is None else min(save_freq, final_step - step)
    needed = steps * max(step_seconds) + float(data.get(SAVE_TIME) or 0.0) + SAVE_MARGIN_S
    left = job_end - now
    if left < needed:
        return (
            f"{left / 60:.0f} min left in the SLURM job; the next save needs ~{needed / 60:.0f} min "
            f"({steps} steps at {max(step_seconds):.0f} s, the save, {SAVE_MARGIN_S} s margin)"
        )
    return None


@dataclass
class Stop:
    kind: str  # "non_finite" | "stop_rule" | "time_limit"
    step: int
    reason: str


class StepWatch:
    """Watches verl's metrics step by step and says when to stop it (the first reason wins). The stop rule
    takes effect at the first save at or after the step that met it, so a stopped run always has a
    checkpoint to choose from (at most save_freq - 1 more steps)."""

    def __init__(
        self,
        log: Path,
        *,
        save_freq: int,
        final_step: int | None,
        max_new_tokens: int,
        stop_fraction: float | None,
        job_end: float | None,
        clock=time.time,
    ):
        self.tail = LogTail(log)
        self.save_freq, self.final_step = save_freq, final_step
        self.max_new_tokens, self.stop_fraction = max_new_tokens, stop_fraction
        self.job_end, self.clock = job_end, clock
        self.step_seconds: list[float] = []
        self.rule_met: tuple[int, str] | None = None  # (step, reason) of the first step meeting the stop rule

    def check(self) -> Stop | None:
        for step, data in self.tail.new_records():
            stop = self.check_step(step, data)
            if stop is not None:
                return stop
        return None

    def saved_at(self, step: int) -> bool:
        """verl saved at `step` before logging it (trainer.save_freq, and the last step)."""
        return (self.save_freq > 0 and step % self.save_freq == 0) or step == self.final_step

    def check_step(self, step: int, data: dict) -> Stop | None:
        bad = non_finite_metrics(data)
        if bad:
            return Stop("non_finite", step, f"non-finite {', '.join(bad)} at step {step}")
        reason = length_stop(data, self.stop_fraction, self.max_new_tokens)
        if reason and self.rule_met is None:
            self.rule_met = (step, reason)
        if self.rule_met is not None and self.saved_at(step):
            met_step, met_reason = self.rule_met
            return Stop("stop_rule", met_step, f"step {met_step}: {met_reason}; stopped after the save at step {step}")
        if isinstance(data.get(STEP_TIME), (int, float)):
            self.step_seconds = (self.step_seconds + [float(data[STEP_TIME])])[-10:]
        reason = time_limit_stop(
            step, self.save_freq, self.final_step, data, self.step_seconds, self.job_end, self.clock()
        )
        if reason:
            return Stop("time_limit", step, f"after the save at step {step}: {reason}")
        return None


# ------------------------------------------------------------------------------------------------
# The checkpoint that is evaluated
# ------------------------------------------------------------------------------------------------


def validation_score(record: dict) -> float | None:
    """verl's validation score in one metrics line: the mean of its val-core mean@n scores, or None."""
    scores = [
        float(value) for key, value in record.items() if VALIDATION_SCORE.match(key) and isinstance(value, (int, float))
    ]
    return sum(scores) / len(scores) if scores else None


def choose_checkpoint(
    choice: str, metrics: list[dict], steps_on_disk: list[int], last_step: int | None = None
) -> tuple[int, str]:
    """(step, why) of the checkpoint to export for evaluation.

    "last": the last checkpoint (`last_step`, else the last on disk). "validation": the kept checkpoint
    with the best verl validation score logged at its step (ties: the later step); ValueError when no kept
    checkpoint has a score (set trainer.test_freq to the save frequency: tgpo.verl.translate does). "test"
    is chosen after evaluation (eval.checkpoint_choice), not here: ValueError."""
    if not steps_on_disk:
        raise ValueError("no checkpoint with model shards to choose from")
    if choice == "last":
        step = last_step if last_step is not None else steps_on_disk[-1]
        return step, "the last checkpoint"
    if choice == "test":
        raise ValueError("checkpoint_choice test is made on the evaluated saves (eval.checkpoint_choice), not here")
    if choice != "validation":
        raise ValueError(f"training.checkpoint_choice {choice!r}: expected one of {list(CHECKPOINT_CHOICES)}")
    by_step = {int(line["step"]): validation_score(line) for line in metrics}
    scored = [(by_step[step], step) for step in steps_on_disk if by_step.get(step) is not None]
    if not scored:
        raise ValueError(
            f"checkpoint_choice validation: none of the kept checkpoints {steps_on_disk} has a "
            f"validation score (val-core/...) in the metrics"
        )
    score, step = max(scored)
    return step, f"best validation score {score:.4f} of steps {[s for _, s in sorted(scored, key=lambda x: x[1])]}"
