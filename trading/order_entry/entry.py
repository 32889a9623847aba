"""Order entry: the calls the API makes (place, cancel, amend, close the day) and the group commit behind them.

With an :class:`OrderEntry` (the app's), commands of one instrument that arrive together share one batch
(ADR 015) — run here or in the :class:`~trading.order_entry.matcher.MatcherProcess`; without it a command is
a batch of one in the caller's session. Nothing is acknowledged before its batch commits.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import NotFound, PermissionDenied
from core.metrics import record_matcher_lag
from trading.journal import MatcherCache
from trading.models import TradeOrder
from trading.order_entry.batch import Job, Step, run_alone, run_batch
from trading.order_entry.matcher import MatcherProcess
from trading.order_entry.requests import AmendOrderRequest, OrderCommand, PlaceOrderRequest
from trading.order_entry.steps import end_of_day_step, job_of, step_of


class OrderEntry:
    """Group commit for one process: commands of one instrument group that arrive together share a transaction.

    Instruments are split into ``groups`` (by a stable hash of the instrument id, :func:`group_of`); each
    group has its own queue, leader and — with matcher processes — its own :class:`MatcherProcess` (ADR 035).
    The first request to find its group idle leads: it takes every command queued so far for the group, of
    whatever instruments (up to ``max_batch``), runs them with :func:`run_batch` in one transaction under
    those instruments' locks, answers them all, then hands the lead to the first command that queued
    meanwhile (or leaves the group idle). Requests that arrive while a batch commits simply wait for the
    next one: the more load, the bigger the batches, and the cost of the locks, the catch-up, the cursors,
    the audit head and the commit is paid once per batch — however many instruments the load spreads over.
    Groups run side by side (their own processes, sessions and connections); one instrument is always in
    the same group, so its commands stay in arrival order.
    """

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock, cache: MatcherCache,
                 max_batch: int = 64, before_commit: Callable[[], None] | None = None,
                 matcher: MatcherProcess | None = None, *, groups: int = 1,
                 matchers: Sequence[MatcherProcess] = ()) -> None:  # fmt: skip
        if matcher is not None:
            matchers = [matcher, *matchers]
        if matchers:
            groups = len(matchers)
        if groups < 1:
            raise ValueError(f"order entry needs at least one instrument group, got {groups}")
        self._factory, self._clock, self._cache, self._max = session_factory, clock, cache, max_batch
        self._before_commit = before_commit  # a test's hook (crash between match and commit)
        self.matchers = list(matchers)
        self.groups = groups
        self._guard = threading.Lock()
        self._queues: dict[int, list[Job]] = {}
        self._busy: set[int] = set()

    @property
    def matcher(self) -> MatcherProcess | None:
        """The first group's matcher process (the only one with one group), if batches run in child processes."""
        return self.matchers[0] if self.matchers else None

    def group_of(self, instrument_id: str) -> int:
        """Return the instrument's group: a stable hash, the same in every process and on every start."""
        return group_of(instrument_id, self.groups)

    def submit(self, instrument_id: str, command: OrderCommand | Step) -> dict[str, Any]:
        """Queue one command, wait for the commit of its batch, return its answer (or raise its error).

        An :class:`OrderCommand` can run in the matcher process; a bare step (tests) always runs here.
        """
        job = (job_of(command, instrument_id) if isinstance(command, OrderCommand)
               else Job(command, instrument_id=instrument_id))  # fmt: skip
        group = self.group_of(instrument_id)
        with self._guard:
            self._queues.setdefault(group, []).append(job)
            if group not in self._busy:
                self._busy.add(group)
                job.lead = True
        if not job.lead:
            job.done.wait()
        if job.lead:
            self._lead(group)
            job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _lead(self, group: int) -> None:
        with self._guard:
            queue = self._queues[group]
            jobs, self._queues[group] = queue[: self._max], queue[self._max :]
        started = time.perf_counter()
        for job in jobs:
            record_matcher_lag(started - job.queued_at)
        try:
            commands = [(job.instrument_id, job.command) for job in jobs if job.command is not None]
            if self.matchers and len(commands) == len(jobs):
                outcomes = self.matchers[group].run(commands)
                for job, (result, error) in zip(jobs, outcomes, strict=True):
                    job.result, job.error = result, error
            else:
                with self._factory() as session:
                    run_batch(session, self._cache, None, jobs, clock=self._clock,
                              before_commit=self._before_commit)  # fmt: skip
        except BaseException as error:  # pragma: no cover - run_batch reports ordinary errors per job
            for job in jobs:
                job.result, job.error = None, error
        finally:
            with self._guard:
                queue = self._queues[group]
                if queue:
                    queue[0].lead = True
                    queue[0].done.set()
                else:
                    self._busy.discard(group)
            for job in jobs:
                job.lead = False
                job.done.set()


def group_of(instrument_id: str, groups: int) -> int:
    """Return an instrument's group among ``groups``: CRC-32 of its id, so every process agrees (ADR 035).

    >>> group_of("FCT-2025", 1)
    0
    """
    return zlib.crc32(instrument_id.encode()) % groups


def _submit(session: Session, instrument_id: str, command: OrderCommand, *, clock: Clock, cache: MatcherCache,
            entry: OrderEntry | None, before_commit: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run a command through the process's group commit (``entry``), or as a batch of one in ``session``."""
    if entry is not None:
        session.rollback()  # the request's own transaction ends before it waits for its batch
        return entry.submit(instrument_id, command)
    return run_alone(session, cache, instrument_id, step_of(command), clock=clock, before_commit=before_commit,
                      idempotency=command.idempotency)  # fmt: skip


def place_order(
    session: Session,
    cmd: PlaceOrderRequest,
    *,
    actor: Principal,
    clock: Clock,
    cache: MatcherCache,
    idempotency_key: str | None = None,
    before_commit: Any = None,
    entry: OrderEntry | None = None,
) -> dict[str, Any]:
    """Place an order: hold or escrow, match, settle, journal, commit; return the order with its fills.

    With ``entry`` the command joins the process's group commit (the caller's session is only used to end
    its transaction first); without it, it is a batch of one in ``session``.

    Raises:
        IdempotencyConflict: The key was used with another body.
        InsufficientFunds, InsufficientUnits: The hold or the escrow cannot be made (nothing changes).
        OrderRejected: The engine refused the order (off tick, out of band, size...; nothing changes).
    """
    return _submit(session, cmd.instrument_id, OrderCommand("place", actor, idempotency_key, place=cmd), clock=clock,
                   cache=cache, entry=entry, before_commit=before_commit)  # fmt: skip


def _instrument_of_order(session: Session, order_id: int) -> str:
    instrument_id = session.scalar(select(TradeOrder.instrument_id).where(TradeOrder.id == order_id))
    if instrument_id is None:
        raise NotFound(f"order {order_id} does not exist or is not your organisation's")
    return instrument_id


def cancel_order(session: Session, order_id: int, *, actor: Principal, clock: Clock, cache: MatcherCache,
                 idempotency_key: str | None = None, entry: OrderEntry | None = None) -> dict[str, Any]:  # fmt: skip
    """Cancel the remainder of one of the caller's resting orders and release its hold or escrow."""
    return _submit(session, _instrument_of_order(session, order_id),
                   OrderCommand("cancel", actor, idempotency_key, order_id=order_id), clock=clock, cache=cache,
                   entry=entry)  # fmt: skip


def amend_order(session: Session, order_id: int, cmd: AmendOrderRequest, *, actor: Principal, clock: Clock,
                cache: MatcherCache, idempotency_key: str | None = None,
                entry: OrderEntry | None = None) -> dict[str, Any]:  # fmt: skip
    """Change a resting order's remaining quantity and/or price, adjusting its hold or escrow first."""
    return _submit(session, _instrument_of_order(session, order_id),
                   OrderCommand("amend", actor, idempotency_key, order_id=order_id, amend=cmd), clock=clock,
                   cache=cache, entry=entry)  # fmt: skip


def end_of_day(session: Session, instrument_id: str, *, actor: Principal, clock: Clock,
               cache: MatcherCache) -> dict[str, Any]:  # fmt: skip
    """Close an instrument's day (operator): expire day orders, release what they held, move the band."""
    if actor.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator closes the day")

    return run_alone(session, cache, instrument_id, end_of_day_step(instrument_id, actor), clock=clock)
