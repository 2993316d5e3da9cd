"""Cost of TGPO's teacher pool through verl: steady-state verl steps of TGPO vs GRPO++ on the same batch.

Runs `python -m tgpo verl-train` (verl 0.9.1 + vLLM, on the CPU when there is no accelerator) for the
GRPO++ experiment and the TGPO experiment (`tgpo_d` distillation loss mode, vLLM teacher pool) of
config/verl-mini.yaml: the same tiny student, the same curated data, the same batch (prompts_per_step,
group_size, max_new_tokens, max_prompt_length) and the same number of student ranks (TGPO: n_gpus 2 with
teacher_gpus 1; GRPO++: n_gpus 1), checked on the verl overrides before anything runs. Each run is its
own process, started on a fresh run folder (verl would otherwise resume a finished run); with
--pairs > 1 the order alternates (GRPO++ first, then TGPO first, ...) so load drift hits both alike.

What is timed comes from verl's own per-step timers (`timing_s/*` in the run's metrics.jsonl, verl
`verl/trainer/ppo/v1/trainer_base.py`): `step` is the whole step; `update_actor` is the actor update
(forward, loss, backward, optimizer step). For TGPO the update phase is `timing_s/update_actor` alone:
the guidance term is computed inside the actor's loss and the `tgpo_sync` trainer sets the step's
guidance weight inside the same timer (tgpo/verl/trainer.py). The teacher has no timer of its own in
verl 0.9.1: its vLLM server scores each finished sample inside the rollout (`_compute_teacher_logprobs`
in `verl/trainer/ppo/v1/agent_loop_tq.py`), so its cost is inside `timing_s/gen`; it is in step_ratio,
not in update_ratio. Any timing key that only the TGPO run logs is printed (none is expected).
`timing_s/gen` moves in steps of 2 s: verl 0.9.1's sync replay buffer checks for finished rollouts every
`poll_interval` = 2.0 s (`verl/trainer/ppo/v1/replay_buffer.py`, not configurable without a custom
sampler), so on tiny models a rollout, with or without teacher scoring, that ends within 2 s reads 2.0 s:
step_ratio then shows the teacher only if it pushes generation past a poll; the per-phase medians show
where the rest of the difference is.

Steady state: step 1 (which includes warm-up: first vLLM requests, first FSDP forward/backward) is
excluded and the per-method medians are over steps 2..N of every run. Start-up is reported per run as
the process's wall time minus the sum of its steps (Ray, the vLLM rollout and teacher servers, FSDP
init; also shutdown and the HF export): on CPU that is the teacher pool's main cost.

Needs the verl-mini models and curated data (results/verl-mini/{models,data}, made by
`snakemake -c 2 results/verl-mini/data/verl/curated.parquet results/verl-mini/models/teacher_cross
--configfile config/verl-mini.yaml`), or another config's (bench/verl_tiny_inputs.py writes
results/verl-tiny/ in a minute: `--config results/verl-tiny/config.yaml --name verl-tiny-bench`); they are
linked, read-only, into results/<--name>/, where the runs, their logs and the config written for them go.

Alternations and the statistic: each steady-state step index of a TGPO run is paired with the same step
index of the GRPO++ run of its pair (the same prompts: same data seed), giving one ratio per step and pair;
the last line reports the median of those ratios with their spread and distribution-free 95 % interval
(bench/ratio_stats.py). A run pair costs two verl start-ups (~5 min each on 2 cores), so the default
(1 pair, 20 steps) gives 19 paired steps, which resolve 5 % when the paired ratios' IQR is within about
+-5 % of their median (the line says whether they did); more pairs (`--pairs`, 12 min each) remove the
pair-level drift that one pair cannot.

Teacher skip (issue 18, item 14): with --teacher-off-from K (default 11) the TGPO experiment's schedule
is set to reach w = 0 at verl step K (delta = w_init / (K - 1)), so its steps 2..K-1 score every sample
with the teacher pool and steps K..N skip it (tgpo.verl.teacher_skip); each part is paired with GRPO++'s
steps of the same index. `--teacher-off-from 0` keeps the experiment's own schedule. The TGPO run's
tgpo/teacher_skipped (share of a step's samples not sent to the teacher) and tgpo/teacher_request_s (mean
seconds a sample waited for the teacher) are printed per step.

Last line: `verl_tgpo_vs_grpo step_ratio=<median paired TGPO / GRPO++ step> (IQR, 95% CI, n, resolves_5pct)
update_ratio=<same for update_actor> teacher_off_step_ratio=<same, TGPO steps without the teacher>`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ratio_stats import ratio_summary, summary_text  # noqa: E402

STEP_KEY = "timing_s/step"
UPDATE_KEY = "timing_s/update_actor"
TIMING_PREFIX = "timing_s/"
WARMUP_STEPS = 1  # verl step 1 includes warm-up; steps after it are the steady state
MIN_STEADY_STEPS = 4
# phase columns in pipeline order (verl trainer_base.py `_step_once`, then the step's end); others follow
PHASE_ORDER = ("gen", "reward", "old_log_prob", "ref", "adv", "update_actor", "save_checkpoint", "update_weights")
# verl overrides that must be equal for the two runs to be the same workload on the same student ranks
SAME_WORKLOAD_KEYS = (
    "actor_rollout_ref.model.path",
    "data.train_files",
    "data.train_batch_size",
    "data.max_prompt_length",
    "data.max_response_length",
    "data.seed",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.ppo_epochs",
    "trainer.n_gpus_per_node",
    "trainer.nnodes",
    "trainer.total_training_steps",
)
SOURCE_DATA = ("data/verl/curated.parquet", "data/verl/val.parquet")
MAKE_INPUTS = (
    "snakemake -c 2 results/verl-mini/data/verl/curated.parquet results/verl-mini/models/teacher_cross "
    "--configfile config/verl-mini.yaml"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/verl-mini.yaml", help="source config (its world, models, data)")
    parser.add_argument("--name", default="verl-bench", help="results name of the benchmark runs (results/<name>/)")
    parser.add_argument("--grpo", default="grpo_pp", help="GRPO++ experiment of the config")
    parser.add_argument("--tgpo", default="tgpo", help="TGPO experiment of the config (tgpo_d, vLLM teacher)")
    parser.add_argument("--steps", type=int, default=20, help="verl steps per run (default 20: 19 steady-state)")
    parser.add_argument(
        "--teacher-off-from",
        type=int,
        default=11,
        help="verl step from which TGPO's weight is 0 and the teacher is skipped (default 11; 0: off)",
    )
    parser.add_argument("--pairs", type=int, default=1, help="GRPO++/TGPO run pairs, order alternating")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps - WARMUP_STEPS < MIN_STEADY_STEPS:
        parser.error(
            f"--steps {args.steps}: need >= {MIN_STEADY_STEPS + WARMUP_STEPS} "
            f"({MIN_STEADY_STEPS} steady-state steps after {WARMUP_STEPS} warm-up step)"
        )
    if args.pairs < 1:
        parser.error(f"--pairs {args.pairs}: need >= 1")
    if args.teacher_off_from and not WARMUP_STEPS + 2 <= args.teacher_off_from <= args.steps:
        parser.error(f"--teacher-off-from {args.teacher_off_from}: must be in [{WARMUP_STEPS + 2}, --steps] or 0")
    return args


# ------------------------------------------------------------------------------------- pure parts
def read_metrics(path: str | Path) -> list[dict]:
    """The lines of one run's metrics.jsonl (`{"step": n, <verl metric>: value, ...}`), ordered by step."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.jsonl (did the verl run finish?)")
    records = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise ValueError(f"{path}:{line_number}: not JSON ({error})") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError(f"{path}:{line_number}: expected an object with an integer 'step'")
        records.append(record)
    return sorted(records, key=lambda record: record["step"])


def steady_state(
    records: Sequence[Mapping], source: str, warmup_steps: int = WARMUP_STEPS, min_steps: int = MIN_STEADY_STEPS
) -> list[Mapping]:
    """The records after the first `warmup_steps` steps; each must hold timing_s/step and update_actor."""
    steady = [record for record in records if record["step"] > warmup_steps]
    if len(steady) < min_steps:
        raise ValueError(
            f"{source}: {len(steady)} steady-state steps (steps > {warmup_steps}), "
            f"need >= {min_steps}; steps logged: {[r['step'] for r in records]}"
        )
    for record in steady:
        for key in (STEP_KEY, UPDATE_KEY):
            if not isinstance(record.get(key), (int, float)):
                raise ValueError(
                    f"{source}: step {record['step']}: {key!r} missing or not a number (got {record.get(key)!r})"
                )
    return steady


def phase_names(runs: Sequence[Sequence[Mapping]]) -> list[str]:
    """The timing_s/* phases (without the prefix; `step` excluded) logged by any record, pipeline order first."""
    logged = {
        key[len(TIMING_PREFIX) :]
        for records in runs
        for record in records
        for key in record
        if key.startswith(TIMING_PREFIX) and key != STEP_KEY
    }
    return [name for name in PHASE_ORDER if name in logged] + sorted(logged - set(PHASE_ORDER))


def median_of(steady_runs: Sequence[Sequence[Mapping]], key: str) -> float:
    """Median of `key` over the steady-state steps of all runs of one method."""
    values = [float(record[key]) for records in steady_runs for record in records if key in record]
    if not values:
        raise ValueError(f"no steady-state step logs {key!r}")
    return statistics.median(values)


def outside_steps_seconds(wall_seconds: float, records: Sequence[Mapping]) -> float:
    """Wall time of the run not spent in verl steps (start-up, shutdown, export): wall - sum of steps."""
    return wall_seconds - sum(float(record[STEP_KEY]) for record in records)


def paired_ratios(
    tgpo_steady: Sequence[Sequence[Mapping]],
    grpo_steady: Sequence[Sequence[Mapping]],
    key: str,
    steps: Callable[[int], bool] = lambda step: True,
) -> list[float]:
    """TGPO / GRPO++ of `key` for every steady step index (selected by `steps`) of every run pair."""
    if len(tgpo_steady) != len(grpo_steady):
        raise ValueError(f"{len(tgpo_steady)} TGPO runs vs {len(grpo_steady)} GRPO++ runs: runs come in pairs")
    ratios = []
    for tgpo_run, grpo_run in zip(tgpo_steady, grpo_steady):
        grpo_by_step = {record["step"]: record for record in grpo_run}
        for record in tgpo_run:
            other = grpo_by_step.get(record["step"])
            if other is not None and steps(record["step"]) and key in record and key in other:
                ratios.append(float(record[key]) / float(other[key]))
    return ratios


def ratio_line(
    tgpo_steady: Sequence[Sequence[Mapping]], grpo_steady: Sequence[Sequence[Mapping]], teacher_off_from: int = 0
) -> str:
    """The last line: paired step and update ratios over the steps with the teacher (all of them when
    `teacher_off_from` is 0), and the step ratio over the steps without it."""
    with_teacher = (lambda step: step < teacher_off_from) if teacher_off_from else (lambda step: True)
    parts = [
        summary_text("step_ratio", ratio_summary(paired_ratios(tgpo_steady, grpo_steady, STEP_KEY, with_teacher))),
        summary_text("update_ratio", ratio_summary(paired_ratios(tgpo_steady, grpo_steady, UPDATE_KEY, with_teacher))),
    ]
    if teacher_off_from:
        off = paired_ratios(tgpo_steady, grpo_steady, STEP_KEY, lambda step: step >= teacher_off_from)
        parts.append(summary_text("teacher_off_step_ratio", ratio_summary(off)))
    return "verl_tgpo_vs_grpo " + " ".join(parts)


def step_table(label: str, records: Sequence[Mapping], phases: Sequence[str]) -> str:
    """One run's per-step timings (s); steps within the warm-up are marked."""
    header = f"{'step':>6} {'total':>8} " + " ".join(f"{name[:14]:>14}" for name in phases)
    lines = [f"{label}: timing_s per step", header]
    for record in records:
        cells = " ".join(
            f"{record[TIMING_PREFIX + name]:14.3f}" if TIMING_PREFIX + name in record else f"{'-':>14}"
            for name in phases
        )
        mark = "*" if record["step"] <= WARMUP_STEPS else " "
        lines.append(f"{record['step']:>5}{mark} {float(record[STEP_KEY]):8.3f} {cells}")
    return "\n".join(lines)


def bench_config(
    source: Mapping, name: str, steps: int, experiments: Sequence[str], teacher_off: tuple[str, int] | None = None
) -> dict:
    """The source config restricted to `experiments`, renamed `name` (its own runs/ folder), `steps` steps;
    the report is emptied (it names the other experiments). teacher_off (experiment, K): that experiment's
    guidance weight reaches 0 at verl step K (delta = w_init / (K - 1), w_init as resolved)."""
    missing = [experiment for experiment in experiments if experiment not in source["experiments"]]
    if missing:
        raise KeyError(
            f"config {source.get('name')!r}: no experiment {missing}; known: {sorted(source['experiments'])}"
        )
    config = copy.deepcopy(dict(source))
    config["name"] = name
    config["description"] = f"bench/verl_step.py: {', '.join(experiments)} of {source['name']}, {steps} steps"
    config["training"] = {**config["training"], "steps": steps}
    config["experiments"] = {experiment: config["experiments"][experiment] for experiment in experiments}
    config["report"] = {}
    if teacher_off:
        from tgpo.methods import get_method

        experiment, first_idle = teacher_off
        spec = config["experiments"][experiment]
        hparams = {**get_method(spec["method"]).defaults, **(spec.get("hparams") or {})}
        if not hparams.get("w_init"):
            raise ValueError(f"experiment {experiment!r}: --teacher-off-from needs a regulariser weight w_init > 0")
        spec["hparams"] = {**(spec.get("hparams") or {}), "delta": float(hparams["w_init"]) / (first_idle - 1)}
    return config


def overrides_dict(overrides: Sequence[str]) -> dict[str, str]:
    return dict(override.split("=", 1) for override in overrides)


def check_same_workload(config: dict, grpo: str, tgpo: str, seed: int) -> dict[str, dict[str, str]]:
    """verl overrides of both experiments; ValueError unless they share student, data, batch and student
    ranks, and TGPO runs the `tgpo_d` loss on verl's vLLM teacher pool."""
    from tgpo.verl.translate import experiment_overrides

    grpo_overrides = overrides_dict(experiment_overrides(config, grpo, seed))
    tgpo_overrides = overrides_dict(experiment_overrides(config, tgpo, seed))
    differing = [
        f"{key}: {grpo}={grpo_overrides.get(key)!r} vs {tgpo}={tgpo_overrides.get(key)!r}"
        for key in SAME_WORKLOAD_KEYS
        if grpo_overrides.get(key) != tgpo_overrides.get(key)
    ]
    if differing:
        raise ValueError(
            f"config {config['name']!r}: {grpo} and {tgpo} are not the same workload on the same "
            f"student ranks (set training.n_gpus 1 for {grpo}, n_gpus 2 + teacher_gpus 1 for "
            f"{tgpo}): " + "; ".join(differing)
        )
    expected = {
        "distillation.enabled": "true",
        "distillation.distillation_loss.loss_mode": "tgpo_d",
        "distillation.teacher_models.teacher_model.inference.name": "vllm",
    }
    wrong = {key: tgpo_overrides.get(key) for key, value in expected.items() if tgpo_overrides.get(key) != value}
    if wrong:
        raise ValueError(f"experiment {tgpo!r}: expected {expected}, got {wrong}")
    if grpo_overrides.get("distillation.enabled") == "true":
        raise ValueError(f"experiment {grpo!r}: has a teacher (distillation.enabled); expected GRPO++ without one")
    return {grpo: grpo_overrides, tgpo: tgpo_overrides}


# ------------------------------------------------------------------------------------- the runs
def link_source_inputs(source_root: Path, bench_root: Path, model_keys: Sequence[str]) -> None:
    """results/<name>/{models,data} -> the source's (read-only use); a clear error when the models of
    `model_keys` or the curated data are missing."""
    required = [f"models/{key}/config.json" for key in model_keys] + list(SOURCE_DATA)
    missing = [str(source_root / item) for item in required if not (source_root / item).is_file()]
    if missing:
        raise SystemExit(f"bench/verl_step.py: missing {', '.join(missing)}; make them with:\n  {MAKE_INPUTS}")
    bench_root.mkdir(parents=True, exist_ok=True)
    for folder in ("models", "data"):
        link, target = bench_root / folder, (source_root / folder).resolve()
        if link.is_symlink() and link.resolve() == target:
            continue
        if link.exists() or link.is_symlink():
            raise SystemExit(f"bench/verl_step.py: {link} exists and is not a link to {target}; remove it")
        link.symlink_to(target, target_is_directory=True)


def run_experiment(config_path: Path, experiment: str, seed: int, run_dir: Path, log_path: Path) -> float:
    """One `python -m tgpo verl-train` process on a fresh run folder; its wall-clock seconds."""
    if run_dir.exists():
        shutil.rmtree(run_dir)  # verl resumes a finished run (resume_mode=auto): start from nothing
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "tgpo",
        "verl-train",
        "--config",
        str(config_path),
        "--experiment",
        experiment,
        "--seed",
        str(seed),
    ]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-40:])
        raise RuntimeError(f"verl-train {experiment} exited {completed.returncode} (log {log_path}):\n{tail}")
    return wall


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)
    from tgpo.config import load_config
    from tgpo.results import io
    from tgpo.results.layout import ResultsLayout

    source = load_config(args.config)
    if args.name == source["name"]:
        raise SystemExit(f"--name {args.name!r}: must differ from the source config's name (its runs are not ours)")
    teacher_off = (args.tgpo, args.teacher_off_from) if args.teacher_off_from else None
    config = bench_config(source, args.name, args.steps, [args.grpo, args.tgpo], teacher_off)
    check_same_workload(config, args.grpo, args.tgpo, args.seed)
    layout, source_layout = ResultsLayout.of(config), ResultsLayout.of(source)
    model_keys = sorted(
        {
            config["experiments"][e][role]
            for e in config["experiments"]
            for role in ("student", "teacher")
            if config["experiments"][e].get(role)
        }
    )
    link_source_inputs(source_layout.root, layout.root, model_keys)
    import yaml

    config_path = layout.root / "config.yaml"
    io.write_text(config_path, yaml.safe_dump(config, sort_keys=False))
    load_config(config_path)  # the written config validates
    training = config["training"]
    print(
        f"{args.grpo} vs {args.tgpo} on {source['name']}'s models and data: {training['prompts_per_step']} prompts "
        f"x {training['group_size']} samples x {training['max_new_tokens']} new tokens, {args.steps} steps, "
        f"{args.pairs} pair(s); runs in {layout.runs}",
        flush=True,
    )

    runs: dict[str, list[tuple[list[dict], float]]] = {args.grpo: [], args.tgpo: []}
    for pair in range(args.pairs):
        for experiment in (args.grpo, args.tgpo) if pair % 2 == 0 else (args.tgpo, args.grpo):
            run = layout.run(experiment, args.seed)
            wall = run_experiment(
                config_path, experiment, args.seed, run.root, layout.log("bench", f"{experiment}-pair{pair}")
            )
            records = read_metrics(run.metrics)
            if len(records) != args.steps:
                raise RuntimeError(f"{run.metrics}: {len(records)} steps logged, expected {args.steps}")
            runs[experiment].append((records, wall))
            print(f"run {experiment} (pair {pair}): wall {wall:.1f} s", flush=True)

    phases = phase_names([records for method_runs in runs.values() for records, _ in method_runs])
    for experiment, method_runs in runs.items():
        for index, (records, wall) in enumerate(method_runs):
            print()
            print(step_table(f"{experiment} run {index}", records, phases))
            print(
                f"  wall {wall:.1f} s, steps {sum(float(r[STEP_KEY]) for r in records):.1f} s, "
                f"start-up/shutdown/export {outside_steps_seconds(wall, records):.1f} s"
            )
    grpo_keys = {key for records, _ in runs[args.grpo] for record in records for key in record}
    only_tgpo = sorted(
        {
            key
            for records, _ in runs[args.tgpo]
            for record in records
            for key in record
            if key.startswith(TIMING_PREFIX) and key not in grpo_keys
        }
    )
    print(
        f"\ntiming keys only the {args.tgpo} run logs: {only_tgpo or 'none'} "
        f"(the teacher's scoring runs inside timing_s/gen)"
    )
    steady = {
        experiment: [
            steady_state(records, f"{experiment} run {index}") for index, (records, _) in enumerate(method_runs)
        ]
        for experiment, method_runs in runs.items()
    }
    print(f"medians over steady-state steps (> {WARMUP_STEPS}), s:")
    for key in [STEP_KEY] + [TIMING_PREFIX + name for name in phases]:
        values = {
            experiment: median_of(steady[experiment], key)
            if any(key in r for rs in steady[experiment] for r in rs)
            else None
            for experiment in runs
        }
        cells = "  ".join(
            f"{experiment} {value:8.3f}" if value is not None else f"{experiment} {'-':>8}"
            for experiment, value in values.items()
        )
        ratio = (
            f"  ratio {values[args.tgpo] / values[args.grpo]:.3f}"
            if values[args.grpo] and values[args.tgpo] is not None
            else ""
        )
        print(f"  {key:28s} {cells}{ratio}")
    for experiment, method_runs in runs.items():
        outside = [outside_steps_seconds(wall, records) for records, wall in method_runs]
        print(f"  start-up etc. (wall - steps) {experiment}: {', '.join(f'{s:.1f}' for s in outside)} s")
    if args.teacher_off_from:
        for label, part in (
            ("with teacher", lambda step: step < args.teacher_off_from),
            ("teacher skipped", lambda step: step >= args.teacher_off_from),
        ):
            for key in (STEP_KEY, TIMING_PREFIX + "gen"):
                ratios = paired_ratios(steady[args.tgpo], steady[args.grpo], key, part)
                if ratios:
                    print(f"  {label:15s} {key:16s} {summary_text('paired ratio', ratio_summary(ratios))}")
        for key in ("tgpo/teacher_idle", "tgpo/teacher_skipped", "tgpo/teacher_request_s", "tgpo/teacher_oov_frac"):
            values = [record.get(key) for records, _ in runs[args.tgpo] for record in records]
            print(f"  {key} per step of {args.tgpo}: {[None if v is None else round(v, 4) for v in values]}")
    print(ratio_line(steady[args.tgpo], steady[args.grpo], args.teacher_off_from))
    return 0


if __name__ == "__main__":
    sys.exit(main())
