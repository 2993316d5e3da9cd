"""The local engine: a single-process trainer on Hugging Face causal LMs.

`sampling` draws rollouts, `teacher` computes teacher signals, `trainer` is the loop around
`tgpo.objectives.compose` (compute_advantages, compute_loss), `checkpoint` saves and resumes, `metrics` writes
metrics.jsonl, `run_spec` holds one run's settings, `cli` is the `train` verb.
"""
