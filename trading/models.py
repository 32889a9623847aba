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
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.sqltypes import UtcDateTime


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
    #: Block trades (大宗协议): smallest block, band half-width around the reference, and the daily window
    #: in exchange local minutes ``[open, close)`` (defaults: 100,000 t, ±30 %, 13:00–15:00; §4.1).
    block_min_t: Mapped[int] = mapped_column(BigInteger, default=100_000, server_default="100000")
    block_band_bp: Mapped[int] = mapped_column(Integer, default=3_000, server_default="3000")
    block_open_minute: Mapped[int] = mapped_column(Integer, default=780, server_default="780")
    block_close_minute: Mapped[int] = mapped_column(Integer, default=900, server_default="900")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "block_min_t > 0 AND block_band_bp >= 0 AND block_band_bp < 10000 AND block_open_minute >= 0 "
            "AND block_open_minute < block_close_minute AND block_close_minute <= 1440",
            name="block_rules",
        ),
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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_trade_order_org_status", "organisation_id", "status"),
        CheckConstraint("remaining_t >= 0 AND filled_t >= 0 AND held_fen >= 0", name="not_negative"),
    )

    @property
    def engine_id(self) -> str:
        """Return the order's id inside the matching engine."""
        return f"O{self.id}"


class Trade(Base):
    """One settled trade, delivery versus payment in the transaction that recorded it.

    ``mode`` says where it was struck: ``book`` (an order-book fill: both order ids set, ``seq`` is the
    journal entry that matched it), ``block`` (a confirmed block trade) or ``auction`` (one allocation of a
    one-way auction); for the last two ``seq`` is the instrument's journal position when it settled.
    """

    __tablename__ = "trade"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    mode: Mapped[str] = mapped_column(String(10), default="book", server_default="book")
    price_ticks: Mapped[int] = mapped_column(BigInteger)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    buy_order_id: Mapped[int | None] = mapped_column(ForeignKey("trade_order.id"), index=True)
    sell_order_id: Mapped[int | None] = mapped_column(ForeignKey("trade_order.id"), index=True)
    block_trade_id: Mapped[int | None] = mapped_column(ForeignKey("block_trade.id"), index=True)
    auction_bid_id: Mapped[int | None] = mapped_column(ForeignKey("auction_bid.id"), index=True)
    buyer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    seller_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    notional_fen: Mapped[int] = mapped_column(BigInteger)
    buyer_fee_fen: Mapped[int] = mapped_column(BigInteger)
    seller_fee_fen: Mapped[int] = mapped_column(BigInteger)
    serials: Mapped[list[str]] = mapped_column(JSON)
    retirement_id: Mapped[int | None] = mapped_column(ForeignKey("retirement.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class JournalEntry(Base):
    """An accepted order command of one instrument, with the sequence number the matcher gave it."""

    __tablename__ = "order_journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    command: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("instrument_id", "seq", name="uq_order_journal_instrument_seq"),)


class MatcherCursor(Base):
    """How far an instrument's journal has been applied, and a checkpoint of the engine's state hash.

    ``state_hash`` is the engine's state hash after command ``hash_seq`` (≤ ``applied_seq``): hashing the
    whole book costs time in proportion to its size, so it is taken when a batch crosses a multiple of
    ``trading.journal.STATE_HASH_EVERY`` commands, not on every batch. A process that replays the journal
    past ``hash_seq`` checks its engine there.
    """

    __tablename__ = "matcher_cursor"

    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"), primary_key=True)
    applied_seq: Mapped[int] = mapped_column(BigInteger)
    hash_seq: Mapped[int] = mapped_column(BigInteger)
    state_hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRecord(Base):
    """The first answer to a request with an ``Idempotency-Key``, replayed for a repeat with the same body."""

    __tablename__ = "idempotency_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("organisation_id", "key", name="uq_idempotency_record_org_key"),)


class BlockTrade(Base):
    """A negotiated block trade (大宗协议): proposed by one named party, confirmed by the other.

    States: ``proposed`` → ``settled`` (the counterparty confirms: DvP) | ``rejected`` (the counterparty
    declines) | ``withdrawn`` (the proposer) | ``expired`` (window close). The proposer's side is locked at
    proposal (tonnes escrowed or cash held); the counterparty's at confirmation, settled in that transaction.
    """

    __tablename__ = "block_trade"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"))
    proposer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    counterparty_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    proposed_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    side: Mapped[str] = mapped_column(String(4))
    buyer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    seller_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    price_ticks: Mapped[int] = mapped_column(BigInteger)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    reference_price_ticks: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10), index=True)
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    escrowed_t: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("quantity_t > 0 AND price_ticks > 0 AND held_fen >= 0 AND escrowed_t >= 0", name="positive"),
        CheckConstraint("proposer_organisation_id <> counterparty_organisation_id", name="two_parties"),
    )


class Auction(Base):
    """A one-way auction (单向竞价): a seller offers tonnes with a reserve price in an announced window.

    States: ``announced`` (bids accepted in ``[starts_at, ends_at)``) → ``closed`` (allocated, settled,
    unfilled tonnes returned). ``qualification`` optionally restricts bidders by organisation province
    (``provinces``) and kind (``kinds``).
    """

    __tablename__ = "auction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[str] = mapped_column(ForeignKey("trading_instrument.instrument_id"))
    seller_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    announced_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    reserve_price_ticks: Mapped[int] = mapped_column(BigInteger)
    rule: Mapped[str] = mapped_column(String(12))
    qualification: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    escrowed_t: Mapped[int] = mapped_column(BigInteger)
    allocated_t: Mapped[int] = mapped_column(BigInteger, default=0)
    clearing_price_ticks: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "quantity_t > 0 AND reserve_price_ticks > 0 AND escrowed_t >= 0 AND allocated_t >= 0", name="positive"
        ),
        CheckConstraint("rule IN ('uniform', 'pay_as_bid')", name="known_rule"),
    )


class AuctionBid(Base):
    """A buyer's bid in an auction, its cash hold, and after the close its allocation.

    States: ``open`` → ``withdrawn`` (before the close) | ``won`` (fully filled) | ``partial`` (the marginal
    bid) | ``lost``.
    """

    __tablename__ = "auction_bid"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    auction_id: Mapped[int] = mapped_column(ForeignKey("auction.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    placed_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    price_ticks: Mapped[int] = mapped_column(BigInteger)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10))
    allocated_t: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_price_ticks: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("quantity_t > 0 AND price_ticks > 0 AND held_fen >= 0 AND allocated_t >= 0", name="positive"),
    )
