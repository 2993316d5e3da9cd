"""`python -m tgpo verl-train`: run one experiment x seed on the cluster engine (verl 0.9.1).

A thin wrapper: translate the experiment into verl Hydra overrides (`tgpo.verl.translate`), run
verl's own trainer (`verl.trainer.main_ppo`, or `verl.trainer.sft_trainer` under torchrun for SFT) as a
child process (through the Ray-on-SLURM launcher when an RL run spans several nodes), convert verl's
file-logger output into our `metrics.jsonl`, merge verl's last FSDP checkpoint into the Hugging Face
checkpoint `checkpoint/` that eval-experiment loads (tgpo.verl.export), and write `run.json` last,
atomically, as the marker of a finished run. verl resumes from its own last checkpoint
(`trainer.resume_mode=auto`), so a killed job re-submitted by Snakemake continues where it stopped.

Around verl's loop (tgpo.verl.lifecycle): verl is not started again for a run that has finished (its last
checkpoint is the final step, or it ended by a stop rule); while it runs, its metrics are read step by
step, and it is stopped on a non-finite loss or gradient norm (the run fails), on App. B.3's stop rule
(`training.stop_length_fraction`; the run ends and `training.checkpoint_choice` picks the checkpoint that is
exported), or after a save when the next one cannot finish before the SLURM job's time limit (exit 75;
a retry resumes from that save).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tgpo.results import io

VERL_LOG_GLOB = "verl_metrics.*.jsonl"
# verl's names for metrics the local engine logs under other names (tgpo.engine.metrics.STEP_METRICS):
# our plugin's loss-side metrics reach verl's log with the actor's prefix, the actor update is
# `update_actor`. metrics.jsonl keeps verl's names and adds ours, so one figure script reads both engines.
OUR_NAMES = {
    "actor/tgpo/guidance_loss": "tgpo/guidance_loss",
    "actor/tgpo/teacher_oov_frac": "tgpo/teacher_oov_frac",
    "actor/tgpo/teacher_oov_tokens": "tgpo/teacher_oov_tokens",
    "timing_s/update_actor": "timing_s/update",
}


def with_our_names(record: dict) -> dict:
    """`record` plus our name for each verl metric of OUR_NAMES it holds (a name already set is kept)."""
    return {**{ours: record[theirs] for theirs, ours in OUR_NAMES.items() if theirs in record}, **record}


def merge_verl_logs(run_dir: Path) -> list[dict]:
    """verl's FileLogger lines (`{"step": n, "data": {...}}`) of every attempt, later attempts winning,
    flattened to our metrics lines (`{"step": n, <verl metric names>...}`), ordered by step. A truncated
    last line (an attempt killed mid-write) is left out; any other bad line is an error."""
    from tgpo.verl.lifecycle import parse_logger_lines

    by_step: dict[int, dict] = {}
    for path in sorted(run_dir.glob(VERL_LOG_GLOB)):
        for step, data in parse_logger_lines(path, path.read_text(), complete=True):
            by_step[step] = {"step": step, **by_step.get(step, {}), **data}
    return [with_our_names(by_step[step]) for step in sorted(by_step)]


# Ray's raylet reports workers it killed for memory with this phrase (ray/src/ray/raylet/node_manager.cc,
# "Workers (tasks / actors) killed due to memory pressure (OOM)"). verl 0.9.1 does not notice a killed
# rollout or teacher worker: it keeps polling its replay buffer until the job's time limit.
RAY_OOM_KILL = "killed due to memory pressure (OOM)"
STOP_GRACE_S = 30  # after SIGINT (Ray's driver shuts its cluster down), then SIGKILL


def run_watched(
    command: list[str], env: dict[str, str], stop_phrase: str = RAY_OOM_KILL, watch=None
) -> tuple[int, str | None]:
    """Run `command`, copying its output (stdout and stderr together) to our stdout line by line; stop it
    when a line contains `stop_phrase` or verl's non-finite warning, or when `watch()` (called after every
    line) returns a reason. Returns (exit status, the stopping line or reason, or None)."""
    from tgpo.verl.lifecycle import VERL_NON_FINITE_WARNING

    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
    )
    stopped_by = None
    for line in child.stdout:
        sys.stdout.write(line)
        if stop_phrase in line or VERL_NON_FINITE_WARNING in line:
            stopped_by = line.strip()
        elif watch is not None:
            stopped_by = watch()
        if stopped_by is not None:
            sys.stdout.flush()
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
            break
    sys.stdout.flush()
    child.stdout.close()
    return child.wait(), stopped_by


def driver_command(
    config: dict, experiment: str, seed: int, nodes: int, metrics_log: Path, cpu: bool = False
) -> list[str]:
    """verl's command for one run; verl's file logger writes to `metrics_log` (one file per attempt,
    since the logger truncates its file on open), in the driver and, for main_ppo, in every Ray worker.
    `cpu`: no accelerator on this machine; verl runs on the CPU (tgpo.verl.cpu)."""
    from tgpo.methods import get_method
    from tgpo.verl.cpu import settings as cpu_settings
    from tgpo.verl.translate import experiment_overrides, sft_overrides

    method = get_method(config["experiments"][experiment]["method"])
    if method.name == "sft":
        if nodes > 1:
            raise ValueError(
                f"experiment {experiment!r}: SFT runs on one node (torchrun --standalone); got --nodes {nodes}"
            )
        from tgpo.config.resolve import resolve_experiment

        processes = int(resolve_experiment(config, experiment, seed).value("n_gpus"))
        overrides = sft_overrides(config, experiment, seed)
        if cpu:
            overrides = cpu_settings.with_sft_cpu_overrides(overrides)
        return sft_command(overrides, processes)
    overrides = experiment_overrides(config, experiment, seed)
    if cpu:
        overrides = cpu_settings.with_cpu_overrides(overrides)
    from tgpo.config.resolve import resolve_experiment

    trackers = tracker_environment(metrics_log.parent, resolve_experiment(config, experiment, seed).training)
    command = [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        *overrides,
        f"+ray_kwargs.ray_init.runtime_env.env_vars.VERL_FILE_LOGGER_PATH={metrics_log}",
        *(f"+ray_kwargs.ray_init.runtime_env.env_vars.{name}={value}" for name, value in trackers.items()),
    ]
    if nodes > 1:
        gpus = resolve_experiment(config, experiment, seed).value("n_gpus")
        launcher = Path(__file__).with_name("launch_ray_slurm.sh")
        command = [
            "bash",
            str(launcher),
            "--nodes",
            str(nodes),
            "--gpus-per-node",
            str(gpus),
            "--cpus-per-node",
            str(os.cpu_count()),
            "--",
            *command,
            f"trainer.nnodes={nodes}",
        ]
    return command


def sft_command(overrides: list[str], processes: int) -> list[str]:
    """verl 0.9.1's SFT trainer is SPMD: one process per GPU under torchrun (it reads RANK / WORLD_SIZE /
    LOCAL_RANK; verl-project/verl v0.9.1 `verl/trainer/sft_trainer.py`, `examples/sft/`). Its file logger
    reads VERL_FILE_LOGGER_PATH from the environment, which torchrun passes on."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        f"--nproc_per_node={processes}",
        "-m",
        "verl.trainer.sft_trainer",
        *overrides,
    ]


def checkpoint_model_subdir(config: dict, experiment: str) -> str:
    """Where verl keeps the model shards inside global_step_<n>: `actor/` for main_ppo, the step folder
    itself for the SFT trainer (tgpo.verl.export)."""
    from tgpo.methods import get_method

    return "" if get_method(config["experiments"][experiment]["method"]).name == "sft" else "actor"


def tracker_environment(run_dir: Path, training: dict) -> dict[str, str]:
    """Where verl's trackers write inside the run folder (verl/utils/tracking.py reads TENSORBOARD_DIR; its
    default is relative to the working directory). wandb and mlflow read their own WANDB_* / MLFLOW_*
    variables from the job's environment, which Ray's workers inherit."""
    loggers = training.get("loggers") or []
    return {"TENSORBOARD_DIR": str(run_dir / "tensorboard")} if "tensorboard" in loggers else {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config YAML with engine: verl (e.g. config/paper-7b.yaml)")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nodes", type=int, default=1, help="SLURM nodes of this job (multi-node: Ray over srun)")
    parser.add_argument("--dry-run", action="store_true", help="print the verl command and exit")


def run(args: argparse.Namespace) -> int:
    from tgpo.numerics import release_kernel_pins

    release_kernel_pins()  # verl's workers on CPU compute NaN gradients under the local engine's kernel pins
    from tgpo.config import load_config
    from tgpo.config.resolve import resolve_experiment
    from tgpo.methods import get_method
    from tgpo.results.run_guard import claim_run_dir
    from tgpo.verl import lifecycle

    config = load_config(args.config)
    resolved = resolve_experiment(config, args.experiment, args.seed)
    run = resolved.run
    run_dir = run.root
    metrics_log = run_dir / VERL_LOG_GLOB.replace("*", str(int(time.time())))
    from tgpo.verl.cpu import settings as cpu_settings

    cpu = not cpu_settings.accelerator_present()  # decided here, once, for every process of the run
    command = driver_command(config, args.experiment, args.seed, args.nodes, metrics_log, cpu=cpu)
    if args.dry_run:
        print(" ".join(command))
        return 0
    # verl resumes whatever checkpoint is in run_dir/checkpoints (resume_mode=auto): a run folder of
    # other settings is moved aside first, and the marker beside the checkpoints records this run's hash
    claim_run_dir(run, resolved.run_hash, {"experiment": args.experiment, "seed": args.seed, "engine": "verl"})
    training = resolved.training
    sft = get_method(resolved.method).name == "sft"
    final_step = None if sft else int(training["steps"])  # SFT counts epochs: its marker says when it is done
    model_subdir = checkpoint_model_subdir(config, args.experiment)
    start = time.time()
    done = lifecycle.finished_reason(run.checkpoints, final_step)
    stop = None
    if done is not None:
        print(f"not starting verl: {done} ({run.checkpoints}); exporting and recording it", flush=True)
    else:
        env = {
            **os.environ,
            **(cpu_settings.cpu_environment() if cpu else {}),
            **tracker_environment(run_dir, training),
            "VERL_FILE_LOGGER_PATH": str(metrics_log),
        }
        watch = lifecycle.StepWatch(
            metrics_log,
            save_freq=int(training["save_every"]),
            final_step=final_step,
            max_new_tokens=int(training.get("max_new_tokens") or 0),
            stop_fraction=training.get("stop_length_fraction"),
            job_end=lifecycle.slurm_job_end(),
        )
        stops: list = []

        def check():
            found = watch.check()
            if found is not None:
                stops.append(found)
                return found.reason
            return None

        print("running:", " ".join(command), flush=True)
        returncode, stopped_by = run_watched(command, env, watch=check)
        stop = stops[0] if stops else None
        if stopped_by is not None and stop is None and lifecycle.VERL_NON_FINITE_WARNING in stopped_by:
            stop = lifecycle.Stop("non_finite", -1, stopped_by)
        if stopped_by is not None and stop is None:  # Ray killed workers for lack of memory
            print(
                f"verl stopped: Ray killed workers for lack of host memory ({stopped_by!r}); verl would have "
                f"waited on them until the job's time limit. Give the job more memory (resources.train.mem_mb) "
                f"or run fewer jobs per node; re-running resumes from {run.checkpoints}",
                file=sys.stderr,
            )
            return returncode or 1
        if stop is not None and stop.kind == "non_finite":
            print(
                f"verl stopped: {stop.reason} (verl skips such an update and goes on; we stop, as the local "
                f"engine does). run.json not written; the last checkpoint is in {run.checkpoints}",
                file=sys.stderr,
            )
            return 1
        if stop is not None and stop.kind == "time_limit":
            print(
                f"verl stopped before the SLURM time limit, {stop.reason}; re-running (the profile's retries) "
                f"resumes from {run.checkpoints}",
                file=sys.stderr,
            )
            return lifecycle.TIME_LIMIT_EXIT
        if stop is None and returncode != 0:
            print(
                f"verl exited with status {returncode}; run.json not written (the run resumes "
                f"from its last checkpoint in {run.checkpoints} when re-run)",
                file=sys.stderr,
            )
            return returncode
    metrics = merge_verl_logs(run_dir)
    if not metrics:
        print(f"verl finished but wrote no metrics to {run_dir}/{VERL_LOG_GLOB}", file=sys.stderr)
        return 1
    bad = [(line["step"], lifecycle.non_finite_metrics(line)) for line in metrics if lifecycle.non_finite_metrics(line)]
    if bad:
        step, keys = bad[0]
        print(
            f"verl logged non-finite {', '.join(keys)} at step {step} (and {len(bad) - 1} more steps); "
            f"verl skipped those updates, we fail the run. run.json not written",
            file=sys.stderr,
        )
        return 1
    last = lifecycle.latest_checkpoint_step(run.checkpoints)
    if last is None:
        print(f"verl finished but left no checkpoint in {run.checkpoints}", file=sys.stderr)
        return 1
    if done is None and (stop is not None or final_step is None):
        # a stop rule ended the run, or SFT (whose last step is not known here) finished: mark it, so a
        # re-run does not resume training (an RL run is finished by its final step's checkpoint)
        reason = stop.reason if stop is not None else "verl finished"
        lifecycle.mark_finished(run.checkpoints, last, reason, **({"stopped_at_step": stop.step} if stop else {}))
    choice = training.get("checkpoint_choice") or "last"
    try:
        chosen, why, earlier_saves = export_for_evaluation(run, choice, metrics, last, model_subdir)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        print(
            f"verl finished but its checkpoint ({choice}) could not be exported for evaluation: {error}",
            file=sys.stderr,
        )
        return 1
    io.write_text(run.metrics, "".join(json.dumps(line) + "\n" for line in metrics))
    marker = lifecycle.finished_marker(run.checkpoints) or {}
    from tgpo.results.run_record import write_run_record

    write_run_record(
        run.run_json,
        engine="verl",
        experiment=args.experiment,
        seed=args.seed,
        run_hash=resolved.run_hash,
        method=resolved.method,
        settings=resolved.to_dict()["settings"],
        command=command,
        wall_time_s=time.time() - start,
        steps_logged=len(metrics),
        checkpoints=str(run.checkpoints),
        checkpoint=str(run.final_checkpoint),
        ended=marker.get("reason", "verl finished"),
        checkpoint_step=chosen,
        checkpoint_choice=choice,
        checkpoint_chosen_by=why,
        **({"earlier_saves": {str(step): str(path) for step, path in earlier_saves.items()}} if earlier_saves else {}),
    )
    return 0


def export_for_evaluation(
    run, choice: str, metrics: list[dict], last: int, model_subdir: str
) -> tuple[int, str, dict[int, Path]]:
    """Merge the save(s) evaluation reads into Hugging Face checkpoints: (step of run.final_checkpoint, why,
    {step: folder} of the earlier saves exported beside it).

    last: the last save. validation: the save with the best validation score (tgpo.verl.lifecycle).
    test (the paper's "best-performing checkpoints", App. B.3): the last save as the checkpoint and every
    earlier kept save under saves/step_<n>/; the evaluation scores them all and eval.checkpoint_choice
    reports the best."""
    from tgpo.verl import export, lifecycle

    if choice == "last":
        export.export_last_checkpoint(run.checkpoints, run.final_checkpoint, model_subdir)
        return last, "the last checkpoint", {}
    if choice == "validation":
        chosen, why = lifecycle.choose_checkpoint(choice, metrics, lifecycle.saved_steps(run.checkpoints, model_subdir))
        source = run.checkpoints / f"global_step_{chosen}" / model_subdir
        print(f"exporting {source} -> {run.final_checkpoint} ({why})", flush=True)
        export.export_hf_checkpoint(source, run.final_checkpoint)
        return chosen, why, {}
    if choice != "test":
        raise ValueError(f"training.checkpoint_choice {choice!r}: expected one of {list(lifecycle.CHECKPOINT_CHOICES)}")
    export.export_last_checkpoint(run.checkpoints, run.final_checkpoint, model_subdir)
    earlier = {}
    for step in lifecycle.saved_steps(run.checkpoints, model_subdir):
        if step < last:
            source = run.checkpoints / f"global_step_{step}" / model_subdir
            print(f"exporting {source} -> {run.saved_model(step)} (checkpoint_choice test)", flush=True)
            earlier[step] = export.export_hf_checkpoint(source, run.saved_model(step))
    return last, "every save is evaluated; the test benchmarks choose (eval/.../checkpoint_choice.json)", earlier
