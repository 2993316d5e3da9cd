# tgpo-repro: one pipeline from data to every table and figure of the paper.
#
#   snakemake -c all                                      # the miniature (config/default.yaml), CPU, minutes
#   snakemake -c all --configfile config/ci.yaml          # the same, small enough for CI
#   snakemake --profile slurm --configfile config/paper-7b.yaml    # the paper on a SLURM GPU cluster
#   snakemake -c all --configfile config/paper-1.5b.yaml config/cpu-overlay.yaml   # that config on CPU stand-ins
#   snakemake results/mini/figures/fig5.pdf               # regenerate one figure from cached results
#
# The config files and --config entries are merged (later ones win, key by key), checked (schema,
# cross-references, every experiment's training and evaluation settings resolved: eval/preflight.py) and
# written once to results/<name>/config.yaml, the file every job reads; errors name the file and key.
# Nested settings go in as mappings: --config 'training={steps: 2}'.

from tgpo.config import finish_merged_config, write_merged_config
from tgpo.results.layout import ResultsLayout
from eval.preflight import preflight

if not config:
    configfile: "config/default.yaml"

CONFIG_SOURCES = [str(path) for path in workflow.overwrite_configfiles] or ["config/default.yaml"]
finish_merged_config(config, CONFIG_SOURCES, workflow.config_settings.config_args)
preflight(config, " + ".join(CONFIG_SOURCES))
CONFIG_FILE = str(ResultsLayout.of(config).merged_config)  # what every job reads
if not workflow.is_main_process:  # a job: it must have merged what the pipeline wrote at its start
    write_merged_config(config, CONFIG_SOURCES, main_process=False)


onstart:
    # written when the pipeline runs (not on a dry run, which must not change what running jobs read)
    write_merged_config(config, CONFIG_SOURCES)

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
