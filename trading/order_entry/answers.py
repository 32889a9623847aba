"""Answers: orders with their fills and trades as their parties see them (the read side of order entry)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.auth import Principal
from core.db import pending_objects
from core.errors import NotFound
from trading.listing import cny_of
from trading.models import InstrumentRow, Trade, TradeOrder
from trading.orders import Side


def trade_out(row: InstrumentRow, trade: Trade, organisation_id: int) -> dict[str, Any]:
    """Return a trade as seen by one of its parties."""
    side = Side.BUY.value if trade.buyer_organisation_id == organisation_id else Side.SELL.value
    return {
        "trade_id": trade.id, "instrument_id": trade.instrument_id, "seq": trade.seq, "side": side,
        "price_cny": cny_of(row, trade.price_ticks), "quantity_t": trade.quantity_t,
        "notional_fen": trade.notional_fen,
        "fee_fen": trade.buyer_fee_fen if side == Side.BUY.value else trade.seller_fee_fen,
        "buy_order_id": trade.buy_order_id, "sell_order_id": trade.sell_order_id, "serials": trade.serials,
        "retirement_id": trade.retirement_id, "at": trade.created_at.isoformat(),
    }  # fmt: skip


def order_out(session: Session, row: InstrumentRow, order: TradeOrder) -> dict[str, Any]:
    """Return an order with its fills."""
    session.flush()
    trades = {t.id: t for t in session.scalars(
        select(Trade).where(or_(Trade.buy_order_id == order.id, Trade.sell_order_id == order.id)).order_by(Trade.id)
    )}  # fmt: skip
    # In an order-entry batch the batch's own trades are written at its end (ADR 035): take them from memory.
    trades |= {t.id: t for t in pending_objects(session, Trade) if order.id in (t.buy_order_id, t.sell_order_id)}
    return order_answer(row, order, [trades[i] for i in sorted(trades)])


def order_answer(row: InstrumentRow, order: TradeOrder, trades: list[Trade]) -> dict[str, Any]:
    """Return an order with the given fills (all of them: a new order's fills are its own command's trades)."""
    return {
        "order_id": order.id, "instrument_id": order.instrument_id, "side": order.side,
        "price_cny": cny_of(row, order.price_ticks), "quantity_t": order.quantity_t, "filled_t": order.filled_t,
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
    order = own_order(session, order_id, actor)
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


def own_order(session: Session, order_id: int, actor: Principal) -> TradeOrder:
    """Return one of the caller's orders.

    Raises:
        NotFound: No such order, or another organisation's.
    """
    order = session.get(TradeOrder, order_id)  # in a batch, its in-memory values win over the row (set_order)
    if order is None or order.organisation_id != actor.organisation_id:
        raise NotFound(f"order {order_id} does not exist or is not your organisation's")
    return order
