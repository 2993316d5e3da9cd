"""The outcome reward r_i of Eq. 4 on the verl engine: our verifier as verl 0.9.1's `custom_reward_function`.

verl's reward manager (`verl/experimental/reward_loop/reward_manager/naive.py`, NaiveRewardManager.run_single
in verl-project/verl v0.9.1) decodes each response and calls

    compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=..., **reward_kwargs)

in a thread of its event loop's executor, and takes a float as the score (a dict needs a "score" key).
`reward_kwargs` come from `reward.custom_reward_function.reward_kwargs` (`get_custom_reward_fn`,
`verl/trainer/ppo/reward.py`); tgpo.verl.translate sets `verifier` there to the config's
`training.verifier` (tgpo/verifiers.py names), so both engines train on the verifier the config names.

Grading reuses the evaluation grader (eval/grading.py), rule for rule:

- "math_verify": eval's Math-Verify rule (`GradeRequest(kind="math", combine="math_verify")`): the
  text after the last `</think>`, Math-Verify, gold first and wrapped in `$...$`; the same rule as
  tgpo.verifiers.math_verify_reward, which the local engine trains on. One documented difference from
  evaluation: eval scores benchmarks with `combine="any"` (Math-Verify OR an exact normalised match of
  the last `\\boxed{}`), the authors' `any_true` evaluation, while their training reward
  (`reward_impl_version` 3 in helldog-star/TGPO's train.sh) is Math-Verify alone.
- "mini_arith": eval's regex rule with the miniature's answer regex (tgpo.mini.task.ANSWER_REGEX), as
  eval-experiment grades the miniature's benchmarks.

A grader never hangs and never depends on the calling thread: each thread of the caller owns an
eval.grading_pool.GradingPool worker process, and a response still being graded after `timeout_s` is
scored 0 (its worker is killed and replaced). Math-Verify's own SIGALRM timeouts cannot be used in
verl's executor threads: there they raise, and tgpo.verifiers.math_verify_reward scores every
response 0.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from eval.grading import GradeRequest
from eval.grading_pool import DEFAULT_TIMEOUT_S, GradingPool

logger = logging.getLogger(__name__)

FUNCTION_NAME = "compute_score"  # reward.custom_reward_function.name


def _mini_answer_regex() -> str:
    from tgpo.mini.task import ANSWER_REGEX

    return ANSWER_REGEX


# verifier name (tgpo.verifiers.VERIFIERS) -> the eval.grading request that grades it
GRADING_RULES = {
    "math_verify": lambda: {"kind": "math", "combine": "math_verify"},
    "mini_arith": lambda: {"kind": "regex", "answer_regex": _mini_answer_regex()},
}

_local = threading.local()


def module_path() -> str:
    """This file, absolute: `reward.custom_reward_function.path` (verl imports it by file path)."""
    return str(Path(__file__).resolve())


def grading_rule(verifier: str) -> dict[str, Any]:
    """The GradeRequest fields (kind, combine or answer_regex) of `verifier`; KeyError when it has none."""
    if verifier not in GRADING_RULES:
        raise KeyError(
            f"reward: verifier {verifier!r} has no grading rule; known: {sorted(GRADING_RULES)} "
            f"(training.verifier in the config)"
        )
    return GRADING_RULES[verifier]()


def grade_request(verifier: str, solution_str: str, ground_truth: str) -> GradeRequest:
    """The eval.grading request that grades `solution_str` against `ground_truth` by `verifier`'s rule."""
    return GradeRequest(response=solution_str, gold=str(ground_truth), **grading_rule(verifier))


def _pool(timeout_s: float) -> GradingPool:
    """This thread's grading pool (one worker process), created on first use."""
    pool = getattr(_local, "pool", None)
    if pool is None or pool.timeout_s != timeout_s:
        if pool is not None:
            pool.close()
        pool = _local.pool = GradingPool(workers=1, timeout_s=timeout_s, progress=False)
    return pool


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict | None = None,
    *,
    verifier: str = "math_verify",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    **_verl_kwargs: Any,
) -> float:
    """1.0 when `solution_str` (the decoded response) is correct for `ground_truth` by `verifier`, else 0.0.

    `data_source` and `extra_info` are part of verl's call and do not change the grade; `_verl_kwargs`
    takes what verl adds for reward-model routing (`reward_router_address`, `reward_model_tokenizer`)."""
    request = grade_request(verifier, solution_str, ground_truth)
    result = _pool(float(timeout_s)).grade([request])[0]
    if result.timed_out or result.error:
        index = (extra_info or {}).get("index")
        logger.warning(
            "reward: %s item %s graded 0 (%s)", data_source, index, "timed out" if result.timed_out else result.error
        )
    return 1.0 if result.correct else 0.0
