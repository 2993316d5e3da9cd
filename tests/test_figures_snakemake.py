"""workflows/figures.smk in a temporary workspace with FIXTURE results (tests/test_figures_fixtures.py).

The Snakefile here is a stand-in for the main Snakefile: it defines `config`, `LAYOUT`, `SELECTED`, `RESULTS`, `seeds_of` and a fake
`train` rule that produces metrics.jsonl (by copying fixture files), then includes figures.smk.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_figures_fixtures import FIXTURE_NAME, build_fixture_results

ROOT = Path(__file__).resolve().parents[1]
FIG5 = f"results/{FIXTURE_NAME}/figures/fig5.pdf"

SNAKEFILE = f"""
configfile: "config.yaml"
from tgpo.config import selected_experiments
from tgpo.results.layout import ResultsLayout
LAYOUT = ResultsLayout.of(config)
SELECTED = selected_experiments(config)
RESULTS = f"results/{{config['name']}}"

def seeds_of(experiment):
    return config["experiments"][experiment]["seeds"]

rule train:
    output: f"{{RESULTS}}/runs/{{{{experiment}}}}/seed{{{{seed}}}}/run.json"
    shell: "cp source/results/{FIXTURE_NAME}/runs/{{wildcards.experiment}}/seed{{wildcards.seed}}/metrics.jsonl $(dirname {{output}})/ && echo {{{{}}}} > {{output}}  # training code v1"

include: "{ROOT / "workflows" / "figures.smk"}"
report: "{ROOT / "figures" / "captions" / "workflow.rst"}"

rule all:
    default_target: True
    input: FIGURE_TARGETS
"""


@pytest.fixture
def workspace(tmp_path):
    build_fixture_results(tmp_path / "source")
    (tmp_path / "config.yaml").write_text((tmp_path / "source" / "config.yaml").read_text())
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    return tmp_path


def snakemake(workspace: Path, *args: str) -> str:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workspace,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout + completed.stderr


def job_counts(output: str) -> dict[str, int]:
    """{rule: count} from the last "Job stats" table of a dry run ({} when nothing is to be done)."""
    tables = re.findall(r"Job stats:\njob\s+count\n[-\s]+\n((?:\S+\s+\d+\n)+)", output)
    if not tables:
        assert "Nothing to be done" in output, output
        return {}
    counts = dict(re.findall(r"(\S+)\s+(\d+)\n", tables[-1]))
    return {rule: int(count) for rule, count in counts.items() if rule != "total"}


def test_one_figure_with_results_present_is_one_job(workspace):
    build_fixture_results(workspace)  # results present: summary.parquet and every metrics.jsonl
    assert job_counts(snakemake(workspace, "-n", FIG5)) == {"fig5": 1}
    assert job_counts(snakemake(workspace, "-n", f"results/{FIXTURE_NAME}/figures/table1.md")) == {"table1": 1}
    everything = job_counts(snakemake(workspace, "-n", "all"))
    assert everything == {"all": 1, "table1": 1, "table2": 1, "table3": 1, "fig2": 1, "fig4": 1, "fig5": 1, "fig6": 1}


@pytest.mark.slow
def test_changed_training_code_does_not_retrain_with_mtime_triggers(workspace):
    snakemake(workspace, "-c1", FIG5)  # runs the fake training (records code metadata) and fig5
    assert (workspace / FIG5).exists()
    snakefile = workspace / "Snakefile"
    snakefile.write_text(snakefile.read_text().replace("training code v1", "training code v2"))
    # Snakemake's default triggers (code, params, ...) would retrain every run behind the figure ...
    assert job_counts(snakemake(workspace, "-n", FIG5)) == {"train": 6, "fig5": 1}
    # ... with `--rerun-triggers mtime` (the profile's setting) nothing is out of date ...
    assert job_counts(snakemake(workspace, "-n", FIG5, "--rerun-triggers", "mtime")) == {}
    # ... and -f regenerates just the figure.
    assert job_counts(snakemake(workspace, "-n", FIG5, "-f", "--rerun-triggers", "mtime")) == {"fig5": 1}


@pytest.mark.slow
def test_report_contains_every_table_and_figure(workspace):
    build_fixture_results(workspace)
    snakemake(workspace, "-c1", "all")
    log = snakemake(workspace, "--report", "report.html")
    for name in ("table1.md", "table2.md", "table3.md", "table1.csv", "fig2.png", "fig4.png", "fig5.png", "fig6.png"):
        assert f"Adding {name}" in log
    assert (workspace / "report.html").stat().st_size > 100_000
