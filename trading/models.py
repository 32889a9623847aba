"""Trading tables: instruments, cash accounts and entries, orders, trades, the command journal.

Invariants (checked by :func:`trading.cash.cash_violations` and the property tests):

* cash is integer fen; an account's ``available_fen`` and ``held_fen`` are never negative (``CHECK``) and
  always equal the sum of its entries per bucket; entries are inserted, never updated or deleted;
* Σ (available + held) over every account, the fee account included, equals deposits − withdrawals;
* the journal holds every accepted order command of an instrument with consecutive sequence numbers
  1..``matcher_cursor.applied_seq``; replaying it rebuilds the live book (ADR 005, ADR 012);
* an idempotency key belongs to one organisation and one request body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class InstrumentRow(Base):
    """A tradable product: one credit class × vintage (× province), its style and fee schedule."""

    __tablename__ = "trading_instrument"

    instrument_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    credit_class: Mapped[str] = mapped_column(String(10))
    vintage_year: Mapped[int] = mapped_column(Integer)
    province_code: Mapped[str | None] = mapped_column(String(2))
    reference_price_ticks: Mapped[int] = mapped_column(BigInteger)
    style: Mapped[str] = mapped_column(String(30))
    tick_fen: Mapped[int] = mapped_column(Integer)
    lot_t: Mapped[int] = mapped_column(Integer)
    always_open: Mapped[bool] = mapped_column(Boolean)
    resale_next_day: Mapped[bool] = mapped_column(Boolean)
    buyer_fee_bp: Mapped[int] = mapped_column(Integer)
    seller_fee_bp: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("buyer_fee_bp >= 0 AND seller_fee_bp >= 0 AND buyer_fee_bp <= 10000", name="fees_range"),
        CheckConstraint("reference_price_ticks > 0 AND tick_fen > 0 AND lot_t > 0", name="positive_units"),
    )


class CashAccount(Base):
    """An organisation's CNY account at the exchange (``trading``), or the exchange's ``fee`` account."""

    __tablename__ = "cash_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(String(10))
    available_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("organisation_id", "kind", name="uq_cash_account_org_kind"),
        CheckConstraint("available_fen >= 0", name="available_not_negative"),
        CheckConstraint("held_fen >= 0", name="held_not_negative"),
    )


class CashEntry(Base):
    """One append-only change of one bucket (``available`` or ``held``) of a cash account, in fen."""

    __tablename__ = "cash_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("cash_account.id"), index=True)
    bucket: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TradeOrder(Base):
    """An order and its current state; its history is the journal and the trades."""

    __tablename__ = "trade_order"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    placed_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    side: Mapped[str] = mapped_column(String(4))
    price_ticks: Mapped[int] = mapped_column(BigInteger)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    remaining_t: Mapped[int] = mapped_column(BigInteger)
    filled_t: Mapped[int] = mapped_column(BigInteger, default=0)
    time_in_force: Mapped[str] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(40))
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    retire_on_fill: Mapped[bool] = mapped_column(Boolean, default=False)
    beneficiary: Mapped[str | None] = mapped_column(String(300))
    purpose: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_trade_order_org_status", "organisation_id", "status"),
        CheckConstraint("remaining_t >= 0 AND filled_t >= 0 AND held_fen >= 0", name="not_negative"),
    )

    @property
    def engine_id(self) -> str:
        """Return the order's id inside the matching engine."""
        return f"O{self.id}"


class Trade(Base):
    """One fill, settled delivery versus payment in the transaction that recorded it."""

    __tablename__ = "trade"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    price_ticks: Mapped[int] = mapped_column(BigInteger)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    buy_order_id: Mapped[int] = mapped_column(ForeignKey("trade_order.id"), index=True)
    sell_order_id: Mapped[int] = mapped_column(ForeignKey("trade_order.id"), index=True)
    buyer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    seller_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    notional_fen: Mapped[int] = mapped_column(BigInteger)
    buyer_fee_fen: Mapped[int] = mapped_column(BigInteger)
    seller_fee_fen: Mapped[int] = mapped_column(BigInteger)
    serials: Mapped[list[str]] = mapped_column(JSON)
    retirement_id: Mapped[int | None] = mapped_column(ForeignKey("retirement.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JournalEntry(Base):
    """An accepted order command of one instrument, with the sequence number the matcher gave it."""

    __tablename__ = "order_journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    command: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("instrument_id", "seq", name="uq_order_journal_instrument_seq"),)


class MatcherCursor(Base):
    """How far an instrument's journal has been applied, and the engine's state hash there."""

    __tablename__ = "matcher_cursor"

    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"), primary_key=True)
    applied_seq: Mapped[int] = mapped_column(BigInteger)
    state_hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    """The first answer to a request with an ``Idempotency-Key``, replayed for a repeat with the same body."""

    __tablename__ = "idempotency_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("organisation_id", "key", name="uq_idempotency_record_org_key"),)
