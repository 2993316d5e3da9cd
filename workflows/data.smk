# Data and models: the miniature world and its tiny HF checkpoints (local engine), or the paper's
# prepared checkpoints and parquet data (verl engine); then teacher re-sampling + math-verify filter.

import re
from pathlib import Path

from tgpo.config.resolve import ENGINE_DEFAULTS


if "world" in config:

    rule world:
        """The miniature task: tokenizers, training prompts, benchmark stand-ins (seeded)."""
        output:
            directory(WORLD),
        params:
            size=config["world"].get("size", "default"),
            seed=config["world"].get("seed", config.get("seed", 0)),
        log:
            log_file("world"),
        benchmark:
            timing_file("world")
        threads: 1
        shell:
            "python -m tgpo world --out {output} --seed {params.seed} --size {params.size} > {log} 2>&1"

    rule build_model:
        """Pretrain one tiny model of the miniature (the analogue of 'the base model exists'); with `layout:`,
        re-laid into that real checkpoint's token layout (tgpo/mini/standins.py)."""
        input:
            WORLD,
        output:
            # models/<key>/, or models/<key>.built/ when the pipeline prepares it afterwards (tgpo.config.model_source)
            directory(str(LAYOUT.model("{built}"))),
        wildcard_constraints:
            built=one_of(BUILT_MODEL_OF_NAME),
        params:
            kind=lambda wc: config["models"][BUILT_MODEL_OF_NAME[wc.built]]["build"],
            options=lambda wc: " ".join(
                f"--{option} {config['models'][BUILT_MODEL_OF_NAME[wc.built]][key]}"
                for key, option in (("build_steps", "steps"), ("layout", "layout"))
                if key in config["models"][BUILT_MODEL_OF_NAME[wc.built]]
            ),
            seed=tgpo_config.build_seed(config),
            size=config["world"].get("size", "default"),
        log:
            log_file("build_model", "{built}"),
        benchmark:
            timing_file("build_model", "{built}")
        threads: 1
        resources:
            **rule_resources("build_model", dict(mem_mb=2000, runtime=30)),
        shell:
            "python -m tgpo build-model --world {input} --kind {params.kind} --out {output} "
            "--seed {params.seed} --size {params.size} {params.options} > {log} 2>&1"


if "traces" in config["data"] and "world" in config and ENGINE == "local":

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
            log_file("traces"),
        benchmark:
            timing_file("traces")
        threads: 1
        shell:
            "python -m tgpo traces --world {input.world} --teacher {input.teacher} --out {output} "
            "--seed {params.seed} > {log} 2>&1"


if HUB_INPUTS:

    rule download:
        """Every hub model and data set of the config at its pinned `revision:`, into local snapshots (tgpo/hub.py).
        A local rule: it runs where Snakemake runs (the login node, with network), never on a compute node."""
        output:
            HUB_INPUTS[0],
        log:
            log_file("download"),
        localrule: True
        shell:
            "python -m tgpo download --config {CFG} > {log} 2>&1"


if ENGINE == "verl":
    from tgpo.verl.teacher_traces import trace_student_key

    TRACE_STUDENT = trace_student_key(config) if "traces" in config["data"] else None
    PREPARED_MODELS = [key for key, model in config["models"].items() if "prepare" in model]

    def prepare_model_inputs(wildcards):
        """The source checkpoints (its own, and the teacher its vocabulary is aligned with) where the pipeline
        makes them (a `build:`, or a `path:` naming another model's folder)."""
        settings = config["models"][wildcards.model]["prepare"]
        sources = [tgpo_config.model_source(config, wildcards.model)]
        if settings.get("align_vocab_with"):  # the teacher whose vocabulary the student's is resized to
            sources.append(tgpo_config.model_source(config, settings["align_vocab_with"]))
        made = list(BUILT_MODEL_DIRS.values()) + [model_dir(key) for key in PREPARED_MODELS if key != wildcards.model]
        return [source for source in sources if source in made]

    def _id_alignment_inputs(wildcards):
        """A teacher re-indexed to a student's token ids (prepare.align_ids_to) reads the prepared student."""
        student = (config["models"][wildcards.model].get("prepare") or {}).get("align_ids_to")
        return [model_dir(student)] if student and tgpo_config.pipeline_made_model(config, student) else []

    rule prepare_model:
        """RoPE theta / context baked into config.json, vocabulary aligned with the teacher, <think> template;
        or a teacher re-indexed to the student's token ids by token string (prepare.align_ids_to)."""
        input:
            prepare_model_inputs,
            _id_alignment_inputs,
            HUB_INPUTS,
        output:
            directory(str(LAYOUT.model("{model}"))),
        wildcard_constraints:
            model=one_of(PREPARED_MODELS),
        log:
            log_file("prepare_model", "{model}"),
        benchmark:
            timing_file("prepare_model", "{model}")
        resources:
            **rule_resources("prepare_model", dict(cpus_per_task=4, mem_mb=64_000, runtime=120)),
        shell:
            "python -m tgpo prepare-model --config {CFG} --model {wildcards.model} --out {output} > {log} 2>&1"

    rule prepare_data:
        """OpenR1-Math-46k-8192 (or the miniature world's prompts) to our prompt table and verl's RL parquet."""
        input:
            [WORLD] if "world" in config else [],  # the miniature's prompts (data.train.path) live there
            HUB_INPUTS,
        output:
            TRAIN_DATA,
            VERL_TRAIN,
            VERL_VAL,
        log:
            log_file("prepare_data"),
        benchmark:
            timing_file("prepare_data")
        resources:
            **rule_resources("prepare_data", dict(cpus_per_task=4, mem_mb=32_000, runtime=60)),
        shell:
            "python -m tgpo prepare-data --config {CFG} --out {output[0]} > {log} 2>&1"

    if "traces" in config["data"]:

        rule teacher_traces:
            """The teacher answers every training prompt once (vLLM); Math-Verify keeps the correct ones: the
            curated set (App. B.1) that every RL experiment and SFT train on."""
            input:
                TRAIN_DATA,
                HUB_INPUTS,
                # the teacher, and the student whose vocabulary the traces are written in, where the
                # pipeline makes them
                _trace_models := [
                    model_dir(key) for key in (config["data"]["traces"]["teacher"], TRACE_STUDENT)
                    if tgpo_config.pipeline_made_model(config, key)
                ],
            output:
                TRACES,
                CURATED_RL,
                CURATED_SFT,
            log:
                log_file("teacher_traces"),
            benchmark:
                timing_file("teacher_traces")
            resources:
                **rule_resources("teacher_traces", dict(
                    gres=f"gpu:{config.get('training', {}).get('n_gpus', ENGINE_DEFAULTS['verl']['n_gpus'])}",
                    tasks_per_gpu=0, cpus_per_task=32, mem_mb=256_000, runtime=1440,
                )),
            shell:
                "python -m tgpo teacher-traces --config {CFG} --out {output[0]} > {log} 2>&1"
