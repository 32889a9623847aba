"""Service: negotiated block trades (大宗协议) between two named parties, settled by the one DvP path.

State machine (ADR 013)::

    proposed ──confirm (counterparty)──► settled
       │  ├────reject (counterparty)───► rejected
       │  └────withdraw (proposer)─────► withdrawn
       └───────window close (sweep)────► expired

Rules, per instrument (registry-trading §4.1, M4; defaults 100,000 t, ±30 %, 13:00–15:00 Asia/Shanghai):

- the quantity is at least ``block_min_t`` and whole lots;
- the price is on the tick and inside ``reference × (1 ± block_band_bp / 10 000)`` (edges inclusive, rounded
  half-up), the reference being the instrument's previous close as the matching engine holds it;
- proposal and confirmation fall inside the block window ``[block_open_minute, block_close_minute)`` of a
  trading day (weekdays, per :mod:`trading.calendar`); a proposal expires at the close of the window of the
  day it was made, and the sweep (:func:`expire_due`) releases what it locked.

Locks: the proposer's side at proposal (a seller's tonnes to registry escrow, a buyer's price × quantity +
fee held), the counterparty's at confirmation, which settles in the same transaction through
:func:`trading.settlement.deliver_versus_payment` with the trade row and the audit entries. Every command
takes the instrument's lock first, as order entry does, then follows the lock order of ADR 015 through a
:class:`trading.settlement.Settlement`: cash accounts in organisation order, registry blocks, and the audit
head last (the entries are collected and appended once, just before the commit). Bad input raises before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from carbon.ledger import settle_release
from core import audit
from core.auth import Organisation, OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, OrderRejected, PermissionDenied
from trading import cash
from trading.calendar import SessionCalendar
from trading.instruments import price_band
from trading.journal import MatcherCache, reference_and_seq
from trading.listing import cny_of, lock_instrument, price_ticks_of
from trading.models import BlockTrade, InstrumentRow, Trade
from trading.orders import Reason, Side
from trading.refusals import out_of_band
from trading.resale import escrow_for_sale
from trading.settlement import MATCHER, Delivery, Settlement, buy_hold_fen, deliver_versus_payment, trade_settled

PROPOSED, SETTLED, REJECTED, WITHDRAWN, EXPIRED = "proposed", "settled", "rejected", "withdrawn", "expired"
#: Who may be a party to a block trade: the organisation kinds that trade (the API's TRADERS).
TRADER_KINDS = frozenset({OrgKind.FORESTRY_BUREAU, OrgKind.FOREST_OWNER, OrgKind.ENTERPRISE})


def aware(moment: datetime) -> datetime:
    """Return a stored timestamp as aware UTC (SQLite hands back naive UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def block_calendar(row: InstrumentRow) -> SessionCalendar:
    """Return the instrument's block window as a session calendar (weekdays, Asia/Shanghai)."""
    start, end = divmod(row.block_open_minute, 60), divmod(row.block_close_minute, 60)
    end_time = time(23, 59, 59) if end == (24, 0) else time(*end)
    return SessionCalendar(sessions=((time(*start), end_time),))


def window_close(row: InstrumentRow, at: datetime) -> datetime:
    """Return the instant the block window of ``at``'s local trading day closes."""
    calendar = block_calendar(row)
    local_midnight = datetime.combine(calendar.trading_date(at), time(0),
                                      tzinfo=timezone(timedelta(minutes=calendar.utc_offset_minutes)))  # fmt: skip
    return (local_midnight + timedelta(minutes=row.block_close_minute)).astimezone(UTC)


@dataclass(frozen=True)
class ProposeBlockTrade:
    """Command: propose a block trade to a named counterparty; ``side`` is the proposer's side."""

    instrument_id: str
    side: str
    counterparty_organisation_id: int
    quantity_t: int
    price_cny: str


def _check_window(row: InstrumentRow, now: datetime) -> None:
    if not block_calendar(row).is_open(now):
        start, end = divmod(row.block_open_minute, 60), divmod(row.block_close_minute, 60)
        raise OrderRejected(
            f"block trades on {row.instrument_id} are accepted {start[0]:02d}:{start[1]:02d}–{end[0]:02d}:{end[1]:02d}"
            " Asia/Shanghai on trading days only", Reason.OUTSIDE_SESSION.value,
        )  # fmt: skip


def _lock_side(scope: Settlement, block: BlockTrade, side: str, *, actor: Principal) -> None:
    """Lock one party's side: escrow the seller's tonnes or hold the buyer's cash."""
    reference, now = f"block:{block.id}", scope.clock.now()
    if side == Side.SELL.value:
        escrow_for_sale(scope.session, scope.row, block.seller_organisation_id, block.quantity_t, reference,
                        actor=actor, clock=scope.clock, scope=scope)  # fmt: skip
        block.escrowed_t = block.quantity_t
    else:
        block.held_fen = buy_hold_fen(scope.row, block.price_ticks, block.quantity_t)
        cash.hold(scope.session, scope.cash_account(block.buyer_organisation_id), block.held_fen, reference, now)


def _release(scope: Settlement, block: BlockTrade, *, actor: str) -> None:
    """Release whatever the block still locks (the proposer's side; nothing else is ever locked)."""
    now = scope.clock.now()
    if block.held_fen:
        account = scope.cash_account(block.buyer_organisation_id)
        cash.release(scope.session, account, block.held_fen, f"block:{block.id}", now)
        block.held_fen = 0
    if block.escrowed_t:
        settle_release(scope.ledger, organisation_id=block.seller_organisation_id, quantity_t=block.escrowed_t,
                       batch_ids=scope.batch_ids(), actor=actor, reason=f"block:{block.id}")  # fmt: skip
        block.escrowed_t = 0


def propose(session: Session, cmd: ProposeBlockTrade, *, actor: Principal, clock: Clock,
            cache: MatcherCache) -> dict[str, Any]:  # fmt: skip
    """Propose a block trade; the proposer's tonnes are escrowed (sell) or cash held (buy).

    Raises:
        InvalidInput: Unknown side, unknown or ineligible counterparty, or the caller's own organisation.
        OrderRejected: Below the minimum block (``size_limit``), off lot or tick, out of the block band
            (``out_of_band``), outside the block window (``outside_session``).
        InsufficientUnits, InsufficientFunds: The proposer cannot lock its side.
    """
    row = lock_instrument(session, cmd.instrument_id)
    if cmd.side not in (Side.BUY.value, Side.SELL.value):
        raise InvalidInput("side is buy or sell (the proposer's side)")
    counterparty = session.get(Organisation, cmd.counterparty_organisation_id)
    if counterparty is None:
        raise InvalidInput(f"organisation {cmd.counterparty_organisation_id} does not exist")
    if counterparty.kind not in TRADER_KINDS:
        raise InvalidInput(f"{counterparty.label} is a {counterparty.kind.value}, not a trading participant")
    if counterparty.id == actor.organisation_id:
        raise InvalidInput("a block trade is between two different organisations")
    quantity = cmd.quantity_t
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise OrderRejected(f"quantity {quantity!r} is not whole tonnes > 0", Reason.NON_POSITIVE_QUANTITY.value)
    if quantity < row.block_min_t:
        raise OrderRejected(f"a block trade is at least {row.block_min_t} t; {quantity} t is below the minimum",
                            Reason.SIZE_LIMIT.value)  # fmt: skip
    if quantity % row.lot_t:
        raise OrderRejected(f"quantities are whole lots of {row.lot_t} t", Reason.OFF_LOT.value)
    price = price_ticks_of(row, cmd.price_cny)
    now = clock.now()
    _check_window(row, now)
    reference, _ = reference_and_seq(session, cache, row)
    low, high = price_band(reference, row.block_band_bp)
    if not low <= price <= high:
        raise out_of_band(cny_of(row, price), reference, row.block_band_bp, row.tick_fen, band="block band")
    sells = cmd.side == Side.SELL.value
    block = BlockTrade(
        instrument_id=row.instrument_id, proposer_organisation_id=actor.organisation_id,
        counterparty_organisation_id=counterparty.id, proposed_by_user_id=actor.user_id, side=cmd.side,
        buyer_organisation_id=counterparty.id if sells else actor.organisation_id,
        seller_organisation_id=actor.organisation_id if sells else counterparty.id, price_ticks=price,
        quantity_t=quantity, reference_price_ticks=reference, status=PROPOSED, held_fen=0, escrowed_t=0,
        expires_at=window_close(row, now), created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(block)
    session.flush()
    scope = Settlement(session, row, clock)
    _lock_side(scope, block, cmd.side, actor=actor)
    scope.audit.append(audit.Event(actor.actor, "block_trade.proposed", f"block_trade:{block.id}", {
        "instrument": row.instrument_id, "side": cmd.side, "counterparty": counterparty.id, "quantity_t": quantity,
        "price_ticks": price, "reference_price_ticks": reference, "held_fen": block.held_fen,
        "escrowed_t": block.escrowed_t, "expires_at": block.expires_at.isoformat()}))  # fmt: skip
    scope.append_audit()
    session.commit()
    return block_out(session, row, block)


def _open_block(session: Session, block_id: int, actor: Principal, party: str) -> tuple[InstrumentRow, BlockTrade]:
    """Lock the block's instrument and return the block, checking the caller is the named party."""
    block = session.get(BlockTrade, block_id)
    if block is None:
        raise NotFound(f"block trade {block_id} does not exist")
    row = lock_instrument(session, block.instrument_id)
    session.refresh(block)
    allowed = block.counterparty_organisation_id if party == "counterparty" else block.proposer_organisation_id
    if actor.organisation_id != allowed:
        raise PermissionDenied(f"only the block trade's {party} may do this")
    if block.status != PROPOSED:
        raise Conflict(f"block trade {block_id} is {block.status}; only a proposed block trade can change")
    return row, block


def confirm(session: Session, block_id: int, *, actor: Principal, clock: Clock, cache: MatcherCache) -> dict[str, Any]:
    """Confirm a block trade (the named counterparty only): lock its side and settle DvP, all in one transaction.

    Raises:
        PermissionDenied: The caller is not the named counterparty (the proposer included).
        Conflict: The block trade is no longer proposed, or its window closed (it has expired).
        OrderRejected: Outside the block window.
        InsufficientUnits, InsufficientFunds: The counterparty cannot lock its side (nothing changes).
    """
    row, block = _open_block(session, block_id, actor, "counterparty")
    now = clock.now()
    if now >= aware(block.expires_at):
        raise Conflict(f"block trade {block_id} expired at the window close ({aware(block.expires_at).isoformat()})")
    _check_window(row, now)
    counter_side = Side.BUY.value if block.side == Side.SELL.value else Side.SELL.value
    scope = Settlement(session, row, clock)
    scope.lock_parties(block.buyer_organisation_id, block.seller_organisation_id)  # ADR 015: in organisation order
    scope.fee_account()  # then the fee account, before any registry block (the counterparty may escrow next)
    _lock_side(scope, block, counter_side, actor=actor)
    _, seq = reference_and_seq(session, cache, row)
    trade = deliver_versus_payment(session, row, Delivery(
        seller_organisation_id=block.seller_organisation_id, buyer_organisation_id=block.buyer_organisation_id,
        price_ticks=block.price_ticks, quantity_t=block.quantity_t, held_fen=block.held_fen, keep_fen=0,
        reference=f"block:{block.id}", seq=seq, mode="block", block_trade_id=block.id), clock=clock,
        scope=scope)  # fmt: skip
    block.held_fen, block.escrowed_t = 0, 0
    block.status, block.decided_by_user_id, block.updated_at = SETTLED, actor.user_id, now
    scope.audit += [
        audit.Event(actor.actor, "block_trade.confirmed", f"block_trade:{block.id}", {"trade": trade.id}),
        trade_settled(row, trade),
    ]  # fmt: skip
    scope.append_audit()
    session.commit()
    return block_out(session, row, block)


def _close(session: Session, block_id: int, *, actor: Principal, clock: Clock, party: str,
           status: str) -> dict[str, Any]:  # fmt: skip
    row, block = _open_block(session, block_id, actor, party)
    scope = Settlement(session, row, clock)
    _release(scope, block, actor=actor.actor)
    block.status, block.updated_at = status, clock.now()
    if party == "counterparty":
        block.decided_by_user_id = actor.user_id
    scope.audit.append(audit.Event(actor.actor, f"block_trade.{status}", f"block_trade:{block.id}",
                                   {"instrument": row.instrument_id}))  # fmt: skip
    scope.append_audit()
    session.commit()
    return block_out(session, row, block)


def reject(session: Session, block_id: int, *, actor: Principal, clock: Clock) -> dict[str, Any]:
    """Decline a block trade (the named counterparty only); the proposer's side is released."""
    return _close(session, block_id, actor=actor, clock=clock, party="counterparty", status=REJECTED)


def withdraw(session: Session, block_id: int, *, actor: Principal, clock: Clock) -> dict[str, Any]:
    """Withdraw a block trade before it is confirmed (the proposer only); its side is released."""
    return _close(session, block_id, actor=actor, clock=clock, party="proposer", status=WITHDRAWN)


def expire_due(session: Session, *, actor: str, clock: Clock) -> list[int]:
    """Expire every proposal whose window has closed and release what it locked; return their ids.

    Idempotent: an expired proposal is not proposed any more, so a second sweep finds nothing. Run by the
    operator (``POST /block-trades/expire``) or the scheduled task.
    """
    now = clock.now()
    due = list(session.scalars(
        select(BlockTrade).where(BlockTrade.status == PROPOSED, BlockTrade.expires_at <= now).order_by(BlockTrade.id)
    ))  # fmt: skip
    # ADR 015's lock order across the sweep: instruments (sorted), then cash accounts in organisation order,
    # then registry blocks, and the audit head last (every entry of the sweep in one append, before the commit).
    events: list[audit.Event] = []
    scopes = {
        instrument_id: Settlement(session, lock_instrument(session, instrument_id), clock, events)
        for instrument_id in sorted({block.instrument_id for block in due})
    }  # fmt: skip
    for block in due:
        session.refresh(block)
    due = [block for block in due if block.status == PROPOSED]
    for block in sorted((b for b in due if b.held_fen), key=lambda b: b.buyer_organisation_id):
        scopes[block.instrument_id].cash_account(block.buyer_organisation_id)
    for block in due:
        _release(scopes[block.instrument_id], block, actor=MATCHER)
        block.status, block.updated_at = EXPIRED, now
        events.append(audit.Event(actor, "block_trade.expired", f"block_trade:{block.id}", {
            "instrument": block.instrument_id, "expires_at": aware(block.expires_at).isoformat()}))  # fmt: skip
    if events:
        audit.append_many(session, events, clock=clock)
    session.commit()
    return [block.id for block in due]


def block_out(session: Session, row: InstrumentRow, block: BlockTrade) -> dict[str, Any]:
    """Return a block trade as its parties see it (with the settled trade, if any)."""
    trade = session.scalars(select(Trade).where(Trade.block_trade_id == block.id)).first()
    return {
        "block_trade_id": block.id, "instrument_id": block.instrument_id, "status": block.status,
        "side": block.side, "proposer_organisation_id": block.proposer_organisation_id,
        "counterparty_organisation_id": block.counterparty_organisation_id,
        "buyer_organisation_id": block.buyer_organisation_id, "seller_organisation_id": block.seller_organisation_id,
        "quantity_t": block.quantity_t, "price_cny": cny_of(row, block.price_ticks),
        "reference_price_cny": cny_of(row, block.reference_price_ticks), "held_fen": block.held_fen,
        "escrowed_t": block.escrowed_t, "expires_at": aware(block.expires_at).isoformat(),
        "trade": None if trade is None else {
            "trade_id": trade.id, "notional_fen": trade.notional_fen, "buyer_fee_fen": trade.buyer_fee_fen,
            "seller_fee_fen": trade.seller_fee_fen, "serials": trade.serials},
    }  # fmt: skip


def _party_block(session: Session, block_id: int, actor: Principal) -> BlockTrade:
    block = session.get(BlockTrade, block_id)
    parties = (None,) if block is None else (block.proposer_organisation_id, block.counterparty_organisation_id)
    if block is None or (actor.role is not OrgKind.OPERATOR and actor.organisation_id not in parties):
        raise NotFound(f"block trade {block_id} does not exist or is not your organisation's")
    return block


def read_block(session: Session, block_id: int, *, actor: Principal) -> dict[str, Any]:
    """Return one block trade the caller's organisation is a party to (the operator sees all)."""
    block = _party_block(session, block_id, actor)
    row = session.get(InstrumentRow, block.instrument_id)
    assert row is not None
    return block_out(session, row, block)


def list_blocks(session: Session, *, actor: Principal, status: str | None = None) -> list[dict[str, Any]]:
    """Return the block trades of the caller's organisation (the operator: all), newest first."""
    query = select(BlockTrade)
    if actor.role is not OrgKind.OPERATOR:
        org = actor.organisation_id
        query = query.where(or_(BlockTrade.proposer_organisation_id == org,
                                BlockTrade.counterparty_organisation_id == org))  # fmt: skip
    if status is not None:
        query = query.where(BlockTrade.status == status)
    rows = {r.instrument_id: r for r in session.scalars(select(InstrumentRow))}
    blocks = session.scalars(query.order_by(BlockTrade.id.desc()).limit(500))
    return [block_out(session, rows[b.instrument_id], b) for b in blocks]
