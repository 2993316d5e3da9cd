"""The miniature world: a synthetic verifiable task, tiny HF models and their pretraining (docs/architecture.md; docs/results.md).

3-digit addition stands in for the paper's maths. The students (Qwen2 architecture, the Qwen2.5-Math
analogues) never see a "hard" problem in pretraining; the cross-family teachers (another architecture,
another tokenizer, a solution style the students sample ~10 % of the time but cannot carry out) know
every problem. This recreates the paper's Section 2.3 setting: a teacher mode the student's samples
fall into (the Rejection regime, rho >> 1) plus knowledge only the teacher has.

Modules: `task` (problems, solution styles, the verifier), `tokenizer`, `benchmarks` (stand-ins of the
paper's nine benchmarks), `world` (verb `world`), `pretrain` (next-token CE), `models` (verb
`build-model`), `probe` (accuracy and style shares of a model), `traces` (verb `traces`).
"""
