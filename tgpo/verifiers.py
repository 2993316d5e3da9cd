"""Rule-based verifiers: the outcome reward r_i of a response (the r_i in A_i = (r_i - mu) / sigma, Eq. 4).

A verifier is `(response_text, gold_answer) -> reward in [0, 1]`. `get_verifier(name)` resolves a name
through a lazy `name -> "module:function"` table, so importing this module imports neither math-verify nor
the miniature task.

- "math_verify" (default): the answer is the text after the last `</think>` if present, else the whole
  response; scored with math-verify, gold first and wrapped in `$...$`. Any exception or timeout scores 0.
  Kept lightweight on purpose: eval/ has the heavy-duty grader with worker processes.
- "mini_arith": the miniature world's reward, `tgpo.mini.task.reward`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

Verifier = Callable[[str, str], float]

# name -> "module:function"; a new verifier is one line here.
VERIFIERS: dict[str, str] = {
    "math_verify": "tgpo.verifiers:math_verify_reward",
    "mini_arith": "tgpo.mini.task:reward",
}

THINK_END = "</think>"
MATH_VERIFY_TIMEOUT_S = 5


def answer_text(response_text: str) -> str:
    """The part of a response that holds the final answer: after the last `</think>`, else all of it."""
    if THINK_END in response_text:
        return response_text.rsplit(THINK_END, 1)[1]
    return response_text


def math_verify_reward(response_text: str, gold_answer: str) -> float:
    """1.0 when math-verify judges the response's answer equal to the gold answer, else 0.0."""
    try:
        from math_verify import parse, verify

        gold = parse(f"${gold_answer}$", parsing_timeout=MATH_VERIFY_TIMEOUT_S)
        predicted = parse(answer_text(response_text), parsing_timeout=MATH_VERIFY_TIMEOUT_S)
        if not gold or not predicted:
            return 0.0
        return 1.0 if verify(gold, predicted, timeout_seconds=MATH_VERIFY_TIMEOUT_S) else 0.0
    except Exception:  # noqa: BLE001 - a grader failure (parse error, timeout) is a wrong answer by contract
        return 0.0


def get_verifier(name: str) -> Verifier:
    """The verifier registered under `name`; unknown names raise KeyError listing the known ones."""
    if name not in VERIFIERS:
        raise KeyError(f"unknown verifier {name!r}; known verifiers: {', '.join(sorted(VERIFIERS))}")
    target = VERIFIERS[name]
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(f"verifier {name!r} needs module {module_name!r} ({target}): {error}") from error
    try:
        return getattr(module, function_name)
    except AttributeError as error:
        raise AttributeError(f"verifier {name!r}: module {module_name!r} has no function {function_name!r}") from error
