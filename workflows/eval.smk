# Evaluation: one job per experiment x seed generates and grades every benchmark of the config
# (the model is loaded once); then one summary table of every experiment x benchmark x seed.


def eval_inputs(wildcards):
    spec = config["experiments"][wildcards.experiment]
    inputs = {}
    if spec.get("eval_only"):
        inputs["models"] = _model_inputs([spec["model"]])
    else:
        inputs["run"] = run_file(wildcards.experiment, wildcards.seed, "run_json")
    if "world" in config:
        inputs["world"] = WORLD  # the miniature's benchmark files
    return inputs


if config.get("evaluation", {}).get("backend", "local") == "local":
    EVAL_RESOURCES = rule_resources("evaluate", dict(mem_mb=3000, runtime=60))
else:
    EVAL_RESOURCES = rule_resources("evaluate", dict(
        gres=f"gpu:{config['evaluation'].get('n_gpus', 1)}", tasks_per_gpu=0, cpus_per_task=8, mem_mb=64_000, runtime=240
    ))


rule evaluate:
    """Generate and grade every benchmark for one experiment x seed."""
    input:
        unpack(eval_inputs),
    output:
        [str(LAYOUT.eval_file("{experiment}", "{seed}", benchmark)) for benchmark in BENCHMARKS],
    log:
        log_file("eval", "{experiment}", "seed{seed}"),
    benchmark:
        timing_file("eval", "{experiment}", "seed{seed}")
    threads: 1
    resources:
        **EVAL_RESOURCES,
    shell:
        "python -m tgpo eval-experiment --config {CFG} --experiment {wildcards.experiment} "
        "--seed {wildcards.seed} > {log} 2>&1"


rule summary:
    """One row per experiment x benchmark x seed, with the metric and its 95 % bootstrap interval."""
    input:
        [
            str(LAYOUT.eval_file(experiment, seed, benchmark))
            for experiment in config["experiments"]
            for seed in seeds_of(experiment)
            for benchmark in BENCHMARKS
        ],
    output:
        str(LAYOUT.summary),
    log:
        log_file("summary"),
    benchmark:
        timing_file("summary")
    localrule: True
    shell:
        "python -m tgpo summarize --results {RESULTS} --out {output} --files {input} > {log} 2>&1"
