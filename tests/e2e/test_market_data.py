"""Market data over the API: the committed L2 book, trade pages, daily bars by Shanghai trading day."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.stream_client import SseParser
from carbon.ledger import CreditClass
from core.auth import OrgKind, principal_of
from core.clock import FixedClock
from core.settings import Settings
from shanhai.app import create_app
from trading.close_price import CloseRule
from trading.market_data import bars_from_trades
from trading.models import JournalEntry, Trade
from trading.order_entry import PlaceOrderRequest, place_order

from .market_helpers import Login, deposit, issue, list_instrument, order, place, user_of

FCT = "FCT-2025"
MARKET = "/public/v1/market/instruments"


@pytest.fixture
def market(client: TestClient, login: Login, session: Session, clock: FixedClock) -> None:
    issue(session, clock, 1, "test:market", CreditClass.FORESTRY_CARBON_TICKET, 1000)
    list_instrument(client, login, FCT, "FCT", "60", buyer_fee_bp=50, seller_fee_bp=30)
    deposit(client, login, session, OrgKind.ENTERPRISE, 10_000_000)


def book(client: TestClient, depth: int = 5) -> dict[str, Any]:
    response = client.get(f"{MARKET}/{FCT}/book", params={"depth": depth})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_book_aggregates_committed_levels_best_first(market: None, client: TestClient, login: Login) -> None:
    assert book(client) == {"instrument_id": FCT, "seq": 0, "bids": [], "asks": []}
    order(client, login, "nx-bureau", FCT, "sell", "61.00", 10)
    order(client, login, "nx-bureau", FCT, "sell", "60.50", 20)
    order(client, login, "nx-bureau", FCT, "sell", "61.00", 5)
    order(client, login, "fj-enterprise", FCT, "buy", "59.00", 7)
    order(client, login, "fj-enterprise", FCT, "buy", "59.50", 3)
    order(client, login, "fj-enterprise", FCT, "buy", "60.50", 15)  # takes 15 of the 20 at 60.50
    assert book(client) == {
        "instrument_id": FCT,
        "seq": 6,
        "bids": [{"price_cny": "59.50", "quantity_t": 3, "orders": 1},
                 {"price_cny": "59.00", "quantity_t": 7, "orders": 1}],
        "asks": [{"price_cny": "60.50", "quantity_t": 5, "orders": 1},
                 {"price_cny": "61.00", "quantity_t": 15, "orders": 2}],
    }  # fmt: skip
    assert book(client, depth=1)["asks"] == [{"price_cny": "60.50", "quantity_t": 5, "orders": 1}]
    # Anonymous: nothing names a party or an order.
    assert "account" not in str(book(client)) and "order_id" not in str(book(client))


def test_an_uncommitted_match_never_shows(
    market: None, app: FastAPI, client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    order(client, login, "nx-bureau", FCT, "sell", "60.00", 10)
    before = book(client)
    buyer = principal_of(user_of(session, OrgKind.ENTERPRISE), "test")

    def crash() -> None:
        raise RuntimeError("power cut before the commit")

    with pytest.raises(RuntimeError, match="power cut"):
        place_order(session, PlaceOrderRequest(FCT, "buy", "60.00", 10), actor=buyer, clock=clock,
                    cache=app.state.matchers, before_commit=crash)  # fmt: skip
    session.rollback()
    assert book(client) == before  # the computed fill was never committed, so it is not shown
    assert client.get(f"{MARKET}/{FCT}/trades").json()["items"] == []
    order(client, login, "fj-enterprise", FCT, "buy", "60.00", 4)
    assert book(client)["asks"] == [{"price_cny": "60.00", "quantity_t": 6, "orders": 1}]
    assert book(client)["seq"] == 2


def test_trades_are_paged_newest_first(market: None, client: TestClient, login: Login) -> None:
    for quantity in (1, 2, 3, 4, 5):
        order(client, login, "nx-bureau", FCT, "sell", "60.00", quantity)
        order(client, login, "fj-enterprise", FCT, "buy", "60.00", quantity)
    first = client.get(f"{MARKET}/{FCT}/trades", params={"limit": 2}).json()
    assert [t["quantity_t"] for t in first["items"]] == [5, 4]
    assert first["items"][0] == {
        "trade_id": first["items"][0]["trade_id"], "seq": 10, "price_cny": "60.00", "quantity_t": 5,
        "turnover_cny": "300.00", "at": "2026-11-25T09:30:00+00:00", "mode": "book",
    }  # fmt: skip
    assert first["next"] == f"{MARKET}/{FCT}/trades?limit=2&before_id={first['items'][-1]['trade_id']}"
    second = client.get(first["next"]).json()
    assert [t["quantity_t"] for t in second["items"]] == [3, 2]
    last = client.get(second["next"]).json()
    assert [t["quantity_t"] for t in last["items"]] == [1] and last["next"] is None


def test_daily_bars_by_shanghai_trading_day(
    market: None, app: FastAPI, client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    # 2026-11-25 09:30 UTC is 17:30 in Shanghai: day 1 is 2026-11-25.
    for price, quantity in (("60.00", 10), ("62.00", 30), ("59.00", 10)):
        order(client, login, "nx-bureau", FCT, "sell", price, quantity)
        order(client, login, "fj-enterprise", FCT, "buy", price, quantity)
    clock.advance(timedelta(hours=7))  # 16:30 UTC = 00:30 on 2026-11-26 in Shanghai: the next trading day
    place(session, app, clock, OrgKind.FORESTRY_BUREAU, FCT, "sell", "61.00", 20)
    place(session, app, clock, OrgKind.ENTERPRISE, FCT, "buy", "61.00", 20)
    bars = client.get(f"{MARKET}/{FCT}/bars").json()
    assert bars["close_rule"] == "vwap_day" and bars["timezone"] == "Asia/Shanghai"
    # Day 1 by hand: VWAP = (60×10 + 62×30 + 59×10) / 50 = 3050 / 50 = 61.00; turnover 3050.00.
    assert bars["bars"] == [
        {"date": "2026-11-25", "open_cny": "60.00", "high_cny": "62.00", "low_cny": "59.00", "close_cny": "61.00",
         "vwap_cny": "61.00", "volume_t": 50, "turnover_cny": "3050.00", "trades": 3},
        {"date": "2026-11-26", "open_cny": "61.00", "high_cny": "61.00", "low_cny": "61.00", "close_cny": "61.00",
         "vwap_cny": "61.00", "volume_t": 20, "turnover_cny": "1220.00", "trades": 1},
    ]  # fmt: skip
    window = client.get(f"{MARKET}/{FCT}/bars", params={"start": "2026-11-26", "end": "2026-11-26"}).json()
    assert [b["date"] for b in window["bars"]] == ["2026-11-26"]


def test_close_rules_chain_the_previous_close() -> None:
    day1 = (date(2026, 11, 25), [(6000, 60, 360000), (6200, 40, 248000)])
    day2 = (date(2026, 11, 26), [(6100, 1, 6100), *[(6300, 1, 6300)] * 5])
    guangdong = bars_from_trades([day1, day2], CloseRule.GUANGDONG, 5900)
    assert [b.close_ticks for b in guangdong] == [5900, 5900]  # ≤ 100 t: close = open = previous close
    hubei = bars_from_trades([day1, day2], CloseRule.HUBEI_LAST_5, 5900)
    assert [b.close_ticks for b in hubei] == [6080, 6300]  # (6000×60 + 6200×40)/100; last five at 63.00
    national = bars_from_trades([day1, day2], CloseRule.VWAP_DAY, 5900)
    assert [b.close_ticks for b in national] == [6080, 6267]  # (6100 + 5×6300)/6 = 6266.67 → 6267


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("NOPE/book", {}, 404),
        (f"{FCT}/book", {"depth": 0}, 422),
        (f"{FCT}/book", {"depth": 51}, 422),
        (f"{FCT}/trades", {"limit": 501}, 422),
        (f"{FCT}/bars", {"start": "2026-11-27", "end": "2026-11-26"}, 422),
        (f"{FCT}/bars", {"start": "yesterday"}, 422),
        (f"{FCT}/stream", {"depth": 0}, 422),
        ("NOPE/stream", {}, 404),
    ],
)
def test_bad_requests_are_problems_and_change_nothing(
    market: None, client: TestClient, session: Session, path: str, params: dict[str, Any], status: int
) -> None:
    journal = session.scalar(select(func.count()).select_from(JournalEntry))
    session.rollback()
    response = client.get(f"{MARKET}/{path}", params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == journal
    assert session.scalar(select(func.count()).select_from(Trade)) == 0
    session.rollback()


def test_a_bad_last_event_id_is_a_problem(market: None, client: TestClient) -> None:
    response = client.get(f"{MARKET}/{FCT}/stream", headers={"Last-Event-ID": "seven"})
    assert response.status_code == 422
    assert response.json()["type"] == "urn:shanhai:problem:core/invalid-input"


def test_a_short_stream_in_process_snapshot_then_resume(
    market: None, settings: Settings, clock: FixedClock, client: TestClient, login: Login
) -> None:
    order(client, login, "nx-bureau", FCT, "sell", "60.00", 10)
    order(client, login, "fj-enterprise", FCT, "buy", "60.00", 4)
    short = settings.model_copy(update={"market_stream_max_seconds": 0.5, "market_stream_poll_seconds": 0.05})
    app = create_app(short, clock=clock)
    try:
        with TestClient(app) as streaming:  # the stream ends by itself after 0.5 s, so this returns
            fresh = streaming.get(f"{MARKET}/{FCT}/stream")
            resumed = streaming.get(f"{MARKET}/{FCT}/stream", headers={"Last-Event-ID": "1"})
    finally:
        app.state.engine.dispose()
    assert fresh.status_code == 200 and fresh.headers["content-type"].startswith("text/event-stream")
    parser = SseParser()
    messages = [m for m in map(parser.feed, fresh.text.split("\n")) if m is not None]
    assert [(m.id, m.event) for m in messages] == [("2", "snapshot")]
    assert json.loads(messages[0].data)["book"]["asks"] == [{"price_cny": "60.00", "quantity_t": 6, "orders": 1}]
    messages = [m for m in map(parser.feed, resumed.text.split("\n")) if m is not None]
    assert [(m.id, m.event) for m in messages] == [("2", "update")]
    update = json.loads(messages[0].data)
    assert [(t["price_cny"], t["quantity_t"]) for t in update["trades"]] == [("60.00", 4)]
    assert update["book"]["seq"] == 2


def test_block_and_auction_trades_stay_out_of_the_bars_prices(
    market: None, client: TestClient, login: Login, session: Session
) -> None:
    for price, quantity in (("60.00", 10), ("62.00", 30), ("59.00", 10)):
        order(client, login, "nx-bureau", FCT, "sell", price, quantity)
        order(client, login, "fj-enterprise", FCT, "buy", price, quantity)
    # The 62.00 trade becomes a block trade: only the listing trades make the bar (the close is theirs).
    session.execute(update(Trade).where(Trade.price_ticks == 6200).values(mode="block"))
    session.commit()
    bars = client.get(f"{MARKET}/{FCT}/bars").json()
    # By hand: listing trades 60×10 + 59×10 = 1190 over 20 t → VWAP 59.50; the block's 30 t at 62.00 = 1860.
    assert bars["bars"] == [
        {"date": "2026-11-25", "open_cny": "60.00", "high_cny": "60.00", "low_cny": "59.00", "close_cny": "59.50",
         "vwap_cny": "59.50", "volume_t": 20, "turnover_cny": "1190.00", "trades": 2},
    ]  # fmt: skip
    assert bars["off_book"] == [
        {"date": "2026-11-25", "mode": "block", "volume_t": 30, "turnover_cny": "1860.00", "trades": 1}
    ]
    modes = [t["mode"] for t in client.get(f"{MARKET}/{FCT}/trades").json()["items"]]
    assert sorted(modes) == ["block", "book", "book"]
