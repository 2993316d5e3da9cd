# Evaluation. The local engine: trained experiments are evaluated inside their training job, eval-only ones
# here, one job per experiment over its seeds and benchmarks (CPU minutes). The cluster engine: one job per
# experiment x seed x benchmark, so a retried or re-run pipeline redoes only the benchmarks whose file is
# missing, with the experiment's own GPUs (vLLM tensor parallel) and time limit per job
# (`evaluation.n_gpus` / `evaluation.runtime_min`, overridable per experiment: tgpo.config.evaluation_setting).
# Then one summary table of every experiment x benchmark x seed.


def eval_inputs(wildcards):
    spec = config["experiments"][wildcards.experiment]
    seeds = [wildcards.seed] if "seed" in wildcards.keys() else seeds_of(wildcards.experiment)
    inputs = {}
    if spec.get("eval_only"):
        inputs["models"] = model_inputs([spec["model"]])
    else:
        inputs["run"] = [run_file(wildcards.experiment, seed, "run_json") for seed in seeds]
    if "world" in config:
        inputs["world"] = WORLD  # the miniature's benchmark files
    inputs["hub"] = HUB_INPUTS  # pinned hub models and benchmark data sets, as local snapshots
    return inputs


def _eval_setting(key):
    return lambda wildcards: tgpo_config.evaluation_setting(config, wildcards.experiment, key)


if config.get("evaluation", {}).get("backend", "local") == "local":
    EVAL_RESOURCES = rule_resources("evaluate", dict(mem_mb=3000, runtime=60))
else:
    EVAL_RESOURCES = rule_resources("evaluate", dict(
        gres=lambda wildcards: f"gpu:{_eval_setting('n_gpus')(wildcards)}", tasks_per_gpu=0,
        cpus_per_task=lambda wildcards: 8 * _eval_setting("n_gpus")(wildcards),
        mem_mb=lambda wildcards: 64_000 * _eval_setting("n_gpus")(wildcards), runtime=_eval_setting("runtime_min"),
    ))


if ENGINE == "local":
    # Trained experiments are evaluated by their training job (workflows/train.smk); this rule evaluates
    # the eval-only ones (base models, teachers), one job per experiment over its seeds.
    EVAL_SEED_SETS = seed_sets(EVAL_ONLY)
    for _seeds, _experiments in EVAL_SEED_SETS.items():

        rule:
            name: seed_set_rule_name("evaluate", _seeds, EVAL_SEED_SETS)
            input:
                unpack(eval_inputs),
            output:
                [str(LAYOUT.eval_file("{experiment}", seed, benchmark)) for seed in _seeds for benchmark in BENCHMARKS],
            wildcard_constraints:
                experiment=one_of(_experiments),
            log:
                log_file("eval", "{experiment}"),
            benchmark:
                timing_file("eval", "{experiment}")
            threads: 1
            resources:
                **EVAL_RESOURCES,
            params:
                seeds=" ".join(str(seed) for seed in _seeds),
            shell:
                "python -m tgpo eval-experiment --config {CFG} --experiment {wildcards.experiment} "
                "--seeds {params.seeds} > {log} 2>&1"

elif config.get("evaluation", {}).get("job_per_benchmark", True):

    rule evaluate:
        """Generate and grade one benchmark for one experiment x seed."""
        input:
            unpack(eval_inputs),
        output:
            str(LAYOUT.eval_file("{experiment}", "{seed}", "{benchmark}")),
        wildcard_constraints:
            benchmark=one_of(BENCHMARKS),
            experiment=one_of([name for name in SELECTED if name not in TEST_CHOICE]),
        log:
            log_file("eval", "{experiment}", "seed{seed}", "{benchmark}"),
        benchmark:
            timing_file("eval", "{experiment}", "seed{seed}", "{benchmark}")
        threads: 1
        resources:
            **EVAL_RESOURCES,
        shell:
            "python -m tgpo eval-experiment --config {CFG} --experiment {wildcards.experiment} "
            "--seed {wildcards.seed} --benchmarks {wildcards.benchmark} > {log} 2>&1"

else:
    # evaluation.job_per_benchmark: false (config/verl-mini.yaml on CPU, where a vLLM start-up costs more
    # than its tiny benchmarks): one job per experiment x seed, every benchmark after one start-up

    rule evaluate:
        """Generate and grade every benchmark for one experiment x seed."""
        input:
            unpack(eval_inputs),
        output:
            [str(LAYOUT.eval_file("{experiment}", "{seed}", benchmark)) for benchmark in BENCHMARKS],
        wildcard_constraints:
            experiment=one_of([name for name in SELECTED if name not in TEST_CHOICE]),
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


if TEST_CHOICE:
    # App. B.3's "best-performing checkpoints" (`checkpoint_choice: test`): every save of the run is evaluated
    # (one saves file per benchmark, the same jobs as above), then choose-checkpoint reports the save with
    # the best Avg. as the experiment's eval files (eval/checkpoint_choice.py).
    _PER_BENCHMARK = config.get("evaluation", {}).get("job_per_benchmark", True)

    rule evaluate_saves:
        """Generate and grade every save of a checkpoint_choice: test run (one benchmark, or all of them)."""
        input:
            unpack(eval_inputs),
        output:
            [str(LAYOUT.saves_eval_file("{experiment}", "{seed}", "{benchmark}"))]
            if _PER_BENCHMARK
            else [str(LAYOUT.saves_eval_file("{experiment}", "{seed}", benchmark)) for benchmark in BENCHMARKS],
        wildcard_constraints:
            experiment=one_of(TEST_CHOICE),
            **({"benchmark": one_of(BENCHMARKS)} if _PER_BENCHMARK else {}),
        log:
            log_file("eval", "{experiment}", "seed{seed}", "saves" + ("_{benchmark}" if _PER_BENCHMARK else "")),
        benchmark:
            timing_file("eval", "{experiment}", "seed{seed}", "saves" + ("_{benchmark}" if _PER_BENCHMARK else ""))
        threads: 1
        resources:
            **EVAL_RESOURCES,
        params:
            benchmarks=lambda wildcards: f"--benchmarks {wildcards.benchmark}" if _PER_BENCHMARK else "",
        shell:
            "python -m tgpo eval-experiment --config {CFG} --experiment {wildcards.experiment} "
            "--seed {wildcards.seed} {params.benchmarks} > {log} 2>&1"

    rule choose_checkpoint:
        """Report the save with the best Avg. on the test benchmarks (App. B.3, the paper's choice)."""
        input:
            [str(LAYOUT.saves_eval_file("{experiment}", "{seed}", benchmark)) for benchmark in BENCHMARKS],
        output:
            [str(LAYOUT.eval_file("{experiment}", "{seed}", benchmark)) for benchmark in BENCHMARKS],
            choice=str(LAYOUT.checkpoint_choice("{experiment}", "{seed}")),
        wildcard_constraints:
            experiment=one_of(TEST_CHOICE),
        log:
            log_file("eval", "{experiment}", "seed{seed}", "choose_checkpoint"),
        localrule: True
        shell:
            "python -m tgpo choose-checkpoint --config {CFG} --experiment {wildcards.experiment} "
            "--seed {wildcards.seed} > {log} 2>&1"


rule summary:
    """One row per experiment x benchmark x seed, with the metric and its 95 % bootstrap interval."""
    input:
        [
            str(LAYOUT.eval_file(experiment, seed, benchmark))
            for experiment in SELECTED
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
