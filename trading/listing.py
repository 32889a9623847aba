"""Listing: instruments (class × vintage, optionally × province), their lock, and CNY ⇄ tick prices.

An instrument row carries the engine's configuration (:func:`instrument_of`), its fee schedule and its
resale rule; :func:`lock_instrument` serialises everything that changes an instrument's book or settles on
it (order entry, block trades, auction closes) across processes and hosts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from carbon.ledger import Batch, CreditClass
from core import audit
from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, OrderRejected, PermissionDenied
from core.money import MoneyError, ticks_from_cny
from trading.calendar import ALWAYS_OPEN, SHANGHAI_SESSIONS
from trading.engine import MatchingEngine
from trading.instruments import BLOCK_RULES, LISTING_RULES, Instrument, MatchingStyle, ModeRules
from trading.models import InstrumentRow, MatcherCursor

BASIS_POINTS = 10_000


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


def lock_instrument(session: Session, instrument_id: str) -> InstrumentRow:
    """Take an instrument's lock (as order entry does) and return its row.

    On PostgreSQL ``pg_advisory_xact_lock``; on SQLite every write transaction already began with
    ``BEGIN IMMEDIATE``.

    Raises:
        NotFound: No such instrument.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(instrument_id)})
    row = session.get(InstrumentRow, instrument_id)
    if row is None:
        raise NotFound(f"instrument {instrument_id} does not exist")
    return row


def lock_instruments(session: Session, instrument_ids: list[str]) -> list[InstrumentRow]:
    """Take several instruments' locks in instrument order (a group batch, ADR 035); return their rows in that order.

    One statement for the locks on PostgreSQL (taken one after the other in the array's order, so two group
    batches never wait on each other in a cycle) and one for the rows.

    Raises:
        NotFound: One of the instruments does not exist.
    """
    ordered = sorted(set(instrument_ids))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS t(k, n) "
                 "ORDER BY n"),
            {"keys": [_lock_key(i) for i in ordered]},
        )  # fmt: skip
    rows = {r.instrument_id: r for r in session.scalars(select(InstrumentRow)
                                                        .where(InstrumentRow.instrument_id.in_(ordered)))}  # fmt: skip
    missing = [i for i in ordered if i not in rows]
    if missing:
        raise NotFound(f"instrument {missing[0]} does not exist")
    return [rows[i] for i in ordered]


def _lock_key(instrument_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"instrument:{instrument_id}".encode()).digest()[:8], "big", signed=True)


def price_ticks_of(row: InstrumentRow, price_cny: str) -> int:
    """Return a CNY price as whole ticks of the instrument.

    Raises:
        OrderRejected: Not a decimal, off the tick, or not positive.
    """
    try:
        return ticks_from_cny(Decimal(price_cny) if isinstance(price_cny, str) else price_cny, row.tick_fen)
    except (MoneyError, ArithmeticError) as error:
        raise OrderRejected(f"price {price_cny!r}: {error}", getattr(error, "reason", "invalid_amount")) from error


def cny_of(row: InstrumentRow, price_ticks: int) -> str:
    """Return a price in ticks as CNY (a decimal string)."""
    return str(Decimal(price_ticks * row.tick_fen).scaleb(-2))


def eligible_batch_ids(session: Session, row: InstrumentRow) -> list[int]:
    """Return the batches deliverable on an instrument, oldest first."""
    query = select(Batch.id).where(Batch.credit_class == CreditClass(row.credit_class),
                                   Batch.vintage_year == row.vintage_year).order_by(Batch.id)  # fmt: skip
    if row.province_code is not None:
        query = query.where(Batch.province_code == row.province_code)
    return list(session.scalars(query))


def eligible_batch_ids_of(session: Session, rows: list[InstrumentRow]) -> dict[str, list[int]]:
    """Return :func:`eligible_batch_ids` of several instruments, read with one statement."""
    found = session.execute(
        select(Batch.id, Batch.credit_class, Batch.vintage_year, Batch.province_code)
        .where(Batch.credit_class.in_({CreditClass(r.credit_class) for r in rows}),
               Batch.vintage_year.in_({r.vintage_year for r in rows}))
        .order_by(Batch.id)
    ).all()  # fmt: skip
    return {
        r.instrument_id: [b for b, credit_class, vintage, province in found
                          if credit_class == CreditClass(r.credit_class) and vintage == r.vintage_year
                          and (r.province_code is None or province == r.province_code)]
        for r in rows
    }  # fmt: skip
