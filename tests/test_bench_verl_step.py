"""bench/verl_step.py's pure parts: metrics.jsonl -> steady-state medians and the ratio line, and the
same-workload check of the two experiments on config/verl-mini.yaml (no verl run)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("verl_step", ROOT / "bench" / "verl_step.py")
verl_step = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(verl_step)


def write_metrics(path: Path, steps: list[tuple[float, float]], extra: dict | None = None) -> Path:
    """metrics.jsonl with (timing_s/step, timing_s/update_actor) per step, as tgpo.verl.run writes it."""
    lines = [
        {
            "step": index,
            "timing_s/step": step,
            "timing_s/update_actor": update,
            "timing_s/gen": step / 2,
            "actor/pg_loss": 0.1,
            **(extra or {}),
        }
        for index, (step, update) in enumerate(steps, start=1)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in reversed(lines)))  # order is restored by step
    return path


def test_steady_state_medians_exclude_the_first_step_and_give_the_ratio(tmp_path):
    # step 1 is huge (warm-up): it must not reach the medians
    grpo = verl_step.read_metrics(
        write_metrics(tmp_path / "g.jsonl", [(50.0, 9.0), (2.0, 0.5), (3.0, 0.6), (4.0, 0.7), (5.0, 0.8), (6.0, 0.9)])
    )
    tgpo = verl_step.read_metrics(
        write_metrics(tmp_path / "t.jsonl", [(90.0, 9.0), (3.0, 0.6), (4.5, 0.7), (6.0, 0.8), (7.5, 0.9), (9.0, 1.0)])
    )
    assert [record["step"] for record in grpo] == [1, 2, 3, 4, 5, 6]
    grpo_steady = [verl_step.steady_state(grpo, "grpo")]
    tgpo_steady = [verl_step.steady_state(tgpo, "tgpo")]
    assert verl_step.median_of(grpo_steady, "timing_s/step") == 4.0
    assert verl_step.median_of(tgpo_steady, "timing_s/update_actor") == 0.8
    line = verl_step.ratio_line(tgpo_steady, grpo_steady)
    assert line.startswith("verl_tgpo_vs_grpo step_ratio=1.500 (IQR 1.500-1.500, 95% CI none (n < 6), n=5,")
    assert "update_ratio=1.143 (" in line and "resolves_5pct=no" in line  # paired per step: 1.2, 1.167, ..., 1.111


def test_paired_ratios_split_at_the_teacher_off_step(tmp_path):
    steps_g = [(50.0, 9.0)] + [(2.0, 1.0)] * 9
    steps_t = [(90.0, 9.0)] + [(3.0, 1.0)] * 4 + [(2.2, 1.0)] * 5  # steps 2-5 with the teacher, 6-10 without
    grpo = [verl_step.steady_state(verl_step.read_metrics(write_metrics(tmp_path / "g.jsonl", steps_g)), "g")]
    tgpo = [verl_step.steady_state(verl_step.read_metrics(write_metrics(tmp_path / "t.jsonl", steps_t)), "t")]
    assert verl_step.paired_ratios(tgpo, grpo, "timing_s/step", lambda s: s < 6) == [1.5] * 4
    line = verl_step.ratio_line(tgpo, grpo, teacher_off_from=6)
    assert "step_ratio=1.500" in line and "teacher_off_step_ratio=1.100" in line


def test_teacher_off_config_reaches_zero_weight_at_the_given_step():
    from tgpo.config import load_config
    from tgpo.objectives.annealing import guidance_weight

    source = load_config(ROOT / "config" / "verl-mini.yaml")
    config = verl_step.bench_config(source, "verl-bench", 20, ["grpo_pp", "tgpo"], teacher_off=("tgpo", 11))
    hparams = config["experiments"]["tgpo"]["hparams"]
    assert guidance_weight(9, hparams["w_init"], hparams["delta"]) > 0  # verl step 10
    assert guidance_weight(10, hparams["w_init"], hparams["delta"]) == 0.0  # verl step 11: exactly 0


def test_medians_pool_the_steps_of_every_run_of_a_method(tmp_path):
    runs = [
        verl_step.steady_state(verl_step.read_metrics(write_metrics(tmp_path / f"{i}.jsonl", steps)), str(i))
        for i, steps in enumerate([[(9, 9), (1, 1), (2, 2), (3, 3), (4, 4)], [(9, 9), (5, 5), (6, 6), (7, 7), (8, 8)]])
    ]
    assert verl_step.median_of(runs, "timing_s/step") == 4.5


def test_outside_steps_is_wall_minus_every_step(tmp_path):
    records = verl_step.read_metrics(write_metrics(tmp_path / "m.jsonl", [(40.0, 1.0), (2.0, 0.5), (3.0, 0.5)]))
    assert verl_step.outside_steps_seconds(100.0, records) == pytest.approx(55.0)


def test_too_few_steady_steps_or_a_missing_timer_is_an_error(tmp_path):
    short = verl_step.read_metrics(write_metrics(tmp_path / "s.jsonl", [(9.0, 1.0)] * 4))
    with pytest.raises(ValueError, match="3 steady-state steps"):
        verl_step.steady_state(short, "short run")
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps({"step": i, "timing_s/step": 1.0}) + "\n" for i in range(1, 7)))
    with pytest.raises(ValueError, match="step 2: 'timing_s/update_actor' missing"):
        verl_step.steady_state(verl_step.read_metrics(path), "no update timer")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not JSON"):
        verl_step.read_metrics(bad)
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        verl_step.read_metrics(tmp_path / "absent.jsonl")


def test_phase_columns_follow_the_pipeline_then_the_rest(tmp_path):
    records = [
        {
            "step": 1,
            "timing_s/step": 1,
            "timing_s/update_actor": 1,
            "timing_s/zzz": 1,
            "timing_s/gen": 1,
            "timing_s/old_log_prob": 1,
        }
    ]
    assert verl_step.phase_names([records]) == ["gen", "old_log_prob", "update_actor", "zzz"]
    table = verl_step.step_table("run", records, ["gen", "adv"])
    assert "1*" in table and table.splitlines()[-1].rstrip().endswith("-")


def test_bench_config_of_verl_mini_is_the_same_workload_on_the_same_student_ranks():
    from tgpo.config import load_config

    source = load_config(ROOT / "config" / "verl-mini.yaml")
    config = verl_step.bench_config(source, "verl-bench", 6, ["grpo_pp", "tgpo"])
    assert sorted(config["experiments"]) == ["grpo_pp", "tgpo"] and config["training"]["steps"] == 6
    assert source["training"]["steps"] != 6 and len(source["experiments"]) > 2  # the source is not changed
    overrides = verl_step.check_same_workload(config, "grpo_pp", "tgpo", 0)
    assert overrides["tgpo"]["trainer.n_gpus_per_node"] == overrides["grpo_pp"]["trainer.n_gpus_per_node"] == "1"
    assert overrides["tgpo"]["distillation.n_gpus_per_node"] == "1"
    assert overrides["tgpo"]["trainer.total_training_steps"] == "6"
    assert overrides["tgpo"]["data.train_files"] == "results/verl-bench/data/verl/curated.parquet"


def test_unequal_student_ranks_or_a_teacherless_tgpo_are_refused():
    from tgpo.config import load_config

    source = load_config(ROOT / "config" / "verl-mini.yaml")
    config = verl_step.bench_config(source, "verl-bench", 6, ["grpo_pp", "tgpo"])
    config["experiments"]["grpo_pp"]["training"] = {"n_gpus": 2}  # 2 student ranks vs TGPO's 1
    with pytest.raises(ValueError, match=r"trainer.n_gpus_per_node: grpo_pp='2' vs tgpo='1'"):
        verl_step.check_same_workload(config, "grpo_pp", "tgpo", 0)
    config = verl_step.bench_config(source, "verl-bench", 6, ["grpo_pp", "simplerl_zero"])
    with pytest.raises(ValueError, match="expected .*tgpo_d"):
        verl_step.check_same_workload(config, "grpo_pp", "simplerl_zero", 0)
