# Shared names for every rule file: the results folder and its layout, experiments, seeds, benchmarks, the data
# files, and the helpers more than one rule file uses (seed sets, model inputs).

import re
from pathlib import Path

from tgpo import config as tgpo_config
from tgpo import hub as tgpo_hub
from tgpo.config.resolve import checkpoint_choice
from tgpo.results.layout import ResultsLayout

LAYOUT = ResultsLayout.of(config)  # every path under results/<name>/ (tgpo/results/layout.py)
RESULTS = str(LAYOUT.root)
ENGINE = config["engine"]
SELECTED = tgpo_config.selected_experiments(config)  # all experiments, or the config's only_experiments
TRAINED = tgpo_config.training_experiments(config)
EVAL_ONLY = [name for name in SELECTED if name not in TRAINED]
# `checkpoint_choice: test` runs (App. B.3, verl only): every save is evaluated, then the best is reported
TEST_CHOICE = [name for name in TRAINED if checkpoint_choice(config, name) == "test"]
BENCHMARKS = list(config["benchmarks"])
BUILT_MODELS = [key for key, model in config["models"].items() if "build" in model]
# the folder under models/ where build-model writes each (tgpo.config.model_source: <key>, or <key>.built when
# the pipeline prepares it afterwards); the build rule's {built} wildcard is that folder's name
BUILT_MODEL_DIRS = {key: tgpo_config.model_source(config, key) for key in BUILT_MODELS}
BUILT_MODEL_OF_NAME = {Path(folder).name: key for key, folder in BUILT_MODEL_DIRS.items()}
# Every job reads the merged, validated config the Snakefile wrote (results/<name>/config.yaml).
CFG = CONFIG_FILE
# Data every rule file reads: the miniature world, the prompt and trace tables, and the verl parquet files
# (all prompts from prepare-data; the curated set of App. B.1 from teacher-traces, which RL and SFT read).
WORLD = str(LAYOUT.world)
TRAIN_DATA = tgpo_config.train_data_path(config)
TRACES = tgpo_config.traces_path(config)
VERL_TRAIN = str(tgpo_config.verl_train_path(config))
VERL_VAL = str(tgpo_config.verl_val_path(config))
CURATED_RL = str(tgpo_config.curated_rl_path(config))
CURATED_SFT = str(tgpo_config.curated_sft_path(config))
# Hub models and data sets: the `download` rule (workflows/data.smk, login node) fetches them at their pinned
# revisions and writes this manifest; every job that reads hub content waits for it (tgpo/hub.py).
HUB_INPUTS = [str(tgpo_hub.manifest_path(config))] if ENGINE == "verl" and tgpo_hub.hub_items(config) else []


def seeds_of(experiment):
    return tgpo_config.experiment_seeds(config, experiment)


def model_dir(key_or_id):
    """The checkpoint folder of a model key, as Snakemake input (built models are pipeline outputs)."""
    return tgpo_config.model_location(config, key_or_id)


def run_file(experiment, seed, name):
    """A file of one training run (run_json, metrics, ...); wildcards "{experiment}", "{seed}" give patterns."""
    return str(getattr(LAYOUT.run(experiment, seed), name))


def log_file(*parts):
    return str(LAYOUT.log(*parts))


def timing_file(*parts):
    return str(LAYOUT.timing(*parts))


def run_pairs(experiments):
    return [(e, s) for e in experiments for s in seeds_of(e)]


def model_inputs(keys):
    """Checkpoint folders the pipeline makes (built or prepared models); hub ids are not files."""
    return [model_dir(k) for k in keys if k and tgpo_config.pipeline_made_model(config, k)]


def seed_sets(experiments):
    """{(seed, ...): [experiment, ...]}: the experiments grouped by their seed lists."""
    sets = {}
    for experiment in experiments:
        sets.setdefault(tuple(seeds_of(experiment)), []).append(experiment)
    return sets


def seed_set_rule_name(verb, seeds, sets):
    """`verb` when every experiment has the same seeds, else e.g. `train_seeds_0_1_2`."""
    return verb if len(sets) == 1 else f"{verb}_seeds_" + "_".join(str(seed) for seed in seeds)


wildcard_constraints:
    experiment="[A-Za-z0-9_.-]+",
    seed=r"\d+",
    model="[A-Za-z0-9_.-]+",


def one_of(names):
    """A wildcard pattern that matches exactly `names` (none: a pattern that matches nothing)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def rule_resources(rule_name, defaults):
    """A rule's resources: the pipeline's `defaults`, updated by the config's `resources.<rule_name>`
    (a null value removes a default, e.g. `gres` for a config that runs on CPU nodes)."""
    merged = {**defaults, **config.get("resources", {}).get(rule_name, {})}
    return {key: value for key, value in merged.items() if value is not None}
