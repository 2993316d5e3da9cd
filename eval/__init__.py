"""Evaluation on the paper's benchmarks (Section 4, "Benchmarks and Metrics").

Six in-distribution maths sets (AIME24, AIME25, AMC: avg@32; MATH-500, Minerva, OlympiadBench: pass@1)
and three out-of-distribution multiple-choice sets (ARC-c, GPQA-Diamond, MMLU-Pro: pass@1, options
shuffled), sampled at temperature 0.6 and graded by Math-Verify OR a boxed-answer grader (the TGPO
authors' `any_true` setting).

| module | holds |
|---|---|
| `eval.benchmarks` | the registry: hub ids, field mappings, metric, domain, option shuffling; loading |
| `eval.prompts` | the paper's system prompt (App. B.2) and the released checkpoints' templates |
| `eval.generation` | generation backends (local engine sampler on CPU, vLLM on GPU) |
| `eval.grading` | answer extraction and grading in worker processes with a hard per-item timeout |
| `eval.metrics` | avg@k / pass@1, bootstrap intervals, ID / OOD averages |
| `eval.cli` | verb `eval`: one model x one benchmark -> one per-sample parquet |
| `eval.summary` | verb `summarize`: every per-sample parquet -> summary.parquet |
| `eval.lm_eval_check` | verb `lm-eval-check`: lm-evaluation-harness on the same model and data |
"""
