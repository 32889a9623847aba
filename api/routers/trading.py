"""Trading endpoints: instruments, cash accounts, order entry (place, cancel, amend), orders and fills.

Order entry is synchronous: the answer is sent after the command, its fills and their settlement have
committed (ADR 012), in a group commit with the commands that arrived alongside it (ADR 015). Every
order-entry call accepts an ``Idempotency-Key`` header: the same key with the same body returns the first
answer; with another body, a 409 problem.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from api.deps import ClockDep, CurrentUser, SessionDep
from api.fields import Answer, Cny, InstantText, PriceCnyText, with_cny
from api.pagination import Page, PageQuery, page_of, slice_of
from api.params import IdPath
from core.bounds import MAX_QUANTITY_T, PRICE_INTEGER_DIGITS, AmountFen, Id, MultilineText, PriceCny, Text, Tonnes
from core.errors import PermissionDenied
from trading import cash, listing, order_entry
from trading.instruments import BLOCK_RULES
from trading.journal import MatcherCache
from trading.models import InstrumentRow
from trading.orders import Side, TimeInForce

router = APIRouter(prefix="/api/v1", tags=["trading"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


class InstrumentRequest(BaseModel):
    """List an instrument with its fee schedule and its block desk.

    The block desk (ADR 013) defaults to the national rules: at least 100,000 t, within ±30 % of the
    previous close, 13:00–15:00 Asia/Shanghai (minutes 780–900 of the local day) on trading days. A venue
    (or the demo) may set other values; the window stays within one local day and on weekdays.
    """

    model_config = ConfigDict(extra="forbid")
    instrument_id: Text = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    credit_class: Annotated[Text, Field(max_length=100)]
    vintage_year: int = Field(ge=1990, le=2100)
    reference_price_cny: str = Field(pattern=rf"^\d{{1,{PRICE_INTEGER_DIGITS}}}(\.\d{{1,2}})?$")
    province_code: str | None = Field(default=None, pattern=r"^\d{2}$")
    style: str = "price_time"
    always_open: bool = False
    resale_next_day: bool = True
    buyer_fee_bp: int = Field(default=0, ge=0, le=1000)
    seller_fee_bp: int = Field(default=0, ge=0, le=1000)
    block_min_t: int = Field(default=BLOCK_RULES.min_quantity_t, gt=0, le=MAX_QUANTITY_T, strict=True)
    block_band_bp: int = Field(default=BLOCK_RULES.band_bp, ge=0, lt=10_000, strict=True)
    block_open_minute: int = Field(
        default=13 * 60,
        ge=0,
        lt=24 * 60,
        strict=True,
        description="Local minute of the day the block window opens (inclusive).",
    )
    block_close_minute: int = Field(
        default=15 * 60,
        gt=0,
        le=24 * 60,
        strict=True,
        description="Local minute of the day the block window closes (exclusive).",
    )


class CashRequest(BaseModel):
    """A deposit or withdrawal recorded by the operator, with the settlement bank's reference."""

    model_config = ConfigDict(extra="forbid")
    organisation_id: Id
    amount_fen: AmountFen
    reference: Text = Field(min_length=1, max_length=200)


class OrderRequest(BaseModel):
    """A limit order; ``account_organisation_id``, when sent, must be the caller's own organisation."""

    model_config = ConfigDict(extra="forbid")
    instrument_id: Annotated[Text, Field(max_length=100)]
    side: str = Field(pattern="^(buy|sell)$")
    price_cny: PriceCny
    quantity_t: Tonnes
    time_in_force: str = Field(default="gtc", pattern="^(gtc|day|ioc|fok)$")
    account_organisation_id: Id | None = None
    retire_on_fill: bool = False
    beneficiary: Text | None = Field(default=None, max_length=300)
    purpose: MultilineText | None = Field(default=None, max_length=2000)


class AmendRequest(BaseModel):
    """New remaining quantity and/or price of a resting order."""

    model_config = ConfigDict(extra="forbid")
    quantity_t: Tonnes | None = None
    price_cny: PriceCny | None = None


class InstrumentOut(Answer):
    """A listed instrument: credit class × vintage (× province), tick and lot, fees, the block desk's rules."""

    instrument_id: str
    credit_class: str
    vintage_year: int
    province_code: str | None
    style: str = Field(description="The matching style, e.g. `price_time`.")
    tick_fen: int
    lot_t: int
    reference_price_ticks: int
    reference_price_cny: PriceCnyText
    always_open: bool
    resale_next_day: bool
    buyer_fee_bp: int
    seller_fee_bp: int
    block_min_t: int
    block_band_bp: int
    block_open_minute: int
    block_close_minute: int


class DayClosed(Answer):
    """An instrument's closed day: the day orders that expired and the close price."""

    instrument_id: str
    expired_order_ids: list[int]
    close_price_cny: PriceCnyText | None


class CashBalance(Answer):
    """An organisation's cash at the exchange: available and held by open buy orders, in fen and in CNY."""

    organisation_id: int
    available_fen: int
    held_fen: int
    available_cny: Cny
    held_cny: Cny

    @model_validator(mode="before")
    @classmethod
    def _cny(cls, data: Any) -> Any:
        return with_cny(data, "available", "held")


class Fill(Answer):
    """A trade as one of its parties sees it; ``fee_fen`` is this party's fee."""

    trade_id: int
    instrument_id: str
    seq: int
    side: Side
    price_cny: PriceCnyText
    quantity_t: int
    notional_fen: int
    notional_cny: Cny
    fee_fen: int
    fee_cny: Cny
    buy_order_id: int | None
    sell_order_id: int | None
    serials: list[str]
    retirement_id: int | None
    at: InstantText

    @model_validator(mode="before")
    @classmethod
    def _cny(cls, data: Any) -> Any:
        return with_cny(data, "notional", "fee")


class OrderOut(Answer):
    """An order with its fills; ``held_fen`` is what a buy order still holds of the buyer's cash."""

    order_id: int
    instrument_id: str
    side: Side
    price_cny: PriceCnyText
    quantity_t: int
    filled_t: int
    remaining_t: int
    time_in_force: TimeInForce
    status: Literal["open", "filled", "cancelled", "expired"]
    reason: str | None
    held_fen: int
    held_cny: Cny
    retire_on_fill: bool
    fills: list[Fill]

    @model_validator(mode="before")
    @classmethod
    def _cny(cls, data: Any) -> Any:
        return with_cny(data, "held")


def _balance(organisation_id: int, available_fen: int, held_fen: int) -> CashBalance:
    return CashBalance.model_validate(
        {"organisation_id": organisation_id, "available_fen": available_fen, "held_fen": held_fen}
    )


def _cache(request: Request) -> MatcherCache:
    matchers: MatcherCache = request.app.state.matchers
    return matchers


def _entry(request: Request) -> order_entry.OrderEntry:
    entry: order_entry.OrderEntry = request.app.state.order_entry
    return entry


def _instrument_out(row: InstrumentRow) -> InstrumentOut:
    return InstrumentOut.model_validate({
        "instrument_id": row.instrument_id, "credit_class": row.credit_class, "vintage_year": row.vintage_year,
        "province_code": row.province_code, "style": row.style, "tick_fen": row.tick_fen, "lot_t": row.lot_t,
        "reference_price_ticks": row.reference_price_ticks, "always_open": row.always_open,
        "resale_next_day": row.resale_next_day, "buyer_fee_bp": row.buyer_fee_bp, "seller_fee_bp": row.seller_fee_bp,
        "block_min_t": row.block_min_t, "block_band_bp": row.block_band_bp,
        "block_open_minute": row.block_open_minute, "block_close_minute": row.block_close_minute,
        "reference_price_cny": listing.cny_of(row, row.reference_price_ticks),
    })  # fmt: skip


@router.post("/instruments", status_code=201)
def create_instrument(body: InstrumentRequest, session: SessionDep, principal: CurrentUser,
                      clock: ClockDep) -> InstrumentOut:  # fmt: skip
    """List an instrument (operator)."""
    row = listing.create_instrument(session, listing.CreateInstrument(**body.model_dump()), actor=principal,
                                     clock=clock)  # fmt: skip
    return _instrument_out(row)


@router.get("/instruments")
def list_instruments(session: SessionDep, request: Request, page: PageQuery) -> Page[InstrumentOut]:
    """Every listed instrument with its fee schedule."""
    query = select(InstrumentRow).order_by(InstrumentRow.instrument_id).limit(page.limit + 1).offset(page.offset)
    rows, following = page_of(request, list(session.scalars(query)), page)
    return Page[InstrumentOut](items=[_instrument_out(r) for r in rows], limit=page.limit, next=following)


@router.post("/instruments/{instrument_id}/end-of-day")
def close_instrument_day(instrument_id: str, request: Request, session: SessionDep, principal: CurrentUser,
                         clock: ClockDep) -> DayClosed:  # fmt: skip
    """Close the trading day of an instrument (operator): day orders expire and release their holds."""
    return DayClosed.model_validate(
        order_entry.end_of_day(session, instrument_id, actor=principal, clock=clock, cache=_cache(request))
    )


@router.post("/cash/deposits", status_code=201)
def record_deposit(body: CashRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> CashBalance:
    """Record money received by the settlement bank for an organisation (operator)."""
    account = cash.deposit(session, cash.CashMovement(**body.model_dump()), actor=principal, clock=clock)
    return _balance(account.organisation_id, account.available_fen, account.held_fen)


@router.post("/cash/withdrawals", status_code=201)
def record_withdrawal(body: CashRequest, session: SessionDep, principal: CurrentUser,
                      clock: ClockDep) -> CashBalance:  # fmt: skip
    """Record money paid out by the settlement bank (operator); only available money can leave."""
    account = cash.withdraw(session, cash.CashMovement(**body.model_dump()), actor=principal, clock=clock)
    return _balance(account.organisation_id, account.available_fen, account.held_fen)


@router.get("/cash")
def read_cash(session: SessionDep, principal: CurrentUser) -> CashBalance:
    """The caller's organisation's cash balances in fen and in CNY."""
    available_fen, held_fen = cash.balances(session, principal.organisation_id)
    return _balance(principal.organisation_id, available_fen, held_fen)


@router.post("/orders", status_code=201)
def place_order(body: OrderRequest, request: Request, session: SessionDep, principal: CurrentUser, clock: ClockDep,
                idempotency_key: IdempotencyKey = None) -> OrderOut:  # fmt: skip
    """Place a limit order: funds or tonnes are held, it matches, fills settle DvP, then the answer is sent."""
    if body.account_organisation_id not in (None, principal.organisation_id):
        raise PermissionDenied("orders can only be placed on your own organisation's account")
    fields = body.model_dump(exclude={"account_organisation_id"})
    return OrderOut.model_validate(
        order_entry.place_order(session, order_entry.PlaceOrderRequest(**fields), actor=principal, clock=clock,
                             cache=_cache(request), idempotency_key=idempotency_key, entry=_entry(request))
    )  # fmt: skip


@router.get("/orders")
def list_orders(session: SessionDep, principal: CurrentUser, request: Request, page: PageQuery,
                status: Annotated[str | None, Query(pattern="^(open|filled|cancelled|expired)$")] = None,
                ) -> Page[OrderOut]:  # fmt: skip
    """The caller's organisation's orders with their fills, newest first (of the newest 500)."""
    rows, following = slice_of(request, order_entry.list_orders(session, actor=principal, status=status), page)
    return Page[OrderOut](items=[OrderOut.model_validate(r) for r in rows], limit=page.limit, next=following)


@router.get("/orders/{order_id}")
def read_order(order_id: IdPath, session: SessionDep, principal: CurrentUser) -> OrderOut:
    """One of the caller's organisation's orders with its fills."""
    return OrderOut.model_validate(order_entry.read_order(session, order_id, actor=principal))


@router.post("/orders/{order_id}/cancel")
def cancel_order(order_id: IdPath, request: Request, session: SessionDep, principal: CurrentUser, clock: ClockDep,
                 idempotency_key: IdempotencyKey = None) -> OrderOut:  # fmt: skip
    """Cancel the remainder of an open order; its hold or escrow is released."""
    return OrderOut.model_validate(
        order_entry.cancel_order(session, order_id, actor=principal, clock=clock, cache=_cache(request),
                              idempotency_key=idempotency_key, entry=_entry(request))
    )  # fmt: skip


@router.post("/orders/{order_id}/amend")
def amend_order(order_id: IdPath, body: AmendRequest, request: Request, session: SessionDep, principal: CurrentUser,
                clock: ClockDep, idempotency_key: IdempotencyKey = None) -> OrderOut:  # fmt: skip
    """Change an open order's remaining quantity and/or price (the hold or escrow follows)."""
    cmd = order_entry.AmendOrderRequest(quantity_t=body.quantity_t, price_cny=body.price_cny)
    return OrderOut.model_validate(
        order_entry.amend_order(session, order_id, cmd, actor=principal, clock=clock, cache=_cache(request),
                             idempotency_key=idempotency_key, entry=_entry(request))
    )  # fmt: skip


@router.get("/fills")
def list_fills(session: SessionDep, principal: CurrentUser, request: Request, page: PageQuery) -> Page[Fill]:
    """The trades the caller's organisation took part in, newest first (of the newest 500)."""
    rows, following = slice_of(request, order_entry.list_fills(session, actor=principal), page)
    return Page[Fill](items=[Fill.model_validate(r) for r in rows], limit=page.limit, next=following)
