"""Market data from committed state only: the L2 book, recent trades, daily bars and the update feed.

Nothing here reads the order-entry engines of :class:`trading.journal.MatcherCache`: those are mutated
before their transaction commits (ADR 012). The book is served from a *replica* engine per instrument that
only ever applies journal entries read from the database, up to the committed cursor, and checks the state
hash recorded there (ADR 014). A match that was computed but not committed is therefore never shown.

Invariants:

- Every journal sequence number ``seq`` of an instrument is one feed update, in order; trades carry the
  ``seq`` of the command that caused them, so an update holds exactly the trades of its command.
- The book attached to an update is the state *after* that update's ``seq`` (its ``seq`` says so).
- Money leaves as decimal strings (``"60.00"``); quantities as whole tonnes; no float anywhere.
- Trading days are dates in Asia/Shanghai (UTC+08:00, no daylight saving): a trade at 17:00 UTC counts
  for the next day.
- Market data is anonymous: no organisation, account or order id is published (ADR 014).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.money import Fen
from trading.book import BookSide
from trading.calendar import SHANGHAI_SESSIONS
from trading.close_price import CloseRule, close_price, open_price, vwap_ticks
from trading.engine import MatchingEngine
from trading.journal import catch_up
from trading.listing import instrument_of
from trading.models import InstrumentRow, JournalEntry, MatcherCursor, Trade

#: Largest depth (price levels per side) a caller may ask for.
MAX_DEPTH = 50
#: Most updates returned by one read of the feed; a client behind by more gets them in several reads.
MAX_UPDATES_PER_READ = 500
MAX_TRADES_PER_PAGE = 500


def aware(at: datetime) -> datetime:
    """Return ``at`` as an aware UTC instant (SQLite gives back naive UTC datetimes)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def trading_day(at: datetime) -> date:
    """Return the Asia/Shanghai trading date of an instant.

    >>> trading_day(datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
    datetime.date(2026, 11, 26)
    """
    return SHANGHAI_SESSIONS.trading_date(aware(at))


def price_cny(row: InstrumentRow, price_ticks: int) -> str:
    """Return a price in ticks as a CNY decimal string."""
    return str(Fen(price_ticks * row.tick_fen).cny)


def _instrument(session: Session, instrument_id: str) -> InstrumentRow:
    row = session.get(InstrumentRow, instrument_id)
    if row is None:
        raise NotFound(f"instrument {instrument_id} does not exist")
    return row


def _depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be a whole number of price levels from 1 to {MAX_DEPTH}")
    return depth


# The committed book ----------------------------------------------------------------------------------------


class BookReplicas:
    """Engines rebuilt from the committed journal only, one per instrument (a read-side cache).

    Thread-safe: reads run in a thread pool, so every use of a replica happens under one lock.
    """

    def __init__(self) -> None:
        self._engines: dict[str, MatchingEngine] = {}
        self.lock = threading.Lock()

    def committed(self, session: Session, row: InstrumentRow) -> tuple[MatchingEngine, int]:
        """Return the replica and the committed cursor of this transaction; hold :attr:`lock` while using it.

        The replica is brought up to the cursor read in ``session``'s transaction. If another reader has
        already taken it further (it read a later commit), it is returned as it is: callers label the book
        with ``engine.last_seq``, never with the cursor.

        Raises:
            RuntimeError: The journal does not rebuild the state-hash checkpoint it passes (see ``catch_up``).
        """
        cursor = session.get(MatcherCursor, row.instrument_id, populate_existing=True)
        if cursor is None:
            raise NotFound(f"instrument {row.instrument_id} has no matcher cursor")
        engine = self._engines.get(row.instrument_id)
        if engine is None:
            engine = MatchingEngine([instrument_of(row)])
        if engine.last_seq < cursor.applied_seq:
            try:
                catch_up(session, engine, row.instrument_id, cursor)
            except RuntimeError:
                self._engines.pop(row.instrument_id, None)
                raise
        self._engines[row.instrument_id] = engine
        return engine, cursor.applied_seq


def _levels(row: InstrumentRow, side: BookSide, depth: int) -> list[dict[str, Any]]:
    levels = side.levels
    return [
        {
            "price_cny": price_cny(row, price),
            "quantity_t": levels[price].quantity_t,
            "orders": levels[price].live_count,
        }
        for price in side.best_prices(depth)
    ]


def _book_of(row: InstrumentRow, engine: MatchingEngine, depth: int) -> dict[str, Any]:
    book = engine.states[row.instrument_id].book
    return {
        "instrument_id": row.instrument_id,
        "seq": engine.last_seq,
        "bids": _levels(row, book.bids, depth),
        "asks": _levels(row, book.asks, depth),
    }


def read_book(session: Session, replicas: BookReplicas, instrument_id: str, depth: int = 5) -> dict[str, Any]:
    """Return the committed L2 book: up to ``depth`` aggregated price levels per side, best first."""
    depth = _depth(depth)
    row = _instrument(session, instrument_id)
    with replicas.lock:
        engine, _ = replicas.committed(session, row)
        return _book_of(row, engine, depth)


# Trades --------------------------------------------------------------------------------------------------


def public_trade(row: InstrumentRow, trade: Trade) -> dict[str, Any]:
    """Return a trade as the market sees it: no parties, no order ids."""
    return {
        "trade_id": trade.id,
        "seq": trade.seq,
        "price_cny": price_cny(row, trade.price_ticks),
        "quantity_t": trade.quantity_t,
        "turnover_cny": str(Fen(trade.notional_fen).cny),
        "at": aware(trade.created_at).isoformat(),
        "mode": trade.mode,
    }


def recent_trades(
    session: Session, instrument_id: str, *, limit: int = 50, before_id: int | None = None
) -> dict[str, Any]:
    """Return a page of an instrument's trades, newest first, and the cursor of the next (older) page."""
    if not 1 <= limit <= MAX_TRADES_PER_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_TRADES_PER_PAGE}")
    row = _instrument(session, instrument_id)
    query = select(Trade).where(Trade.instrument_id == instrument_id)
    if before_id is not None:
        query = query.where(Trade.id < before_id)
    trades = list(session.scalars(query.order_by(Trade.id.desc()).limit(limit + 1)))
    page = trades[:limit]
    return {
        "instrument_id": instrument_id,
        "trades": [public_trade(row, t) for t in page],
        "next_before_id": page[-1].id if len(trades) > limit else None,
    }


# Daily bars ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One trading day of one instrument, prices in ticks, turnover in fen."""

    day: date
    open_ticks: int
    high_ticks: int
    low_ticks: int
    close_ticks: int
    vwap_ticks: int
    volume_t: int
    turnover_fen: int
    trades: int


def bars_from_trades(
    days: Sequence[tuple[date, Sequence[tuple[int, int, int]]]], rule: CloseRule, reference_ticks: int
) -> list[Bar]:
    """Return one bar per day from each day's trades ``(price_ticks, quantity_t, notional_fen)`` in order.

    The close follows ``rule`` (:mod:`trading.close_price`); each day's previous close is the close of the
    day before, the first day's is ``reference_ticks`` (the instrument's listing reference).

    >>> from trading.close_price import CloseRule
    >>> bars = bars_from_trades([(date(2026, 11, 25), [(6000, 10, 60000), (6100, 30, 183000)])],
    ...                         CloseRule.VWAP_DAY, 5900)
    >>> bars[0].open_ticks, bars[0].close_ticks, bars[0].vwap_ticks, bars[0].volume_t
    (6000, 6075, 6075, 40)
    """
    bars: list[Bar] = []
    previous_close = reference_ticks
    for day, trades in days:
        priced = [(price, quantity) for price, quantity, _ in trades]
        close = close_price(rule, priced, previous_close)
        bars.append(
            Bar(
                day=day,
                open_ticks=open_price(priced, previous_close),
                high_ticks=max(price for price, _ in priced),
                low_ticks=min(price for price, _ in priced),
                close_ticks=close,
                vwap_ticks=vwap_ticks(priced),
                volume_t=sum(quantity for _, quantity in priced),
                turnover_fen=sum(notional for _, _, notional in trades),
                trades=len(trades),
            )
        )
        previous_close = close
    return bars


def daily_bars(
    session: Session, instrument_id: str, *, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Return the daily bars of an instrument for the trading days with trades in ``[start, end]``.

    The close is computed under the instrument's close rule (the one its engine uses at the end of day),
    chained from the listing reference price over every earlier day, so a window does not change a close.
    Prices, volume and turnover of a bar are the order book's (listing) trades only, as exchanges compute the
    close from listing trades; block trades and auction allocations are reported beside them per day and mode
    in ``off_book``, never in a bar's prices.
    """
    if start is not None and end is not None and start > end:
        raise InvalidInput("start must not be after end")
    row = _instrument(session, instrument_id)
    rule = instrument_of(row).close_rule
    by_day: dict[date, list[tuple[int, int, int]]] = {}
    off_book: dict[tuple[date, str], list[int]] = {}  # (day, mode) → [volume t, turnover fen, trades]
    trades = session.execute(
        select(Trade.created_at, Trade.mode, Trade.price_ticks, Trade.quantity_t, Trade.notional_fen)
        .where(Trade.instrument_id == instrument_id)
        .order_by(Trade.seq, Trade.id)
    )
    for at, mode, price, quantity, notional in trades:
        if mode == "book":
            by_day.setdefault(trading_day(at), []).append((price, quantity, notional))
        else:
            totals = off_book.setdefault((trading_day(at), mode), [0, 0, 0])
            totals[0], totals[1], totals[2] = totals[0] + quantity, totals[1] + notional, totals[2] + 1
    bars = bars_from_trades(sorted(by_day.items()), rule, row.reference_price_ticks)
    return {
        "instrument_id": instrument_id,
        "close_rule": rule.value,
        "timezone": "Asia/Shanghai",
        "bars": [
            {
                "date": bar.day.isoformat(),
                "open_cny": price_cny(row, bar.open_ticks),
                "high_cny": price_cny(row, bar.high_ticks),
                "low_cny": price_cny(row, bar.low_ticks),
                "close_cny": price_cny(row, bar.close_ticks),
                "vwap_cny": price_cny(row, bar.vwap_ticks),
                "volume_t": bar.volume_t,
                "turnover_cny": str(Fen(bar.turnover_fen).cny),
                "trades": bar.trades,
            }
            for bar in bars
            if (start is None or bar.day >= start) and (end is None or bar.day <= end)
        ],
        "off_book": [
            {
                "date": day.isoformat(),
                "mode": mode,
                "volume_t": volume,
                "turnover_cny": str(Fen(turnover).cny),
                "trades": count,
            }
            for (day, mode), (volume, turnover, count) in sorted(off_book.items())
            if (start is None or day >= start) and (end is None or day <= end)
        ],
    }


# The update feed -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """One committed journal entry of an instrument as a feed message."""

    seq: int
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FeedRead:
    """What one read of the feed found: the updates after the caller's position, and the committed head."""

    updates: list[Update]
    head_seq: int

    @property
    def more(self) -> bool:
        """Whether committed updates remain after the last one returned."""
        return bool(self.updates) and self.updates[-1].seq < self.head_seq


def _repeatable_read(session: Session) -> None:
    """Make every read of this transaction see one snapshot (PostgreSQL; SQLite's writer lock already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def feed_snapshot(session: Session, replicas: BookReplicas, instrument_id: str, depth: int = 5) -> Update:
    """Return the committed book as a ``snapshot`` message, numbered with the seq it is the state after."""
    depth = _depth(depth)
    _repeatable_read(session)
    row = _instrument(session, instrument_id)
    with replicas.lock:
        engine, _ = replicas.committed(session, row)
        book = _book_of(row, engine, depth)
    return Update(book["seq"], "snapshot", {"instrument_id": instrument_id, "seq": book["seq"], "book": book})


def read_feed(
    session: Session,
    replicas: BookReplicas,
    instrument_id: str,
    after_seq: int,
    *,
    depth: int = 5,
    limit: int = MAX_UPDATES_PER_READ,
) -> FeedRead:
    """Return the committed updates of an instrument after ``after_seq`` (at most ``limit``), in seq order.

    Each update carries its command kind, time and trades; the last update of the read also carries the book
    after it when the replica stands exactly there (otherwise ``book`` is ``null`` and a later read brings it).
    """
    depth = _depth(depth)
    if after_seq < 0:
        raise InvalidInput("the resume position (Last-Event-ID) must be a sequence number >= 0")
    _repeatable_read(session)
    row = _instrument(session, instrument_id)
    with replicas.lock:
        engine, head = replicas.committed(session, row)
        last = min(head, after_seq + limit)
        book = _book_of(row, engine, depth) if engine.last_seq == last else None
    if last <= after_seq:
        return FeedRead([], head)
    entries = session.execute(
        select(JournalEntry.seq, JournalEntry.command, JournalEntry.created_at)
        .where(JournalEntry.instrument_id == instrument_id, JournalEntry.seq > after_seq, JournalEntry.seq <= last)
        .order_by(JournalEntry.seq)
    ).all()
    trades: dict[int, list[dict[str, Any]]] = {}
    for trade in session.scalars(
        select(Trade)
        # Book fills only: a block or auction trade carries the journal position at its settlement, which the
        # feed has already sent; it shows in trades, bars (off_book) and flows, not as a book update.
        .where(Trade.instrument_id == instrument_id, Trade.mode == "book", Trade.seq > after_seq, Trade.seq <= last)
        .order_by(Trade.seq, Trade.id)
    ):
        trades.setdefault(trade.seq, []).append(public_trade(row, trade))
    updates = [
        Update(
            seq,
            "update",
            {
                "instrument_id": instrument_id,
                "seq": seq,
                "command": command["kind"],
                "at": aware(created_at).isoformat(),
                "trades": trades.get(seq, []),
                "book": book if seq == last else None,
            },
        )
        for seq, command, created_at in entries
    ]
    return FeedRead(updates, head)
