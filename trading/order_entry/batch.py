"""One order-entry batch: the commands of one instrument in ONE transaction (ADR 015, refining ADR 012 and 005).

1. take the instrument's lock (:func:`trading.listing.lock_instrument`), so matching of one instrument is
   serialised across processes and hosts;
2. bring the process's cached engine up to the committed journal (:func:`trading.journal.engine_at`);
3. run each command's step (:mod:`trading.order_entry.steps`): every refusal comes before the command writes
   anything, so a refused command fails alone without a savepoint — what it queued or changed in memory is
   taken back (:meth:`BatchContext.undo`);
4. the cursor's compare-and-set, the batch's deferred writes (journal rows, idempotency records, cash entries
   and balances, registry movements, order states: one statement per table and column set), the audit
   entries of the whole batch (one ``append_many``, so the audit head is locked only for the last moments of
   the transaction), and the commit; then every command of the batch is answered.

If anything else fails before the commit, the cached engine of that instrument is thrown away and each
command of the batch runs again alone: a match that was computed but not committed lives only in that
process's memory and is forgotten, and the next batch rebuilds the book from the committed journal.
Nothing is acknowledged before it is committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.clock import Clock
from core.db import DEFERRED_WRITES, DeferredWrites
from core.errors import IdempotencyConflict, ShanhaiError
from core.metrics import record_order_batch
from trading.engine import MatchingEngine
from trading.journal import MatcherCache, advance_cursor, engine_at, read_cursors
from trading.listing import eligible_batch_ids_of, lock_instrument, lock_instruments
from trading.models import IdempotencyRecord, InstrumentRow, TradeOrder
from trading.order_entry.requests import OrderCommand
from trading.settlement import Settlement


class BatchContext(Settlement):
    """One batch's transaction on one instrument: its engine, the next sequence number, per-batch look-ups.

    Everything a command writes goes through ``session`` inside the batch's single transaction; the audit
    entries of every command are collected in ``audit`` and appended once, just before the commit.
    """

    def __init__(self, session: Session, row: InstrumentRow, engine: MatchingEngine, cursor_seq: int,
                 clock: Clock, *, shared: BatchContext | None = None) -> None:  # fmt: skip
        super().__init__(session, row, clock, None if shared is None else shared.audit)
        self.engine = engine
        self.cursor_seq = cursor_seq
        self.seq = cursor_seq + 1
        self.matched = False
        self._orders: dict[str, TradeOrder] = {}
        #: Idempotency records of this batch: read once for every key of the batch, plus the ones it wrote.
        self.idempotency: dict[tuple[int, str], tuple[str, dict[str, Any]] | None] = {}
        self.remembered: list[tuple[int, str]] = []
        self.deferred = DeferredWrites()
        if shared is None:
            session.info[DEFERRED_WRITES] = self.deferred
        else:
            # Another instrument of the same group batch (one transaction, ADR 035): everything but the
            # instrument's own row, engine, cursor and deliverable batches is the batch's, shared with the first.
            self.ledger, self._cash, self._orders = shared.ledger, shared._cash, shared._orders
            self.idempotency, self.remembered, self.deferred = shared.idempotency, shared.remembered, shared.deferred

    def prefetch_idempotency(self, keys: list[tuple[int, str]]) -> None:
        """Read the idempotency records of every key of the batch with one statement."""
        if not keys:
            return
        self.idempotency.update(dict.fromkeys(keys))
        rows = self.session.execute(
            select(IdempotencyRecord.organisation_id, IdempotencyRecord.key, IdempotencyRecord.request_sha256,
                   IdempotencyRecord.response)
            .where(tuple_(IdempotencyRecord.organisation_id, IdempotencyRecord.key).in_(keys))
        )  # fmt: skip
        for organisation_id, key, sha256, response in rows:
            self.idempotency[(organisation_id, key)] = (sha256, response)

    def order(self, engine_id: str) -> TradeOrder:
        """Return an order the engine named, loaded once per batch."""
        order = self._orders.get(engine_id)
        if order is None:
            # No populate_existing: an order this batch changed carries its values in memory, not in its row yet.
            order = self.session.get(TradeOrder, int(engine_id[1:]))
            if order is None:
                raise RuntimeError(f"the engine knows order {engine_id} but the database does not")
            self._orders[engine_id] = order
        return order

    def load_orders(self, engine_ids: list[str]) -> None:
        """Load the orders the engine named that this batch has not loaded yet, with one statement."""
        missing = {int(e[1:]) for e in engine_ids if e not in self._orders}
        if missing:
            # No populate_existing: an order this batch changed carries its values in memory, not in its row yet.
            for order in self.session.scalars(select(TradeOrder).where(TradeOrder.id.in_(missing))):
                self._orders[order.engine_id] = order

    def remember(self, order: TradeOrder) -> None:
        """Remember an order this batch created or loaded."""
        self._orders[order.engine_id] = order

    def mark(self) -> tuple[int, tuple[int, int], int]:
        """Return where the batch's collected writes stand before a command (see :meth:`undo`)."""
        return len(self.audit), self.deferred.mark(), len(self.remembered)

    def undo(self, mark: tuple[int, tuple[int, int], int]) -> None:
        """Drop what a failed command collected: its audit entries, its deferred rows, its idempotency records."""
        audit_mark, deferred_mark, remembered_mark = mark
        del self.audit[audit_mark:]
        self.deferred.undo(deferred_mark)
        for key in self.remembered[remembered_mark:]:
            self.idempotency[key] = None
        del self.remembered[remembered_mark:]


Step = Callable[[BatchContext], dict[str, Any]]


@dataclass(eq=False)
class Job:
    """One command waiting for its batch: the step to run, then its answer or its error."""

    step: Step
    idempotency: tuple[int, str] | None = None  # (organisation, Idempotency-Key), read up front for the batch
    instrument_id: str = ""  # the instrument whose book the command goes to (set by run_batch when empty)
    command: OrderCommand | None = None  # the command as data, when it came from order entry
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    queued_at: float = field(default_factory=time.perf_counter)  # this process's clock: the matcher lag


def run_batch(session: Session, cache: MatcherCache, instrument_id: str | None, jobs: list[Job], *, clock: Clock,
              before_commit: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Run a batch of commands in ONE transaction (:func:`_run_batch`); record its size and duration.

    ``instrument_id`` is the instrument of every job that does not name its own (``Job.instrument_id``);
    ``None`` when each job names its own — a group batch over several instruments (ADR 035). Recorded in the
    process that runs it (the API process, or its matcher child), retries included.
    """
    for job in jobs:
        if not job.instrument_id:
            if instrument_id is None:
                raise ValueError("a job of a group batch names no instrument")
            job.instrument_id = instrument_id
    started = time.perf_counter()
    try:
        _run_batch(session, cache, jobs, clock=clock, before_commit=before_commit)
    finally:
        record_order_batch(len(jobs), time.perf_counter() - started)


#: How many times a batch that PostgreSQL chose as a deadlock victim runs again whole before it gives up.
DEADLOCK_RETRIES = 3


def _run_batch(session: Session, cache: MatcherCache, jobs: list[Job], *, clock: Clock,
               before_commit: Callable[[], None] | None = None, attempt: int = 0) -> None:  # fmt: skip
    """Run the commands of one or more instruments in ONE transaction; set every job's answer or error.

    Under the instruments' locks (taken in instrument order, ADR 035): catch each book up from its journal,
    run each command in arrival order (a command refused before its engine moved — validation, funds,
    tonnes, idempotency conflict, engine rejection — has written nothing and fails alone), then each
    cursor's compare-and-set, the deferred writes, the audit entries of the whole batch (one
    ``append_many``) and the commit. Any other failure before the commit rolls the batch back, forgets the
    engines and runs each command again alone, so one bad command never fails the others. A batch that
    PostgreSQL aborted to break a deadlock (or a serialization failure) had its effects rolled back whole and
    runs again whole, up to :data:`DEADLOCK_RETRIES` times: two batches of different instrument groups, or of
    two processes, may lock the same traders' accounts in different orders (ADR 035). A failure *during*
    the commit (outcome unknown) is reported to every command, never retried.
    """
    committing = False
    instrument_ids = sorted({job.instrument_id for job in jobs})
    try:
        contexts = _begin(session, cache, instrument_ids, clock)
        first = contexts[instrument_ids[0]]
        first.prefetch_idempotency([job.idempotency for job in jobs if job.idempotency is not None])
        for job in jobs:
            _step(contexts[job.instrument_id], job)
        _finish(first, list(contexts.values()))
        if before_commit is not None:
            before_commit()
        committing = True
        session.commit()
    except Exception as error:
        for instrument_id in instrument_ids:
            cache.discard(instrument_id)
        session.rollback()
        if not committing and attempt < DEADLOCK_RETRIES and _lost_a_lock_race(error):
            for job in jobs:
                job.result = job.error = None
            _run_batch(session, cache, jobs, clock=clock, before_commit=before_commit, attempt=attempt + 1)
            return
        if committing or len(jobs) == 1:
            for job in jobs:
                job.result, job.error = None, _translated(error)
            return
        for job in jobs:
            job.result = job.error = None
            _run_batch(session, cache, [job], clock=clock)
    finally:
        session.info.pop(DEFERRED_WRITES, None)


def _lost_a_lock_race(error: Exception) -> bool:
    """Return whether the database aborted the transaction to break a deadlock or a serialization conflict."""
    return isinstance(error, OperationalError) and getattr(error.orig, "sqlstate", None) in ("40P01", "40001")


def _translated(error: Exception) -> Exception:
    if isinstance(error, IntegrityError) and unique_violation(error):
        return IdempotencyConflict("a concurrent request used the same Idempotency-Key; nothing was done")
    return error


def _begin(session: Session, cache: MatcherCache, instrument_ids: list[str], clock: Clock) -> dict[str, BatchContext]:
    """Lock the batch's instruments (in instrument order), catch their engines up, return a context for each."""
    if len(instrument_ids) == 1:
        row = lock_instrument(session, instrument_ids[0])
        engine, cursor = engine_at(session, cache, row)
        return {row.instrument_id: BatchContext(session, row, engine, cursor.applied_seq, clock)}
    rows = lock_instruments(session, instrument_ids)
    cursors = read_cursors(session, instrument_ids)
    deliverable = eligible_batch_ids_of(session, rows)
    contexts: dict[str, BatchContext] = {}
    shared: BatchContext | None = None
    for row in rows:
        engine, cursor = engine_at(session, cache, row, cursor=cursors.get(row.instrument_id))
        ctx = BatchContext(session, row, engine, cursor.applied_seq, clock, shared=shared)
        ctx.known_batch_ids(deliverable[row.instrument_id])
        contexts[row.instrument_id] = ctx
        shared = shared or ctx
    return contexts


def _step(ctx: BatchContext, job: Job) -> None:
    ctx.matched = False
    mark = ctx.mark()
    try:
        # No savepoint and no autoflush: a command finds every refusal before it writes anything to the
        # database (funds and tonnes are read, the engine decides, then the writes follow), and what it
        # changes in memory or queues for the batch's end is taken back by ``undo`` when it is refused.
        with ctx.session.no_autoflush:
            job.result = job.step(ctx)
    except ShanhaiError as error:
        if ctx.matched:
            raise  # the engine moved: the batch cannot keep it; run_batch retries each command alone
        ctx.undo(mark)
        job.error = error


def _finish(ctx: BatchContext, contexts: list[BatchContext]) -> None:
    """Compare-and-set the cursors, write the deferred rows and the batch's audit entries, flush (caller commits)."""
    session = ctx.session
    for each in contexts:
        if each.seq > each.cursor_seq + 1:
            advance_cursor(session, each.engine, each.row.instrument_id, each.cursor_seq, each.seq - 1)
    ctx.deferred.write(session)
    ctx.append_audit()
    session.flush()


def run_alone(session: Session, cache: MatcherCache, instrument_id: str, step: Step, *, clock: Clock,
               before_commit: Callable[[], None] | None = None,
               idempotency: tuple[int, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run one command as a batch of one in the caller's session; return its answer or raise its error."""
    job = Job(step, idempotency, instrument_id)
    run_batch(session, cache, instrument_id, [job], clock=clock, before_commit=before_commit)
    if job.error is not None:
        raise job.error
    assert job.result is not None
    return job.result


def unique_violation(error: IntegrityError) -> bool:
    """Return whether an integrity error is a unique violation (a concurrent duplicate idempotency key)."""
    return "unique" in str(error.orig).lower() or "duplicate" in str(error.orig).lower()
