# tgpo-repro: one pipeline from data to every table and figure of the paper.
#
#   snakemake -c all                                      # the miniature (config/default.yaml), CPU, minutes
#   snakemake -c all --configfile config/ci.yaml          # the same, small enough for CI
#   snakemake --profile slurm --configfile config/paper-7b.yaml    # the paper on a SLURM GPU cluster
#   snakemake results/mini/figures/fig5.pdf               # regenerate one figure from cached results
#
# The config is validated (schema + cross-references) before any job runs; errors name the key.

from pathlib import Path

from tgpo.config import load_config, validate

if not config:
    configfile: "config/default.yaml"

CONFIG_SOURCE = str(workflow.overwrite_configfiles[-1]) if workflow.overwrite_configfiles else "config/default.yaml"
validate(config, CONFIG_SOURCE)

report: "figures/captions/workflow.rst"

include: "workflows/common.smk"
include: "workflows/data.smk"
include: "workflows/train.smk"
include: "workflows/eval.smk"
include: "workflows/figures.smk"


rule all:
    input:
        str(LAYOUT.summary),
        ALL_REPORT_OUTPUTS,
    default_target: True
