"""Grading a response against a benchmark's gold answer, with a hard per-item timeout.

Two graders, chosen by the evaluation protocol (`eval.protocols`):

- "authors" (the paper configs' default): the TGPO authors' rules, `eval.authors_grading` (answer
  segment between the first and second `</think>` when the prompt opened `<think>\n`; Math-Verify on the
  segment OR an Oat-style boxed grader; multiple-choice letters graded by the same two steps).
- "suite" (this suite's first grader; the miniature's): the answer region is the text after the last
  `</think>` (the whole response when there is none). Maths is correct when

      Math-Verify: verify(parse("$" + gold + "$"), parse(answer_region))      (gold first)
      OR boxed:    normalise(last \\boxed{...} of answer_region) == normalise(gold)

  (`combine="any"`; "math_verify" or "boxed" use one grader alone). Multiple choice: the letter in the
  last `\\boxed{...}` of the answer region equals the gold letter.

With either grader a benchmark with an `answer_regex` (the miniature world: `...#632.`) extracts the
regex's first group and compares it with the gold string (numerically when both are numbers).

Users re-grade saved generations with `grade_response(response, gold, protocol="authors",
think_opened=True)` (one response) or `grade_responses(...)` (many, in parallel).

Math-Verify's own timeouts use SIGALRM, which only works in a process's main thread (huggingface/Math-Verify
src/math_verify/utils.py, timeout()), and some inputs
(huge exponents, deeply nested fractions) make sympy run for minutes. So `GradingPool` grades in worker
processes, one item at a time each; a worker still busy after `timeout_s` is killed and replaced, and its
item is graded wrong with `timed_out=True`. A bad response costs at most the timeout.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import os
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait

THINK_END = "</think>"
COMBINE_RULES = ("any", "math_verify", "boxed")
GRADERS = ("authors", "suite")  # eval.protocols.PROTOCOLS name the grader each protocol uses
KINDS = ("math", "choice", "regex")
DEFAULT_TIMEOUT_S = 10.0  # LUFFY's labeling timeout


@dataclass(frozen=True)
class GradeRequest:
    """One response to grade. `kind` "regex" needs `answer_regex`; `combine` applies to "math" under the
    "suite" grader; `think_opened` (the prompt ended with `<think>\\n`) applies to the "authors" grader."""

    response: str
    gold: str
    kind: str = "math"
    answer_regex: str | None = None
    combine: str = "any"
    grader: str = "suite"
    think_opened: bool = True


@dataclass(frozen=True)
class GradeResult:
    extracted_answer: str
    correct: bool
    timed_out: bool = False
    error: str = ""  # a grader exception or a crashed worker (graded wrong)


# --------------------------------------------------------------------------------------- extraction


def answer_region(response: str) -> str:
    """The Solution section: the text after the last `</think>`, else the whole response."""
    return response.rsplit(THINK_END, 1)[1] if THINK_END in response else response


BOXED_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`, `\\boxed 5`) in `text`; None when there is
    none or its braces never close."""
    start = max(text.rfind(command) for command in BOXED_COMMANDS)
    if start < 0:
        return None
    command = next(command for command in BOXED_COMMANDS if text.startswith(command, start))
    position = start + len(command)
    while position < len(text) and text[position] == " ":
        position += 1
    if position >= len(text):
        return None
    if text[position] != "{":  # "\boxed 5": up to the next space or dollar
        match = re.match(r"[^\s$]+", text[position:])
        return match.group(0) if match and position > start + len(command) else None
    depth = 0
    for end in range(position, len(text)):
        if text[end] == "{":
            depth += 1
        elif text[end] == "}":
            depth -= 1
            if depth == 0:
                return text[position + 1 : end]
    return None


TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
DROPPED_TOKENS = ("\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "$", "\\%", "%")


def normalise_answer(answer: str) -> str:
    """String normal form for the boxed grader: no spaces, `$`, `\\left`/`\\right`, `\\text{}` wrappers,
    degree signs or trailing period; `\\dfrac`/`\\tfrac` -> `\\frac`; numbers in canonical form (142.0 -> 142)."""
    text = answer.strip()
    for _ in range(3):
        text = TEXT_COMMANDS.sub(r"\1", text)
    for token in DROPPED_TOKENS:
        text = text.replace(token, "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = re.sub(r"\^\{?\\circ\}?", "", text)
    text = re.sub(r"\s+", "", text).rstrip(".")
    number = as_number(text)
    return format_number(number) if number is not None else text


def as_number(text: str) -> float | None:
    cleaned = text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text) else text
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def format_number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


CHOICE_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[.):\s].*)?$", re.DOTALL)


def choice_letter(text: str) -> str | None:
    """The option letter in the last `\\boxed{...}` of `text` (`C`, `(C)`, `\\text{C}`, `C) 42`), or None."""
    boxed = last_boxed(text)
    if boxed is None:
        return None
    cleaned = boxed.strip()
    for _ in range(3):
        cleaned = TEXT_COMMANDS.sub(r"\1", cleaned)
    match = CHOICE_LETTER.match(cleaned.replace("$", "").strip())
    return match.group(1) if match else None


# --------------------------------------------------------------------------------------------- graders


@functools.lru_cache(maxsize=4096)
def parsed_gold(gold: str) -> tuple:
    """Math-Verify's parse of a gold answer, wrapped in `$...$` for LaTeX extraction (cached: avg@k golds
    repeat k times). Timeouts are disabled here: the pool's hard timeout bounds the whole item."""
    from math_verify import parse

    return tuple(parse(f"${gold}$", parsing_timeout=None))


def math_verify_grade(region: str, gold: str) -> tuple[bool, str]:
    """(correct, extracted answer) by Math-Verify, gold first."""
    from math_verify import parse, verify

    gold_parsed = list(parsed_gold(gold))
    predicted = parse(region, parsing_timeout=None)
    extracted = str(predicted[-1]) if predicted else ""
    if not gold_parsed or not predicted:
        return False, extracted
    return bool(verify(gold_parsed, predicted, timeout_seconds=None)), extracted


def boxed_grade(region: str, gold: str) -> tuple[bool, str | None]:
    """(correct, boxed content): the last boxed answer equals the gold after `normalise_answer`."""
    boxed = last_boxed(region)
    if boxed is None:
        return False, None
    return normalise_answer(boxed) == normalise_answer(gold), boxed


def grade_math(response: str, gold: str, combine: str = "any") -> GradeResult:
    if combine not in COMBINE_RULES:
        raise ValueError(f"unknown combine rule {combine!r}; expected one of {COMBINE_RULES}")
    region = answer_region(response)
    boxed_correct, boxed = boxed_grade(region, gold)
    if combine == "boxed" or (combine == "any" and boxed_correct):  # OR: Math-Verify cannot change a True
        return GradeResult(extracted_answer=boxed or "", correct=boxed_correct)
    verified, extracted = math_verify_grade(region, gold)
    correct = verified if combine == "math_verify" else (verified or boxed_correct)
    return GradeResult(extracted_answer=boxed if boxed is not None else extracted, correct=correct)


def grade_choice(response: str, gold_letter: str) -> GradeResult:
    letter = choice_letter(answer_region(response))
    return GradeResult(extracted_answer=letter or "", correct=letter is not None and letter == gold_letter.strip())


def grade_regex(response: str, gold: str, pattern: str) -> GradeResult:
    """The first group of the last match of `pattern` in the answer region, compared with the gold."""
    matches = list(re.finditer(pattern, answer_region(response)))
    if not matches:
        return GradeResult(extracted_answer="", correct=False)
    if matches[-1].re.groups < 1:
        raise ValueError(f"answer_regex {pattern!r} has no capturing group; its first group is the answer")
    extracted = (matches[-1].group(1) or "").strip()
    expected = gold.strip()
    number, gold_number = as_number(extracted), as_number(expected)
    correct = extracted == expected or (number is not None and gold_number is not None and number == gold_number)
    return GradeResult(extracted_answer=extracted, correct=correct)


def grade_authors(response: str, gold: str, think_opened: bool) -> GradeResult:
    from eval.authors_grading import authors_label

    label = authors_label(response, gold, think_opened)
    return GradeResult(extracted_answer=label.boxed_answer or "", correct=label.correct)


def grade(request: GradeRequest) -> GradeResult:
    """Grade one request in this process (no timeout: use GradingPool for untrusted responses)."""
    if request.grader not in GRADERS:
        raise ValueError(f"unknown grader {request.grader!r}; expected one of {GRADERS}")
    if request.kind not in KINDS:
        raise ValueError(f"unknown grading kind {request.kind!r}; expected one of {KINDS}")
    if request.grader == "authors" and request.kind != "regex":  # maths and letters: the same two steps
        return grade_authors(request.response, request.gold, request.think_opened)
    if request.kind == "math":
        return grade_math(request.response, request.gold, request.combine)
    if request.kind == "choice":
        return grade_choice(request.response, request.gold)
    if request.kind == "regex":
        if not request.answer_regex:
            raise ValueError("grading kind 'regex' needs answer_regex")
        return grade_regex(request.response, request.gold, request.answer_regex)
    raise ValueError(f"unknown grading kind {request.kind!r}; expected one of {KINDS}")


# ------------------------------------------------------------------------------------ worker processes


def _worker_main(connection) -> None:
    """Worker loop: receive (index, request), send back (index, result); None stops it."""
    # Math-Verify warns on every call that its own timeouts are off: this pool is the timeout.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        index, request = message
        try:
            result = grade(request)
        except Exception as error:  # noqa: BLE001 - a grader exception grades this item wrong, not the run
            result = GradeResult(extracted_answer="", correct=False, error=f"{type(error).__name__}: {error}")
        connection.send((index, result))


@dataclass
class _Worker:
    process: multiprocessing.Process
    connection: object
    index: int | None = None  # the item it is grading
    started: float = 0.0


@dataclass
class GradingStats:
    graded: int = 0
    timeouts: int = 0
    errors: int = 0
    slowest_s: float = 0.0
    restarts: int = 0
    error_examples: list[str] = field(default_factory=list)


class GradingPool:
    """Worker processes that grade requests, each item under a hard wall-clock timeout.

    Use as a context manager; `grade(requests)` returns one GradeResult per request, in order, and
    updates `stats` (items, timeouts, worker errors, slowest item in seconds).
    """

    def __init__(self, workers: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, progress: bool = True):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.n_workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self.timeout_s = timeout_s
        self.progress = progress
        self.stats = GradingStats()
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["eval.grading", "eval.authors_grading", "math_verify", "sympy"])
        self._workers: list[_Worker] = []

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child_end,), daemon=True)
        process.start()
        child_end.close()
        return _Worker(process=process, connection=parent_end)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.process.kill()
        worker.process.join()
        worker.connection.close()
        self.stats.restarts += 1
        replacement = self._start_worker()
        self._workers[self._workers.index(worker)] = replacement
        return replacement

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        for worker in self._workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
        self._workers = []

    def grade(self, requests: Sequence[GradeRequest]) -> list[GradeResult]:
        from tqdm import tqdm

        results: list[GradeResult | None] = [None] * len(requests)
        while len(self._workers) < min(self.n_workers, max(len(requests), 1)):
            self._workers.append(self._start_worker())
        pending = deque(range(len(requests)))
        bar = tqdm(total=len(requests), desc="grading", unit="resp", disable=not self.progress, mininterval=2)

        def finish(worker: _Worker, result: GradeResult) -> None:
            elapsed = time.perf_counter() - worker.started
            results[worker.index] = result
            self.stats.graded += 1
            self.stats.slowest_s = max(self.stats.slowest_s, elapsed)
            self.stats.timeouts += result.timed_out
            if result.error:
                self.stats.errors += 1
                if len(self.stats.error_examples) < 5:
                    self.stats.error_examples.append(f"item {worker.index}: {result.error}")
            worker.index = None
            bar.update(1)

        while pending or any(worker.index is not None for worker in self._workers):
            for worker in self._workers:
                if worker.index is None and pending:
                    index = pending.popleft()
                    if not worker.process.is_alive():  # died while idle: replace it before sending
                        worker = self._replace(worker)
                    worker.index, worker.started = index, time.perf_counter()
                    worker.connection.send((index, requests[index]))
            busy = [worker for worker in self._workers if worker.index is not None]
            deadline = min(worker.started for worker in busy) + self.timeout_s
            ready = wait([worker.connection for worker in busy], timeout=max(0.0, deadline - time.perf_counter()))
            for worker in busy:
                if worker.connection in ready:
                    try:
                        index, result = worker.connection.recv()
                    except (EOFError, OSError):  # the worker died (e.g. killed by the OS for memory)
                        code = worker.process.exitcode
                        crashed = _Worker(worker.process, worker.connection, worker.index, worker.started)
                        self._replace(worker)
                        finish(crashed, GradeResult("", False, error=f"grading worker died (exit code {code})"))
                        continue
                    finish(worker, result)
            now = time.perf_counter()
            for worker in list(self._workers):
                if worker.index is not None and now - worker.started >= self.timeout_s:
                    stuck = _Worker(worker.process, worker.connection, worker.index, worker.started)
                    self._replace(worker)
                    finish(stuck, GradeResult(extracted_answer="", correct=False, timed_out=True))
        bar.close()
        return results  # type: ignore[return-value]


def grade_all(
    requests: Sequence[GradeRequest],
    *,
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> tuple[list[GradeResult], GradingStats]:
    """Grade every request in a fresh pool; returns (results in order, stats)."""
    with GradingPool(workers=workers, timeout_s=timeout_s, progress=progress) as pool:
        results = pool.grade(requests)
        return results, pool.stats


# ------------------------------------------------------------------------------- public re-grading API

_SHARED_POOLS: dict[float, GradingPool] = {}


def _shared_pool(timeout_s: float) -> GradingPool:
    """One long-lived single-worker pool per timeout, so repeated `grade_response` calls skip the start-up."""
    if timeout_s not in _SHARED_POOLS:
        _SHARED_POOLS[timeout_s] = GradingPool(workers=1, timeout_s=timeout_s, progress=False)
    return _SHARED_POOLS[timeout_s]


@atexit.register
def _close_shared_pools() -> None:
    for pool in _SHARED_POOLS.values():
        pool.close()
    _SHARED_POOLS.clear()


def _request(response: str, gold: str, protocol: str, think_opened: bool, kind: str) -> GradeRequest:
    if protocol not in GRADERS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {GRADERS}")
    return GradeRequest(response=response, gold=gold, kind=kind, grader=protocol, think_opened=think_opened)


def grade_response(
    response: str,
    gold: str,
    protocol: str = "authors",
    think_opened: bool = True,
    *,
    kind: str = "math",
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bool:
    """Is `response` correct for `gold` under `protocol`'s grader? `think_opened`: the prompt ended with
    `<think>\\n` (the authors' `prompt.endswith(...)` check). `kind` matters to the "suite" grader only
    ("math" | "choice"); the authors grade letters like maths. Runs in a worker process under a hard
    `timeout_s` (a timed-out item is False)."""
    return bool(_shared_pool(timeout_s).grade([_request(response, gold, protocol, think_opened, kind)])[0].correct)


def grade_responses(
    responses: Sequence[str],
    golds: Sequence[str],
    protocol: str = "authors",
    think_opened: bool | Sequence[bool] = True,
    *,
    kind: str = "math",
    workers: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: bool = False,
) -> list[bool]:
    """`grade_response` for many responses at once, in parallel worker processes."""
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} golds")
    opened = [think_opened] * len(responses) if isinstance(think_opened, bool) else list(think_opened)
    if len(opened) != len(responses):
        raise ValueError(f"{len(responses)} responses but {len(opened)} think_opened flags")
    requests = [_request(r, g, protocol, o, kind) for r, g, o in zip(responses, golds, opened)]
    results, _ = grade_all(requests, workers=workers, timeout_s=timeout_s, progress=progress)
    return [bool(result.correct) for result in results]
