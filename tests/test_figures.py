"""Every table and figure renders from a FIXTURE results set (tests/test_figures_fixtures.py: synthetic
numbers, not results), produces valid files, and refuses to render from missing inputs."""

from __future__ import annotations

import io
import json
import re
import shutil

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from test_figures_fixtures import FIXTURE_NAME, build_fixture_results

from figures import fig2, fig4, fig5, fig6, table1, table2, table3
from figures.results import MissingResultsError
from figures.spec import load_spec
from figures.stats import Estimate, average_of_independent, over_seeds, student_t_quantile
from figures.style import colour_of, ema, in_method_order
from figures.tables import rank_marks

TABLE_MODULES = {"table1": table1, "table2": table2, "table3": table3}
FIGURE_MODULES = {"fig2": fig2, "fig4": fig4, "fig5": fig5, "fig6": fig6}


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures_fixture")
    build_fixture_results(root)
    return root


def results_of(root):
    return root / "results" / FIXTURE_NAME


def parse_markdown_table(text: str) -> pd.DataFrame:
    lines = [line for line in text.splitlines() if line.strip() and not set(line) <= set("|-: ")]
    frame = pd.read_csv(io.StringIO("\n".join(lines)), sep="|", skipinitialspace=True)
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame.drop(columns=[column for column in frame.columns if column.startswith("Unnamed")])


@pytest.mark.parametrize("mode", ["reproduced", "compare", "paper"])
@pytest.mark.parametrize("name", sorted(TABLE_MODULES))
def test_tables_render_valid_markdown_latex_csv(fixture_root, tmp_path, name, mode):
    spec = load_spec(name, config_path=fixture_root / "config.yaml")
    paths = TABLE_MODULES[name].make(
        out_dir=tmp_path, mode=mode, summary=results_of(fixture_root) / "summary.parquet", spec=spec
    )
    markdown = parse_markdown_table(paths["md"].read_text())
    csv = pd.read_csv(paths["csv"])
    labels = [row["label"] for group in spec.get("groups", [{"rows": spec.get("rows")}]) for row in group["rows"]]
    if mode != "paper":
        assert list(csv["label"]) == labels
        assert [label.strip() for label in markdown["Model"] if not label.strip().startswith("*")] == labels
    tex = paths["tex"].read_text()
    assert tex.count(r"\begin{tabular}") == 1 and tex.rstrip().endswith(r"\end{table*}")
    n_value_columns = re.search(r"\\begin\{tabular\}\{l(c+)\}", tex).group(1).count("c")
    body_rows = [line for line in tex.splitlines() if line.endswith(r"\\") and "multicolumn" not in line]
    assert body_rows and all(line.count("&") == n_value_columns for line in body_rows)
    if mode == "compare":
        assert any(column.endswith("_delta") for column in csv.columns)


def test_table_cells_are_the_seed_means_with_t_intervals(fixture_root, tmp_path):
    summary = pd.read_parquet(results_of(fixture_root) / "summary.parquet")
    spec = load_spec("table1", config_path=fixture_root / "config.yaml")
    csv = pd.read_csv(
        table1.make(out_dir=tmp_path, summary=results_of(fixture_root) / "summary.parquet", spec=spec)["csv"]
    ).set_index("label")
    scores = summary[(summary.experiment == "tgpo") & (summary.benchmark == "amc")].sort_values("seed")["score"]
    assert len(scores) == 3
    assert csv.loc["TGPO-annealing", "amc"] == pytest.approx(scores.mean())
    half = student_t_quantile(0.95, 2) * scores.std(ddof=1) / np.sqrt(3)
    assert csv.loc["TGPO-annealing", "amc_ci_high"] == pytest.approx(scores.mean() + half)
    per_seed_id = summary[(summary.experiment == "tgpo") & (summary.domain == "id")].groupby("seed")["score"].mean()
    assert csv.loc["TGPO-annealing", "id_avg"] == pytest.approx(per_seed_id.mean())
    single = summary[(summary.experiment == "base") & (summary.benchmark == "amc")].iloc[0]
    assert csv.loc["Qwen2.5-Math-7B", "amc_ci_low"] == pytest.approx(single["ci_low"])


def test_compare_mode_puts_the_papers_number_and_difference(fixture_root, tmp_path):
    spec = load_spec("table2", config_path=fixture_root / "config.yaml")
    csv = pd.read_csv(
        table2.make(out_dir=tmp_path, mode="compare", spec=spec, summary=results_of(fixture_root) / "summary.parquet")[
            "csv"
        ]
    ).set_index("label")
    assert csv.loc["No Teacher", "amc_paper"] == 58.3
    assert csv.loc["No Teacher", "amc_delta"] == pytest.approx(csv.loc["No Teacher", "amc"] - 58.3)
    assert csv.loc["Qwen3-30B-A3B", "avg_paper"] == 58.0


@pytest.mark.parametrize("name", sorted(FIGURE_MODULES))
def test_figures_render_valid_pdf_and_png(fixture_root, tmp_path, name):
    spec = load_spec(name, config_path=fixture_root / "config.yaml")
    paths = FIGURE_MODULES[name].make(spec=spec, runs_dir=results_of(fixture_root) / "runs", out_dir=tmp_path)
    pdf = paths["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Type /Page" in pdf and pdf.rstrip().endswith(b"%%EOF")
    image = matplotlib.image.imread(paths["png"])
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # not blank
    if name != "fig5":
        return
    # same inputs, same PDF bytes (no timestamps), so Snakemake unit tests can compare outputs
    again = FIGURE_MODULES[name].make(spec=spec, runs_dir=results_of(fixture_root) / "runs", out_dir=tmp_path / "again")
    assert again["pdf"].read_bytes() == pdf


def test_missing_experiment_fails_naming_it_and_writes_nothing(fixture_root, tmp_path):
    root = tmp_path / "partial"
    shutil.copytree(fixture_root, root)
    shutil.rmtree(results_of(root) / "runs" / "kdrl")
    (results_of(root) / "runs" / "luffy" / "seed1" / "metrics.jsonl").unlink()
    spec = load_spec("fig4", config_path=root / "config.yaml")
    with pytest.raises(MissingResultsError) as error:
        fig4.make(spec=spec, runs_dir=results_of(root) / "runs", out_dir=tmp_path / "out")
    assert "'kdrl'" in str(error.value) and "'luffy': seed 1" in str(error.value)
    assert "'tgpo'" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_missing_metric_is_named(fixture_root, tmp_path):
    spec = {"series": [{"experiment": "grpo_pp", "label": "GRPO++"}]}  # logs no guidance weight
    with pytest.raises(MissingResultsError, match=r"grpo_pp.*tgpo/guidance_weight"):
        fig5.make(spec=spec, runs_dir=results_of(fixture_root) / "runs", out_dir=tmp_path)


def test_missing_benchmarks_and_experiments_are_named_by_the_cli(fixture_root, tmp_path, capsys):
    summary = pd.read_parquet(results_of(fixture_root) / "summary.parquet")
    partial = summary[
        ~((summary.experiment == "kdrl") & (summary.benchmark == "gpqa_diamond")) & (summary.experiment != "grpo_pp")
    ]
    partial.to_parquet(tmp_path / "summary.parquet", index=False)
    status = table1.main(
        [
            "--summary",
            str(tmp_path / "summary.parquet"),
            "--config",
            str(fixture_root / "config.yaml"),
            "--out-dir",
            str(tmp_path / "out"),
        ]
    )
    message = capsys.readouterr().err
    assert status == 2
    assert "experiment 'grpo_pp' (no rows at all)" in message
    assert "experiment 'kdrl': benchmark 'gpqa_diamond'" in message
    assert not (tmp_path / "out").exists()


def test_missing_seed_in_summary_is_named(fixture_root, tmp_path):
    spec = load_spec("table3", config_path=fixture_root / "config.yaml")
    spec["seeds"]["luffy"] = [0, 1, 7]
    with pytest.raises(MissingResultsError, match=r"'luffy': benchmark 'aime24' seeds \[7\]"):
        table3.make(out_dir=tmp_path, summary=results_of(fixture_root) / "summary.parquet", spec=spec)


def test_spec_json_is_equivalent_to_config(fixture_root, tmp_path):
    from_config = load_spec("fig5", config_path=fixture_root / "config.yaml")
    assert load_spec("fig5", spec_json=json.dumps(from_config)) == from_config
    with pytest.raises(KeyError, match="report.fig7"):
        load_spec("fig7", config_path=fixture_root / "config.yaml")


def test_rank_marks_competition_ranking_excludes_teachers():
    values = [50.1, 48.9, 50.1, 90.0, None]
    eligible = [True, True, True, False, True]
    assert rank_marks(values, eligible, ("bold", "underline")) == ["bold", None, "bold", None, None]
    assert rank_marks([3.0, 2.0, 1.0], [True] * 3, ("bold", "underline")) == ["bold", "underline", None]
    assert rank_marks([3.0, 2.0, 1.0], [True] * 3, ("bold",)) == ["bold", None, None]
    assert rank_marks([2.04, 2.01], [True] * 2, ("bold", "underline")) == ["bold", "bold"]  # equal as displayed


def test_student_t_quantiles():
    assert student_t_quantile(0.95, 1) == pytest.approx(12.7062, abs=1e-4)
    assert student_t_quantile(0.95, 2) == pytest.approx(4.3027, abs=1e-4)
    assert student_t_quantile(0.95, 9) == pytest.approx(2.2622, abs=1e-4)
    assert student_t_quantile(0.95, 30) == pytest.approx(2.0423, abs=1e-4)


def test_over_seeds_and_independent_average():
    single = over_seeds([40.0], [(38.0, 42.0)])
    assert (single.score, single.ci_low, single.ci_high, single.n_seeds) == (40.0, 38.0, 42.0, 1)
    several = over_seeds([1.0, 2.0, 3.0], [(None, None)] * 3)
    assert several.half_width == pytest.approx(4.3027 * 1.0 / np.sqrt(3), rel=1e-4)
    mean = average_of_independent([Estimate(10.0, 7.0, 13.0, 1), Estimate(20.0, 16.0, 24.0, 1)])
    assert mean.score == 15.0 and mean.half_width == pytest.approx(np.sqrt(9 + 16) / 2)


def test_ema_is_debiased_and_skips_missing_steps():
    assert ema([5.0, 5.0, 5.0]).tolist() == pytest.approx([5.0, 5.0, 5.0])
    smoothed = ema([0.0, np.nan, 10.0], weight=0.5)
    assert smoothed[1] == pytest.approx(0.0) and smoothed[2] == pytest.approx((0.5 * 10) / (1 - 0.25))


def test_colours_and_order_are_shared_across_figures():
    assert colour_of("TGPO") == colour_of("tgpo") != colour_of("RKL")
    assert colour_of("Unknown method") == colour_of("Unknown method")
    labels = ["LUFFY", "New", "TGPO", "GRPO++", "RKL", "KDRL"]
    assert [labels[index] for index in in_method_order(labels)] == ["TGPO", "RKL", "KDRL", "GRPO++", "LUFFY", "New"]
