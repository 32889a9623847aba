"""Service: one-way auctions (单向竞价) — announce, bid, withdraw, close, allocate, settle DvP, publish.

State machines (ADR 013)::

    auction:  announced ──close (operator or scheduled task, at or after ends_at)──► closed
    bid:      open ──withdraw (bidder, before ends_at)──► withdrawn
              open ──close──► won | partial (the marginal bid) | lost

- **Announce** (a trading participant, the seller): quantity in whole lots, reserve price on the tick, a
  window ``[starts_at, ends_at)``, the rule (``uniform`` or ``pay_as_bid``) and an optional qualification
  (bidder organisation ``provinces`` and/or ``kinds``). The tonnes go to registry escrow at once.
- **Bid** (a qualified participant other than the seller, inside the window): price ≥ reserve, on the tick;
  quantity whole lots, at most the quantity offered. Price × quantity + the buyer's fee is held.
- **Close** (idempotent): allocation by :func:`trading.allocation.allocate` (price, then time = bid id); each
  allocation settles through :func:`trading.settlement.deliver_versus_payment` (the one DvP path) drawing on
  the bid's hold and releasing the rest; losing bids are released; unfilled tonnes return to the seller;
  the results are public (``/public/v1/auctions``). All of it is one transaction with its audit entries.

Auctions take the instrument's lock, as order entry and block trades do, so the three never interleave on
an instrument; then they follow the lock order of ADR 015 (cash accounts in organisation order, registry
blocks, the audit head last) through a :class:`trading.settlement.Settlement`. Bad input raises before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import settle_release
from core import audit
from core.auth import Organisation, OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, OrderRejected, PermissionDenied
from core.regions import province_name
from trading import cash
from trading.allocation import Bid, Rule, allocate
from trading.block_trades import TRADER_KINDS, aware
from trading.journal import MatcherCache, reference_and_seq
from trading.listing import cny_of, lock_instrument, price_ticks_of
from trading.models import Auction, AuctionBid, InstrumentRow, Trade
from trading.orders import Reason
from trading.resale import escrow_for_sale
from trading.settlement import MATCHER, Delivery, Settlement, buy_hold_fen, deliver_versus_payment, trade_settled

ANNOUNCED, CLOSED = "announced", "closed"
OPEN, WITHDRAWN, WON, PARTIAL, LOST = "open", "withdrawn", "won", "partial", "lost"
QUALIFICATION_KEYS = frozenset({"provinces", "kinds"})


@dataclass(frozen=True)
class AnnounceAuction:
    """Command: offer tonnes of an instrument in a one-way auction."""

    instrument_id: str
    quantity_t: int
    reserve_price_cny: str
    starts_at: datetime
    ends_at: datetime
    rule: str = Rule.UNIFORM.value
    qualification: dict[str, list[str]] = field(default_factory=dict)
    #: The seller, when the exchange operator announces on a participant's application (the operator's desk);
    #: ``None`` = the caller's own organisation (the API's route).
    seller_organisation_id: int | None = None


@dataclass(frozen=True)
class PlaceBid:
    """Command: bid in an auction."""

    price_cny: str
    quantity_t: int


def _whole_lots(row: InstrumentRow, quantity: object) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise OrderRejected(f"quantity {quantity!r} is not whole tonnes > 0", Reason.NON_POSITIVE_QUANTITY.value)
    if quantity % row.lot_t:
        raise OrderRejected(f"quantities are whole lots of {row.lot_t} t", Reason.OFF_LOT.value)
    return quantity


def _positive_price(row: InstrumentRow, price_cny: str) -> int:
    price = price_ticks_of(row, price_cny)
    if price <= 0:
        raise OrderRejected(f"price {price_cny!r} must be > 0", Reason.INVALID_AMOUNT.value)
    return price


def _qualification(raw: dict[str, list[str]]) -> dict[str, list[str]]:
    unknown = set(raw) - QUALIFICATION_KEYS
    if unknown:
        raise InvalidInput(f"unknown qualification keys {sorted(unknown)}; use provinces and/or kinds")
    provinces = sorted(set(raw.get("provinces", [])))
    kinds = sorted(set(raw.get("kinds", [])))
    bad_provinces = [p for p in provinces if len(p) != 2 or province_name(p) is None]
    bad_kinds = [k for k in kinds if k not in {t.value for t in TRADER_KINDS}]
    if bad_provinces or bad_kinds:
        raise InvalidInput("the qualification names unknown provinces or kinds that cannot trade", [
            *({"pointer": "/qualification/provinces", "reason": f"{p!r} is not a GB/T 2260 province"}
              for p in bad_provinces),
            *({"pointer": "/qualification/kinds", "reason": f"{k!r} is not a trading organisation kind"}
              for k in bad_kinds),
        ])  # fmt: skip
    result = {}
    if provinces:
        result["provinces"] = provinces
    if kinds:
        result["kinds"] = kinds
    return result


def _seller(session: Session, cmd: AnnounceAuction, actor: Principal) -> int:
    if cmd.seller_organisation_id is None or cmd.seller_organisation_id == actor.organisation_id:
        return actor.organisation_id
    if actor.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator announces an auction on another organisation's behalf")
    seller = session.get(Organisation, cmd.seller_organisation_id)
    if seller is None:
        raise NotFound(f"organisation {cmd.seller_organisation_id} does not exist")
    if seller.kind not in TRADER_KINDS:
        raise InvalidInput(f"organisation {seller.id} is a {seller.kind.value}, which does not trade")
    return seller.id


def announce(session: Session, cmd: AnnounceAuction, *, actor: Principal, clock: Clock) -> dict[str, Any]:
    """Announce an auction for the caller's organisation, or the operator for a seller's; the tonnes are escrowed.

    Raises:
        PermissionDenied: Someone other than the operator names another organisation as the seller.
        NotFound: The named seller does not exist.
        InvalidInput: Unknown rule, a window that is empty or already over, a bad qualification, a seller that
            does not trade.
        OrderRejected: Quantity or reserve off the lot or tick, or not positive.
        InsufficientUnits: The seller does not hold the tonnes (or bought some today, T+1).
    """
    row = lock_instrument(session, cmd.instrument_id)
    if cmd.rule not in {r.value for r in Rule}:
        raise InvalidInput(f"unknown allocation rule {cmd.rule!r}; use uniform or pay_as_bid")
    quantity = _whole_lots(row, cmd.quantity_t)
    reserve = _positive_price(row, cmd.reserve_price_cny)
    if cmd.starts_at.tzinfo is None or cmd.ends_at.tzinfo is None:
        raise InvalidInput("the window's times carry a UTC offset")
    now = clock.now()
    if not cmd.starts_at < cmd.ends_at or cmd.ends_at <= now:
        raise InvalidInput("the window starts before it ends, and ends in the future")
    qualification = _qualification(cmd.qualification)
    seller = _seller(session, cmd, actor)
    auction = Auction(
        instrument_id=row.instrument_id, seller_organisation_id=seller,
        announced_by_user_id=actor.user_id, quantity_t=quantity, reserve_price_ticks=reserve, rule=cmd.rule,
        qualification=qualification, starts_at=cmd.starts_at, ends_at=cmd.ends_at, status=ANNOUNCED,
        escrowed_t=quantity, allocated_t=0, created_at=now,
    )  # fmt: skip
    session.add(auction)
    session.flush()
    scope = Settlement(session, row, clock)
    escrow_for_sale(session, row, seller, quantity, f"auction:{auction.id}", actor=actor, clock=clock,
                    scope=scope)  # fmt: skip
    on_behalf = {} if seller == actor.organisation_id else {"seller_organisation_id": seller}
    scope.audit.append(audit.Event(actor.actor, "auction.announced", f"auction:{auction.id}", {
        "instrument": row.instrument_id, "quantity_t": quantity, "reserve_price_ticks": reserve, "rule": cmd.rule,
        "starts_at": cmd.starts_at.isoformat(), "ends_at": cmd.ends_at.isoformat(),
        "qualification": qualification, **on_behalf}))  # fmt: skip
    scope.append_audit()
    session.commit()
    return auction_out(session, row, auction)


def _locked_auction(session: Session, auction_id: int) -> tuple[InstrumentRow, Auction]:
    auction = session.get(Auction, auction_id)
    if auction is None:
        raise NotFound(f"auction {auction_id} does not exist")
    row = lock_instrument(session, auction.instrument_id)
    session.refresh(auction)
    return row, auction


def _qualified(organisation: Organisation, qualification: dict[str, Any]) -> bool:
    provinces, kinds = qualification.get("provinces"), qualification.get("kinds")
    return (not provinces or organisation.province_code in provinces) and (
        not kinds or organisation.kind.value in kinds
    )


def place_bid(session: Session, auction_id: int, cmd: PlaceBid, *, actor: Principal, clock: Clock) -> dict[str, Any]:
    """Bid in an open auction; price × quantity + the buyer's fee is held.

    Raises:
        PermissionDenied: The seller bids in its own auction, or the bidder is not qualified.
        Conflict: The auction is closed, its window has not started or is over.
        OrderRejected: Below the reserve (``below_reserve``), off the tick or lot, more than offered.
        InsufficientFunds: The hold cannot be made.
    """
    row, auction = _locked_auction(session, auction_id)
    now = clock.now()
    if auction.status != ANNOUNCED or now >= aware(auction.ends_at):
        raise Conflict(f"auction {auction_id} closed for bids at {aware(auction.ends_at).isoformat()}")
    if now < aware(auction.starts_at):
        raise Conflict(f"auction {auction_id} takes bids from {aware(auction.starts_at).isoformat()}")
    if actor.organisation_id == auction.seller_organisation_id:
        raise PermissionDenied("the seller does not bid in its own auction")
    bidder = session.get(Organisation, actor.organisation_id)
    if bidder is None or bidder.kind not in TRADER_KINDS or not _qualified(bidder, auction.qualification):
        raise PermissionDenied(f"your organisation is not qualified for auction {auction_id}")
    quantity = _whole_lots(row, cmd.quantity_t)
    if quantity > auction.quantity_t:
        raise OrderRejected(f"the auction offers {auction.quantity_t} t; a bid of {quantity} t is larger",
                            Reason.SIZE_LIMIT.value)  # fmt: skip
    price = _positive_price(row, cmd.price_cny)
    if price < auction.reserve_price_ticks:
        reserve = cny_of(row, auction.reserve_price_ticks)
        raise OrderRejected(f"price {cny_of(row, price)} CNY is below the auction's reserve price {reserve} CNY",
                            "below_reserve", reserve_price_cny=reserve)  # fmt: skip
    bid = AuctionBid(auction_id=auction.id, organisation_id=actor.organisation_id, placed_by_user_id=actor.user_id,
                     price_ticks=price, quantity_t=quantity, held_fen=buy_hold_fen(row, price, quantity),
                     status=OPEN, allocated_t=0, created_at=now, updated_at=now)  # fmt: skip
    session.add(bid)
    session.flush()
    cash.hold(session, cash.cash_account(session, actor.organisation_id, now=now), bid.held_fen,
              f"auction:{auction.id}:bid:{bid.id}", now)  # fmt: skip
    audit.append(session, actor=actor.actor, action="auction.bid_placed", subject=f"auction_bid:{bid.id}",
                 payload={"auction": auction.id, "price_ticks": price, "quantity_t": quantity,
                          "held_fen": bid.held_fen}, clock=clock)  # fmt: skip
    session.commit()
    return bid_out(row, bid)


def withdraw_bid(session: Session, bid_id: int, *, actor: Principal, clock: Clock) -> dict[str, Any]:
    """Withdraw an open bid before the auction's window ends (the bidder only); its hold is released."""
    bid = session.get(AuctionBid, bid_id)
    if bid is None or bid.organisation_id != actor.organisation_id:
        raise NotFound(f"bid {bid_id} does not exist or is not your organisation's")
    row, auction = _locked_auction(session, bid.auction_id)
    session.refresh(bid)
    now = clock.now()
    if bid.status != OPEN:
        raise Conflict(f"bid {bid_id} is {bid.status}; only an open bid can be withdrawn")
    if auction.status != ANNOUNCED or now >= aware(auction.ends_at):
        raise Conflict(f"auction {auction.id} closed for bids at {aware(auction.ends_at).isoformat()}")
    cash.release(session, cash.cash_account(session, bid.organisation_id, now=now), bid.held_fen,
                 f"auction:{auction.id}:bid:{bid.id}", now)  # fmt: skip
    bid.held_fen, bid.status, bid.updated_at = 0, WITHDRAWN, now
    audit.append(session, actor=actor.actor, action="auction.bid_withdrawn", subject=f"auction_bid:{bid.id}",
                 payload={"auction": auction.id}, clock=clock)  # fmt: skip
    session.commit()
    return bid_out(row, bid)


def close(session: Session, auction_id: int, *, actor: str, clock: Clock, cache: MatcherCache) -> dict[str, Any]:
    """Close an auction at or after its end: allocate, settle each allocation DvP, release the rest, publish.

    Idempotent: closing a closed auction changes nothing and returns its results.

    Raises:
        Conflict: The window has not ended yet.
    """
    row, auction = _locked_auction(session, auction_id)
    if auction.status == CLOSED:
        session.rollback()
        return auction_out(session, row, auction)
    now = clock.now()
    if now < aware(auction.ends_at):
        raise Conflict(f"auction {auction_id} runs until {aware(auction.ends_at).isoformat()}; it cannot close yet")
    bids = list(session.scalars(
        select(AuctionBid).where(AuctionBid.auction_id == auction.id, AuctionBid.status == OPEN)
        .order_by(AuctionBid.id).with_for_update()
    ))  # fmt: skip
    outcome = allocate([Bid(str(b.id), b.price_ticks, b.quantity_t, b.id) for b in bids], auction.quantity_t,
                       auction.reserve_price_ticks, Rule(auction.rule))  # fmt: skip
    by_id = {b.id: b for b in bids}
    scope = Settlement(session, row, clock)
    scope.lock_parties(auction.seller_organisation_id, *(b.organisation_id for b in bids))  # ADR 015's order
    _, seq = reference_and_seq(session, cache, row)
    events: list[audit.Event] = []
    for allocation in outcome.allocations:  # in priority order, so trade ids follow the ranking
        bid = by_id[int(allocation.bid_id)]
        trade = deliver_versus_payment(session, row, Delivery(
            seller_organisation_id=auction.seller_organisation_id, buyer_organisation_id=bid.organisation_id,
            price_ticks=allocation.price_ticks, quantity_t=allocation.quantity_t, held_fen=bid.held_fen,
            keep_fen=0, reference=f"auction:{auction.id}:bid:{bid.id}", seq=seq, mode="auction",
            auction_bid_id=bid.id), clock=clock, scope=scope)  # fmt: skip
        events.append(trade_settled(row, trade))
        bid.allocated_t, bid.paid_price_ticks = allocation.quantity_t, allocation.price_ticks
        bid.status = WON if allocation.quantity_t == bid.quantity_t else PARTIAL
        bid.held_fen, bid.updated_at = 0, now
    for bid in bids:
        if bid.status == OPEN:  # took nothing
            cash.release(session, scope.cash_account(bid.organisation_id), bid.held_fen,
                         f"auction:{auction.id}:bid:{bid.id}", now)  # fmt: skip
            bid.status, bid.held_fen, bid.updated_at = LOST, 0, now
    if outcome.unfilled_t:
        settle_release(scope.ledger, organisation_id=auction.seller_organisation_id, quantity_t=outcome.unfilled_t,
                       batch_ids=scope.batch_ids(), actor=MATCHER, reason=f"auction:{auction.id}")  # fmt: skip
    auction.status, auction.closed_at = CLOSED, now
    auction.allocated_t, auction.escrowed_t = outcome.allocated_t, 0
    auction.clearing_price_ticks = outcome.clearing_price_ticks
    events.insert(0, audit.Event(actor, "auction.closed", f"auction:{auction.id}", {
        "rule": auction.rule, "reserve_met": outcome.reserve_met, "allocated_t": outcome.allocated_t,
        "unfilled_t": outcome.unfilled_t, "clearing_price_ticks": outcome.clearing_price_ticks,
        "allocations": [[int(a.bid_id), a.quantity_t, a.price_ticks] for a in outcome.allocations]}))  # fmt: skip
    scope.audit += events  # after the registry's entries, as when they were appended at once
    scope.append_audit()
    session.commit()
    return auction_out(session, row, auction)


def close_due(session: Session, *, actor: str, clock: Clock, cache: MatcherCache) -> list[int]:
    """Close every announced auction whose window has ended (the scheduled task); return their ids."""
    due = list(session.scalars(
        select(Auction.id).where(Auction.status == ANNOUNCED, Auction.ends_at <= clock.now()).order_by(Auction.id)
    ))  # fmt: skip
    session.rollback()
    for auction_id in due:
        close(session, auction_id, actor=actor, clock=clock, cache=cache)
    return due


def close_as_operator(session: Session, auction_id: int, *, actor: Principal, clock: Clock,
                      cache: MatcherCache) -> dict[str, Any]:  # fmt: skip
    """Close an auction on the operator's command (see :func:`close`)."""
    if actor.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator closes auctions")
    return close(session, auction_id, actor=actor.actor, clock=clock, cache=cache)


# Reads ----------------------------------------------------------------------------------------------------


def bid_out(row: InstrumentRow, bid: AuctionBid) -> dict[str, Any]:
    """Return a bid as its bidder sees it."""
    return {
        "bid_id": bid.id, "auction_id": bid.auction_id, "organisation_id": bid.organisation_id,
        "price_cny": cny_of(row, bid.price_ticks), "quantity_t": bid.quantity_t, "held_fen": bid.held_fen,
        "status": bid.status, "allocated_t": bid.allocated_t,
        "paid_price_cny": None if bid.paid_price_ticks is None else cny_of(row, bid.paid_price_ticks),
        "at": aware(bid.created_at).isoformat(),
    }  # fmt: skip


def auction_out(session: Session, row: InstrumentRow, auction: Auction) -> dict[str, Any]:
    """Return an auction as published: terms, state, and once closed the results (no bidder names)."""
    bids = session.scalar(select(func.count()).where(AuctionBid.auction_id == auction.id)) or 0
    result: dict[str, Any] = {
        "auction_id": auction.id, "instrument_id": auction.instrument_id,
        "seller_organisation_id": auction.seller_organisation_id, "quantity_t": auction.quantity_t,
        "reserve_price_cny": cny_of(row, auction.reserve_price_ticks), "rule": auction.rule,
        "qualification": auction.qualification, "starts_at": aware(auction.starts_at).isoformat(),
        "ends_at": aware(auction.ends_at).isoformat(), "status": auction.status, "bids": int(bids), "results": None,
    }  # fmt: skip
    if auction.status == CLOSED:
        trades = session.scalars(
            select(Trade).join(AuctionBid, Trade.auction_bid_id == AuctionBid.id)
            .where(AuctionBid.auction_id == auction.id).order_by(Trade.id)
        )  # fmt: skip
        result["results"] = {
            "closed_at": aware(auction.closed_at).isoformat() if auction.closed_at else None,
            "reserve_met": auction.allocated_t > 0, "allocated_t": auction.allocated_t,
            "unfilled_t": auction.quantity_t - auction.allocated_t,
            "clearing_price_cny": None if auction.clearing_price_ticks is None
            else cny_of(row, auction.clearing_price_ticks),
            "allocations": [{"rank": i, "quantity_t": t.quantity_t, "price_cny": cny_of(row, t.price_ticks),
                             "notional_fen": t.notional_fen} for i, t in enumerate(trades, start=1)],
        }  # fmt: skip
    return result


def list_auctions(session: Session, status: str | None = None) -> list[dict[str, Any]]:
    """Return every auction, newest first, as published."""
    query = select(Auction)
    if status is not None:
        query = query.where(Auction.status == status)
    rows = {r.instrument_id: r for r in session.scalars(select(InstrumentRow))}
    return [auction_out(session, rows[a.instrument_id], a)
            for a in session.scalars(query.order_by(Auction.id.desc()).limit(500))]  # fmt: skip


def read_auction(session: Session, auction_id: int) -> dict[str, Any]:
    """Return one auction as published."""
    auction = session.get(Auction, auction_id)
    if auction is None:
        raise NotFound(f"auction {auction_id} does not exist")
    row = session.get(InstrumentRow, auction.instrument_id)
    assert row is not None
    return auction_out(session, row, auction)


def list_bids(session: Session, auction_id: int, *, actor: Principal) -> list[dict[str, Any]]:
    """Return the caller's organisation's bids in an auction (the operator, and after the close the seller, see all).

    Bids are sealed while the auction runs: nobody but the exchange sees another organisation's bid.
    """
    auction = session.get(Auction, auction_id)
    if auction is None:
        raise NotFound(f"auction {auction_id} does not exist")
    row = session.get(InstrumentRow, auction.instrument_id)
    assert row is not None
    query = select(AuctionBid).where(AuctionBid.auction_id == auction_id)
    seller_after_close = auction.status == CLOSED and actor.organisation_id == auction.seller_organisation_id
    sees_all = actor.role is OrgKind.OPERATOR or seller_after_close
    if not sees_all:
        query = query.where(AuctionBid.organisation_id == actor.organisation_id)
    return [bid_out(row, b) for b in session.scalars(query.order_by(AuctionBid.id))]
