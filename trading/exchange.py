"""Service: order entry, pre-trade holds and escrow, matching under the instrument lock, DvP settlement.

One *batch* of order commands of one instrument is one database transaction (ADR 015, refining ADR 012 and
ADR 005; :class:`OrderEntry` gathers the commands a process receives while the previous batch commits):

1. take the instrument's lock — ``pg_advisory_xact_lock`` on PostgreSQL; on SQLite every write
   transaction already began with ``BEGIN IMMEDIATE`` — so matching of one instrument is serialised across
   processes and hosts;
2. bring the process's cached engine up to the committed journal (replaying the commands it has not seen,
   checking the state-hash checkpoint it passes);
3. for each command: answer a replayed ``Idempotency-Key`` from its record (same body) or refuse it
   (different body); check that the buyer's cash covers the hold (price × quantity + fee) or that the
   seller's tonnes can be escrowed (reads only); hand the command to the engine; then hold the cash or
   escrow the tonnes (registry ``escrow``), settle every fill — serial blocks seller → buyer (or retired for
   the buyer), cash buyer → seller minus fees → fee account — and release what cancels and leftovers free.
   Every refusal comes before the command writes anything, so a refused command fails alone without a
   savepoint: what it queued or changed in memory is taken back (``_Context.undo``);
4. the compare-and-set of the cursor, the batch's deferred writes (journal rows, idempotency records, cash
   entries and balances, registry movements, order states: one statement per table and column set), the
   audit entries of the whole batch (one ``append_many``, so the audit head is locked only for the last
   moments of the transaction), and the commit; then every command of the batch is answered.

If anything else fails before the commit, the cached engine of that instrument is thrown away and each
command of the batch runs again alone: a match that was computed but not committed lives only in that
process's memory and is forgotten, and the next batch rebuilds the book from the committed journal.
Nothing is acknowledged before it is committed.

Fees are floored to the fen (in the client's favour): with ``fee(n) = ⌊n × bp / 10 000⌋`` the hold for a
remainder is never less than what its fills cost plus the hold for what is left, so releases are never
negative.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from carbon.ledger import (
    Batch,
    CreditClass,
    HoldingBlock,
    Retirement,
    RetireUnits,
    UnitOfWork,
    account_in,
    check_receiver,
    deliver,
    escrow,
    receiving_account,
    retire,
    serial_of,
    settle_release,
    tradable_t,
)
from core import audit
from core.auth import OrgKind, Principal
from core.canonical import canonical_hash
from core.clock import Clock
from core.db import DEFERRED_WRITES, DeferredWrites, insert_rows
from core.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientUnits,
    InvalidInput,
    NotFound,
    OrderRejected,
    PermissionDenied,
    ServiceUnavailable,
    ShanhaiError,
)
from core.metrics import record_matcher_lag, record_order_batch
from core.money import MoneyError, ticks_from_cny
from trading import cash
from trading.calendar import ALWAYS_OPEN, SHANGHAI_SESSIONS
from trading.engine import MatchingEngine
from trading.instruments import BLOCK_RULES, LISTING_RULES, Instrument, MatchingStyle, ModeRules
from trading.models import (
    CashAccount,
    IdempotencyRecord,
    InstrumentRow,
    JournalEntry,
    MatcherCursor,
    Trade,
    TradeOrder,
)
from trading.orders import (
    Accepted,
    Amended,
    AmendOrder,
    Cancelled,
    CancelOrder,
    Command,
    DayClosed,
    EndOfDay,
    Event,
    Expired,
    Fill,
    PlaceOrder,
    Rejected,
    Side,
    TimeInForce,
)
from trading.refusals import rejection

BASIS_POINTS = 10_000
#: China Standard Time: the trading day (and so T+1 resale) is counted in Beijing time, which has no DST.
BEIJING = timezone(timedelta(hours=8))
OPEN, FILLED, CANCELLED, EXPIRED = "open", "filled", "cancelled", "expired"
MATCHER = "system:matcher"
#: A batch that crosses a multiple of this many commands records the engine's state hash (the cursor's
#: checkpoint). Hashing is O(book); checking it is what catches engines that disagree with the journal.
STATE_HASH_EVERY = 256
TIME_IN_FORCE = frozenset(t.value for t in TimeInForce)
_JOURNAL = cast(Table, JournalEntry.__table__)
_IDEMPOTENCY = cast(Table, IdempotencyRecord.__table__)
_ORDERS = cast(Table, TradeOrder.__table__)


class MatcherCache:
    """The engines this process has built, one per instrument: a cache of committed state, never the truth."""

    def __init__(self) -> None:
        self._engines: dict[str, MatchingEngine] = {}

    def get(self, instrument_id: str) -> MatchingEngine | None:
        """Return the cached engine of an instrument, if any."""
        return self._engines.get(instrument_id)

    def put(self, instrument_id: str, engine: MatchingEngine) -> None:
        """Remember an engine that matches the committed journal."""
        self._engines[instrument_id] = engine

    def discard(self, instrument_id: str) -> None:
        """Forget an instrument's engine (its last command did not commit)."""
        self._engines.pop(instrument_id, None)


# Instruments ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateInstrument:
    """Command: list an instrument with its fee schedule (basis points per side) and resale rule."""

    instrument_id: str
    credit_class: str
    vintage_year: int
    reference_price_cny: str
    province_code: str | None = None
    style: str = MatchingStyle.PRICE_TIME.value
    tick_fen: int = 1
    lot_t: int = 1
    always_open: bool = False
    resale_next_day: bool = True
    buyer_fee_bp: int = 0
    seller_fee_bp: int = 0
    block_min_t: int = BLOCK_RULES.min_quantity_t
    block_band_bp: int = BLOCK_RULES.band_bp
    block_open_minute: int = 13 * 60
    block_close_minute: int = 15 * 60


def instrument_of(row: InstrumentRow) -> Instrument:
    """Return the engine's configuration of an instrument row (listing rules, Shanghai hours or always open)."""
    calendar = ALWAYS_OPEN if row.always_open else SHANGHAI_SESSIONS
    rules = ModeRules(LISTING_RULES.band_bp, LISTING_RULES.min_quantity_t, LISTING_RULES.max_quantity_t, calendar)
    return Instrument(
        row.instrument_id, row.credit_class, row.vintage_year, row.reference_price_ticks,
        province_code=row.province_code, style=MatchingStyle(row.style), rules=rules, tick_fen=row.tick_fen,
        lot_t=row.lot_t,
    )  # fmt: skip


def create_instrument(session: Session, cmd: CreateInstrument, *, actor: Principal, clock: Clock) -> InstrumentRow:
    """List an instrument (operator only); its journal starts empty.

    Raises:
        PermissionDenied: The actor is not the exchange operator.
        Conflict: The id is taken.
        InvalidInput: Unknown class or style, off-tick reference price, fees out of range.
    """
    if actor.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator lists instruments")
    if cmd.credit_class not in {c.value for c in CreditClass}:
        raise InvalidInput(f"unknown credit class {cmd.credit_class!r}")
    if cmd.style not in {s.value for s in MatchingStyle}:
        raise InvalidInput(f"unknown matching style {cmd.style!r}")
    if not (0 <= cmd.buyer_fee_bp <= 1_000 and 0 <= cmd.seller_fee_bp <= 1_000):
        raise InvalidInput("fees are 0..1000 basis points per side")
    if cmd.block_min_t <= 0 or not 0 <= cmd.block_band_bp < BASIS_POINTS:
        raise InvalidInput("the block minimum is > 0 t and the block band 0..9999 basis points")
    if not 0 <= cmd.block_open_minute < cmd.block_close_minute <= 24 * 60:
        raise InvalidInput("the block window opens before it closes, within one local day (minutes 0..1440)")
    if session.get(InstrumentRow, cmd.instrument_id) is not None:
        raise Conflict(f"instrument {cmd.instrument_id} exists already")
    reference_ticks = ticks_from_cny(cmd.reference_price_cny, cmd.tick_fen)
    row = InstrumentRow(
        instrument_id=cmd.instrument_id, credit_class=cmd.credit_class, vintage_year=cmd.vintage_year,
        province_code=cmd.province_code, reference_price_ticks=reference_ticks, style=cmd.style,
        tick_fen=cmd.tick_fen, lot_t=cmd.lot_t, always_open=cmd.always_open, resale_next_day=cmd.resale_next_day,
        buyer_fee_bp=cmd.buyer_fee_bp, seller_fee_bp=cmd.seller_fee_bp, block_min_t=cmd.block_min_t,
        block_band_bp=cmd.block_band_bp, block_open_minute=cmd.block_open_minute,
        block_close_minute=cmd.block_close_minute, created_at=clock.now(),
    )  # fmt: skip
    try:
        engine = MatchingEngine([instrument_of(row)])
    except ValueError as error:
        raise InvalidInput(str(error)) from error
    session.add(row)
    session.flush()
    session.add(
        MatcherCursor(instrument_id=row.instrument_id, applied_seq=0, hash_seq=0, state_hash=engine.state_hash())
    )
    audit.append(session, actor=actor.actor, action="instrument.listed", subject=f"instrument:{row.instrument_id}",
                 payload={**cmd.__dict__}, clock=clock)  # fmt: skip
    session.commit()
    return row


def _lock(session: Session, instrument_id: str) -> InstrumentRow:
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"instrument:{instrument_id}".encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    row = session.get(InstrumentRow, instrument_id)
    if row is None:
        raise NotFound(f"instrument {instrument_id} does not exist")
    return row


# Journal --------------------------------------------------------------------------------------------------


def command_record(command: Command) -> dict[str, Any]:
    """Return a journal command as JSON (prices as decimal strings, times as ISO 8601)."""
    record: dict[str, Any] = {"kind": type(command).__name__}
    for name in command.__dataclass_fields__:
        value = getattr(command, name)
        record[name] = value.isoformat() if isinstance(value, datetime) else value
    return record


_COMMANDS: dict[str, type[Command]] = {
    "PlaceOrder": PlaceOrder, "CancelOrder": CancelOrder, "AmendOrder": AmendOrder, "EndOfDay": EndOfDay,
}  # fmt: skip


def command_from(record: dict[str, Any]) -> Command:
    """Return the command a journal record holds (the inverse of :func:`command_record`)."""
    values = {k: v for k, v in record.items() if k != "kind"}
    values["at"] = datetime.fromisoformat(values["at"])
    if "side" in values:
        values["side"] = Side(values["side"])
    if "time_in_force" in values:
        values["time_in_force"] = TimeInForce(values["time_in_force"])
    return _COMMANDS[record["kind"]](**values)


def _engine(session: Session, cache: MatcherCache, row: InstrumentRow) -> tuple[MatchingEngine, MatcherCursor]:
    """Return the instrument's engine at the committed cursor, replaying what this process has not seen."""
    cursor = session.get(MatcherCursor, row.instrument_id, populate_existing=True)
    if cursor is None:
        raise NotFound(f"instrument {row.instrument_id} has no matcher cursor")
    engine = cache.get(row.instrument_id)
    if engine is not None and engine.last_seq == cursor.applied_seq:
        return engine, cursor  # this process wrote the last committed command: nothing to replay or check
    if engine is None or engine.last_seq > cursor.applied_seq:
        engine = MatchingEngine([instrument_of(row)])
    try:
        catch_up(session, engine, row.instrument_id, cursor)
    except RuntimeError:
        cache.discard(row.instrument_id)
        raise
    cache.put(row.instrument_id, engine)
    return engine, cursor


def catch_up(session: Session, engine: MatchingEngine, instrument_id: str, cursor: MatcherCursor) -> None:
    """Replay the committed journal after ``engine.last_seq`` up to the cursor, checking the state hash checkpoint.

    When the replay passes the cursor's ``hash_seq``, the engine's state hash there must be the recorded one.

    Raises:
        RuntimeError: The journal does not rebuild the recorded state (a corrupt journal, or engines that
            disagree — e.g. two versions of the matching code).
    """
    check = cursor.hash_seq if engine.last_seq < cursor.hash_seq <= cursor.applied_seq else None
    if engine.last_seq < cursor.applied_seq:
        journal = session.scalars(
            select(JournalEntry.command).where(
                JournalEntry.instrument_id == instrument_id, JournalEntry.seq > engine.last_seq,
                JournalEntry.seq <= cursor.applied_seq,
            ).order_by(JournalEntry.seq)
        )  # fmt: skip
        for record in journal:
            engine.handle(command_from(record))
            if engine.last_seq == check and engine.state_hash() != cursor.state_hash:
                raise RuntimeError(f"the journal of {instrument_id} does not rebuild the state recorded at {check}")
    if engine.last_seq != cursor.applied_seq:
        raise RuntimeError(f"the journal of {instrument_id} ends at {engine.last_seq}, not at {cursor.applied_seq}")


def lock_instrument(session: Session, instrument_id: str) -> InstrumentRow:
    """Take an instrument's lock (as order entry does) and return its row.

    Raises:
        NotFound: No such instrument.
    """
    return _lock(session, instrument_id)


def reference_and_seq(session: Session, cache: MatcherCache, row: InstrumentRow) -> tuple[int, int]:
    """Return the instrument's reference price (the previous close, centre of every band) and journal position.

    The caller holds the instrument's lock; the engine is caught up with the committed journal first.
    """
    engine, cursor = _engine(session, cache, row)
    return engine.states[row.instrument_id].reference_ticks, cursor.applied_seq


def price_ticks_of(row: InstrumentRow, price_cny: str) -> int:
    """Return a CNY price as whole ticks of the instrument.

    Raises:
        OrderRejected: Not a decimal, off the tick, or not positive.
    """
    return _price_ticks(row, price_cny)


def cny_of(row: InstrumentRow, price_ticks: int) -> str:
    """Return a price in ticks as CNY (a decimal string)."""
    return _cny(row, price_ticks)


def rebuild_book(session: Session, instrument_id: str) -> MatchingEngine:
    """Rebuild an instrument's engine from its committed journal alone (restart, recovery, audit)."""
    cache = MatcherCache()
    engine, _ = _engine(session, cache, _lock(session, instrument_id))
    return engine


# Money ----------------------------------------------------------------------------------------------------


def fee_fen(notional_fen: int, fee_bp: int) -> int:
    """Return the fee on a notional, floored to the fen.

    >>> fee_fen(1_000_001, 50)
    5000
    """
    return notional_fen * fee_bp // BASIS_POINTS  # fen × bp / (bp per 1) = fen


def buy_hold_fen(row: InstrumentRow, price_ticks: int, quantity_t: int) -> int:
    """Return what a buy order must hold: price × quantity plus the buyer's fee, in fen."""
    notional = price_ticks * row.tick_fen * quantity_t  # ticks × fen/tick × t = fen
    return notional + fee_fen(notional, row.buyer_fee_bp)


def _price_ticks(row: InstrumentRow, price_cny: str) -> int:
    try:
        return ticks_from_cny(Decimal(price_cny) if isinstance(price_cny, str) else price_cny, row.tick_fen)
    except (MoneyError, ArithmeticError) as error:
        raise OrderRejected(f"price {price_cny!r}: {error}", getattr(error, "reason", "invalid_amount")) from error


def _cny(row: InstrumentRow, price_ticks: int) -> str:
    return str(Decimal(price_ticks * row.tick_fen).scaleb(-2))


# Units ----------------------------------------------------------------------------------------------------


def eligible_batch_ids(session: Session, row: InstrumentRow) -> list[int]:
    """Return the batches deliverable on an instrument, oldest first."""
    query = select(Batch.id).where(Batch.credit_class == CreditClass(row.credit_class),
                                   Batch.vintage_year == row.vintage_year).order_by(Batch.id)  # fmt: skip
    if row.province_code is not None:
        query = query.where(Batch.province_code == row.province_code)
    return list(session.scalars(query))


def bought_today_t(session: Session, row: InstrumentRow, organisation_id: int, now: datetime) -> int:
    """Return the tonnes an organisation bought (and kept) on an instrument since Beijing midnight."""
    # In UTC: SQLite stores an aware datetime by its wall-clock fields, so a +08:00 bound would be 8 h off there.
    midnight = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    total = session.scalar(
        select(func.coalesce(func.sum(Trade.quantity_t), 0)).where(
            Trade.instrument_id == row.instrument_id, Trade.buyer_organisation_id == organisation_id,
            Trade.retirement_id.is_(None), Trade.created_at >= midnight,
        )
    )  # fmt: skip
    return int(total or 0)


def check_escrowable(ledger: UnitOfWork, row: InstrumentRow, organisation_id: int, quantity_t: int, *,
                     batch_ids: list[int]) -> None:  # fmt: skip
    """Refuse a sale the registry's escrow would refuse (too few tradable tonnes, or T+1), reading only.

    Raises:
        InsufficientUnits: Not enough tradable tonnes, or some were bought today (T+1).
    """
    session, now = ledger.session, ledger.clock.now()
    account = account_in(ledger, organisation_id)
    tradable = tradable_t(session, account, batch_ids)
    if row.resale_next_day:
        locked_t = bought_today_t(session, row, organisation_id, now)
        if locked_t and tradable - locked_t < quantity_t:
            raise InsufficientUnits(
                f"{account.organisation.label}: {locked_t} t of the {tradable} t tradable were bought today and "
                f"may be sold from the next trading day (T+1); {quantity_t} t cannot be sold now",
                organisation_id=organisation_id, account_id=account.id, available_t=tradable - locked_t,
                needed_t=quantity_t,
            )  # fmt: skip
    if tradable < quantity_t:
        raise InsufficientUnits(
            f"{account.organisation.label} holds {tradable} t tradable in its holding account {account.id}; "
            f"{quantity_t} t needed",
            organisation_id=organisation_id, account_id=account.id, state="tradable", available_t=tradable,
            needed_t=quantity_t,
        )  # fmt: skip


def _escrow(ctx: _Context, order: TradeOrder, quantity_t: int, actor: Principal) -> None:
    """Escrow tonnes for a sell order that :func:`check_escrowable` accepted (after the engine took the order)."""
    escrow(ctx.ledger, organisation_id=order.organisation_id, quantity_t=quantity_t, actor=actor,
           batch_ids=ctx.batch_ids(), reason=f"order:{order.id}")  # fmt: skip


def escrow_for_sale(session: Session, row: InstrumentRow, organisation_id: int, quantity_t: int, reason: str, *,
                    actor: Principal, clock: Clock, scope: Settlement | None = None) -> None:  # fmt: skip
    """Escrow a seller's tonnes of the instrument (registry ``escrow``), refusing tonnes bought today under T+1.

    With ``scope`` (the :class:`Settlement` of a block trade or auction) the deliverable batches come from its
    per-transaction look-up and the audit entry goes to its sink; without it the entry is appended now.

    Raises:
        InsufficientUnits: Not enough tradable tonnes, or some were bought today (T+1).
    """
    ledger = scope.ledger if scope is not None else UnitOfWork(session, clock)
    batch_ids = scope.batch_ids() if scope is not None else eligible_batch_ids(session, row)
    check_escrowable(ledger, row, organisation_id, quantity_t, batch_ids=batch_ids)
    escrow(
        ledger, organisation_id=organisation_id, quantity_t=quantity_t, actor=actor, batch_ids=batch_ids, reason=reason
    )
    if scope is None:
        ledger.append_audit()


# Batches (group commit, ADR 015) ----------------------------------------------------------------------------


class Settlement:
    """The look-ups and the audit sink of one settling transaction on one instrument (ADR 015's lock order).

    Book fills use the batch's :class:`_Context` (a subclass); block trades and auction closes make one of
    their own under the instrument's lock. Cash accounts are locked ``FOR UPDATE`` on their first use and kept
    for the rest of the transaction (:meth:`lock_parties` locks several in organisation order); audit entries
    are collected in ``audit`` and appended by :meth:`append_audit` as the transaction's last write, so the
    audit chain's head is always locked last, just before the commit.
    """

    def __init__(self, session: Session, row: InstrumentRow, clock: Clock,
                 audit_events: list[audit.Event] | None = None) -> None:  # fmt: skip
        self.session, self.row, self.clock = session, row, clock
        self.audit: list[audit.Event] = [] if audit_events is None else audit_events
        #: The ledger's unit of work in this transaction: its entries go to ``audit`` (ADR 031).
        self.ledger = UnitOfWork(session, clock, audit_events=self.audit)
        self._cash: dict[tuple[int, str], CashAccount] = {}
        self._fee: CashAccount | None = None
        self._batch_ids: list[int] | None = None

    def cash_account(self, organisation_id: int) -> CashAccount:
        """Return an organisation's trading account, locked on its first use in this transaction."""
        account = self._cash.get((organisation_id, cash.TRADING))
        if account is None:
            account = cash.cash_account(self.session, organisation_id, now=self.clock.now())
            self._cash[(organisation_id, cash.TRADING)] = account
        return account

    def lock_parties(self, *organisation_ids: int) -> None:
        """Lock the trading accounts of several organisations, in organisation order (no deadlock between two)."""
        for organisation_id in sorted(set(organisation_ids)):
            self.cash_account(organisation_id)

    def fee_account(self) -> CashAccount:
        """Return the exchange's fee account, locked on its first use in this transaction."""
        if self._fee is None:
            self._fee = cash.fee_account(self.session, now=self.clock.now())
        return self._fee

    def batch_ids(self) -> list[int]:
        """Return the batches deliverable on the instrument (read once per transaction)."""
        if self._batch_ids is None:
            self._batch_ids = eligible_batch_ids(self.session, self.row)
        return self._batch_ids

    def append_audit(self) -> None:
        """Append the collected audit entries (one ``append_many``: the audit head is locked here, last)."""
        if self.audit:
            audit.append_many(self.session, self.audit, clock=self.clock)
            self.audit.clear()


class _Context(Settlement):
    """One batch's transaction on one instrument: its engine, the next sequence number, per-batch look-ups.

    Everything a command writes goes through ``session`` inside the batch's single transaction; the audit
    entries of every command are collected in ``audit`` and appended once, just before the commit.
    """

    def __init__(self, session: Session, row: InstrumentRow, engine: MatchingEngine, cursor_seq: int,
                 clock: Clock) -> None:  # fmt: skip
        super().__init__(session, row, clock)
        self.engine = engine
        self.cursor_seq = cursor_seq
        self.seq = cursor_seq + 1
        self.matched = False
        self._orders: dict[str, TradeOrder] = {}
        #: Idempotency records of this batch: read once for every key of the batch, plus the ones it wrote.
        self.idempotency: dict[tuple[int, str], tuple[str, dict[str, Any]] | None] = {}
        self.remembered: list[tuple[int, str]] = []
        self.deferred = DeferredWrites()
        session.info[DEFERRED_WRITES] = self.deferred

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


Step = Callable[[_Context], dict[str, Any]]


@dataclass(eq=False)
class Job:
    """One command waiting for its batch: the step to run, then its answer or its error."""

    step: Step
    idempotency: tuple[int, str] | None = None  # (organisation, Idempotency-Key), read up front for the batch
    command: OrderCommand | None = None  # the command as data, when it came from order entry
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    queued_at: float = field(default_factory=time.perf_counter)  # this process's clock: the matcher lag


def run_batch(session: Session, cache: MatcherCache, instrument_id: str, jobs: list[Job], *, clock: Clock,
              before_commit: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Run the commands of one instrument in ONE transaction (:func:`_run_batch`); record its size and duration.

    Recorded in the process that runs it (the API process, or its matcher child), retries included.
    """
    started = time.perf_counter()
    try:
        _run_batch(session, cache, instrument_id, jobs, clock=clock, before_commit=before_commit)
    finally:
        record_order_batch(len(jobs), time.perf_counter() - started)


def _run_batch(session: Session, cache: MatcherCache, instrument_id: str, jobs: list[Job], *, clock: Clock,
               before_commit: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Run the commands of one instrument in ONE transaction; set every job's answer or error.

    Under the instrument's lock: catch up from the journal, run each command (a command refused before the
    engine moved — validation, funds, tonnes, idempotency conflict, engine rejection — has written nothing
    and fails alone), then the cursor's compare-and-set, the deferred writes, the audit entries of the whole
    batch (one ``append_many``) and the commit. Any other failure before the commit rolls the batch back,
    forgets the engine and runs each command again alone, so one bad command never fails the others.
    A failure *during* the commit (outcome unknown) is reported to every command, never retried.
    """
    committing = False
    try:
        ctx = _begin(session, cache, instrument_id, clock)
        ctx.prefetch_idempotency([job.idempotency for job in jobs if job.idempotency is not None])
        for job in jobs:
            _step(ctx, job)
        _finish(ctx)
        if before_commit is not None:
            before_commit()
        committing = True
        session.commit()
    except Exception as error:
        cache.discard(instrument_id)
        session.rollback()
        if committing or len(jobs) == 1:
            for job in jobs:
                job.result, job.error = None, _translated(error)
            return
        for job in jobs:
            job.result = job.error = None
            _run_batch(session, cache, instrument_id, [job], clock=clock)
    finally:
        session.info.pop(DEFERRED_WRITES, None)


def _translated(error: Exception) -> Exception:
    if isinstance(error, IntegrityError) and unique_violation(error):
        return IdempotencyConflict("a concurrent request used the same Idempotency-Key; nothing was done")
    return error


def _begin(session: Session, cache: MatcherCache, instrument_id: str, clock: Clock) -> _Context:
    row = _lock(session, instrument_id)
    engine, cursor = _engine(session, cache, row)
    return _Context(session, row, engine, cursor.applied_seq, clock)


def _step(ctx: _Context, job: Job) -> None:
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


def _finish(ctx: _Context) -> None:
    """Compare-and-set the cursor, write the deferred rows and the batch's audit entries, flush (caller commits)."""
    session, row = ctx.session, ctx.row
    if ctx.seq > ctx.cursor_seq + 1:
        last = ctx.seq - 1
        values: dict[str, Any] = {"applied_seq": last}
        if last // STATE_HASH_EVERY > ctx.cursor_seq // STATE_HASH_EVERY:  # crossed a checkpoint: hash the book
            values |= {"hash_seq": last, "state_hash": ctx.engine.state_hash()}
        moved = session.execute(
            update(MatcherCursor)
            .where(MatcherCursor.instrument_id == row.instrument_id, MatcherCursor.applied_seq == ctx.cursor_seq)
            .values(**values)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        if getattr(moved, "rowcount", 1) != 1:
            raise Conflict(f"the journal of {row.instrument_id} moved under this matcher; nothing was committed")
    ctx.deferred.write(session)
    if ctx.audit:
        audit.append_many(session, ctx.audit, clock=ctx.clock)
    session.flush()


def _run_alone(session: Session, cache: MatcherCache, instrument_id: str, step: Step, *, clock: Clock,
               before_commit: Callable[[], None] | None = None,
               idempotency: tuple[int, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run one command as a batch of one in the caller's session; return its answer or raise its error."""
    job = Job(step, idempotency)
    run_batch(session, cache, instrument_id, [job], clock=clock, before_commit=before_commit)
    if job.error is not None:
        raise job.error
    assert job.result is not None
    return job.result


class OrderEntry:
    """Group commit for one process: commands of one instrument that arrive together share a transaction.

    The first request to find its instrument idle leads: it takes every command queued so far (up to
    ``max_batch``), runs them with :func:`run_batch` in its own session, answers them all, then hands the
    lead to the first command that queued meanwhile (or leaves the instrument idle). Requests that arrive
    while a batch commits simply wait for the next one: the more load, the bigger the batches, and the
    cost of the lock, the catch-up, the cursor, the audit head and the commit is paid once per batch.
    """

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock, cache: MatcherCache,
                 max_batch: int = 64, before_commit: Callable[[], None] | None = None,
                 matcher: MatcherProcess | None = None) -> None:  # fmt: skip
        self._factory, self._clock, self._cache, self._max = session_factory, clock, cache, max_batch
        self._before_commit = before_commit  # a test's hook (crash between match and commit)
        self.matcher = matcher
        self._guard = threading.Lock()
        self._queues: dict[str, list[Job]] = {}
        self._busy: set[str] = set()

    def submit(self, instrument_id: str, command: OrderCommand | Step) -> dict[str, Any]:
        """Queue one command, wait for the commit of its batch, return its answer (or raise its error).

        An :class:`OrderCommand` can run in the matcher process; a bare step (tests) always runs here.
        """
        job = command.job() if isinstance(command, OrderCommand) else Job(command)
        with self._guard:
            self._queues.setdefault(instrument_id, []).append(job)
            if instrument_id not in self._busy:
                self._busy.add(instrument_id)
                job.lead = True
        if not job.lead:
            job.done.wait()
        if job.lead:
            self._lead(instrument_id)
            job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _lead(self, instrument_id: str) -> None:
        with self._guard:
            queue = self._queues[instrument_id]
            jobs, self._queues[instrument_id] = queue[: self._max], queue[self._max :]
        started = time.perf_counter()
        for job in jobs:
            record_matcher_lag(started - job.queued_at)
        try:
            commands = [job.command for job in jobs if job.command is not None]
            if self.matcher is not None and len(commands) == len(jobs):
                for job, (result, error) in zip(jobs, self.matcher.run(instrument_id, commands), strict=True):
                    job.result, job.error = result, error
            else:
                with self._factory() as session:
                    run_batch(session, self._cache, instrument_id, jobs, clock=self._clock,
                              before_commit=self._before_commit)  # fmt: skip
        except BaseException as error:  # pragma: no cover - run_batch reports ordinary errors per job
            for job in jobs:
                job.result, job.error = None, error
        finally:
            with self._guard:
                queue = self._queues[instrument_id]
                if queue:
                    queue[0].lead = True
                    queue[0].done.set()
                else:
                    self._busy.discard(instrument_id)
            for job in jobs:
                job.lead = False
                job.done.set()


Outcome = tuple[dict[str, Any] | None, BaseException | None]


class MatcherProcess:
    """Runs an API process's order-entry batches in one child process (ADR 018).

    The request threads of an API process compete for its interpreter lock with the batch they wait for: the
    batch's thread gives the lock up at every database round trip and waits to get it back while requests are
    parsed and answered. A child process that only runs batches (one at a time: the caller's
    :class:`OrderEntry` already serialises them per instrument, and the database's instrument lock across
    processes) has the lock to itself. Commands go to it as :class:`OrderCommand` data and come back as
    answers or errors; it keeps its own engines (:class:`MatcherCache`) and its own connection pool.

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

    def run(self, instrument_id: str, commands: list[OrderCommand]) -> list[Outcome]:
        """Run one batch in the child; return each command's answer or error."""
        pool = self._executor()
        try:
            future = pool.submit(_run_in_matcher, instrument_id, commands)
        except BrokenProcessPool:  # the child died while idle: nothing of this batch ran, start another
            self._discard(pool)
            pool = self._executor()
            future = pool.submit(_run_in_matcher, instrument_id, commands)
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


def _run_in_matcher(instrument_id: str, commands: list[OrderCommand]) -> list[Outcome]:
    assert _MATCHER is not None, "the matcher process was not started"
    factory, cache, clock = _MATCHER
    jobs = [command.job() for command in commands]
    with factory() as session:
        run_batch(session, cache, instrument_id, jobs, clock=clock)
    # Domain errors travel as they are; anything else (a driver's error may not pickle) as its text.
    return [(job.result, job.error if job.error is None or isinstance(job.error, ShanhaiError)
             else RuntimeError(f"{type(job.error).__name__}: {job.error}")) for job in jobs]  # fmt: skip


# Commands -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceOrderRequest:
    """Command: place a limit order on an instrument for the caller's organisation."""

    instrument_id: str
    side: str
    price_cny: str
    quantity_t: int
    time_in_force: str = TimeInForce.GTC.value
    retire_on_fill: bool = False
    beneficiary: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class AmendOrderRequest:
    """Command: change a resting order's remaining quantity and/or price."""

    quantity_t: int | None = None
    price_cny: str | None = None


@dataclass
class _Batch:
    """What one command changed, for its answer."""

    orders: dict[str, TradeOrder] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)


def _idempotency_of(organisation_id: int, key: str | None) -> tuple[int, str] | None:
    return None if key is None else (organisation_id, key)


def _idempotent(ctx: _Context, organisation_id: int, key: str | None, request: dict[str, Any]) -> dict[str, Any] | None:
    """Return the first answer to a repeated key with the same body (``None`` for a new key).

    Looks in the batch's records first (read up front for the whole batch, plus those its earlier commands
    wrote), so a key repeated within one batch is answered like one repeated across batches.

    Raises:
        IdempotencyConflict: The key was used with a different body.
    """
    if key is None:
        return None
    if (organisation_id, key) not in ctx.idempotency:
        ctx.prefetch_idempotency([(organisation_id, key)])
    record = ctx.idempotency[(organisation_id, key)]
    if record is None:
        return None
    sha256, response = record
    if sha256 != canonical_hash(request):
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used with a different request")
    return response


def _remember(ctx: _Context, organisation_id: int, key: str | None, request: dict[str, Any],
              response: dict[str, Any], now: datetime) -> None:  # fmt: skip
    if key is not None:
        sha256 = canonical_hash(request)
        record = {"organisation_id": organisation_id, "key": key, "request_sha256": sha256, "response": response,
                  "created_at": now}  # fmt: skip
        insert_rows(ctx.session, _IDEMPOTENCY, [record])
        ctx.idempotency[(organisation_id, key)] = (sha256, response)
        ctx.remembered.append((organisation_id, key))


@dataclass(frozen=True)
class OrderCommand:
    """One order-entry command as data (picklable): what a :class:`Job` runs, here or in a matcher process."""

    op: str  # "place" | "cancel" | "amend"
    actor: Principal
    idempotency_key: str | None = None
    place: PlaceOrderRequest | None = None
    order_id: int | None = None
    amend: AmendOrderRequest | None = None

    @property
    def idempotency(self) -> tuple[int, str] | None:
        """Return ``(organisation, key)`` when the command carries an ``Idempotency-Key``."""
        return _idempotency_of(self.actor.organisation_id, self.idempotency_key)

    def step(self) -> Step:
        """Return the batch step that runs this command."""
        if self.op == "place" and self.place is not None:
            return place_step(self.place, self.actor, self.idempotency_key)
        if self.op == "cancel" and self.order_id is not None:
            return cancel_step(self.order_id, self.actor, self.idempotency_key)
        if self.op == "amend" and self.order_id is not None and self.amend is not None:
            return amend_step(self.order_id, self.amend, self.actor, self.idempotency_key)
        raise ValueError(f"not an order-entry command: {self!r}")

    def job(self) -> Job:
        """Return a job that runs this command in a batch."""
        return Job(self.step(), self.idempotency, command=self)


def _submit(session: Session, instrument_id: str, command: OrderCommand, *, clock: Clock, cache: MatcherCache,
            entry: OrderEntry | None, before_commit: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run a command through the process's group commit (``entry``), or as a batch of one in ``session``."""
    if entry is not None:
        session.rollback()  # the request's own transaction ends before it waits for its batch
        return entry.submit(instrument_id, command)
    return _run_alone(session, cache, instrument_id, command.step(), clock=clock, before_commit=before_commit,
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


def place_step(cmd: PlaceOrderRequest, actor: Principal, idempotency_key: str | None = None) -> Step:
    """Return the batch step that places one order (what :func:`place_order` runs)."""
    request = {"op": "place", **cmd.__dict__}

    def step(ctx: _Context) -> dict[str, Any]:
        session, row = ctx.session, ctx.row
        replayed = _idempotent(ctx, actor.organisation_id, idempotency_key, request)
        if replayed is not None:
            return replayed
        if cmd.side not in (Side.BUY.value, Side.SELL.value) or cmd.time_in_force not in TIME_IN_FORCE:
            raise InvalidInput("side is buy or sell; time_in_force is gtc, day, ioc or fok")
        if cmd.retire_on_fill and (cmd.side != Side.BUY.value or not cmd.beneficiary or not cmd.purpose):
            raise InvalidInput("retire_on_fill is for buy orders and needs a beneficiary and a purpose")
        if isinstance(cmd.quantity_t, bool) or not isinstance(cmd.quantity_t, int) or cmd.quantity_t <= 0:
            raise OrderRejected(f"quantity {cmd.quantity_t!r} is not whole tonnes > 0", "non_positive_quantity")
        price_ticks = _price_ticks(row, cmd.price_cny)
        now = ctx.clock.now()
        # Every refusal is found before anything is written (a command has no savepoint, ADR 015 amendment):
        # funds or tonnes first (reads), then the engine; the hold or escrow is written once the engine took it.
        if cmd.side == Side.BUY.value:
            check_receiver(ctx.ledger, actor.organisation_id, pointer="/side")  # never deliver to a non-holder
            held_fen = buy_hold_fen(row, price_ticks, cmd.quantity_t)
            cash.check_hold(ctx.cash_account(actor.organisation_id), held_fen)
        else:
            check_escrowable(ctx.ledger, row, actor.organisation_id, cmd.quantity_t, batch_ids=ctx.batch_ids())
        order = TradeOrder(
            instrument_id=row.instrument_id, organisation_id=actor.organisation_id, placed_by_user_id=actor.user_id,
            side=cmd.side, price_ticks=price_ticks, quantity_t=cmd.quantity_t, remaining_t=cmd.quantity_t,
            filled_t=0, time_in_force=cmd.time_in_force, status=OPEN, held_fen=0,
            retire_on_fill=cmd.retire_on_fill, beneficiary=cmd.beneficiary, purpose=cmd.purpose, created_at=now,
            updated_at=now,
        )  # fmt: skip
        session.add(order)
        session.flush()
        command = PlaceOrder(seq=ctx.seq, at=now, instrument_id=row.instrument_id, order_id=order.engine_id,
                             account_id=str(actor.organisation_id), side=Side(cmd.side), quantity_t=cmd.quantity_t,
                             price_cny=_cny(row, price_ticks),
                             time_in_force=TimeInForce(cmd.time_in_force))  # fmt: skip
        try:
            events = _decide(ctx, command)
        except OrderRejected:
            session.delete(order)  # the only row written so far, referenced by nothing yet
            session.flush()
            raise
        ctx.remember(order)
        if cmd.side == Side.BUY.value:
            _set(ctx, order, held_fen=held_fen)
            cash.hold(session, ctx.cash_account(actor.organisation_id), held_fen, f"order:{order.id}", now)
        else:
            _escrow(ctx, order, cmd.quantity_t, actor)
        batch = _Batch(orders={order.engine_id: order})
        _record(ctx, command, events, batch, actor=actor)
        response = _order_answer(row, order, batch.trades)
        _remember(ctx, actor.organisation_id, idempotency_key, request, response, now)
        return response

    return step


def _own_order(session: Session, order_id: int, actor: Principal) -> TradeOrder:
    order = session.get(TradeOrder, order_id)  # in a batch, its in-memory values win over the row (see _set)
    if order is None or order.organisation_id != actor.organisation_id:
        raise NotFound(f"order {order_id} does not exist or is not your organisation's")
    return order


def _own_open_order(ctx: _Context, order_id: int, actor: Principal, doing: str) -> TradeOrder:
    """Return one of the caller's open orders for a cancel or an amend (``doing``: what would be done to it)."""
    order = _own_order(ctx.session, order_id, actor)
    ctx.remember(order)
    if order.status != OPEN:
        raise Conflict(f"order {order_id} is {order.status}; only open orders can be {doing}")
    return order


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


def cancel_step(order_id: int, actor: Principal, idempotency_key: str | None = None) -> Step:
    """Return the batch step that cancels one order (what :func:`cancel_order` runs)."""
    request = {"op": "cancel", "order_id": order_id}

    def step(ctx: _Context) -> dict[str, Any]:
        session, row = ctx.session, ctx.row
        replayed = _idempotent(ctx, actor.organisation_id, idempotency_key, request)
        if replayed is not None:
            return replayed
        order = _own_open_order(ctx, order_id, actor, "cancelled")
        now = ctx.clock.now()
        command = CancelOrder(seq=ctx.seq, at=now, instrument_id=row.instrument_id, order_id=order.engine_id,
                              account_id=str(actor.organisation_id))  # fmt: skip
        _run(ctx, command, _Batch(orders={order.engine_id: order}), actor=actor)
        response = order_out(session, row, order)
        _remember(ctx, actor.organisation_id, idempotency_key, request, response, now)
        return response

    return step


def amend_order(session: Session, order_id: int, cmd: AmendOrderRequest, *, actor: Principal, clock: Clock,
                cache: MatcherCache, idempotency_key: str | None = None,
                entry: OrderEntry | None = None) -> dict[str, Any]:  # fmt: skip
    """Change a resting order's remaining quantity and/or price, adjusting its hold or escrow first."""
    return _submit(session, _instrument_of_order(session, order_id),
                   OrderCommand("amend", actor, idempotency_key, order_id=order_id, amend=cmd), clock=clock,
                   cache=cache, entry=entry)  # fmt: skip


def amend_step(order_id: int, cmd: AmendOrderRequest, actor: Principal, idempotency_key: str | None = None) -> Step:
    """Return the batch step that amends one order (what :func:`amend_order` runs)."""
    request = {"op": "amend", "order_id": order_id, **cmd.__dict__}

    def step(ctx: _Context) -> dict[str, Any]:
        session, row = ctx.session, ctx.row
        replayed = _idempotent(ctx, actor.organisation_id, idempotency_key, request)
        if replayed is not None:
            return replayed
        order = _own_open_order(ctx, order_id, actor, "amended")
        quantity_t = order.remaining_t if cmd.quantity_t is None else cmd.quantity_t
        if isinstance(quantity_t, bool) or not isinstance(quantity_t, int) or quantity_t <= 0:
            raise OrderRejected(f"quantity {quantity_t!r} is not whole tonnes > 0", "non_positive_quantity")
        price_ticks = order.price_ticks if cmd.price_cny is None else _price_ticks(row, cmd.price_cny)
        now = ctx.clock.now()
        # Refusals first (funds or tonnes, then the engine), writes after: a command has no savepoint.
        required = buy_hold_fen(row, price_ticks, quantity_t) if order.side == Side.BUY.value else 0
        if order.side == Side.BUY.value and required > order.held_fen:
            cash.check_hold(ctx.cash_account(actor.organisation_id), required - order.held_fen)
        elif order.side == Side.SELL.value and quantity_t > order.remaining_t:
            check_escrowable(ctx.ledger, row, actor.organisation_id, quantity_t - order.remaining_t,
                             batch_ids=ctx.batch_ids())  # fmt: skip
        command = AmendOrder(seq=ctx.seq, at=now, instrument_id=row.instrument_id, order_id=order.engine_id,
                             account_id=str(actor.organisation_id), quantity_t=quantity_t,
                             price_cny=_cny(row, price_ticks))  # fmt: skip
        events = _decide(ctx, command)
        if order.side == Side.BUY.value:
            account = ctx.cash_account(actor.organisation_id)
            if required > order.held_fen:
                cash.hold(session, account, required - order.held_fen, f"order:{order.id}", now)
            else:
                cash.release(session, account, order.held_fen - required, f"order:{order.id}", now)
            _set(ctx, order, held_fen=required)
        elif quantity_t > order.remaining_t:
            _escrow(ctx, order, quantity_t - order.remaining_t, actor)
        elif quantity_t < order.remaining_t:
            settle_release(ctx.ledger, organisation_id=order.organisation_id,
                           quantity_t=order.remaining_t - quantity_t, batch_ids=ctx.batch_ids(), actor=actor.actor,
                           reason=f"order:{order.id}")  # fmt: skip
        _record(ctx, command, events, _Batch(orders={order.engine_id: order}), actor=actor)
        response = order_out(session, row, order)
        _remember(ctx, actor.organisation_id, idempotency_key, request, response, now)
        return response

    return step


def end_of_day(session: Session, instrument_id: str, *, actor: Principal, clock: Clock,
               cache: MatcherCache) -> dict[str, Any]:  # fmt: skip
    """Close an instrument's day (operator): expire day orders, release what they held, move the band."""
    if actor.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator closes the day")

    def step(ctx: _Context) -> dict[str, Any]:
        batch = _Batch()
        command = EndOfDay(seq=ctx.seq, at=ctx.clock.now(), instrument_id=ctx.row.instrument_id)
        events = _run(ctx, command, batch, actor=actor)
        closed = [e for e in events if isinstance(e, DayClosed)]
        expired = sorted(o.id for o in batch.orders.values() if o.status in (EXPIRED, CANCELLED))
        return {"instrument_id": instrument_id, "expired_order_ids": expired,
                "close_price_cny": _cny(ctx.row, closed[0].close_ticks) if closed else None}  # fmt: skip

    return _run_alone(session, cache, instrument_id, step, clock=clock)


# Matching and settlement ------------------------------------------------------------------------------------


def _run(ctx: _Context, command: Command, batch: _Batch, *, actor: Principal) -> list[Event]:
    """Hand one command to the engine and write everything it caused (the batch commits)."""
    events = _decide(ctx, command)
    _record(ctx, command, events, batch, actor=actor)
    return events


def _decide(ctx: _Context, command: Command) -> list[Event]:
    """Hand one command to the engine; refuse it (nothing changed anywhere) or mark the batch as matched."""
    events = ctx.engine.handle(command)
    if type(events[0]) is Rejected:  # a rejection changes nothing in the engine
        state = ctx.engine.states.get(command.instrument_id)
        band = (state.reference_ticks, state.instrument.rules.band_bp) if state is not None else (0, 0)
        raise rejection(events[0].reason, price_cny=getattr(command, "price_cny", None), tick_fen=ctx.row.tick_fen,
                        reference_ticks=band[0], band_bp=band[1])  # fmt: skip
    ctx.matched = True  # from here on, any failure must throw the whole batch (and the engine) away
    return events


def _record(ctx: _Context, command: Command, events: list[Event], batch: _Batch, *, actor: Principal) -> None:
    """Write everything the engine's events caused, and the journal row (the batch commits)."""
    for event in events:
        _apply(ctx, event, batch, actor=actor)
    for order in batch.orders.values():
        if order.status == OPEN and order.remaining_t == 0:
            _set(ctx, order, status=FILLED)
    entry = {"instrument_id": ctx.row.instrument_id, "seq": command.seq, "command": command_record(command),
             "created_at": ctx.clock.now()}  # fmt: skip
    insert_rows(ctx.session, _JOURNAL, [entry])
    ctx.seq += 1


def _order(ctx: _Context, batch: _Batch, engine_id: str) -> TradeOrder:
    order = batch.orders.get(engine_id)
    if order is None:
        order = ctx.order(engine_id)
        batch.orders[engine_id] = order
    return order


def _apply(ctx: _Context, event: Event, batch: _Batch, *, actor: Principal) -> None:
    now, row = ctx.clock.now(), ctx.row
    if isinstance(event, Accepted):
        order = _order(ctx, batch, event.order_id)
        ctx.audit.append(audit.Event(actor.actor, "order.accepted", f"order:{order.id}", {
            "instrument": row.instrument_id, "seq": event.seq, "side": order.side, "price_ticks": order.price_ticks,
            "quantity_t": order.quantity_t}))  # fmt: skip
    elif isinstance(event, Fill):
        _settle(ctx, event, batch)
    elif isinstance(event, Cancelled | Expired):
        order = _order(ctx, batch, event.order_id)
        _free(ctx, order)
        _set(ctx, order, status=EXPIRED if isinstance(event, Expired) else CANCELLED,
             reason=event.reason.value if isinstance(event, Cancelled) else "end_of_day", remaining_t=0,
             updated_at=now)  # fmt: skip
        ctx.audit.append(audit.Event(actor.actor if order.organisation_id == actor.organisation_id else MATCHER,
                                     f"order.{order.status}", f"order:{order.id}",
                                     {"seq": event.seq, "reason": order.reason}))  # fmt: skip
    elif isinstance(event, Amended):
        order = _order(ctx, batch, event.order_id)
        _set(ctx, order, price_ticks=event.price_ticks, remaining_t=event.quantity_t,
             quantity_t=order.filled_t + event.quantity_t, updated_at=now)  # fmt: skip
        ctx.audit.append(audit.Event(actor.actor, "order.amended", f"order:{order.id}", {
            "seq": event.seq, "price_ticks": event.price_ticks, "quantity_t": event.quantity_t}))  # fmt: skip


def _set(ctx: _Context, order: TradeOrder, **values: Any) -> None:
    """Change an order in memory; its row is written once, at the end of the batch (``DeferredWrites.assign``).

    The object is not marked dirty, so no flush writes it meanwhile; a refused command's changes are put back
    by the batch's ``undo``.
    """
    old = {name: getattr(order, name) for name in values}
    for name, value in values.items():
        set_committed_value(order, name, value)
    ctx.deferred.assign(_ORDERS, order.id, values, partial(_put_back, order, old))


def _put_back(order: TradeOrder, old: dict[str, Any]) -> None:
    for name, value in old.items():
        set_committed_value(order, name, value)


def _free(ctx: _Context, order: TradeOrder) -> None:
    """Release what an order still holds: its cash hold or its escrowed tonnes."""
    if order.side == Side.BUY.value:
        account = ctx.cash_account(order.organisation_id)
        cash.release(ctx.session, account, order.held_fen, f"order:{order.id}", ctx.clock.now())
        _set(ctx, order, held_fen=0)
    elif order.remaining_t:
        settle_release(ctx.ledger, organisation_id=order.organisation_id, quantity_t=order.remaining_t,
                       batch_ids=ctx.batch_ids(), actor=MATCHER, reason=f"order:{order.id}")  # fmt: skip


def _settle(ctx: _Context, fill: Fill, batch: _Batch) -> None:
    """Settle one fill DvP and move both orders on: the order-book caller of :func:`deliver_versus_payment`."""
    session, row, now = ctx.session, ctx.row, ctx.clock.now()
    taker, maker = _order(ctx, batch, fill.taker_order_id), _order(ctx, batch, fill.maker_order_id)
    buy, sell = (taker, maker) if fill.taker_side is Side.BUY else (maker, taker)
    quantity_t = fill.quantity_t
    retire_for = None
    if buy.retire_on_fill:  # retired for the buyer on delivery, by carbon.ledger.retire (use: voluntary)
        retire_for = RetireUnits(quantity_t, buy.beneficiary or "", buy.purpose or "", now.year)
    keep = buy_hold_fen(row, buy.price_ticks, buy.remaining_t - quantity_t)
    trade = deliver_versus_payment(session, row, Delivery(
        seller_organisation_id=sell.organisation_id, buyer_organisation_id=buy.organisation_id,
        price_ticks=fill.price_ticks, quantity_t=quantity_t, held_fen=buy.held_fen, keep_fen=keep,
        reference=f"trade:{row.instrument_id}:{fill.seq}:{fill.trade_id}", seq=fill.seq, buy_order_id=buy.id,
        sell_order_id=sell.id, retire=retire_for, retired_by_user_id=buy.placed_by_user_id), clock=ctx.clock,
        scope=ctx)  # fmt: skip
    _set(ctx, buy, held_fen=keep)
    for order in (buy, sell):
        remaining_t = order.remaining_t - quantity_t
        _set(ctx, order, remaining_t=remaining_t, filled_t=order.filled_t + quantity_t, updated_at=now,
             **({"status": FILLED} if remaining_t == 0 else {}))  # fmt: skip
    batch.trades.append(trade)
    retirement = session.get(Retirement, trade.retirement_id) if trade.retirement_id is not None else None
    ctx.audit.append(trade_settled(row, trade, retirement))


@dataclass(frozen=True)
class Delivery:
    """One delivery versus payment: an order-book fill, a confirmed block trade or an auction allocation.

    Attributes:
        held_fen: The buyer's hold this settlement draws on (it covers at least price × quantity + fee).
        keep_fen: What stays held afterwards (the hold of the buyer's unfilled remainder, else 0).
        reference: The cash entries' reference.
        seq: The instrument's journal position of the trade.
        mode: ``book``, ``block`` or ``auction``.
    """

    seller_organisation_id: int
    buyer_organisation_id: int
    price_ticks: int
    quantity_t: int
    held_fen: int
    keep_fen: int
    reference: str
    seq: int
    mode: str = "book"
    buy_order_id: int | None = None
    sell_order_id: int | None = None
    block_trade_id: int | None = None
    auction_bid_id: int | None = None
    retire: RetireUnits | None = None  # retire on fill: the buyer's retirement (``carbon.ledger.retire``)
    retired_by_user_id: int | None = None


def deliver_versus_payment(session: Session, row: InstrumentRow, leg: Delivery, *, clock: Clock,
                           scope: Settlement | None = None) -> Trade:  # fmt: skip
    """The one DvP path: tonnes seller → buyer (or retired), cash buyer → seller and fee account, the trade.

    The seller's tonnes must be escrowed and the buyer's cash held already; both legs and the trade row are
    written in the caller's transaction (the caller writes the ``trade.settled`` entry and commits), so
    either all of it commits or none of it does. Locks follow ADR 015's order: the two parties' cash
    accounts in organisation order, the fee account, then the registry's blocks; the registry's audit entry
    goes to ``scope.audit`` (appended by the caller, last). Book fills pass the batch's context; without
    ``scope`` a one-off :class:`Settlement` is used and its audit entry appended before returning.
    """
    own = scope is None
    scope = Settlement(session, row, clock) if scope is None else scope
    now = clock.now()
    notional = leg.price_ticks * row.tick_fen * leg.quantity_t  # ticks × fen/tick × t = fen
    buyer_fee, seller_fee = fee_fen(notional, row.buyer_fee_bp), fee_fen(notional, row.seller_fee_bp)
    scope.lock_parties(leg.buyer_organisation_id, leg.seller_organisation_id)
    buyer, seller = scope.cash_account(leg.buyer_organisation_id), scope.cash_account(leg.seller_organisation_id)
    fees = scope.fee_account()
    reason, retirement = f"trade on {row.instrument_id}", None
    if leg.retire is None:
        moved = deliver(scope.ledger, organisation_id=leg.seller_organisation_id, quantity_t=leg.quantity_t,
                        batch_ids=scope.batch_ids(), to_organisation_id=leg.buyer_organisation_id, actor=MATCHER,
                        reason=reason)  # fmt: skip
    else:
        assert leg.retired_by_user_id is not None, "a retirement on fill names the user who placed the buy order"
        retired = retire(scope.ledger, leg.retire, holder=receiving_account(scope.ledger, leg.buyer_organisation_id),
                         source=account_in(scope.ledger, leg.seller_organisation_id), batch_ids=scope.batch_ids(),
                         actor=MATCHER, user_id=leg.retired_by_user_id, reason=reason)  # fmt: skip
        moved, retirement = retired.moved, retired.retirement
    charge = notional + buyer_fee
    cash.post(session, buyer, cash.HELD, -charge, "trade", leg.reference, now)
    cash.release(session, buyer, leg.held_fen - charge - leg.keep_fen, leg.reference, now)
    cash.post(session, seller, cash.AVAILABLE, notional - seller_fee, "trade", leg.reference, now)
    cash.post(session, fees, cash.AVAILABLE, buyer_fee + seller_fee, "fee", leg.reference, now)
    trade = Trade(
        instrument_id=row.instrument_id, seq=leg.seq, mode=leg.mode, price_ticks=leg.price_ticks,
        quantity_t=leg.quantity_t, buy_order_id=leg.buy_order_id, sell_order_id=leg.sell_order_id,
        block_trade_id=leg.block_trade_id, auction_bid_id=leg.auction_bid_id,
        buyer_organisation_id=leg.buyer_organisation_id, seller_organisation_id=leg.seller_organisation_id,
        notional_fen=notional, buyer_fee_fen=buyer_fee, seller_fee_fen=seller_fee, serials=[_serial(b) for b in moved],
        retirement_id=retirement.id if retirement is not None else None, created_at=now,
    )  # fmt: skip
    session.add(trade)
    session.flush()
    if own:
        scope.append_audit()
    return trade


def trade_settled(row: InstrumentRow, trade: Trade, retirement: Retirement | None = None) -> audit.Event:
    """Return the ``trade.settled`` audit entry of a trade."""
    payload: dict[str, Any] = {
        "instrument": row.instrument_id, "seq": trade.seq, "price_ticks": trade.price_ticks,
        "quantity_t": trade.quantity_t, "buy_order": trade.buy_order_id, "sell_order": trade.sell_order_id,
        "notional_fen": trade.notional_fen, "buyer_fee_fen": trade.buyer_fee_fen,
        "seller_fee_fen": trade.seller_fee_fen, "serials": trade.serials,
        "retirement": retirement.verification_code if retirement is not None else None,
    }  # fmt: skip
    if trade.mode != "book":
        payload |= {"mode": trade.mode, "block_trade": trade.block_trade_id, "auction_bid": trade.auction_bid_id,
                    "buyer": trade.buyer_organisation_id, "seller": trade.seller_organisation_id}  # fmt: skip
    return audit.Event(MATCHER, "trade.settled", f"trade:{trade.id}", payload)


def _serial(block: HoldingBlock) -> str:
    return serial_of(block).format()


# Reads ----------------------------------------------------------------------------------------------------


def trade_out(row: InstrumentRow, trade: Trade, organisation_id: int) -> dict[str, Any]:
    """Return a trade as seen by one of its parties."""
    side = Side.BUY.value if trade.buyer_organisation_id == organisation_id else Side.SELL.value
    return {
        "trade_id": trade.id, "instrument_id": trade.instrument_id, "seq": trade.seq, "side": side,
        "price_cny": _cny(row, trade.price_ticks), "quantity_t": trade.quantity_t,
        "notional_fen": trade.notional_fen,
        "fee_fen": trade.buyer_fee_fen if side == Side.BUY.value else trade.seller_fee_fen,
        "buy_order_id": trade.buy_order_id, "sell_order_id": trade.sell_order_id, "serials": trade.serials,
        "retirement_id": trade.retirement_id, "at": trade.created_at.isoformat(),
    }  # fmt: skip


def order_out(session: Session, row: InstrumentRow, order: TradeOrder) -> dict[str, Any]:
    """Return an order with its fills."""
    session.flush()
    trades = session.scalars(
        select(Trade).where(or_(Trade.buy_order_id == order.id, Trade.sell_order_id == order.id)).order_by(Trade.id)
    )
    return _order_answer(row, order, list(trades))


def _order_answer(row: InstrumentRow, order: TradeOrder, trades: list[Trade]) -> dict[str, Any]:
    """Return an order with the given fills (all of them: a new order's fills are its own command's trades)."""
    return {
        "order_id": order.id, "instrument_id": order.instrument_id, "side": order.side,
        "price_cny": _cny(row, order.price_ticks), "quantity_t": order.quantity_t, "filled_t": order.filled_t,
        "remaining_t": order.remaining_t, "time_in_force": order.time_in_force, "status": order.status,
        "reason": order.reason, "held_fen": order.held_fen, "retire_on_fill": order.retire_on_fill,
        "fills": [trade_out(row, t, order.organisation_id) for t in trades],
    }  # fmt: skip


def list_orders(session: Session, *, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
    """Return the caller's organisation's orders, newest first."""
    query = select(TradeOrder).where(TradeOrder.organisation_id == actor.organisation_id)
    if status is not None:
        query = query.where(TradeOrder.status == status)
    rows = {r.instrument_id: r for r in session.scalars(select(InstrumentRow))}
    orders = session.scalars(query.order_by(TradeOrder.id.desc()).limit(500))
    return [order_out(session, rows[o.instrument_id], o) for o in orders]


def read_order(session: Session, order_id: int, *, actor: Principal) -> dict[str, Any]:
    """Return one of the caller's orders."""
    order = _own_order(session, order_id, actor)
    row = session.get(InstrumentRow, order.instrument_id)
    assert row is not None
    return order_out(session, row, order)


def list_fills(session: Session, *, actor: Principal) -> list[dict[str, Any]]:
    """Return the trades the caller's organisation took part in, newest first."""
    org = actor.organisation_id
    rows = {r.instrument_id: r for r in session.scalars(select(InstrumentRow))}
    trades = session.scalars(
        select(Trade).where(or_(Trade.buyer_organisation_id == org, Trade.seller_organisation_id == org))
        .order_by(Trade.id.desc()).limit(500)
    )  # fmt: skip
    return [trade_out(rows[t.instrument_id], t, org) for t in trades]


def unique_violation(error: IntegrityError) -> bool:
    """Return whether an integrity error is a unique violation (a concurrent duplicate idempotency key)."""
    return "unique" in str(error.orig).lower() or "duplicate" in str(error.orig).lower()
