"""The market screen (issue 23): instruments, one instrument's book, trades and candles, the order ticket.

Market data is public (ADR 014): the instrument page is an ES-module island (``market.mjs``) reading the public
JSON (``/public/v1/market/…``: book, trades, bars) and following the Server-Sent Events stream, which a browser
resumes with ``Last-Event-ID`` by itself. Trading is the signed-in trader's, under the page's session (ADR 042):
the ticket, cancel and amend are page routes under ``/market`` that check the CSRF token and call the services
the API's order routes call (``trading.order_entry``), each submission with the ``Idempotency-Key`` the ticket
was rendered with — a double click sends one key, so one order. A refusal comes back as the ticket (or the
orders' fragment) with the problem's message; htmx swaps only 2xx answers, so these fragments answer 200.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from access.permissions import TRADERS
from carbon.ledger import AccountKind, tradable_t
from carbon.ledger.tables import Account
from core.auth import Principal
from core.errors import InvalidInput, NotFound, ShanhaiError
from core.money import Fen
from trading import cash, order_entry
from trading.instruments import LISTING_RULES, price_band
from trading.journal import MatcherCache
from trading.listing import eligible_batch_ids
from trading.market_data import price_cny, trading_day
from trading.models import InstrumentRow, Trade
from trading.resale import BEIJING, bought_today_t
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, render
from web.static_files import static_url

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal | None, Depends(authorize)]
Trader = Annotated[Principal, Depends(authorize)]
InstrumentId = Annotated[str, Path(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")]
OrderId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
KeyField = Annotated[str, Form(alias="idempotency_key", min_length=8, max_length=200)]
#: What a trader may choose (the instrument's limit orders and their times in force, as the API takes them).
TIME_IN_FORCE = {"gtc": N_("Good till cancelled"), "day": N_("Day"), "ioc": N_("Immediate or cancel"),
                 "fok": N_("Fill or kill")}  # fmt: skip
ORDER_ROWS = 50
#: The words of the orders' and fills' tables (the services' values, translated at render).
WORDS = (N_("buy"), N_("sell"), N_("open"), N_("filled"), N_("cancelled"), N_("expired"))


def _instrument(session: Session, instrument_id: str) -> InstrumentRow:
    row = session.get(InstrumentRow, instrument_id)
    if row is None:
        raise NotFound(f"instrument {instrument_id} is not listed")
    return row


def _summary(session: Session, row: InstrumentRow, now: datetime) -> dict[str, Any]:
    """Last price, change against the reference (the previous close) and today's volume of the book."""
    last = session.scalar(
        select(Trade.price_ticks).where(Trade.instrument_id == row.instrument_id, Trade.mode == "book")
        .order_by(Trade.seq.desc(), Trade.id.desc()).limit(1)
    )  # fmt: skip
    # In UTC: SQLite stores an aware datetime by its wall-clock fields (as trading.resale counts T+1).
    midnight = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    volume = session.scalar(
        select(func.coalesce(func.sum(Trade.quantity_t), 0)).where(
            Trade.instrument_id == row.instrument_id, Trade.mode == "book",
            Trade.created_at >= midnight, Trade.created_at < midnight + timedelta(days=1),
        )
    )  # fmt: skip
    change = None if last is None else Fen((last - row.reference_price_ticks) * row.tick_fen).cny
    percent = None
    if last is not None and row.reference_price_ticks:
        percent = (Decimal(100 * (last - row.reference_price_ticks)) / row.reference_price_ticks).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
    low, high = price_band(row.reference_price_ticks, LISTING_RULES.band_bp)
    return {
        "row": row,
        "last_cny": None if last is None else price_cny(row, last),
        "change": None if change is None or percent is None else f"{change:+.2f} ({percent:+.2f} %)",
        "volume_t": int(volume or 0),
        "reference_cny": price_cny(row, row.reference_price_ticks),
        "band_low_cny": price_cny(row, low),
        "band_high_cny": price_cny(row, high),
        "tick_cny": Fen(row.tick_fen).cny,
        "day": trading_day(now).isoformat(),
    }


@router.get("/market", response_class=HTMLResponse)
def page_market(request: Request, session: SessionDep, clock: ClockDep, person: Person) -> HTMLResponse:
    """Every listed instrument with its last price, change and today's volume."""
    now = clock.now()
    rows = session.scalars(select(InstrumentRow).order_by(InstrumentRow.instrument_id))
    return render(request, "market.html", {"instruments": [_summary(session, r, now) for r in rows]},
                  principal=person)  # fmt: skip


def _balances(session: Session, row: InstrumentRow, person: Principal, now: datetime) -> dict[str, Any]:
    """What the trader may send: cash available (and held), tonnes tradable now under T+1."""
    available_fen, held_fen = cash.balances(session, person.organisation_id)
    account = session.scalar(
        select(Account).where(Account.organisation_id == person.organisation_id, Account.kind == AccountKind.HOLDING)
    )
    tradable = 0 if account is None else tradable_t(session, account, eligible_batch_ids(session, row))
    bought_today = bought_today_t(session, row, person.organisation_id, now) if row.resale_next_day else 0
    return {
        "available_cny": Fen(available_fen).cny,
        "held_cny": Fen(held_fen).cny,
        "tradable_t": tradable,
        "bought_today_t": min(bought_today, tradable),
        "sellable_t": max(tradable - bought_today, 0),
    }


def _mine(session: Session, row: InstrumentRow, person: Principal, now: datetime) -> dict[str, Any]:
    """Balances, open orders (each with the Idempotency-Keys of its cancel and amend forms) and fills."""
    orders = [
        {**o, "side": str(getattr(o["side"], "value", o["side"])), "cancel_key": str(uuid.uuid4()),
         "amend_key": str(uuid.uuid4())}
        for o in order_entry.list_orders(session, actor=person, status="open")
        if o["instrument_id"] == row.instrument_id
    ][:ORDER_ROWS]  # fmt: skip
    fills = [
        {**f, "notional_cny": Fen(f["notional_fen"]).cny, "fee_cny": Fen(f["fee_fen"]).cny}
        for f in order_entry.list_fills(session, actor=person)
        if f["instrument_id"] == row.instrument_id
    ][:ORDER_ROWS]
    return {"balances": _balances(session, row, person, now), "open_orders": orders, "fills": fills}


def _ticket(row: InstrumentRow, values: dict[str, Any], problem: str | None = None,
            placed: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The ticket's context: a new Idempotency-Key for the next submission, the values kept."""
    return {"key": str(uuid.uuid4()), "fields": values, "problem": problem, "placed": placed,
            "time_in_force": TIME_IN_FORCE, "tick_cny": Fen(row.tick_fen).cny}  # fmt: skip


@router.get("/market/{instrument_id}", response_class=HTMLResponse)
def page_market_instrument(
    request: Request, session: SessionDep, clock: ClockDep, person: Person, instrument_id: InstrumentId
) -> HTMLResponse:
    """An instrument: depth and book, last trades, daily candles — live — and, for traders, the ticket."""
    row = _instrument(session, instrument_id)
    now = clock.now()
    base = f"/public/v1/market/instruments/{row.instrument_id}"
    config = {"book": f"{base}/book?depth=10", "trades": f"{base}/trades?limit=30", "bars": f"{base}/bars",
              "stream": f"{base}/stream?depth=10",
              "echarts": static_url("vendor/echarts/echarts.esm.min.mjs")}  # fmt: skip
    trader = person is not None and person.role in TRADERS
    context: dict[str, Any] = {"s": _summary(session, row, now), "config": json.dumps(config), "trader": trader}
    if trader:
        assert person is not None
        context |= {"ticket": _ticket(row, {"side": "buy", "time_in_force": "gtc", "price": "", "quantity": ""}),
                    "mine": _mine(session, row, person, now)}  # fmt: skip
    return render(request, "market_instrument.html", context, principal=person)


@router.get("/market/{instrument_id}/mine", response_class=HTMLResponse)
def page_market_mine(
    request: Request, session: SessionDep, clock: ClockDep, person: Trader, instrument_id: InstrumentId
) -> HTMLResponse:
    """The trader's balances, open orders and fills on the instrument (refreshed on each market update)."""
    row = _instrument(session, instrument_id)
    context = {"mine": _mine(session, row, person, clock.now()), "row": row}
    return render(request, "_market_mine.html", context, principal=person)


def _cache(request: Request) -> MatcherCache:
    matchers: MatcherCache = request.app.state.matchers
    return matchers


def _entry(request: Request) -> order_entry.OrderEntry:
    entry: order_entry.OrderEntry = request.app.state.order_entry
    return entry


@router.post("/market/{instrument_id}/orders", response_class=HTMLResponse)
def page_market_order(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Trader,
    instrument_id: InstrumentId,
    idempotency_key: KeyField,
    csrf_token: CsrfField = "",
    side: Annotated[str, Form(pattern="^(buy|sell)$")] = "buy",
    price: Annotated[str, Form(max_length=30)] = "",
    quantity: Annotated[str, Form(max_length=30)] = "",
    time_in_force: Annotated[str, Form(pattern="^(gtc|day|ioc|fok)$")] = "gtc",
) -> HTMLResponse:
    """Place a limit order from the ticket (the API's ``place_order`` service, the ticket's Idempotency-Key)."""
    check_csrf(request, settings, csrf_token)
    row = _instrument(session, instrument_id)
    values = {"side": side, "price": price, "quantity": quantity, "time_in_force": time_in_force}
    problem, placed = None, None
    try:
        quantity_t = int(quantity.strip()) if quantity.strip().isascii() and quantity.strip().isdigit() else 0
        if quantity_t <= 0:
            raise InvalidInput("the quantity must be a whole number of tonnes above 0")
        command = order_entry.PlaceOrderRequest(instrument_id=row.instrument_id, side=side, price_cny=price.strip(),
                                                quantity_t=quantity_t, time_in_force=time_in_force)  # fmt: skip
        placed = order_entry.place_order(session, command, actor=person, clock=clock, cache=_cache(request),
                                         idempotency_key=idempotency_key, entry=_entry(request))  # fmt: skip
    except ShanhaiError as refused:
        session.rollback()
        problem = refused.detail
    context = {"ticket": _ticket(row, values, problem, placed), "row": row}
    response = render(request, "_market_ticket.html", context, principal=person)
    response.headers["HX-Trigger"] = "mine-changed"
    return response


def _order_instrument(session: Session, order_id: int, person: Principal) -> InstrumentRow:
    found = order_entry.read_order(session, order_id, actor=person)  # NotFound unless the organisation's own
    return _instrument(session, found["instrument_id"])


def _after_change(request: Request, session: Session, row: InstrumentRow, person: Principal, clock: Any,
                  problem: str | None) -> HTMLResponse:  # fmt: skip
    context = {"mine": _mine(session, row, person, clock.now()), "row": row, "problem": problem}
    return render(request, "_market_mine.html", context, principal=person)


@router.post("/market/orders/{order_id}/cancel", response_class=HTMLResponse)
def page_market_cancel(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Trader,
    order_id: OrderId,
    idempotency_key: KeyField,
    csrf_token: CsrfField = "",
) -> HTMLResponse:
    """Cancel one of the organisation's open orders (the API's ``cancel_order`` service)."""
    check_csrf(request, settings, csrf_token)
    row = _order_instrument(session, order_id, person)
    problem = None
    try:
        order_entry.cancel_order(session, order_id, actor=person, clock=clock, cache=_cache(request),
                                 idempotency_key=idempotency_key, entry=_entry(request))  # fmt: skip
    except ShanhaiError as refused:
        session.rollback()
        problem = refused.detail
    return _after_change(request, session, row, person, clock, problem)


@router.post("/market/orders/{order_id}/amend", response_class=HTMLResponse)
def page_market_amend(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Trader,
    order_id: OrderId,
    idempotency_key: KeyField,
    csrf_token: CsrfField = "",
    price: Annotated[str, Form(max_length=30)] = "",
    quantity: Annotated[str, Form(max_length=30)] = "",
) -> HTMLResponse:
    """Change an open order's price and/or remaining tonnes (the API's ``amend_order`` service)."""
    check_csrf(request, settings, csrf_token)
    row = _order_instrument(session, order_id, person)
    problem = None
    try:
        quantity_t = None
        if quantity.strip():
            if not (quantity.strip().isascii() and quantity.strip().isdigit()) or int(quantity.strip()) <= 0:
                raise InvalidInput("the quantity must be a whole number of tonnes above 0")
            quantity_t = int(quantity.strip())
        command = order_entry.AmendOrderRequest(quantity_t=quantity_t, price_cny=price.strip() or None)
        order_entry.amend_order(session, order_id, command, actor=person, clock=clock, cache=_cache(request),
                                idempotency_key=idempotency_key, entry=_entry(request))  # fmt: skip
    except ShanhaiError as refused:
        session.rollback()
        problem = refused.detail
    return _after_change(request, session, row, person, clock, problem)
