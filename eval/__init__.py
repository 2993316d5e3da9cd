"""Evaluation on the paper's benchmarks (Section 4, "Benchmarks and Metrics").

Six in-distribution maths sets (AIME24, AIME25, AMC: avg@32; MATH-500, Minerva, OlympiadBench: pass@1)
and three out-of-distribution multiple-choice sets (ARC-c, GPQA-Diamond, MMLU-Pro: pass@1, options
shuffled), sampled at temperature 0.6 and graded by Math-Verify OR a boxed-answer grader (the TGPO
authors' `any_true` setting). `evaluation.protocol` picks how: "authors" (the paper configs: the TGPO
authors' template, settings and grading rules) or "suite" (this project's first protocol; the miniature).

| module | holds |
|---|---|
| `eval.benchmarks` | the registry: hub ids, field mappings, metric, domain, option shuffling; loading |
| `eval.prompts` | the prompt templates: the paper's system prompt (App. B.2, tgpo.system_prompt) and the released checkpoints' |
| `eval.generation` | generation backends (local engine sampler on CPU, vLLM on GPU) |
| `eval.protocols` | evaluation protocols (authors / suite) and the resolution of a config's evaluation settings |
| `eval.grading` | the grading rules: answer extraction, the suite's and the authors' graders |
| `eval.grading_pool` | grading in worker processes with a hard per-item timeout; `grade_response`, `grade_responses` |
| `eval.authors_grading` | the TGPO authors' grading rules R1-R7 (segment, Math-Verify, Oat-style boxed grader) |
| `eval.response_styles` | synthetic responses in the styles models write (parity tests, grader cross-check) |
| `eval.metrics` | avg@k / pass@1, bootstrap intervals |
| `eval.cli` | verb `eval`: one model x one benchmark -> one per-sample parquet |
| `eval.summary` | verb `summarize`: every per-sample parquet -> summary.parquet |
| `eval.lm_eval_check` | verb `lm-eval-check`: lm-evaluation-harness on the same model and data |
| `eval.experiment` | verb `eval-experiment`: one experiment x seed on every benchmark of its config |
| `eval.checkpoint_choice` | verb `choose-checkpoint`: App. B.3's best save, chosen on the test benchmarks |
| `eval.preflight` | verb `validate-config`: merge config files as Snakemake does, validate, resolve every experiment |
"""
