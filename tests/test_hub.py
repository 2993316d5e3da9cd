"""Hub models and data sets pinned by `revision:`, fetched once by the `download` rule on the login node,
read from local snapshots by every job (issue 18, item 7; tgpo/hub.py). No network: fetches are faked."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tgpo import hub
from tgpo.config import load_config, model_location

ROOT = Path(__file__).resolve().parents[1]
REV = "0123456789abcdef0123456789abcdef01234567"


def minimal_cluster_config(tmp_path) -> dict:
    """paper-1.5b reduced to one student, one teacher, one benchmark, every hub entry pinned."""
    config = copy.deepcopy(load_config(ROOT / "config" / "paper-1.5b.yaml"))
    config["name"] = "hub-test"
    config["hub_dir"] = str(tmp_path / "hub")
    config["benchmarks"] = {"math500": {"revision": REV}}
    config["data"]["train"]["revision"] = REV
    for model in config["models"].values():
        model["revision"] = REV
    return config


def test_check_names_every_unpinned_hub_entry_of_the_paper_config():
    command = [sys.executable, "-m", "tgpo", "download", "--config", "config/paper-7b.yaml", "--check"]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1, completed.stderr[-2000:]
    for key in (
        "models.qwen25_math_7b.revision",
        "data.train.revision",
        "models.prime_zero_7b.revision",
        "benchmarks.gpqa_diamond.revision",
    ):
        assert key in completed.stdout
    assert "models.qwen3_30b_a3b: model Qwen/Qwen3-30B-A3B-Thinking-2507 revision 144afc2f" in completed.stdout


def test_download_fetches_each_pinned_item_into_its_snapshot_and_writes_the_manifest(tmp_path, monkeypatch):
    config = minimal_cluster_config(tmp_path)
    monkeypatch.chdir(tmp_path)  # the manifest goes to results/<name>/hub.json under the working directory
    fetched = []

    def fake_fetch(*, repo_id, repo_type, revision, local_dir):
        fetched.append((repo_id, repo_type, revision))
        Path(local_dir).mkdir(parents=True, exist_ok=True)

    manifest = hub.download(config, source="test", fetch=fake_fetch)
    assert ("Qwen/Qwen3-30B-A3B-Thinking-2507", "model", REV) in fetched
    assert ("Elliott/Openr1-Math-46k-8192", "dataset", REV) in fetched
    assert ("HuggingFaceH4/MATH-500", "dataset", REV) in fetched
    written = json.loads((tmp_path / "results" / "hub-test" / "hub.json").read_text())
    assert written == manifest and len(written["items"]) == len(fetched)
    teacher = next(item for item in written["items"] if item["where"] == "models.qwen3_30b_a3b")
    assert teacher["local_dir"] == str(tmp_path / "hub" / "models" / "Qwen--Qwen3-30B-A3B-Thinking-2507" / REV)


def test_download_refuses_unpinned_entries_before_fetching_anything(tmp_path):
    config = minimal_cluster_config(tmp_path)
    del config["models"]["qwen3_30b_a3b"]["revision"]
    del config["benchmarks"]["math500"]["revision"]
    with pytest.raises(SystemExit, match=r"models\.qwen3_30b_a3b\.revision .*benchmarks\.math500\.revision"):
        hub.download(config, source="test", fetch=lambda **kwargs: pytest.fail("fetched despite a missing revision"))


def test_jobs_read_the_pinned_snapshot_not_the_hub(tmp_path):
    from tgpo.config import model_source

    config = minimal_cluster_config(tmp_path)
    snapshot = tmp_path / "hub" / "models" / "Qwen--Qwen3-30B-A3B-Thinking-2507" / REV
    assert model_location(config, "qwen3_30b_a3b") == str(snapshot)  # vLLM teacher, verl, evaluation
    assert model_source(config, "qwen25_math_1p5b") == str(
        tmp_path / "hub" / "models" / "Qwen--Qwen2.5-Math-1.5B" / REV
    )
    assert hub.benchmark_source(config, "math500") == str(
        tmp_path / "hub" / "datasets" / "HuggingFaceH4--MATH-500" / REV
    )


def test_prepare_data_reads_a_fake_dataset_snapshot_offline(tmp_path, monkeypatch):
    import pandas as pd

    from tgpo.verl.data_prep import read_rows

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    snapshot = tmp_path / "hub" / "datasets" / "Elliott--Openr1-Math-46k-8192" / REV
    (snapshot / "data").mkdir(parents=True)
    rows = pd.DataFrame({"prompt": ["1+1?", "2+2?"], "answer": ["2", "4"]})
    rows.to_parquet(snapshot / "data" / "train-00000-of-00001.parquet")
    rows = read_rows(snapshot, split="train")
    assert [row["answer"] for row in rows] == ["2", "4"]


# The download job's place in the DAG (before every job reading the hub): tests/test_pipeline_dryrun.py.
