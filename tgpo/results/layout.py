"""Every path under `results/<name>/`, in one place (docs/architecture.md, "Results").

    results/<name>/
      config.yaml                                  the merged config every job reads
      world/                                       miniature task data, tokenizers, benchmark files
      models/<model key>/                          built or prepared HF checkpoints
      models/<model key>.built/                    a built model before its preparation
      data/train.parquet, data/traces.parquet      prompts and filtered teacher traces
      data/verl/                                   verl's RL / SFT parquet files
      runs/<experiment>/seed<k>/                   one training run (RunLayout below; saves/step_<n>/: the
                                                   earlier saves of a checkpoint_choice: test run)
      runs/<experiment>/seed<k>.stale-<hash>-<time>/   a run of other settings, moved aside
      eval/<experiment>/seed<k>/<benchmark>.parquet
      eval/<experiment>/seed<k>/saves/<benchmark>.parquet, checkpoint_choice.json   checkpoint_choice: test
      summary.parquet
      figures/                                     tables and figures
      logs/, benchmarks/                           Snakemake job logs and timings

The functions take plain strings too, so the Snakefile builds its wildcard patterns with them:
`ResultsLayout(root).run_json("{experiment}", "{seed}")` is `<root>/runs/{experiment}/seed{seed}/run.json`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_ROOT = Path("results")
# verl parquet files in data/verl/ (a folder the verbs also accept as --verl-dir)
VERL_TRAIN_FILE = "train.parquet"  # all prompts (prepare-data), verl's RL schema
VERL_VAL_FILE = "val.parquet"
CURATED_RL_FILE = "curated.parquet"  # prompts with a correct teacher trace, the trace as LUFFY's target
CURATED_SFT_FILE = "curated_sft.parquet"  # the same set as SFT conversations (system, user, assistant trace)
SEED_DIR_PATTERN = re.compile(r"^seed(\d+)$")  # a run's or an evaluation's seed folder (never a stale one)


def seed_dir_name(seed: int | str) -> str:
    return f"seed{seed}"


def seed_of_dir(name: str) -> int | None:
    """k for a folder named seed<k>; None otherwise (e.g. a run moved aside as seed<k>.stale-...)."""
    match = SEED_DIR_PATTERN.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class RunLayout:
    """The files of one training run, `runs/<experiment>/seed<k>/`."""

    root: Path

    @property
    def final_checkpoint(self) -> Path:  # the trained student (save_pretrained, tokenizer included)
        return self.root / "checkpoint"

    @property
    def checkpoints(self) -> Path:  # intermediate checkpoints for resume (local: step_<n>/, verl: global_step_<n>/)
        return self.root / "checkpoints"

    def saved_model(self, step: int) -> Path:
        """An earlier save exported for evaluation (`checkpoint_choice: test`; the last save is the checkpoint)."""
        return self.root / "saves" / f"step_{step}"

    @property
    def metrics(self) -> Path:  # one JSON object per training step
        return self.root / "metrics.jsonl"

    @property
    def run_json(self) -> Path:  # written last: the marker of a finished run, with what ran
        return self.root / "run.json"

    @property
    def settings_marker(self) -> Path:
        """Written when a run starts: the resolved experiment's hash (tgpo.results.run_guard compares it)."""
        return self.root / "run_settings.json"

    def stale(self, old_hash: str, when: float | None = None) -> Path:
        """Where a run of other settings is moved: `seed<k>.stale-<hash>-<YYYYmmdd-HHMMSS>` beside it."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
        return self.root.with_name(f"{self.root.name}.stale-{old_hash or 'unknown'}-{stamp}")


@dataclass(frozen=True)
class ResultsLayout:
    """Paths under one results folder, `results/<name>/`."""

    root: Path

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> ResultsLayout:
        """results/<name><name_suffix>/ (a scale overlay such as config/cpu-overlay.yaml sets the suffix, so a
        paper config's CPU stand-in run never shares a folder with the real one)."""
        return cls(RESULTS_ROOT / (config["name"] + config.get("name_suffix", "")))

    @property
    def merged_config(self) -> Path:
        """The config every job reads: all --configfile's and --config overrides, merged and validated once."""
        return self.root / "config.yaml"

    # inputs the pipeline makes
    @property
    def world(self) -> Path:
        return self.root / "world"

    def model(self, key: str) -> Path:
        return self.root / "models" / key

    def built_model(self, key: str) -> Path:
        """A built model that the pipeline then prepares (`build:` and `prepare:`): the unprepared folder."""
        return self.root / "models" / f"{key}.built"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def train_data(self) -> Path:
        return self.data / "train.parquet"

    @property
    def traces_data(self) -> Path:
        return self.data / "traces.parquet"

    @property
    def verl_data(self) -> Path:
        return self.data / "verl"

    @property
    def verl_train(self) -> Path:
        return self.verl_data / VERL_TRAIN_FILE

    @property
    def verl_val(self) -> Path:
        return self.verl_data / VERL_VAL_FILE

    @property
    def curated_rl(self) -> Path:
        return self.verl_data / CURATED_RL_FILE

    @property
    def curated_sft(self) -> Path:
        return self.verl_data / CURATED_SFT_FILE

    # training
    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, experiment: str, seed: int | str) -> RunLayout:
        return run_layout(self.runs, experiment, seed)

    # evaluation and report
    def eval_dir(self, experiment: str, seed: int | str) -> Path:
        return self.root / "eval" / experiment / seed_dir_name(seed)

    def eval_file(self, experiment: str, seed: int | str, benchmark: str) -> Path:
        return self.eval_dir(experiment, seed) / f"{benchmark}.parquet"

    def saves_eval_file(self, experiment: str, seed: int | str, benchmark: str) -> Path:
        """Every evaluated save of a `checkpoint_choice: test` run on one benchmark (column checkpoint_step)."""
        return self.eval_dir(experiment, seed) / "saves" / f"{benchmark}.parquet"

    def checkpoint_choice(self, experiment: str, seed: int | str) -> Path:
        """Which save a `checkpoint_choice: test` run reports, and every save's scores (eval.checkpoint_choice)."""
        return self.eval_dir(experiment, seed) / "checkpoint_choice.json"

    @property
    def evals(self) -> Path:
        return self.root / "eval"

    @property
    def summary(self) -> Path:
        return self.root / "summary.parquet"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def log(self, *parts: str) -> Path:
        """logs/<parts...>.log (a Snakemake job's log)."""
        return self.root.joinpath("logs", *parts[:-1], f"{parts[-1]}.log")

    def timing(self, *parts: str) -> Path:
        """benchmarks/<parts...>.tsv (a Snakemake job's `benchmark:` file)."""
        return self.root.joinpath("benchmarks", *parts[:-1], f"{parts[-1]}.tsv")


def run_layout(runs_dir: str | Path, experiment: str, seed: int | str) -> RunLayout:
    """The run `runs_dir/<experiment>/seed<k>/` (figures receive `runs/` alone)."""
    return RunLayout(Path(runs_dir) / experiment / seed_dir_name(seed))


def results_dir(config: Mapping[str, Any]) -> Path:
    return ResultsLayout.of(config).root
