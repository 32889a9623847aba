"""Order-entry steps: what one command does inside its batch — place, cancel, amend, close the day.

A step reads and refuses first (idempotency, shape, funds or tonnes, then the engine), writes after; see
:mod:`trading.order_entry.batch`. :func:`job_of` turns an :class:`~trading.order_entry.requests.OrderCommand`
into the job that runs it (here, or in the matcher process).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from carbon.ledger import check_receiver, escrow, escrow_taken, settle_release
from core.auth import Principal
from core.canonical import canonical_hash
from core.db import add_now, insert_rows, take_back_now
from core.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound, OrderRejected
from trading import cash
from trading.listing import cny_of, price_ticks_of
from trading.models import IdempotencyRecord, TradeOrder
from trading.order_entry.answers import order_answer, order_out, own_order
from trading.order_entry.batch import BatchContext, Job, Step
from trading.order_entry.events import CANCELLED, EXPIRED, OPEN, Changes, decide, record, run, set_order
from trading.order_entry.requests import AmendOrderRequest, OrderCommand, PlaceOrderRequest
from trading.orders import AmendOrder, CancelOrder, DayClosed, EndOfDay, PlaceOrder, Side, TimeInForce
from trading.resale import check_escrowable, escrowable_for_sale
from trading.settlement import buy_hold_fen

TIME_IN_FORCE = frozenset(t.value for t in TimeInForce)
_IDEMPOTENCY = cast(Table, IdempotencyRecord.__table__)


def job_of(command: OrderCommand, instrument_id: str = "") -> Job:
    """Return a job that runs an order-entry command in a batch (on ``instrument_id``'s book, when named)."""
    return Job(step_of(command), command.idempotency, instrument_id, command=command)


def step_of(command: OrderCommand) -> Step:
    """Return the batch step that runs an order-entry command."""
    if command.op == "place" and command.place is not None:
        return place_step(command.place, command.actor, command.idempotency_key)
    if command.op == "cancel" and command.order_id is not None:
        return cancel_step(command.order_id, command.actor, command.idempotency_key)
    if command.op == "amend" and command.order_id is not None and command.amend is not None:
        return amend_step(command.order_id, command.amend, command.actor, command.idempotency_key)
    raise ValueError(f"not an order-entry command: {command!r}")


def _idempotent(
    ctx: BatchContext, organisation_id: int, key: str | None, request: dict[str, Any]
) -> dict[str, Any] | None:
    """Return the first answer to a repeated key with the same body (``None`` for a new key).

    Looks in the batch's records first (read up front for the whole batch, plus those its earlier commands
    wrote), so a key repeated within one batch is answered like one repeated across batches.

    Raises:
        IdempotencyConflict: The key was used with a different body.
    """
    if key is None:
        return None
    if (organisation_id, key) not in ctx.idempotency:
        ctx.prefetch_idempotency([(organisation_id, key)])
    record = ctx.idempotency[(organisation_id, key)]
    if record is None:
        return None
    sha256, response = record
    if sha256 != canonical_hash(request):
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used with a different request")
    return response


def _remember(ctx: BatchContext, organisation_id: int, key: str | None, request: dict[str, Any],
              response: dict[str, Any], now: datetime) -> None:  # fmt: skip
    if key is not None:
        sha256 = canonical_hash(request)
        record = {"organisation_id": organisation_id, "key": key, "request_sha256": sha256, "response": response,
                  "created_at": now}  # fmt: skip
        insert_rows(ctx.session, _IDEMPOTENCY, [record])
        ctx.idempotency[(organisation_id, key)] = (sha256, response)
        ctx.remembered.append((organisation_id, key))


def _escrow(ctx: BatchContext, order: TradeOrder, quantity_t: int, actor: Principal) -> None:
    """Escrow tonnes for a sell order that :func:`check_escrowable` accepted (after the engine took the order)."""
    escrow(ctx.ledger, organisation_id=order.organisation_id, quantity_t=quantity_t, actor=actor,
           batch_ids=ctx.batch_ids(), reason=f"order:{order.id}")  # fmt: skip


def place_step(cmd: PlaceOrderRequest, actor: Principal, idempotency_key: str | None = None) -> Step:
    """Return the batch step that places one order (what :func:`place_order` runs)."""
    request = {"op": "place", **cmd.__dict__}

    def step(ctx: BatchContext) -> dict[str, Any]:
        session, row = ctx.session, ctx.row
        replayed = _idempotent(ctx, actor.organisation_id, idempotency_key, request)
        if replayed is not None:
            return replayed
        if cmd.side not in (Side.BUY.value, Side.SELL.value) or cmd.time_in_force not in TIME_IN_FORCE:
            raise InvalidInput("side is buy or sell; time_in_force is gtc, day, ioc or fok")
        if cmd.retire_on_fill and (cmd.side != Side.BUY.value or not cmd.beneficiary or not cmd.purpose):
            raise InvalidInput("retire_on_fill is for buy orders and needs a beneficiary and a purpose")
        if isinstance(cmd.quantity_t, bool) or not isinstance(cmd.quantity_t, int) or cmd.quantity_t <= 0:
            raise OrderRejected(f"quantity {cmd.quantity_t!r} is not whole tonnes > 0", "non_positive_quantity")
        price_ticks = price_ticks_of(row, cmd.price_cny)
        now = ctx.clock.now()
        # Every refusal is found before anything is written (a command has no savepoint, ADR 015 amendment):
        # funds or tonnes first (reads), then the engine; the hold or escrow is written once the engine took it.
        if cmd.side == Side.BUY.value:
            # never deliver to a non-holder (the principal carries its organisation's kind: no read)
            check_receiver(ctx.ledger, actor.organisation_id, pointer="/side", organisation_kind=actor.role)
            held_fen = buy_hold_fen(row, price_ticks, cmd.quantity_t)
            cash.check_hold(ctx.cash_account(actor.organisation_id), held_fen)
        else:  # one read and lock of the seller's blocks for the check and, once the engine took it, the escrow
            escrowing = escrowable_for_sale(ctx.ledger, row, actor.organisation_id, cmd.quantity_t,
                                            batch_ids=ctx.batch_ids())  # fmt: skip
        order = TradeOrder(
            instrument_id=row.instrument_id, organisation_id=actor.organisation_id, placed_by_user_id=actor.user_id,
            side=cmd.side, price_ticks=price_ticks, quantity_t=cmd.quantity_t, remaining_t=cmd.quantity_t,
            filled_t=0, time_in_force=cmd.time_in_force, status=OPEN, held_fen=0,
            retire_on_fill=cmd.retire_on_fill, beneficiary=cmd.beneficiary, purpose=cmd.purpose, created_at=now,
            updated_at=now,
        )  # fmt: skip
        add_now(session, order)  # one INSERT … RETURNING: the engine needs the order's id
        command = PlaceOrder(seq=ctx.seq, at=now, instrument_id=row.instrument_id, order_id=order.engine_id,
                             account_id=str(actor.organisation_id), side=Side(cmd.side), quantity_t=cmd.quantity_t,
                             price_cny=cny_of(row, price_ticks),
                             time_in_force=TimeInForce(cmd.time_in_force))  # fmt: skip
        try:
            events = decide(ctx, command)
        except OrderRejected:
            take_back_now(session, order)  # the only row written (or queued) so far, referenced by nothing yet
            raise
        ctx.remember(order)
        if cmd.side == Side.BUY.value:
            set_order(ctx, order, held_fen=held_fen)
            cash.hold(session, ctx.cash_account(actor.organisation_id), held_fen, f"order:{order.id}", now)
        else:
            escrow_taken(ctx.ledger, escrowing, actor=actor, reason=f"order:{order.id}")
        batch = Changes(orders={order.engine_id: order})
        record(ctx, command, events, batch, actor=actor)
        response = order_answer(row, order, batch.trades)
        _remember(ctx, actor.organisation_id, idempotency_key, request, response, now)
        return response

    return step


def _own_open_order(ctx: BatchContext, order_id: int, actor: Principal, doing: str) -> TradeOrder:
    """Return one of the caller's open orders for a cancel or an amend (``doing``: what would be done to it)."""
    order = own_order(ctx.session, order_id, actor)
    ctx.remember(order)
    if order.status != OPEN:
        raise Conflict(f"order {order_id} is {order.status}; only open orders can be {doing}")
    return order


def _instrument_of_order(session: Session, order_id: int) -> str:
    instrument_id = session.scalar(select(TradeOrder.instrument_id).where(TradeOrder.id == order_id))
    if instrument_id is None:
        raise NotFound(f"order {order_id} does not exist or is not your organisation's")
    return instrument_id


def cancel_step(order_id: int, actor: Principal, idempotency_key: str | None = None) -> Step:
    """Return the batch step that cancels one order (what :func:`cancel_order` runs)."""
    request = {"op": "cancel", "order_id": order_id}

    def step(ctx: BatchContext) -> dict[str, Any]:
        session, row = ctx.session, ctx.row
        replayed = _idempotent(ctx, actor.organisation_id, idempotency_key, request)
        if replayed is not None:
            return replayed
        order = _own_open_order(ctx, order_id, actor, "cancelled")
        now = ctx.clock.now()
        command = CancelOrder(seq=ctx.seq, at=now, instrument_id=row.instrument_id, order_id=order.engine_id,
                              account_id=str(actor.organisation_id))  # fmt: skip
        run(ctx, command, Changes(orders={order.engine_id: order}), actor=actor)
        response = order_out(session, row, order)
        _remember(ctx, actor.organisation_id, idempotency_key, request, response, now)
        return response

    return step


def amend_step(order_id: int, cmd: AmendOrderRequest, actor: Principal, idempotency_key: str | None = None) -> Step:
    """Return the batch step that amends one order (what :func:`amend_order` runs)."""
    request = {"op": "amend", "order_id": order_id, **cmd.__dict__}

    def step(ctx: BatchContext) -> dict[str, Any]:
        session, row = ctx.session, ctx.row
        replayed = _idempotent(ctx, actor.organisation_id, idempotency_key, request)
        if replayed is not None:
            return replayed
        order = _own_open_order(ctx, order_id, actor, "amended")
        quantity_t = order.remaining_t if cmd.quantity_t is None else cmd.quantity_t
        if isinstance(quantity_t, bool) or not isinstance(quantity_t, int) or quantity_t <= 0:
            raise OrderRejected(f"quantity {quantity_t!r} is not whole tonnes > 0", "non_positive_quantity")
        price_ticks = order.price_ticks if cmd.price_cny is None else price_ticks_of(row, cmd.price_cny)
        now = ctx.clock.now()
        # Refusals first (funds or tonnes, then the engine), writes after: a command has no savepoint.
        required = buy_hold_fen(row, price_ticks, quantity_t) if order.side == Side.BUY.value else 0
        if order.side == Side.BUY.value and required > order.held_fen:
            cash.check_hold(ctx.cash_account(actor.organisation_id), required - order.held_fen)
        elif order.side == Side.SELL.value and quantity_t > order.remaining_t:
            check_escrowable(ctx.ledger, row, actor.organisation_id, quantity_t - order.remaining_t,
                             batch_ids=ctx.batch_ids())  # fmt: skip
        command = AmendOrder(seq=ctx.seq, at=now, instrument_id=row.instrument_id, order_id=order.engine_id,
                             account_id=str(actor.organisation_id), quantity_t=quantity_t,
                             price_cny=cny_of(row, price_ticks))  # fmt: skip
        events = decide(ctx, command)
        if order.side == Side.BUY.value:
            account = ctx.cash_account(actor.organisation_id)
            if required > order.held_fen:
                cash.hold(session, account, required - order.held_fen, f"order:{order.id}", now)
            else:
                cash.release(session, account, order.held_fen - required, f"order:{order.id}", now)
            set_order(ctx, order, held_fen=required)
        elif quantity_t > order.remaining_t:
            _escrow(ctx, order, quantity_t - order.remaining_t, actor)
        elif quantity_t < order.remaining_t:
            settle_release(ctx.ledger, organisation_id=order.organisation_id,
                           quantity_t=order.remaining_t - quantity_t, batch_ids=ctx.batch_ids(), actor=actor.actor,
                           reason=f"order:{order.id}")  # fmt: skip
        record(ctx, command, events, Changes(orders={order.engine_id: order}), actor=actor)
        response = order_out(session, row, order)
        _remember(ctx, actor.organisation_id, idempotency_key, request, response, now)
        return response

    return step


def end_of_day_step(instrument_id: str, actor: Principal) -> Step:
    """Return the batch step that closes an instrument's day (what :func:`~trading.order_entry.end_of_day` runs)."""

    def step(ctx: BatchContext) -> dict[str, Any]:
        batch = Changes()
        command = EndOfDay(seq=ctx.seq, at=ctx.clock.now(), instrument_id=ctx.row.instrument_id)
        events = run(ctx, command, batch, actor=actor)
        closed = [e for e in events if isinstance(e, DayClosed)]
        expired = sorted(o.id for o in batch.orders.values() if o.status in (EXPIRED, CANCELLED))
        return {"instrument_id": instrument_id, "expired_order_ids": expired,
                "close_price_cny": cny_of(ctx.row, closed[0].close_ticks) if closed else None}  # fmt: skip

    return step
