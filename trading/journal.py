"""The journal: each instrument's committed commands, its matcher cursor, and engines rebuilt from them.

An instrument's book is never stored: it is the result of replaying its journal (``journal_entry`` rows, in
``seq`` order) through the pure engine. The cursor (``matcher_cursor``) says how far the committed journal
goes and, every :data:`STATE_HASH_EVERY` commands, which state hash the replay must reach there. A
process keeps the engines it built in a :class:`MatcherCache` — a cache of committed state, never the truth —
and brings one up to the cursor before use (:func:`engine_at`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from core.db import insert_rows
from core.errors import Conflict, NotFound
from trading.engine import MatchingEngine
from trading.listing import instrument_of, lock_instrument
from trading.models import InstrumentRow, JournalEntry, MatcherCursor
from trading.orders import AmendOrder, CancelOrder, Command, EndOfDay, PlaceOrder, Side, TimeInForce

#: A batch that crosses a multiple of this many commands records the engine's state hash (the cursor's
#: checkpoint). Hashing is O(book); checking it is what catches engines that disagree with the journal.
STATE_HASH_EVERY = 256
_JOURNAL = cast(Table, JournalEntry.__table__)


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


def read_cursors(session: Session, instrument_ids: list[str]) -> dict[str, MatcherCursor]:
    """Read several instruments' cursors as committed (one statement; the caller holds their locks)."""
    query = select(MatcherCursor).where(MatcherCursor.instrument_id.in_(instrument_ids))
    return {c.instrument_id: c for c in session.scalars(query.execution_options(populate_existing=True))}


def engine_at(session: Session, cache: MatcherCache, row: InstrumentRow, *,
              cursor: MatcherCursor | None = None) -> tuple[MatchingEngine, MatcherCursor]:  # fmt: skip
    """Return the instrument's engine at the committed cursor, replaying what this process has not seen.

    ``cursor``: the instrument's cursor as just read under its lock (:func:`read_cursors`), else it is read here.
    """
    if cursor is None:
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


def reference_and_seq(session: Session, cache: MatcherCache, row: InstrumentRow) -> tuple[int, int]:
    """Return the instrument's reference price (the previous close, centre of every band) and journal position.

    The caller holds the instrument's lock; the engine is caught up with the committed journal first.
    """
    engine, cursor = engine_at(session, cache, row)
    return engine.states[row.instrument_id].reference_ticks, cursor.applied_seq


def rebuild_book(session: Session, instrument_id: str) -> MatchingEngine:
    """Rebuild an instrument's engine from its committed journal alone (restart, recovery, audit)."""
    cache = MatcherCache()
    engine, _ = engine_at(session, cache, lock_instrument(session, instrument_id))
    return engine


def append_command(session: Session, command: Command, now: datetime) -> None:
    """Write one command's journal row (deferred to the end of an order-entry batch, ADR 015)."""
    entry = {"instrument_id": command.instrument_id, "seq": command.seq, "command": command_record(command),
             "created_at": now}  # fmt: skip
    insert_rows(session, _JOURNAL, [entry])


def advance_cursor(
    session: Session, engine: MatchingEngine, instrument_id: str, cursor_seq: int, last_seq: int
) -> None:
    """Compare-and-set the cursor from ``cursor_seq`` to ``last_seq``, hashing the book at a checkpoint.

    Raises:
        Conflict: Another matcher moved the journal meanwhile (nothing of this batch may commit).
    """
    values: dict[str, Any] = {"applied_seq": last_seq}
    if last_seq // STATE_HASH_EVERY > cursor_seq // STATE_HASH_EVERY:  # crossed a checkpoint: hash the book
        values |= {"hash_seq": last_seq, "state_hash": engine.state_hash()}
    moved = session.execute(
        update(MatcherCursor)
        .where(MatcherCursor.instrument_id == instrument_id, MatcherCursor.applied_seq == cursor_seq)
        .values(**values)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if getattr(moved, "rowcount", 1) != 1:
        raise Conflict(f"the journal of {instrument_id} moved under this matcher; nothing was committed")
