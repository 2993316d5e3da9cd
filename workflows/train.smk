# Training: one generic rule over the experiment wildcard. `run.json` is written last and atomically,
# so it marks a finished run; checkpoints and metrics.jsonl beside it are not declared outputs, which
# lets a killed run resume from its last checkpoint instead of being deleted and restarted.

from tgpo.methods import get_method


def _model_inputs(keys):
    """Checkpoint folders the pipeline makes (built or prepared models); hub ids are not files."""
    return [model_dir(k) for k in keys if k and tgpo_config.pipeline_made_model(config, k)]


def train_inputs(wildcards):
    spec = config["experiments"][wildcards.experiment]
    inputs = {"models": _model_inputs([spec["student"], spec.get("teacher")])}
    if "world" in config:
        inputs["world"] = WORLD  # training prompts live in the world folder
    if get_method(spec["method"]).uses_teacher_traces:
        inputs["traces"] = TRACES
    return inputs


def train_resources(name, default):
    return lambda wildcards: tgpo_config.resolved_training(config, wildcards.experiment).get(name, default)


rule train:
    """Train one experiment x seed on the configured engine."""
    input:
        unpack(train_inputs),
    output:
        f"{RESULTS}/runs/{{experiment}}/seed{{seed}}/run.json",
    log:
        f"{RESULTS}/logs/train/{{experiment}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}/seed{{seed}}.tsv"
    threads: lambda wildcards: tgpo_config.resolved_training(config, wildcards.experiment).get("threads", 1)
    resources:
        mem_mb=lambda wildcards: 4000 if ENGINE == "local" else 900_000,
        runtime=train_resources("runtime_min", 60),
        gpus=lambda wildcards: 0 if ENGINE == "local" else (
            tgpo_config.resolved_training(config, wildcards.experiment).get("n_gpus", 8)
        ),
    params:
        command="python -m tgpo train" if ENGINE == "local" else "bash tgpo/verl/launch_ray_slurm.sh python -m tgpo.verl.train",
    shell:
        "{params.command} --config {CFG} --experiment {wildcards.experiment} --seed {wildcards.seed} > {log} 2>&1"
