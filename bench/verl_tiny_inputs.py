"""Inputs for bench/verl_step.py without the verl-mini pipeline: results/verl-tiny/{models,data,config.yaml}.

Two random two-layer Qwen2 models with the byte-level tokenizer of tests/test_verl_cpu_run.py (student seed
0, teacher seed 1: the same vocabulary, so every teacher id is a student id), 64 arithmetic prompts in verl's
RL schema (train.parquet, copied to curated.parquet, the file bench/verl_step.py checks for) and a config
with GRPO++ (one student rank) and TGPO (w_init 0.1, one student rank + one vLLM teacher replica).
Then, e.g.:

  python bench/verl_tiny_inputs.py
  python bench/verl_step.py --config results/verl-tiny/config.yaml --name verl-tiny-bench --steps 12 \\
      --teacher-off-from 7

The models are untrained (their rollouts run to max_new_tokens): the numbers are the engine's costs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from test_verl_cpu_run import build_qwen2, write_config, write_rl_parquet  # noqa: E402

NAME = "verl-tiny"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=64, help="training prompts (default 64)")
    args = parser.parse_args(argv)
    import yaml

    from tgpo.config import load_config

    root = ROOT / "results" / NAME
    for key, seed in (("student", 0), ("teacher", 1)):
        build_qwen2(root / "models" / key, hidden_size=64, heads=2, seed=seed)  # head_dim 32 (vLLM CPU)
    data = root / "data" / "verl"
    write_rl_parquet(data, rows=args.prompts)
    shutil.copy(data / "train.parquet", data / "curated.parquet")
    config_path = root / "config.yaml"
    write_config(config_path, root / "models", steps=3, teacher_gpus=1)
    config = yaml.safe_load(config_path.read_text())
    config["name"] = NAME
    config["description"] = "bench/verl_step.py inputs: tiny random Qwen2 student and teacher, byte tokenizer"
    config["data"]["train"]["path"] = f"results/{NAME}/data/verl/train.parquet"
    config["models"]["teacher"] = {"path": str(root / "models" / "teacher"), "label": "tiny teacher",
                                   "family": "qwen2"}  # fmt: skip
    config["experiments"] = {
        "grpo_pp": {"method": "grpo_pp", "student": "student", "training": {"n_gpus": 1}},
        "tgpo": {
            "method": "tgpo",
            "student": "student",
            "teacher": "teacher",
            "hparams": {"w_init": 0.1, "delta": 0.0},
        },
    }
    config["report"] = {}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    load_config(config_path)
    print(f"wrote {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
