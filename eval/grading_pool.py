"""Grading many responses in worker processes, each item under a hard timeout (the rules: eval.grading).

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
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from eval.grading import GRADERS, GradeRequest, GradeResult, grade

DEFAULT_TIMEOUT_S = 10.0  # LUFFY's labeling timeout


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
        self._context.set_forkserver_preload(
            ["eval.grading_pool", "eval.grading", "eval.authors_grading", "math_verify", "sympy"]
        )
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
