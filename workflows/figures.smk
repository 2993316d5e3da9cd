# Tables and figures of the paper: one rule per output (table1-3, fig2, fig4-6), defined for every
# output the config's `report:` section names. The rules read only results/<name>/summary.parquet or
# results/<name>/runs/<experiment>/seed<k>/metrics.jsonl (plus the figure code itself), so
# regenerating one output never retrains or re-evaluates anything, provided the pipeline runs with
# `--rerun-triggers mtime` (set in the profile; see docs/evaluation.md, "Tables and figures").
#
# Uses from the including Snakefile (workflows/common.smk): `config` (name, experiments, report), `LAYOUT`
# (tgpo.results.layout), `SELECTED` (the experiments this invocation runs) and `seeds_of`; the outputs it
# knows are the figures package's (figures.TABLES, figures.FIGURES).
# Exposes FIGURE_TARGETS (alias ALL_REPORT_OUTPUTS: every output file) and the rule `all_figures`.

import json
import sys
from pathlib import Path

from figures import FIGURES, TABLES
from figures.spec import reported_checkpoint_choices

FIGURES_CODE_DIR = Path(workflow.current_basedir).parent / "figures"
FIGURES_CODE = sorted(str(path) for path in FIGURES_CODE_DIR.glob("*.py")) + [
    str(FIGURES_CODE_DIR / "paper_numbers.yaml")
]
FIGURES_CAPTIONS = FIGURES_CODE_DIR / "captions"


def figures_experiments(output):
    """Experiments named by report.<output>: table rows (groups or rows) or figure series."""
    spec = config["report"][output]
    if "series" in spec:
        return [entry["experiment"] for entry in spec["series"]]
    groups = spec.get("groups") or [{"rows": spec.get("rows", [])}]
    return [row["experiment"] for group in groups for row in group["rows"]]


def report_outputs(names):
    """The outputs of `names` the config's report defines and, under a selection, that show something run."""
    outputs = [name for name in names if name in config.get("report", {})]
    empty = [name for name in outputs if not any(e in SELECTED for e in figures_experiments(name))]
    if empty:
        print(f"only_experiments: nothing of {empty} was run; not written", file=sys.stderr)
    return [name for name in outputs if name not in empty]


TABLE_OUTPUTS = report_outputs(TABLES)
FIGURE_OUTPUTS = report_outputs(FIGURES)


def figures_spec_json(output):
    """report.<output> as JSON, with the seeds of each experiment (passed to the script as --spec); under a
    selection (only_experiments), without the rows and series it did not run, which `not_run` names."""
    spec = dict(config["report"][output])
    not_run = [experiment for experiment in dict.fromkeys(figures_experiments(output)) if experiment not in SELECTED]
    if not_run:
        spec = selected_rows(spec)
        spec["not_run"] = not_run
    spec["seeds"] = {experiment: [int(seed) for seed in seeds_of(experiment)]
                     for experiment in figures_experiments(output) if experiment in SELECTED}
    shown = set(figures_experiments(output)) & set(SELECTED)
    spec["checkpoint_choice"] = {e: c for e, c in reported_checkpoint_choices(config).items() if e in shown}
    return json.dumps(spec, sort_keys=True)


def selected_rows(spec):
    """A report spec with only the rows / series of selected experiments (empty groups dropped)."""
    keep = lambda rows: [row for row in rows if row["experiment"] in SELECTED]
    spec = dict(spec)
    for key in ("series", "rows"):
        if key in spec:
            spec[key] = keep(spec[key])
    if "groups" in spec:
        spec["groups"] = [dict(group, rows=keep(group["rows"])) for group in spec["groups"] if keep(group["rows"])]
    return spec


def figures_metrics_files(output):
    """The finished-run markers (run.json, written last by the train rule) of the output's runs; the
    scripts read the metrics.jsonl beside each. metrics.jsonl itself is not a declared output of
    training, so that a killed run resumes from its checkpoint instead of being deleted."""
    return [str(LAYOUT.run(experiment, seed).run_json)
            for experiment in dict.fromkeys(figures_experiments(output)) if experiment in SELECTED
            for seed in seeds_of(experiment)]


def figure_file(name, suffix):
    return str(LAYOUT.figures / f"{name}.{suffix}")


FIGURE_TARGETS = [figure_file(name, suffix) for name in TABLE_OUTPUTS for suffix in ("md", "tex", "csv")]
FIGURE_TARGETS += [figure_file(name, suffix) for name in FIGURE_OUTPUTS for suffix in ("pdf", "png")]
ALL_REPORT_OUTPUTS = FIGURE_TARGETS  # the name the main Snakefile's `rule all` uses


for _table in TABLE_OUTPUTS:

    rule:
        name: _table
        input:
            summary=str(LAYOUT.summary),
            code=FIGURES_CODE,
        output:
            md=report(figure_file(_table, "md"), caption=str(FIGURES_CAPTIONS / f"{_table}.rst"),
                      category="Tables", labels={"table": _table, "format": "Markdown"}),
            tex=figure_file(_table, "tex"),
            csv=report(figure_file(_table, "csv"), caption=str(FIGURES_CAPTIONS / f"{_table}.rst"),
                       category="Tables", labels={"table": _table, "format": "CSV"}),
        params:
            module=f"figures.{_table}",
            spec=figures_spec_json(_table),
        log:
            str(LAYOUT.log("figures", _table)),
        localrule: True
        shell:
            "python -m {params.module} --summary {input.summary} --spec {params.spec:q} "
            "--out-dir $(dirname {output.md}) 2>&1 | tee {log}"


for _figure in FIGURE_OUTPUTS:

    rule:
        name: _figure
        input:
            metrics=figures_metrics_files(_figure),
            code=FIGURES_CODE,
        output:
            pdf=figure_file(_figure, "pdf"),
            png=report(figure_file(_figure, "png"), caption=str(FIGURES_CAPTIONS / f"{_figure}.rst"),
                       category="Figures", labels={"figure": _figure}),
        params:
            module=f"figures.{_figure}",
            spec=figures_spec_json(_figure),
            runs=str(LAYOUT.runs),
        log:
            str(LAYOUT.log("figures", _figure)),
        localrule: True
        shell:
            "python -m {params.module} --runs {params.runs} --spec {params.spec:q} "
            "--out-dir $(dirname {output.pdf}) 2>&1 | tee {log}"


rule all_figures:
    input:
        FIGURE_TARGETS,
    localrule: True
