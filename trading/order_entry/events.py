"""Event application: what the engine's events cause — order states, holds released, fills settled, the journal.

:func:`decide` hands one command to the pure engine (a rejection changes nothing anywhere); :func:`record`
applies its events inside the batch's transaction — ``Accepted``, ``Fill`` (settled DvP through
:func:`trading.settlement.deliver_versus_payment`, retired for the buyer on fill by ``carbon.ledger.retire``),
``Cancelled``/``Expired`` (the hold or escrow released), ``Amended`` — and writes the journal row.
Order rows change in memory and are written once at the batch's end (:func:`set_order`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm.attributes import set_committed_value

from carbon.ledger import Retirement, RetireUnits, settle_release
from core import audit
from core.auth import Principal
from trading import cash
from trading.journal import append_command
from trading.models import Trade, TradeOrder
from trading.order_entry.batch import BatchContext
from trading.orders import Accepted, Amended, Cancelled, Command, Event, Expired, Fill, Rejected, Side
from trading.refusals import rejection
from trading.settlement import MATCHER, Delivery, buy_hold_fen, deliver_versus_payment, trade_settled

OPEN, FILLED, CANCELLED, EXPIRED = "open", "filled", "cancelled", "expired"
_ORDERS = cast(Table, TradeOrder.__table__)
#: The columns of an order that change after it is placed (what :func:`set_order` writes).
_CHANGEABLE = ("status", "reason", "price_ticks", "quantity_t", "remaining_t", "filled_t", "held_fen", "updated_at")


@dataclass
class Changes:
    """What one command changed, for its answer."""

    orders: dict[str, TradeOrder] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)


def run(ctx: BatchContext, command: Command, batch: Changes, *, actor: Principal) -> list[Event]:
    """Hand one command to the engine and write everything it caused (the batch commits)."""
    events = decide(ctx, command)
    record(ctx, command, events, batch, actor=actor)
    return events


def decide(ctx: BatchContext, command: Command) -> list[Event]:
    """Hand one command to the engine; refuse it (nothing changed anywhere) or mark the batch as matched."""
    events = ctx.engine.handle(command)
    if type(events[0]) is Rejected:  # a rejection changes nothing in the engine
        state = ctx.engine.states.get(command.instrument_id)
        band = (state.reference_ticks, state.instrument.rules.band_bp) if state is not None else (0, 0)
        raise rejection(events[0].reason, price_cny=getattr(command, "price_cny", None), tick_fen=ctx.row.tick_fen,
                        reference_ticks=band[0], band_bp=band[1])  # fmt: skip
    ctx.matched = True  # from here on, any failure must throw the whole batch (and the engine) away
    return events


def record(ctx: BatchContext, command: Command, events: list[Event], batch: Changes, *, actor: Principal) -> None:
    """Write everything the engine's events caused, and the journal row (the batch commits)."""
    if len(events) > 2:  # the makers of several fills: read together, not one statement each
        ctx.load_orders([e.maker_order_id for e in events if type(e) is Fill])
    for event in events:
        _apply(ctx, event, batch, actor=actor)
    for order in batch.orders.values():
        if order.status == OPEN and order.remaining_t == 0:
            set_order(ctx, order, status=FILLED)
    append_command(ctx.session, command, ctx.clock.now())
    ctx.seq += 1


def order_of(ctx: BatchContext, batch: Changes, engine_id: str) -> TradeOrder:
    """Return an order the engine named, remembered in ``batch`` (what this command changed)."""
    order = batch.orders.get(engine_id)
    if order is None:
        order = ctx.order(engine_id)
        batch.orders[engine_id] = order
    return order


def _apply(ctx: BatchContext, event: Event, batch: Changes, *, actor: Principal) -> None:
    now, row = ctx.clock.now(), ctx.row
    if isinstance(event, Accepted):
        order = order_of(ctx, batch, event.order_id)
        ctx.audit.append(audit.Event(actor.actor, "order.accepted", f"order:{order.id}", {
            "instrument": row.instrument_id, "seq": event.seq, "side": order.side, "price_ticks": order.price_ticks,
            "quantity_t": order.quantity_t}))  # fmt: skip
    elif isinstance(event, Fill):
        _settle(ctx, event, batch)
    elif isinstance(event, Cancelled | Expired):
        order = order_of(ctx, batch, event.order_id)
        _free(ctx, order)
        set_order(ctx, order, status=EXPIRED if isinstance(event, Expired) else CANCELLED,
             reason=event.reason.value if isinstance(event, Cancelled) else "end_of_day", remaining_t=0,
             updated_at=now)  # fmt: skip
        ctx.audit.append(audit.Event(actor.actor if order.organisation_id == actor.organisation_id else MATCHER,
                                     f"order.{order.status}", f"order:{order.id}",
                                     {"seq": event.seq, "reason": order.reason}))  # fmt: skip
    elif isinstance(event, Amended):
        order = order_of(ctx, batch, event.order_id)
        set_order(ctx, order, price_ticks=event.price_ticks, remaining_t=event.quantity_t,
             quantity_t=order.filled_t + event.quantity_t, updated_at=now)  # fmt: skip
        ctx.audit.append(audit.Event(actor.actor, "order.amended", f"order:{order.id}", {
            "seq": event.seq, "price_ticks": event.price_ticks, "quantity_t": event.quantity_t}))  # fmt: skip


def set_order(ctx: BatchContext, order: TradeOrder, **values: Any) -> None:
    """Change an order in memory; its row is written once, at the end of the batch (``DeferredWrites.assign``).

    The object is not marked dirty, so no flush writes it meanwhile; a refused command's changes are put back
    by the batch's ``undo``.
    """
    old = {name: getattr(order, name) for name in values}
    for name, value in values.items():
        set_committed_value(order, name, value)
    # Every changeable column, as it now stands: all the batch's order rows go in one executemany.
    ctx.deferred.assign(_ORDERS, order.id, {name: getattr(order, name) for name in _CHANGEABLE},
                        partial(_put_back, order, old))  # fmt: skip


def _put_back(order: TradeOrder, old: dict[str, Any]) -> None:
    for name, value in old.items():
        set_committed_value(order, name, value)


def _free(ctx: BatchContext, order: TradeOrder) -> None:
    """Release what an order still holds: its cash hold or its escrowed tonnes."""
    if order.side == Side.BUY.value:
        account = ctx.cash_account(order.organisation_id)
        cash.release(ctx.session, account, order.held_fen, f"order:{order.id}", ctx.clock.now())
        set_order(ctx, order, held_fen=0)
    elif order.remaining_t:
        settle_release(ctx.ledger, organisation_id=order.organisation_id, quantity_t=order.remaining_t,
                       batch_ids=ctx.batch_ids(), actor=MATCHER, reason=f"order:{order.id}")  # fmt: skip


def _settle(ctx: BatchContext, fill: Fill, batch: Changes) -> None:
    """Settle one fill DvP and move both orders on: the order-book caller of :func:`deliver_versus_payment`."""
    session, row, now = ctx.session, ctx.row, ctx.clock.now()
    taker, maker = order_of(ctx, batch, fill.taker_order_id), order_of(ctx, batch, fill.maker_order_id)
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
    set_order(ctx, buy, held_fen=keep)
    for order in (buy, sell):
        remaining_t = order.remaining_t - quantity_t
        set_order(ctx, order, remaining_t=remaining_t, filled_t=order.filled_t + quantity_t, updated_at=now,
             **({"status": FILLED} if remaining_t == 0 else {}))  # fmt: skip
    batch.trades.append(trade)
    retirement = session.get(Retirement, trade.retirement_id) if trade.retirement_id is not None else None
    ctx.audit.append(trade_settled(row, trade, retirement))
