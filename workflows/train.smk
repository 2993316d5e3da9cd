# Training: one generic rule over the experiment wildcard. `run.json` is written last and atomically,
# so it marks a finished run; checkpoints and metrics.jsonl beside it are not declared outputs, which
# lets a killed run resume from its last checkpoint instead of being deleted and restarted.

from tgpo.methods import get_method
from tgpo.resolve import resolve_experiment


def _model_inputs(keys):
    """Checkpoint folders the pipeline makes (built or prepared models); hub ids are not files."""
    return [model_dir(k) for k in keys if k and tgpo_config.pipeline_made_model(config, k)]


def train_inputs(wildcards):
    spec = config["experiments"][wildcards.experiment]
    inputs = {"models": _model_inputs([spec["student"], spec.get("teacher")])}
    if ENGINE == "verl":
        # the curated set (App. B.1) when the config has data.traces, else all prompts; val for verl's loader
        inputs["data"] = [str(tgpo_config.verl_train_files(config, wildcards.experiment)), VERL_VAL]
    elif "world" in config:
        inputs["world"] = WORLD  # training prompts live in the world folder
    if get_method(spec["method"]).uses_teacher_traces:
        inputs["traces"] = TRACES
    return inputs


def _resolved(wildcards):
    """The resolved experiment (tgpo.resolve): every setting, the run's paths, its hash."""
    return resolve_experiment(config, wildcards.experiment, int(wildcards.seed))


def _training(wildcards):
    return _resolved(wildcards).training


if ENGINE == "local":
    # CPU: one thread per run by default, so `-c all` on 2 cores runs two experiments side by side.
    TRAIN_RESOURCES = rule_resources("train", dict(mem_mb=4000, runtime=lambda wc: _training(wc)["runtime_min"]))
    TRAIN_COMMAND = "python -m tgpo train --config {CFG} --experiment {wildcards.experiment} --seed {wildcards.seed}"
else:
    # verl: one 8-GPU node per run, the vLLM teacher pool included (tgpo verl-overrides sizes it).
    TRAIN_RESOURCES = rule_resources("train", dict(
        gres=lambda wc: f"gpu:{_training(wc)['n_gpus']}",
        tasks_per_gpu=0,
        cpus_per_task=64,
        mem_mb=512_000,
        runtime=lambda wc: _training(wc)["runtime_min"],
    ))
    TRAIN_COMMAND = "python -m tgpo verl-train --config {CFG} --experiment {wildcards.experiment} --seed {wildcards.seed}"


rule train:
    """Train one experiment x seed on the configured engine."""
    input:
        unpack(train_inputs),
    output:
        run_file("{experiment}", "{seed}", "run_json"),
    log:
        log_file("train", "{experiment}", "seed{seed}"),
    benchmark:
        timing_file("train", "{experiment}", "seed{seed}")
    threads: lambda wildcards: _training(wildcards)["threads"]
    resources:
        **TRAIN_RESOURCES,
    params:
        # re-train when what determines this run changes (method, settings, models, data), not otherwise;
        # the engine then moves the old run folder aside instead of resuming it (tgpo.run_guard)
        run_hash=lambda wildcards: _resolved(wildcards).run_hash,
    shell:
        TRAIN_COMMAND + " > {log} 2>&1"
