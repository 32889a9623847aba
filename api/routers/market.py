"""Market data (public, anonymous) and the cross-province flows report (every role).

The flows report is one table with a ``kind`` column: the registry's transfers and retirements
(:mod:`carbon.flows`) with the exchange's trades (:mod:`trading.flows`, which composes the two).

Market data is public, as exchanges publish their quotes and daily market reports (registry-trading §4.1,
§7): the book shows aggregated levels, trades show price, quantity and time, never a party (ADR 014). Being
public also lets a browser follow the stream with a plain ``EventSource``, which cannot send headers.

The stream is Server-Sent Events: ``id`` is the instrument's journal sequence number, so a client detects a
gap (ids are consecutive) and resumes with ``Last-Event-ID`` (or ``?after_seq=``). Each stream polls the
committed journal every ``market_stream_poll_seconds`` (0.5 s by default), so every API process sees every
commit, whoever made it; nothing is published before it is committed (ADR 014).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from api.deps import SessionDep
from api.downloads import CSV, XLSX, attachment
from api.fields import Answer, Cny, DateText, DecimalText, InstantText, PriceCnyText
from api.pagination import Page, next_link
from carbon import flows as carbon_flows
from core.bounds import INT32_MAX, INT64_MAX
from core.errors import InvalidInput
from core.settings import Settings
from trading import flows as trading_flows
from trading import market_data
from trading.market_data import BookReplicas, FeedRead, Update

public = APIRouter(prefix="/public/v1/market", tags=["market data"])
reports = APIRouter(prefix="/api/v1/reports", tags=["reports"])

#: A comment line this often keeps proxies from closing an idle stream.
KEEP_ALIVE_SECONDS = 15.0
Depth = Annotated[int, Query(ge=1, le=market_data.MAX_DEPTH, description="Price levels per side.")]


class Level(Answer):
    """One aggregated price level of the book."""

    price_cny: PriceCnyText
    quantity_t: int
    orders: int


class Book(Answer):
    """The committed L2 book of an instrument, best levels first, at feed position ``seq``."""

    instrument_id: str
    seq: int
    bids: list[Level]
    asks: list[Level]


class MarketTrade(Answer):
    """A trade as the market sees it: no parties, no order ids."""

    trade_id: int
    seq: int | None
    price_cny: PriceCnyText
    quantity_t: int
    turnover_cny: Cny
    at: InstantText
    mode: Literal["book", "block", "auction"]


class Bar(Answer):
    """One trading day of an instrument's order book: open, high, low, close, VWAP, volume and turnover."""

    date: DateText
    open_cny: PriceCnyText
    high_cny: PriceCnyText
    low_cny: PriceCnyText
    close_cny: PriceCnyText
    vwap_cny: PriceCnyText
    volume_t: int
    turnover_cny: Cny
    trades: int


class OffBookDay(Answer):
    """One trading day's block-trade or auction volume (not in the bars)."""

    date: DateText
    mode: Literal["block", "auction"]
    volume_t: int
    turnover_cny: Cny
    trades: int


class Bars(Answer):
    """Daily bars of an instrument (Asia/Shanghai trading days) and its off-book volume."""

    instrument_id: str
    close_rule: str
    timezone: Literal["Asia/Shanghai"]
    bars: list[Bar]
    off_book: list[OffBookDay]


class FlowQueryOut(Answer):
    """The report's filters as applied."""

    origin_province: str | None
    destination_province: str | None
    kind: Literal["trade", "transfer", "retirement"] | None
    start: DateText | None
    end: DateText | None


class FlowRow(Answer):
    """Tonnes (and, for trades, CNY) of one kind, month, origin → destination county pair, project and class."""

    kind: Literal["trade", "transfer", "retirement"]
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    origin_province: str | None
    origin_province_name: str | None
    origin_county: str | None
    origin_county_name: str | None
    destination_province: str | None
    destination_province_name: str | None
    destination_county: str | None
    destination_county_name: str | None
    project_id: int | None
    project_code: str | None
    credit_class: str | None
    tonnes: int
    cny: DecimalText | None


class FlowTotal(Answer):
    """Tonnes and CNY (trades only; null without trades) in total."""

    tonnes: int
    cny: DecimalText | None


class FlowsReport(Answer):
    """Tonnes moved by trade, transfer and retirement: the finest rows, totals by each dimension, the total."""

    query: FlowQueryOut
    currency: Literal["CNY"]
    timezone: Literal["Asia/Shanghai"]
    rows: list[FlowRow]
    totals: dict[str, list[dict[str, str | int | None]]] = Field(
        description="By dimension (kind, pair, county_pair, kind_pair, month, project, credit_class): its columns "
        "with `tonnes` and `cny`."
    )
    total: FlowTotal


def _replicas(request: Request) -> BookReplicas:
    replicas: BookReplicas = request.app.state.book_replicas
    return replicas


@public.get("/instruments/{instrument_id}/book")
def read_market_book(instrument_id: str, request: Request, session: SessionDep, depth: Depth = 5) -> Book:
    """The committed L2 book: aggregated price levels (price, tonnes, orders), best first, and its seq."""
    return Book.model_validate(market_data.read_book(session, _replicas(request), instrument_id, depth))


@public.get("/instruments/{instrument_id}/trades")
def list_market_trades(
    instrument_id: str,
    session: SessionDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=market_data.MAX_TRADES_PER_PAGE, description="Trades per page.")] = 50,
    before_id: Annotated[
        int | None, Query(ge=1, le=INT32_MAX, description="Page cursor (follow `next`): trades older than this id.")
    ] = None,
) -> Page[MarketTrade]:
    """Recent trades, newest first, a page at a time (anonymous: price, tonnes, turnover, time)."""
    found = market_data.recent_trades(session, instrument_id, limit=limit, before_id=before_id)
    cursor = found["next_before_id"]
    following = None if cursor is None else next_link(request, limit=limit, before_id=cursor)
    items = [MarketTrade.model_validate(t) for t in found["trades"]]
    return Page[MarketTrade](items=items, limit=limit, next=following)


@public.get("/instruments/{instrument_id}/bars")
def list_market_bars(
    instrument_id: str,
    session: SessionDep,
    start: Annotated[date | None, Query(description="First trading day (Asia/Shanghai).")] = None,
    end: Annotated[date | None, Query(description="Last trading day (Asia/Shanghai).")] = None,
) -> Bars:
    """Daily open, high, low, close (the instrument's close rule), VWAP, volume and turnover per trading day."""
    return Bars.model_validate(market_data.daily_bars(session, instrument_id, start=start, end=end))


def _sse(update: Update) -> str:
    data = json.dumps(update.data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {update.seq}\nevent: {update.kind}\ndata: {data}\n\n"


def _read(request: Request, instrument_id: str, after_seq: int | None, depth: int) -> FeedRead | Update:
    """One short transaction: the snapshot (no position yet) or the updates after the position."""
    with request.app.state.session_factory() as session:
        try:
            if after_seq is None:
                return market_data.feed_snapshot(session, _replicas(request), instrument_id, depth)
            return market_data.read_feed(session, _replicas(request), instrument_id, after_seq, depth=depth)
        finally:
            session.rollback()  # SQLite: end the read at once, it holds the writer lock


async def _events(
    request: Request, settings: Settings, instrument_id: str, after_seq: int | None, depth: int
) -> AsyncIterator[str]:
    deadline = time.monotonic() + settings.market_stream_max_seconds
    quiet_since = time.monotonic()
    yield f"retry: {int(settings.market_stream_poll_seconds * 2000)}\n\n"
    while time.monotonic() < deadline and not await request.is_disconnected():
        found = await anyio.to_thread.run_sync(partial(_read, request, instrument_id, after_seq, depth))
        if isinstance(found, Update):
            after_seq = found.seq
            yield _sse(found)
            continue
        for update in found.updates:
            after_seq = update.seq
            yield _sse(update)
        if found.updates:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        if not found.more:
            await anyio.sleep(settings.market_stream_poll_seconds)


@public.get(
    "/instruments/{instrument_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def stream_market(
    instrument_id: str,
    request: Request,
    session: SessionDep,
    depth: Depth = 5,
    after_seq: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="Resume after this seq (as Last-Event-ID).")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    """Server-Sent Events of the book and trades: a ``snapshot``, then one ``update`` per committed seq.

    With ``Last-Event-ID`` (sent by browsers on reconnect) or ``after_seq``, the stream resumes after that
    seq from the committed journal and trades instead of starting with a snapshot.
    """
    if last_event_id is not None:
        # ASCII digits only ("²".isdigit() is true but int("²") fails), within the seq column (BIGINT).
        if not (last_event_id.isascii() and last_event_id.isdigit()) or int(last_event_id) > INT64_MAX:
            raise InvalidInput("Last-Event-ID must be a sequence number", [{"pointer": "/header/Last-Event-ID"}])
        after_seq = int(last_event_id)
    # Refuse an unknown instrument or depth now, as a problem, then end this request's transaction:
    # the stream reads in its own short transactions (on SQLite a transaction holds the writer lock).
    try:
        market_data.read_book(session, _replicas(request), instrument_id, depth)
    finally:
        session.close()
    settings: Settings = request.app.state.settings
    return StreamingResponse(
        _events(request, settings, instrument_id, after_seq, depth),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# Reports -------------------------------------------------------------------------------------------------

Province = Annotated[str | None, Query(pattern=r"^\d{2}$", description="GB/T 2260 province code, e.g. 64.")]
Day = Annotated[date | None, Query(description="Day (Asia/Shanghai; the trading day of a trade), inclusive.")]
Kind = Annotated[Literal["trade", "transfer", "retirement"] | None, Query(description="Only flows of this kind.")]


@dataclass(frozen=True)
class FlowParameters:
    """The flows report's query string (``seller_province``/``buyer_province`` are the older names)."""

    origin_province: Province = None
    destination_province: Province = None
    kind: Kind = None
    start: Day = None
    end: Day = None
    seller_province: Annotated[str | None, Query(pattern=r"^\d{2}$", deprecated=True)] = None
    buyer_province: Annotated[str | None, Query(pattern=r"^\d{2}$", deprecated=True)] = None

    def query(self) -> carbon_flows.FlowQuery:
        """Return the domain query; an old name that contradicts its new one is an error."""
        problems = [
            f"{old} ({old_value}) contradicts {new} ({new_value}); give only {new}"
            for old, old_value, new, new_value in (
                ("seller_province", self.seller_province, "origin_province", self.origin_province),
                ("buyer_province", self.buyer_province, "destination_province", self.destination_province),
            )
            if old_value is not None and new_value is not None and old_value != new_value
        ]
        if problems:
            raise InvalidInput("; ".join(problems), problems=[{"reason": p} for p in problems])
        return carbon_flows.FlowQuery(
            self.origin_province or self.seller_province, self.destination_province or self.buyer_province,
            self.start, self.end, self.kind,
        )  # fmt: skip


FlowParams = Annotated[FlowParameters, Depends()]


def _flow_report(session: SessionDep, params: FlowParameters) -> dict[str, Any]:
    """The report: the registry's transfers and retirements (carbon) with the exchange's trades."""
    return trading_flows.flow_report(session, params.query())


@reports.get("/flows")
def read_flows_report(session: SessionDep, params: FlowParams) -> FlowsReport:
    """Tonnes moved by trade, transfer and retirement, by month and origin → destination province and county.

    Trades also carry their CNY value (gross, fees excluded); transfers and retirements have ``cny: null``.
    """
    report = _flow_report(session, params)
    return FlowsReport.model_validate(carbon_flows.as_json(report))


@reports.get("/flows.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_flows_csv(session: SessionDep, params: FlowParams) -> Response:
    """The flows report's rows as CSV."""
    report = _flow_report(session, params)
    return attachment(carbon_flows.flows_csv(report), CSV, "flows.csv")


@reports.get("/flows.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def export_flows_xlsx(session: SessionDep, params: FlowParams) -> Response:
    """The flows report as an Excel workbook: rows, then totals by kind, pairs, month, project and class."""
    report = _flow_report(session, params)
    return attachment(carbon_flows.flows_xlsx(report), XLSX, "flows.xlsx")
