"""The matcher process: an API process's order-entry batches run in one child process (ADR 018)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.errors import ServiceUnavailable, ShanhaiError
from trading.journal import MatcherCache
from trading.order_entry.batch import run_batch
from trading.order_entry.requests import OrderCommand
from trading.order_entry.steps import job_of

Outcome = tuple[dict[str, Any] | None, BaseException | None]


class MatcherProcess:
    """Runs an API process's order-entry batches in one child process (ADR 018).

    The request threads of an API process compete for its interpreter lock with the batch they wait for: the
    batch's thread gives the lock up at every database round trip and waits to get it back while requests are
    parsed and answered. A child process that only runs batches (one at a time: the caller's
    :class:`OrderEntry` already serialises them per instrument group, and the database's instrument locks
    across processes) has the lock to itself; a batch may hold commands of several instruments (ADR 035).
    Commands go to it as :class:`OrderCommand` data and come back as answers or errors; it keeps its own
    engines (:class:`MatcherCache`) and its own connection pool.

    If the child dies, the batch it was running is reported to each of its commands as
    :class:`~core.errors.ServiceUnavailable` (its commit may or may not have happened: the client retries with
    the same ``Idempotency-Key`` and gets the committed answer, or runs it now) and a new child is started for
    the next batch.
    """

    def __init__(self, database_url: str, clock: Clock) -> None:
        self._url, self._clock = database_url, clock
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                spawn = multiprocessing.get_context("spawn")  # no copy of this process's threads and connections
                self._pool = ProcessPoolExecutor(1, mp_context=spawn, initializer=_start_matcher,
                                                 initargs=(self._url, self._clock))  # fmt: skip
            return self._pool

    def run(self, commands: list[tuple[str, OrderCommand]]) -> list[Outcome]:
        """Run one batch (``(instrument, command)`` pairs, one or more instruments) in the child.

        Returns each command's answer or error, in order.
        """
        pool = self._executor()
        try:
            future = pool.submit(_run_in_matcher, commands)
        except BrokenProcessPool:  # the child died while idle: nothing of this batch ran, start another
            self._discard(pool)
            pool = self._executor()
            future = pool.submit(_run_in_matcher, commands)
        try:
            return future.result()
        except BrokenProcessPool:
            self._discard(pool)
            unknown = ServiceUnavailable("the matcher process stopped while running this order's batch; whether it "
                                         "committed is unknown: retry with the same Idempotency-Key")  # fmt: skip
            return [(None, unknown) for _ in commands]

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False)

    def pid(self) -> int:
        """Return the child's process id (starting it if needed), for operators and tests."""
        return self._executor().submit(os.getpid).result()

    def close(self) -> None:
        """Stop the child (after the batch it is running, if any)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


_MATCHER: tuple[sessionmaker[Session], MatcherCache, Clock] | None = None


def _start_matcher(database_url: str, clock: Clock) -> None:
    """Child process start-up: its own engine, session factory and engines."""
    global _MATCHER
    from core.db import make_engine, make_session_factory

    _MATCHER = (make_session_factory(make_engine(database_url)), MatcherCache(), clock)


def _run_in_matcher(commands: list[tuple[str, OrderCommand]]) -> list[Outcome]:
    assert _MATCHER is not None, "the matcher process was not started"
    factory, cache, clock = _MATCHER
    jobs = [job_of(command, instrument_id) for instrument_id, command in commands]
    with factory() as session:
        run_batch(session, cache, None, jobs, clock=clock)
    # Domain errors travel as they are; anything else (a driver's error may not pickle) as its text.
    return [(job.result, job.error if job.error is None or isinstance(job.error, ShanhaiError)
             else RuntimeError(f"{type(job.error).__name__}: {job.error}")) for job in jobs]  # fmt: skip
