"""Resume integrity (tgpo.results.run_guard): a run never resumes a checkpoint of other settings, on either
engine; the old run is moved aside, never deleted, and metrics.jsonl holds one setting's steps."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
from conftest import tiny_config, write_config

from tgpo.config import load_config
from tgpo.config.resolve import resolve_experiment
from tgpo.engine import checkpoint as ckpt
from tgpo.engine.run_spec import RunSpec
from tgpo.engine.trainer import train
from tgpo.results.layout import RunLayout
from tgpo.results.run_guard import claim_run_dir, recorded_hash

torch.set_num_threads(1)


def metrics(run: RunLayout) -> list[dict]:
    return [json.loads(line) for line in run.metrics.read_text().splitlines() if line.strip()]


def stale_runs(run: RunLayout) -> list[Path]:
    return sorted(run.root.parent.glob(f"{run.root.name}.stale-*"))


def local_spec(config: dict, directory: Path) -> RunSpec:
    return RunSpec.from_resolved(resolve_experiment(load_config(write_config(config, directory)), "run", 0))


def test_changed_w_init_trains_fresh_and_moves_the_old_run_aside(
    tiny_models, tiny_data, digit_verifier, tmp_path, monkeypatch, capsys
):
    """The issue's scenario: train tgpo with a checkpoint, change w_init, rerun into the same folder."""
    monkeypatch.chdir(tmp_path)
    training = {"steps": 3, "save_every": 2, "lr": 5e-5}  # a checkpoint at step 2; lr from config training
    old = local_spec(
        tiny_config(
            tiny_models,
            tiny_data,
            digit_verifier,
            training=training,
            experiment={"hparams": {"w_init": 0.1, "delta": 0.0}},
        ),
        tmp_path,
    )
    train(old, progress=False)
    run = RunLayout(old.output_dir)
    assert ckpt.latest_checkpoint(run.root) is not None
    assert [r["tgpo/guidance_weight"] for r in metrics(run)] == pytest.approx([0.1] * 3)

    new = local_spec(
        tiny_config(
            tiny_models,
            tiny_data,
            digit_verifier,
            training=training,
            experiment={"hparams": {"w_init": 0.5, "delta": 0.0}},
        ),
        tmp_path,
    )
    assert new.output_dir == old.output_dir and new.run_hash != old.run_hash
    capsys.readouterr()
    result = train(new, progress=False)
    log = capsys.readouterr().err

    # the new run trained from step 1 under the new weight only
    assert [r["step"] for r in metrics(run)] == [1, 2, 3]
    assert [r["tgpo/guidance_weight"] for r in metrics(run)] == pytest.approx([0.5] * 3)
    assert result.steps_done == 3
    # the old run is beside it, complete, and the log says so
    [moved] = stale_runs(run)
    assert moved.name.startswith(f"seed0.stale-{old.run_hash}-")
    assert [r["tgpo/guidance_weight"] for r in metrics(RunLayout(moved))] == pytest.approx([0.1] * 3)
    assert ckpt.latest_checkpoint(moved) is not None
    assert str(moved) in log and "starting fresh" in log
    # run.json records what ran: the new weight and the learning rate trained at, with their sources
    info = json.loads(run.run_json.read_text())
    assert info["run_hash"] == new.run_hash
    assert info["settings"]["w_init"] == {"value": 0.5, "source": "experiment hparams"}
    assert info["settings"]["lr"] == {"value": 5e-5, "source": "config training"}
    assert info["hparams"]["lr"] == 5e-5
    assert all(r["actor/lr"] == pytest.approx(5e-5) for r in metrics(run))  # no warm-up configured
    assert (
        torch.load(ckpt.latest_checkpoint(run.root) / ckpt.TRAINER_STATE, weights_only=False)["run_hash"]
        == new.run_hash
    )


def test_a_killed_run_of_the_same_settings_still_resumes(tiny_models, tiny_data, digit_verifier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = local_spec(
        tiny_config(tiny_models, tiny_data, digit_verifier, training={"steps": 3, "save_every": 2}), tmp_path
    )
    train(spec, stop_after_step=2, progress=False)
    resumed = train(spec, progress=False)
    assert [r["step"] for r in resumed.metrics] == [1, 2, 3]
    assert stale_runs(RunLayout(spec.output_dir)) == []


def test_a_checkpoint_of_another_run_is_never_loaded(tiny_models, tiny_data, digit_verifier, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = local_spec(
        tiny_config(tiny_models, tiny_data, digit_verifier, training={"steps": 3, "save_every": 2}), tmp_path
    )
    train(spec, stop_after_step=2, progress=False)
    with pytest.raises(RuntimeError, match=r"checkpoint of run hash .*not of this run \(other\)"):
        ckpt.load_trainer_state(ckpt.latest_checkpoint(spec.output_dir), "other")


def test_an_unmarked_run_folder_is_moved_aside_not_deleted(tmp_path):
    run = RunLayout(tmp_path / "runs" / "x" / "seed0")
    (run.checkpoints / "step_50").mkdir(parents=True)
    run.metrics.write_text('{"step": 1}\n')
    messages = []
    moved = claim_run_dir(run, "abc123", log=messages.append)
    assert moved is not None and moved.name.startswith("seed0.stale-unrecorded-")
    assert (moved / "checkpoints" / "step_50").is_dir() and (moved / "metrics.jsonl").is_file()
    assert recorded_hash(run) == "abc123" and sorted(p.name for p in run.root.iterdir()) == ["run_settings.json"]
    assert claim_run_dir(run, "abc123", log=messages.append) is None  # same settings: kept
    assert len(messages) == 1 and "moved it to" in messages[0]


def test_verl_run_moves_a_run_of_other_settings_aside_before_resuming(
    tiny_models, tiny_data, digit_verifier, tmp_path, monkeypatch
):
    """tgpo.verl.run: verl resumes whatever is in checkpoints/ (resume_mode=auto), so the folder is
    claimed first. verl itself is replaced by a script that writes a checkpoint and a log line."""
    import tgpo.verl.run as verl_run

    fake_verl = (
        "import json, os, pathlib; run = pathlib.Path(os.environ['VERL_FILE_LOGGER_PATH']).parent; "
        "(run / 'checkpoints' / 'global_step_2').mkdir(parents=True, exist_ok=True); "
        "resumed = (run / 'checkpoints' / 'latest_checkpointed_iteration.txt').exists(); "
        "(run / 'checkpoints' / 'latest_checkpointed_iteration.txt').write_text('2'); "
        "pathlib.Path(os.environ['VERL_FILE_LOGGER_PATH']).write_text("
        "json.dumps({'step': 1, 'data': {'resumed': resumed}}) + '\\n')"
    )
    monkeypatch.setattr(verl_run, "driver_command", lambda *args, **kwargs: [sys.executable, "-c", fake_verl])
    import tgpo.verl.export as verl_export  # no FSDP shards to merge: the export is tested in test_verl_export.py

    monkeypatch.setattr(
        verl_export, "export_last_checkpoint", lambda checkpoints, out, *_: Path(out).mkdir(exist_ok=True)
    )
    monkeypatch.chdir(tmp_path)

    def verl_train(w_init: float) -> RunLayout:
        config = tiny_config(tiny_models, tiny_data, digit_verifier, experiment={"hparams": {"w_init": w_init}})
        path = write_config(config, tmp_path)
        assert verl_run.run(Namespace(config=str(path), experiment="run", seed=0, nodes=1, dry_run=False)) == 0
        return resolve_experiment(config, "run", 0).run

    run = verl_train(0.1)
    first_hash = recorded_hash(run)
    assert metrics(run)[0]["resumed"] is False
    verl_train(0.1)  # same settings: verl resumes its checkpoint
    assert metrics(run)[-1]["resumed"] is True and stale_runs(run) == []
    verl_train(0.5)  # other settings: the old run is moved aside, verl starts without a checkpoint
    [moved] = stale_runs(run)
    assert moved.name.startswith(f"seed0.stale-{first_hash}-")
    assert (moved / "checkpoints" / "global_step_2").is_dir()
    assert [r["resumed"] for r in metrics(run)] == [False]
    info = json.loads(run.run_json.read_text())
    assert info["run_hash"] == recorded_hash(run) != first_hash
    assert info["settings"]["w_init"]["value"] == 0.5
