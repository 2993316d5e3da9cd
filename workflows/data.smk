# Data and models: the miniature world and its tiny HF checkpoints (local engine), or the paper's
# prepared checkpoints and parquet data (verl engine); then teacher re-sampling + math-verify filter.

WORLD = f"{RESULTS}/world"
TRAIN_DATA = tgpo_config.train_data_path(config)
TRACES = tgpo_config.traces_path(config)


if "world" in config:

    rule world:
        """The miniature task: tokenizers, training prompts, benchmark stand-ins (seeded)."""
        output:
            directory(WORLD),
        params:
            size=config["world"].get("size", "default"),
            seed=config["world"].get("seed", config.get("seed", 0)),
        log:
            f"{RESULTS}/logs/world.log",
        benchmark:
            f"{RESULTS}/benchmarks/world.tsv"
        threads: 1
        shell:
            "python -m tgpo world --out {output} --seed {params.seed} --size {params.size} > {log} 2>&1"

    rule build_model:
        """Pretrain one tiny model of the miniature (the analogue of 'the base model exists')."""
        input:
            WORLD,
        output:
            directory(f"{RESULTS}/models/{{model}}"),
        params:
            kind=lambda wc: config["models"][wc.model]["build"],
            steps=lambda wc: (
                f"--steps {config['models'][wc.model]['build_steps']}"
                if "build_steps" in config["models"][wc.model] else ""
            ),
            seed=config.get("seed", 0),
        log:
            f"{RESULTS}/logs/build_model/{{model}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/build_model/{{model}}.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        shell:
            "python -m tgpo build-model --world {input} --kind {params.kind} --out {output} "
            "--seed {params.seed} {params.steps} > {log} 2>&1"


if "traces" in config["data"] and "world" in config:

    rule traces:
        """Teacher re-sampling of the training prompts, filtered with math-verify (SFT and LUFFY data)."""
        input:
            world=WORLD,
            teacher=model_dir(config["data"]["traces"]["teacher"]),
        output:
            TRACES,
        params:
            seed=config.get("seed", 0),
        log:
            f"{RESULTS}/logs/traces.log",
        benchmark:
            f"{RESULTS}/benchmarks/traces.tsv"
        threads: 1
        shell:
            "python -m tgpo traces --world {input.world} --teacher {input.teacher} --out {output} "
            "--seed {params.seed} > {log} 2>&1"
