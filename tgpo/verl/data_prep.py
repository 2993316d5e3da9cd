"""Verb `prepare-data`: OpenR1-Math-46k-8192 (Section 4, App. B.1) as our prompt table and verl's RL parquet.

    python -m tgpo prepare-data --config config/paper-7b.yaml --out results/paper-7b/data/train.parquet \
        [--source <local parquet/jsonl>] [--verl-dir results/paper-7b/data/verl]

Input rows: LUFFY's release format (`prompt` = chat messages with a user turn, `reward_model.ground_truth`,
optional `target` = the released trace) or a flat table (`problem`/`question` + `answer`). Outputs:

- `--out` (the suite's contract, docs/architecture.md): `prompt_id, prompt, answer` (+ `target` when the
  source has a trace); `prompt` is the question text, each engine applies its own template.
- `<verl-dir>/train.parquet` (tgpo.config.verl_train_path): verl's RL schema, one row per prompt,

      prompt        = [{"role": "system", "content": App. B.2 system prompt}, {"role": "user", "content": question}]
      data_source   = "openr1_math", ability = "math"
      reward_model  = {"style": "rule", "ground_truth": answer}
      extra_info    = {"index": prompt_id, "split": "train", "prompt_id": ..., "answer": ... (+ "target")}

  plus `prompt_id`, `answer` columns. The two tables cannot be one file: verl's `prompt` is a message list,
  ours a string. `<verl-dir>/val.parquet` is the first VAL_ROWS rows (verl builds a validation set even
  though the paper configs never validate during training: trainer.test_freq=-1).

RL experiments train on `train.parquet` only when the config has no `data.traces`; with it (the paper's
setting, App. B.1) they train on the curated set that `teacher-traces` writes (tgpo.config.rl_train_path).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tgpo.results import io

DATA_SOURCE = "openr1_math"
ABILITY = "math"
VAL_ROWS = 64
QUESTION_KEYS = ("problem", "question")


def system_prompt() -> str:
    """The paper's system prompt (Appendix B.2), defined once in tgpo/system_prompt.py."""
    from tgpo.system_prompt import SYSTEM_PROMPT

    return SYSTEM_PROMPT


def _plain(value: Any) -> Any:
    """numpy arrays / scalars from parquet as Python lists / values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def question_of(row: Mapping[str, Any], where: str) -> str:
    """The problem text of a source row: the last user message of `prompt`, else `problem` / `question`."""
    messages = _plain(row.get("prompt"))
    if isinstance(messages, list):
        users = [m.get("content") for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
        if users and isinstance(users[-1], str) and users[-1].strip():
            return users[-1]
        raise ValueError(
            f"{where}: field 'prompt' has no non-empty user message (got roles "
            f"{[m.get('role') for m in messages if isinstance(m, Mapping)]})"
        )
    if isinstance(messages, str) and messages.strip():
        return messages
    for key in QUESTION_KEYS:
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return value
    raise ValueError(
        f"{where}: no problem text (expected a 'prompt' message list with a user turn, or one of {list(QUESTION_KEYS)})"
    )


def answer_of(row: Mapping[str, Any], where: str) -> str:
    """The gold answer: `reward_model.ground_truth`, else `answer`."""
    reward_model = row.get("reward_model")
    answer = reward_model.get("ground_truth") if isinstance(reward_model, Mapping) else None
    if answer is None:
        answer = row.get("answer")
    if answer is None or (isinstance(answer, float) and answer != answer) or not str(answer).strip():
        raise ValueError(f"{where}: no gold answer (expected 'reward_model.ground_truth' or 'answer')")
    return str(answer)


def target_of(row: Mapping[str, Any]) -> str | None:
    """The released trace (LUFFY's `target`: assistant messages, or a string), if any."""
    target = _plain(row.get("target"))
    if isinstance(target, list):
        contents = [m.get("content") for m in target if isinstance(m, Mapping) and m.get("role") == "assistant"]
        return contents[-1] if contents else None
    return target if isinstance(target, str) and target else None


def prompt_table(rows: Iterable[Mapping[str, Any]], source: str) -> Any:
    """Our table `prompt_id, prompt, answer` (+ `target`) from source rows; errors name the row."""
    import pandas as pd

    records = []
    for index, row in enumerate(rows):
        where = f"{source}: row {index}"
        record = {"prompt_id": index, "prompt": question_of(row, where), "answer": answer_of(row, where)}
        target = target_of(row)
        if target is not None:
            record["target"] = target
        records.append(record)
    if not records:
        raise ValueError(f"{source}: no rows")
    frame = pd.DataFrame(records)
    if "target" in frame and frame["target"].isna().any():
        missing = int(frame["target"].isna().sum())
        raise ValueError(f"{source}: {missing} rows have no 'target' while others do; expected all or none")
    return frame


def verl_row(prompt_id: int, question: str, answer: str, split: str, *, target: str | None = None) -> dict:
    """One row of verl's RL parquet (docs/verl-0.9.md section 4); `target` is LUFFY's off-policy trace."""
    extra_info: dict[str, Any] = {
        "index": int(prompt_id),
        "split": split,
        "prompt_id": int(prompt_id),
        "answer": answer,
    }
    if target is not None:
        extra_info["target"] = [{"role": "assistant", "content": target}]
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "system", "content": system_prompt()}, {"role": "user", "content": question}],
        "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": extra_info,
        "prompt_id": int(prompt_id),
        "answer": answer,
    }


def verl_table(frame, split: str, *, target_column: str | None = "target") -> Any:
    """verl's RL parquet rows for a table with `prompt_id, prompt, answer` (+ target column)."""
    import pandas as pd

    has_target = target_column is not None and target_column in frame
    rows = [
        verl_row(r["prompt_id"], r["prompt"], r["answer"], split, target=r[target_column] if has_target else None)
        for r in frame.to_dict("records")
    ]
    return pd.DataFrame(rows)


def read_rows(source: str | Path, split: str = "train") -> list[dict]:
    """Rows of a local .parquet / .jsonl / .json file, a local data set repository (a hub snapshot folder,
    tgpo.hub), or a hub dataset id (network)."""
    import pandas as pd

    path = Path(source)
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    if path.suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=path.suffix == ".jsonl").to_dict("records")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{source}: unsupported file type {path.suffix!r}; expected .parquet, .jsonl or .json")
    from datasets import load_dataset

    return list(load_dataset(str(source), split=split))


def prepare_data(source: str, out: str | Path, verl_dir: str | Path, *, split: str = "train") -> dict:
    from tgpo.results.layout import VERL_TRAIN_FILE, VERL_VAL_FILE

    rows = read_rows(source, split)
    frame = prompt_table(rows, str(source))
    io.write_parquet(out, frame)
    verl_frame = verl_table(frame, "train")
    io.write_parquet(Path(verl_dir) / VERL_TRAIN_FILE, verl_frame)
    io.write_parquet(Path(verl_dir) / VERL_VAL_FILE, verl_table(frame.head(VAL_ROWS), "val"))
    return {
        "source": str(source),
        "rows": len(frame),
        "with_target": "target" in frame,
        "out": str(out),
        "verl_train": str(Path(verl_dir) / VERL_TRAIN_FILE),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="config YAML (data.train: {hub, split} or {path})")
    parser.add_argument("--out", required=True, type=Path, help="e.g. results/<name>/data/train.parquet")
    parser.add_argument("--source", help="local .parquet/.jsonl replacing data.train (LUFFY or flat format)")
    parser.add_argument("--verl-dir", type=Path, help="verl parquet folder (default: tgpo.config.verl_data_dir)")


def run(args: argparse.Namespace) -> int:
    from tgpo.config import load_config, verl_data_dir
    from tgpo.config.paths import pinned_snapshot

    config = load_config(args.config)
    train = config["data"]["train"]
    source = (
        args.source
        or train.get("path")
        or (train.get("hub") and pinned_snapshot(config, "dataset", train["hub"], train.get("revision")))
    )
    if not source:
        raise ValueError(f"{args.config}: data.train needs `hub` or `path` (or pass --source)")
    verl_dir = args.verl_dir or verl_data_dir(config)
    print(json.dumps(prepare_data(source, args.out, verl_dir, split=train.get("split", "train")), indent=1))
    return 0
