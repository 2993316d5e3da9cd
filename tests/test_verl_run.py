"""The cluster run wrapper: verl's file logger writes where the wrapper merges from, and the merge of
several attempts (a resumed run) keeps one line per step, later attempts winning."""

from __future__ import annotations

import json
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tgpo.config import load_config
from tgpo.verl.run import VERL_LOG_GLOB, driver_command, merge_verl_logs

ROOT = Path(__file__).resolve().parents[1]


def test_logger_path_given_to_verl_is_one_the_merge_reads(tmp_path):
    config = load_config(ROOT / "config" / "paper-7b.yaml")
    log = tmp_path / VERL_LOG_GLOB.replace("*", "123")
    command = driver_command(config, "tgpo_annealing", 0, 1, log)
    logger_overrides = [arg for arg in command if "VERL_FILE_LOGGER_PATH" in arg]
    assert logger_overrides == [f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={log}"]
    assert fnmatch(log.name, VERL_LOG_GLOB)


def test_merge_of_a_resumed_run_keeps_one_line_per_step(tmp_path):
    def write(name, lines):
        (tmp_path / name).write_text("".join(json.dumps({"step": s, "data": d}) + "\n" for s, d in lines))

    write("verl_metrics.100.jsonl", [(1, {"critic/score/mean": 0.1}), (2, {"critic/score/mean": 0.2})])
    write("verl_metrics.200.jsonl", [(2, {"critic/score/mean": 0.25}), (3, {"critic/score/mean": 0.3})])
    merged = merge_verl_logs(tmp_path)
    assert [line["step"] for line in merged] == [1, 2, 3]
    assert merged[1]["critic/score/mean"] == 0.25


def test_merge_names_a_bad_line(tmp_path):
    (tmp_path / "verl_metrics.1.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(ValueError, match=r"verl_metrics\.1\.jsonl:1: not a verl file-logger line"):
        merge_verl_logs(tmp_path)


def test_merge_adds_our_metric_names_beside_verls(tmp_path):
    """The plugin's loss metrics arrive as actor/tgpo/...; metrics.jsonl also holds the local engine's names."""
    from tgpo.engine.metrics import STEP_METRICS
    from tgpo.verl.run import OUR_NAMES

    data = {
        "actor/tgpo/teacher_oov_frac": 0.25,
        "actor/tgpo/guidance_loss": 3.0,
        "timing_s/update_actor": 0.5,
        "tgpo/guidance_weight": 0.1,
        "actor/tgpo/guidance_weight": 0.1,
    }
    (tmp_path / "verl_metrics.1.jsonl").write_text(json.dumps({"step": 1, "data": data}) + "\n")
    [line] = merge_verl_logs(tmp_path)
    assert line["tgpo/teacher_oov_frac"] == 0.25 and line["tgpo/guidance_loss"] == 3.0
    assert line["timing_s/update"] == 0.5 and line["actor/tgpo/teacher_oov_frac"] == 0.25
    assert set(OUR_NAMES.values()) - {"tgpo/teacher_oov_tokens"} <= set(STEP_METRICS)


def test_watched_run_stops_a_child_that_ray_left_waiting_on_killed_workers(capsys):
    """Ray's OOM monitor killed workers and verl kept waiting (issue 9's SLURM run): the wrapper stops it."""
    import sys
    import time

    from tgpo.verl.run import RAY_OOM_KILL, run_watched

    child = (
        "import sys, time; print('step 1', flush=True); "
        f"print('(raylet) node_manager.cc: 4 Workers (tasks / actors) {RAY_OOM_KILL}, 0 Workers crashed', "
        "file=sys.stderr, flush=True); time.sleep(600)"
    )
    started = time.time()
    returncode, stopped_by = run_watched([sys.executable, "-c", child], env=None)
    assert time.time() - started < 60, "the child was left running"
    assert returncode != 0 and RAY_OOM_KILL in stopped_by
    assert "step 1" in capsys.readouterr().out  # the child's output still reaches the job log


def test_watched_run_passes_the_exit_status_through():
    import sys

    from tgpo.verl.run import run_watched

    assert run_watched([sys.executable, "-c", "print('done')"], env=None) == (0, None)
    assert run_watched([sys.executable, "-c", "raise SystemExit(3)"], env=None) == (3, None)
