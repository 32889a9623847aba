"""Settlement: fees, the per-transaction look-ups and locks, and the one DvP path (ADR 015's lock order).

Every trade — an order-book fill, a confirmed block trade, an auction allocation — settles through
:func:`deliver_versus_payment`: tonnes seller → buyer (delivered, or retired for the buyer on fill), cash
buyer → seller minus fees → fee account, the trade row, all in the caller's transaction. Locks: the two
parties' cash accounts in organisation order, the fee account, then the registry's blocks; the audit chain's
head last (:meth:`Settlement.append_audit`).

Fees are floored to the fen (in the client's favour): with ``fee(n) = ⌊n × bp / 10 000⌋`` the hold for a
remainder is never less than what its fills cost plus the hold for what is left, so releases are never
negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from carbon.ledger import (
    HoldingBlock,
    Retirement,
    RetireUnits,
    UnitOfWork,
    account_in,
    deliver,
    receiving_account,
    retire,
    serial_of,
)
from core import audit
from core.clock import Clock
from core.db import add_now
from trading import cash
from trading.listing import BASIS_POINTS, eligible_batch_ids
from trading.models import CashAccount, InstrumentRow, Trade

#: The actor of what the exchange does on its own (fills, deliveries, expiries).
MATCHER = "system:matcher"
_FEE_KEY = (0, cash.FEE)  # no organisation has id 0: the fee account's place among the locked accounts


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


class Settlement:
    """The look-ups and the audit sink of one settling transaction on one instrument (ADR 015's lock order).

    Book fills use the batch's :class:`trading.order_entry.batch.BatchContext` (a subclass); block trades and
    auction closes make one of their own under the instrument's lock. Cash accounts are locked ``FOR UPDATE``
    on their first use and kept for the rest of the transaction (:meth:`lock_parties` locks several in
    organisation order); audit entries are collected in ``audit`` and appended by :meth:`append_audit` as the
    transaction's last write, so the audit chain's head is always locked last, just before the commit.
    """

    def __init__(self, session: Session, row: InstrumentRow, clock: Clock,
                 audit_events: list[audit.Event] | None = None) -> None:  # fmt: skip
        self.session, self.row, self.clock = session, row, clock
        self.audit: list[audit.Event] = [] if audit_events is None else audit_events
        #: The ledger's unit of work in this transaction: its entries go to ``audit`` (ADR 031).
        self.ledger = UnitOfWork(session, clock, audit_events=self.audit)
        #: Cash accounts locked in this transaction (the fee account under ``_FEE_KEY``).
        self._cash: dict[tuple[int, str], CashAccount] = {}
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
        fee = self._cash.get(_FEE_KEY)
        if fee is None:
            fee = self._cash[_FEE_KEY] = cash.fee_account(self.session, now=self.clock.now())
        return fee

    def known_batch_ids(self, batch_ids: list[int]) -> None:
        """Take the deliverable batches as read for several instruments at once (a group batch, ADR 035)."""
        self._batch_ids = batch_ids

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
    add_now(session, trade)  # one INSERT … RETURNING: the audit entry names the trade's id
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
