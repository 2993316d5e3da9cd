"""Every table and figure of the TGPO paper, each regenerable on its own.

One module per output (`table1`, `table2`, `table3`, `fig2`, `fig4`, `fig5`, `fig6`), each with a
`make(...)` function and a command line (`python -m figures.<output> --help`). They read only
`results/<name>/summary.parquet` or `results/<name>/runs/<experiment>/seed<k>/metrics.jsonl` and the
config's `report:` section; `paper_numbers.yaml` holds the paper's own numbers for side-by-side tables.
"""

TABLES = ("table1", "table2", "table3")
FIGURES = ("fig2", "fig4", "fig5", "fig6")
OUTPUTS = TABLES + FIGURES
