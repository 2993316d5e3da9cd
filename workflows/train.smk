# Training: one generic rule over the experiment wildcard (the local engine: one job per experiment
# trains all its seeds; one thread per job by default, so `-c all` on 2 cores trains two experiments side
# by side). `run.json` is written last and atomically, so it marks a finished run; checkpoints and
# metrics.jsonl beside it are not declared outputs, which lets a killed run resume from its last
# checkpoint instead of being deleted and restarted.

import re

from tgpo.methods import get_method
from tgpo.config.resolve import resolve_experiment


def train_inputs(wildcards):
    spec = config["experiments"][wildcards.experiment]
    inputs = {"models": model_inputs([spec["student"], spec.get("teacher")]), "hub": HUB_INPUTS}
    if ENGINE == "verl":
        # the curated set (App. B.1) when the config has data.traces, else all prompts; val for verl's loader
        inputs["data"] = [str(tgpo_config.verl_train_files(config, wildcards.experiment)), VERL_VAL]
    elif "world" in config:
        inputs["world"] = WORLD  # training prompts live in the world folder
    if get_method(spec["method"]).uses_teacher_traces:
        inputs["traces"] = TRACES
    return inputs


def _resolved(wildcards):
    """The resolved experiment (tgpo.config.resolve): every setting, the run's paths, its hash."""
    return resolve_experiment(config, wildcards.experiment, int(wildcards.seed))


def _training(wildcards):
    return _resolved(wildcards).training


def _training_of(experiment, seed):
    return resolve_experiment(config, experiment, int(seed)).training


if ENGINE != "local":
    # verl: one 8-GPU node per run, the vLLM teacher pool included (tgpo verl-overrides sizes it).
    TRAIN_RESOURCES = rule_resources("train", dict(
        gres=lambda wc: f"gpu:{_training(wc)['n_gpus']}",
        tasks_per_gpu=0,
        cpus_per_task=64,
        mem_mb=512_000,
        runtime=lambda wc: _training(wc)["runtime_min"],
    ))
    TRAIN_COMMAND = "python -m tgpo verl-train --config {CFG} --experiment {wildcards.experiment} --seed {wildcards.seed}"


if ENGINE == "local":
    # One job per experiment trains all its seeds, one after the other, in one process, and evaluates
    # each right after its training (so it writes the evaluate rule's files for trained experiments,
    # workflows/eval.smk): a miniature run takes seconds, less than starting Python and importing
    # transformers again for it. Experiments with different seed lists get one rule each (an output
    # list cannot depend on a wildcard).
    TRAIN_SEED_SETS = seed_sets(TRAINED)
    for _seeds, _experiments in TRAIN_SEED_SETS.items():

        rule:
            name: seed_set_rule_name("train", _seeds, TRAIN_SEED_SETS)
            input:
                unpack(train_inputs),
            output:
                [run_file("{experiment}", seed, "run_json") for seed in _seeds],
                [str(LAYOUT.eval_file("{experiment}", seed, benchmark)) for seed in _seeds for benchmark in BENCHMARKS],
            wildcard_constraints:
                experiment=one_of(_experiments),
            log:
                log_file("train", "{experiment}"),
            benchmark:
                timing_file("train", "{experiment}")
            threads: lambda wildcards: _training_of(wildcards.experiment, seeds_of(wildcards.experiment)[0])["threads"]
            resources:
                **rule_resources("train", dict(mem_mb=4000, runtime=lambda wc: sum(
                    _training_of(wc.experiment, seed)["runtime_min"] for seed in seeds_of(wc.experiment)))),
            params:
                # re-train when what determines a run changes (method, settings, models, data), not otherwise;
                # the engine then moves the old run folder aside instead of resuming it (tgpo.results.run_guard)
                run_hash=lambda wildcards: [resolve_experiment(config, wildcards.experiment, seed).run_hash
                                            for seed in seeds_of(wildcards.experiment)],
                seeds=" ".join(str(seed) for seed in _seeds),
            shell:
                "python -m tgpo train --config {CFG} --experiment {wildcards.experiment} --seeds {params.seeds} "
                "--evaluate > {log} 2>&1"

else:

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
            # the engine then moves the old run folder aside instead of resuming it (tgpo.results.run_guard)
            run_hash=lambda wildcards: _resolved(wildcards).run_hash,
        shell:
            TRAIN_COMMAND + " > {log} 2>&1"
