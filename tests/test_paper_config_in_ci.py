"""CI's share of the paper configs (issue 17): `config/paper-7b.yaml` itself, not a look-alike, through the CPU
overlay, the real Snakefile and the real single-node SLURM, on vLLM's CPU build.

Two evaluated rows, chosen as the cheapest that reach code no other CI test reaches: the teacher (the
Qwen3-30B-A3B-Thinking stand-in with its own 32,768-token budget, graded by the `authors` protocol's
`<think>` segment rule on answers it gets right) and PRIME-Zero (a released checkpoint with its own
`prime` template, evaluated within its 4,096-token window). The whole selection of every distinct code
path is `tests/test_paper_configs_cpu.py` (`-m verl_e2e`, hours on 2 cores; docs/cluster.md).
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_paper_configs_cpu import OVERLAY, check_paper_evaluation, require_cluster_stack
from test_pipeline_e2e import copy_repo, snakemake

from tgpo.config import load_config

pytestmark = pytest.mark.slow

PAPER = "config/paper-7b.yaml"
ROWS = ("teacher", "prime_zero")


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, slurm):
    require_cluster_stack()
    workdir = copy_repo(tmp_path_factory.mktemp("paper-ci") / "repo")
    selection = "only_experiments=[" + ", ".join(ROWS) + "]"
    snakemake(workdir, "--profile", "slurm", "--configfile", PAPER, OVERLAY, "--config", selection, timeout=3600)
    config = load_config(workdir / "results" / "paper-7b-cpu" / "config.yaml")
    return workdir / "results" / "paper-7b-cpu", config


def test_rows_are_evaluated_with_the_paper_configs_settings(paper_run):
    results, config = paper_run
    paper = load_config(results.parents[1] / PAPER)
    assert config["only_experiments"] == list(ROWS)
    for row, template, budget in (("teacher", "authors", 32768), ("prime_zero", "prime", 8192)):
        check_paper_evaluation(results, paper, row)  # k per problem, the resolved budget asked and kept
        for benchmark in paper["benchmarks"]:
            frame = pd.read_parquet(results / "eval" / row / "seed0" / f"{benchmark}.parquet")
            assert frame.attrs["template"] == template and frame.attrs["grader"] == "authors", (row, benchmark)
            assert frame.attrs["max_new_tokens"] == budget and frame.attrs["top_p"] == 1.0, (row, benchmark)


def test_the_teacher_scores_under_the_authors_grader_and_table_1_names_what_did_not_run(paper_run):
    """The stand-in teacher answers inside its thought and after `</think>`: a zero here would mean the
    segment rule or the template broke, since it scores above 0.9 in distribution (docs/cluster.md)."""
    results, config = paper_run
    summary = pd.read_parquet(results / "summary.parquet")
    teacher = summary[(summary["experiment"] == "teacher") & summary["benchmark"].isin(["aime24", "math500"])]
    assert len(teacher) == 2 and (teacher["score"] > 50).all(), teacher
    table = (results / "figures" / "table1.md").read_text()
    assert any(line.startswith("| Qwen3 |") for line in table.splitlines())
    assert any(line.startswith("| PRIME-Zero |") for line in table.splitlines())
    not_run = table.split("Not run in this selection")[1]
    assert "base_7b" in not_run and "tgpo_annealing" in not_run
