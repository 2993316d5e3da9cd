"""The verl run's life on the cluster (issue 18): a finished run is not trained again (item 4), a non-finite
metric fails the run and a truncated log line does not (item 8), App. B.3's stop rule and checkpoint
choice (item 5), the stop before a SLURM time limit (item 3). verl itself is replaced by a fake that
writes what verl 0.9.1 writes (file-logger lines, checkpoint folders, its tracker file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import yaml

from tgpo.config import load_config
from tgpo.config.resolve import resolve_experiment
from tgpo.results.run_guard import claim_run_dir
from tgpo.verl import lifecycle
from tgpo.verl import run as verl_run

ROOT = Path(__file__).resolve().parents[1]
PAPER_7B = ROOT / "config" / "paper-7b.yaml"
PAPER_1P5B = ROOT / "config" / "paper-1.5b.yaml"


# ------------------------------------------------------------------------------------------------
# a fake verl: checkpoints and file-logger lines as verl 0.9.1 writes them
# ------------------------------------------------------------------------------------------------


def save(checkpoints: Path, step: int, subdir: str = "actor") -> None:
    """A verl save: global_step_<n>/actor/ with model and optimizer shards, then the tracker file."""
    actor = checkpoints / f"global_step_{step}" / subdir
    actor.mkdir(parents=True, exist_ok=True)
    (actor / "fsdp_config.json").write_text("{}")
    for kind in ("model", "optim", "extra_state"):
        (actor / f"{kind}_world_size_4_rank_0.pt").write_bytes(b"x")
    (checkpoints / lifecycle.VERL_TRACKER).write_text(str(step))


def logger_line(step: int, **data) -> str:
    return json.dumps({"step": step, "data": data}) + "\n"


def logger_path(command: list[str], env: dict) -> Path:
    return Path(env["VERL_FILE_LOGGER_PATH"])


class FakeVerl:
    """Stands in for tgpo.verl.run.run_watched: writes `steps` (step -> metrics) one at a time, saving at
    `saves`, calling the watcher after each line as the real one does after each output line."""

    def __init__(self, steps: dict[int, dict], saves=(), returncode: int = 0):
        self.steps, self.saves, self.returncode = steps, set(saves), returncode
        self.calls = 0

    def __call__(self, command, env, watch=None, **_):
        self.calls += 1
        log = logger_path(command, env)
        checkpoints = log.parent / "checkpoints"
        for step, data in self.steps.items():
            if step in self.saves:
                save(checkpoints, step)
            with open(log, "a") as handle:
                handle.write(logger_line(step, **data))
            reason = watch() if watch is not None else None
            if reason is not None:
                return -2, reason  # SIGINT
        return self.returncode, None


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Results under tmp_path; the export writes a marker folder instead of running verl's merger."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    exported = []

    def fake_export(source, target):
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        (target / "source.txt").write_text(str(source))
        exported.append(Path(source))
        return target

    import tgpo.verl.export as export

    monkeypatch.setattr(export, "export_hf_checkpoint", fake_export)
    return exported


def claimed_run(config_path: Path, experiment: str, seed: int = 0):
    config = load_config(config_path)
    resolved = resolve_experiment(config, experiment, seed)
    claim_run_dir(resolved.run, resolved.run_hash, {"experiment": experiment, "seed": seed, "engine": "verl"})
    return resolved


def run_args(config_path: Path, experiment: str, seed: int = 0) -> argparse.Namespace:
    return argparse.Namespace(config=str(config_path), experiment=experiment, seed=seed, nodes=1, dry_run=False)


def steps(count: int, **data) -> dict[int, dict]:
    return {
        step: {
            "actor/grad_norm": 1.0,
            "actor/pg_loss": 0.1,
            "response_length/mean": 500.0,
            "timing_s/step": 60.0,
            **data,
        }
        for step in range(1, count + 1)
    }


# ------------------------------------------------------------------------------------------------
# item 4: a finished run is not trained again
# ------------------------------------------------------------------------------------------------


def test_rerun_of_a_finished_run_does_not_start_verl(workdir, monkeypatch):
    """verl 0.9.1's fit adds 1 to the loaded step: re-triggering a finished run would start Ray, vLLM and
    the teacher pool again. The run's last checkpoint is its final step (300): verl is not started, the
    checkpoint is exported and run.json written."""
    resolved = claimed_run(PAPER_7B, "grpo_pp")
    checkpoints = resolved.run.checkpoints
    save(checkpoints, 250)
    save(checkpoints, 300)
    (resolved.run.root / "verl_metrics.1.jsonl").write_text("".join(logger_line(s, **d) for s, d in steps(300).items()))

    def verl_must_not_start(*args, **kwargs):
        raise AssertionError("verl was started for a finished run")

    monkeypatch.setattr(verl_run, "run_watched", verl_must_not_start)
    assert verl_run.run(run_args(PAPER_7B, "grpo_pp")) == 0
    record = json.loads(resolved.run.run_json.read_text())
    assert record["checkpoint_step"] == 300 and record["steps_logged"] == 300
    assert workdir == [checkpoints / "global_step_300" / "actor"]


def test_a_run_with_steps_left_starts_verl(workdir, monkeypatch):
    resolved = claimed_run(PAPER_7B, "grpo_pp")
    save(resolved.run.checkpoints, 250)
    assert lifecycle.finished_reason(resolved.run.checkpoints, 300) is None
    fake = FakeVerl({s: d for s, d in steps(300).items() if s > 250}, saves=[300])
    monkeypatch.setattr(verl_run, "run_watched", fake)
    assert verl_run.run(run_args(PAPER_7B, "grpo_pp")) == 0
    assert fake.calls == 1
    assert json.loads(resolved.run.run_json.read_text())["checkpoint_step"] == 300
    assert "final step 300" in lifecycle.finished_reason(resolved.run.checkpoints, 300)


def test_sft_run_is_finished_by_its_marker(tmp_path):
    """SFT counts epochs (no final step known here): the marker written when verl exited 0 says it is done."""
    save(tmp_path, 1641, subdir="")
    assert lifecycle.finished_reason(tmp_path, None) is None
    lifecycle.mark_finished(tmp_path, 1641, "verl finished")
    assert "verl finished" in lifecycle.finished_reason(tmp_path, None)
    save(tmp_path, 1700, subdir="")  # a later checkpoint than the marker: not finished
    assert lifecycle.finished_reason(tmp_path, None) is None


# ------------------------------------------------------------------------------------------------
# item 8: non-finite values fail the run; a truncated line of a killed attempt does not
# ------------------------------------------------------------------------------------------------


def test_truncated_last_line_of_a_killed_attempt_is_left_out(tmp_path):
    killed = logger_line(1, **{"critic/score/mean": 0.1}) + logger_line(2, **{"critic/score/mean": 0.2})[:17]
    (tmp_path / "verl_metrics.100.jsonl").write_text(killed)
    (tmp_path / "verl_metrics.200.jsonl").write_text(logger_line(2, **{"critic/score/mean": 0.25}))
    merged = verl_run.merge_verl_logs(tmp_path)
    assert [line["step"] for line in merged] == [1, 2] and merged[1]["critic/score/mean"] == 0.25


def test_a_bad_line_before_the_last_is_still_an_error(tmp_path):
    (tmp_path / "verl_metrics.1.jsonl").write_text('{"step": 1, "da\n' + logger_line(2, a=1.0))
    with pytest.raises(ValueError, match=r"verl_metrics\.1\.jsonl:1: not a verl file-logger line"):
        verl_run.merge_verl_logs(tmp_path)


@pytest.mark.parametrize("value", [None, float("nan"), float("inf")])
def test_non_finite_watched_metrics_are_found(value):
    # verl's file logger (orjson) writes NaN and inf as null
    assert lifecycle.non_finite_metrics({"actor/grad_norm": value, "critic/score/mean": 0.5}) == [
        f"actor/grad_norm={value}"
    ]
    assert lifecycle.non_finite_metrics({"actor/tgpo/guidance_loss": value})
    assert lifecycle.non_finite_metrics({"train/loss": value})  # verl's SFT trainer
    assert lifecycle.non_finite_metrics({"response_length/mean": value}) == []  # not a loss/gradient/advantage


def test_nan_gradient_stops_verl_and_fails_the_run(workdir, monkeypatch):
    """verl skips a non-finite update and goes on; the run stops at that step and writes no run.json."""
    resolved = claimed_run(PAPER_7B, "grpo_pp")
    run_steps = steps(40)
    run_steps[7]["actor/grad_norm"] = None  # NaN, as verl's file logger writes it
    fake = FakeVerl(run_steps)
    monkeypatch.setattr(verl_run, "run_watched", fake)
    assert verl_run.run(run_args(PAPER_7B, "grpo_pp")) == 1
    assert not resolved.run.run_json.exists()
    lines = Path(next(resolved.run.root.glob("verl_metrics.*.jsonl"))).read_text().splitlines()
    assert len(lines) == 7, "verl was not stopped at the non-finite step"


def test_nan_logged_by_a_run_that_exited_zero_fails_it(workdir, monkeypatch):
    """Also when no watcher saw it (the metrics are checked again after verl exits)."""
    resolved = claimed_run(PAPER_7B, "grpo_pp")
    run_steps = steps(300)
    run_steps[299]["actor/pg_loss"] = None

    class Blind(FakeVerl):
        def __call__(self, command, env, watch=None, **kw):
            return super().__call__(command, env, watch=None)

    monkeypatch.setattr(verl_run, "run_watched", Blind(run_steps, saves=[300]))
    assert verl_run.run(run_args(PAPER_7B, "grpo_pp")) == 1
    assert not resolved.run.run_json.exists()


def test_verl_non_finite_warning_stops_the_child(capsys):
    """verl's FSDP engine prints this before skipping the update; the wrapper stops the run at once."""
    import time

    child = "import time; print('(WorkerDict pid=1) WARN: grad_norm is not finite: nan', flush=True); time.sleep(90)"
    started = time.time()
    returncode, stopped_by = verl_run.run_watched([sys.executable, "-c", child], env=None)
    assert time.time() - started < 60, "the child was left running"
    assert returncode != 0 and lifecycle.VERL_NON_FINITE_WARNING in stopped_by


# ------------------------------------------------------------------------------------------------
# item 5: App. B.3's stop rule and the checkpoint that is evaluated
# ------------------------------------------------------------------------------------------------


def test_stop_rule_fires_at_the_fraction_of_the_budget():
    assert lifecycle.length_stop({"response_length/mean": 7700.0}, 0.95, 8192) is None
    assert "App. B.3" in lifecycle.length_stop({"response_length/mean": 7790.0}, 0.95, 8192)
    assert lifecycle.length_stop({"response_length/mean": 8192.0}, None, 8192) is None  # rule off


def test_validation_choice_takes_the_best_kept_checkpoint():
    metrics = [
        {"step": 50, "val-core/openr1_math/reward/mean@1": 0.40},
        {"step": 100, "val-core/openr1_math/reward/mean@1": 0.45},
        {"step": 150, "val-core/openr1_math/reward/mean@1": 0.10},
        {"step": 120, "critic/score/mean": 0.9},
    ]
    assert lifecycle.choose_checkpoint("validation", metrics, [50, 100, 150])[0] == 100
    assert lifecycle.choose_checkpoint("validation", metrics, [50, 150])[0] == 50  # 100's model not kept
    assert lifecycle.choose_checkpoint("last", metrics, [50, 100, 150], last_step=150)[0] == 150
    with pytest.raises(ValueError, match="validation score"):
        lifecycle.choose_checkpoint("validation", [{"step": 50}], [50])


def collapsing_kdrl_run() -> dict[int, dict]:
    """paper-1.5b's KDRL (Table 3): the length reaches the window at step 207 (>= 0.95 x 8192); the
    validation score peaks at step 50."""
    run_steps = steps(300)
    for step in range(100, 301):
        run_steps[step]["response_length/mean"] = 3000.0 + 45 * (step - 100)  # 7815 at 207
    for step, score in ((50, 0.31), (100, 0.28), (150, 0.12), (200, 0.02)):
        run_steps[step]["val-core/openr1_math/reward/mean@1"] = score
    return run_steps


def test_kdrl_stops_at_the_length_explosion_and_exports_every_save_for_the_test_choice(workdir, monkeypatch):
    """paper-1.5b's KDRL reports its best save on the test benchmarks (checkpoint_choice: test, the paper's
    "best-performing checkpoints"): verl is stopped after the save at step 210, the last save becomes the
    checkpoint and every earlier save is exported beside it for evaluation; a re-run does not resume."""
    resolved = claimed_run(PAPER_1P5B, "kdrl")
    fake = FakeVerl(collapsing_kdrl_run(), saves=range(10, 301, 10))
    monkeypatch.setattr(verl_run, "run_watched", fake)
    assert verl_run.run(run_args(PAPER_1P5B, "kdrl")) == 0
    record = json.loads(resolved.run.run_json.read_text())
    assert record["checkpoint_step"] == 210 and record["checkpoint_choice"] == "test"
    assert "App. B.3" in record["ended"] and record["steps_logged"] == 210
    assert {int(step) for step in record["earlier_saves"]} == set(range(10, 210, 10))
    exported = [resolved.run.checkpoints / f"global_step_{step}" / "actor" for step in [210, *range(10, 210, 10)]]
    assert workdir == exported  # the last save as the checkpoint, then the earlier ones
    assert (resolved.run.saved_model(50) / "source.txt").read_text().endswith("global_step_50/actor")
    marker = lifecycle.finished_marker(resolved.run.checkpoints)
    assert marker["step"] == 210 and marker["stopped_at_step"] == 207
    resolved.run.run_json.unlink()
    assert verl_run.run(run_args(PAPER_1P5B, "kdrl")) == 0 and fake.calls == 1, "the stopped run was resumed"


def test_validation_choice_exports_the_best_validated_save(workdir, monkeypatch, tmp_path):
    """The same run with checkpoint_choice: validation exports only the save with the best validation
    score (step 50) as the checkpoint."""
    config = yaml.safe_load(PAPER_1P5B.read_text())
    config["experiments"]["kdrl"]["training"]["checkpoint_choice"] = "validation"
    variant = tmp_path / "paper-1.5b-validation.yaml"
    variant.write_text(yaml.safe_dump(config, sort_keys=False))
    resolved = claimed_run(variant, "kdrl")
    monkeypatch.setattr(verl_run, "run_watched", FakeVerl(collapsing_kdrl_run(), saves=range(10, 301, 10)))
    assert verl_run.run(run_args(variant, "kdrl")) == 0
    record = json.loads(resolved.run.run_json.read_text())
    assert record["checkpoint_step"] == 50 and record["checkpoint_choice"] == "validation"
    assert "earlier_saves" not in record
    assert workdir == [resolved.run.checkpoints / "global_step_50" / "actor"]


def test_stop_rule_waits_for_a_save(tmp_path):
    """Met before the first save (a quick collapse, or a short CPU overlay run): verl goes on to the next
    save, or to its last step, so the stopped run has a checkpoint."""
    watch = lifecycle.StepWatch(
        tmp_path / "log.jsonl", save_freq=10, final_step=3, max_new_tokens=100, stop_fraction=0.5, job_end=None
    )
    assert watch.check_step(1, {"response_length/mean": 90.0}) is None
    assert watch.check_step(2, {"response_length/mean": 10.0}) is None
    stop = watch.check_step(3, {"response_length/mean": 10.0})
    assert stop.kind == "stop_rule" and stop.step == 1 and "after the save at step 3" in stop.reason


def test_stop_rule_is_set_for_table_3_kdrl_and_rkl_only():
    config = load_config(PAPER_1P5B)
    ruled = {
        name
        for name, entry in config["experiments"].items()
        if (entry.get("training") or {}).get("stop_length_fraction") is not None
    }
    assert ruled == {"kdrl", "op_distill"}
    for name in ruled:  # App. B.3's "best-performing checkpoints", judged on the test benchmarks
        assert resolve_experiment(config, name, 0).training["checkpoint_choice"] == "test"


def test_local_engine_refuses_the_verl_only_stop_rule():
    from tgpo.engine.run_spec import RunSpec, RunSpecError

    config = load_config(ROOT / "config" / "default.yaml")
    config["experiments"]["kdrl"]["training"] = {"stop_length_fraction": 0.9}
    with pytest.raises(RunSpecError, match="stop_length_fraction"):
        RunSpec.from_resolved(resolve_experiment(config, "kdrl", 0))


# ------------------------------------------------------------------------------------------------
# item 3: stop before the SLURM time limit, right after a save
# ------------------------------------------------------------------------------------------------


def test_time_limit_stop_after_a_save_that_the_next_cannot_follow():
    data = {"timing_s/save_checkpoint": 120.0}
    now = 1_000_000.0
    # 50 steps x 200 s + 120 s save + 120 s margin = 10,240 s needed
    assert lifecycle.time_limit_stop(100, 50, 300, data, [180.0, 200.0], now + 10_000, now) is not None
    assert lifecycle.time_limit_stop(100, 50, 300, data, [180.0, 200.0], now + 11_000, now) is None
    assert lifecycle.time_limit_stop(101, 50, 300, data, [200.0], now + 10, now) is None  # not a save step
    assert lifecycle.time_limit_stop(300, 50, 300, data, [200.0], now + 10, now) is None  # the final save
    assert lifecycle.time_limit_stop(100, 50, 300, data, [200.0], None, now) is None  # not under SLURM


def test_parse_squeue_end_time():
    assert lifecycle.parse_slurm_time("2026-12-07T17:00:00\n") is not None
    assert lifecycle.parse_slurm_time("N/A") is None and lifecycle.parse_slurm_time("Unknown") is None


def test_time_limit_stop_ends_the_job_for_a_retry(workdir, monkeypatch):
    """Under SLURM with 2 h left after the save at step 50 and 200 s steps: stop, exit 75 (resumable)."""
    resolved = claimed_run(PAPER_7B, "grpo_pp")
    import time

    monkeypatch.setattr(lifecycle, "slurm_job_end", lambda: time.time() + 7200)
    fake = FakeVerl(steps(300, **{"timing_s/step": 200.0}), saves=[50, 100])
    monkeypatch.setattr(verl_run, "run_watched", fake)
    assert verl_run.run(run_args(PAPER_7B, "grpo_pp")) == lifecycle.TIME_LIMIT_EXIT
    assert lifecycle.latest_checkpoint_step(resolved.run.checkpoints) == 50
    assert not resolved.run.run_json.exists()
    assert lifecycle.finished_reason(resolved.run.checkpoints, 300) is None  # the retry resumes


def test_slurm_job_end_outside_slurm_is_none(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert lifecycle.slurm_job_end() is None
