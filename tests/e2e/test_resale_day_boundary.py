"""T+1 resale counts the Beijing trading day on SQLite too: a purchase at 07:00 Beijing (23:00 UTC the day
before) is today's purchase, whatever the mode (book, block or auction) that bought it."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import BlockState
from core.auth import User, principal_of
from core.clock import FixedClock
from tests.e2e.market_setup import INSTRUMENT, assert_problem, clocked_login, list_market, tonnes
from trading.journal import MatcherCache
from trading.order_entry import PlaceOrderRequest, place_order


def test_a_purchase_before_8_am_beijing_is_locked_until_the_next_day(client: TestClient, session: Session,
                                                                     clock: FixedClock) -> None:  # fmt: skip
    login = clocked_login(client, clock)
    ids = list_market(client, login, session, clock, tonnes=1_000, deposits={"enterprise": 1_000_000})
    clock.advance(timedelta(hours=-10, minutes=-30))  # 2026-11-24 23:00 UTC = 2026-11-25 07:00 Beijing

    def order(who: str, side: str):  # type: ignore[no-untyped-def]
        body = {"instrument_id": INSTRUMENT, "side": side, "price_cny": "60.00", "quantity_t": 100}
        return client.post("/api/v1/orders", json=body, headers=login(who))

    assert order("forestry_bureau", "sell").status_code == 201
    assert order("enterprise", "buy").json()["status"] == "filled"
    clock.advance(timedelta(hours=2))  # 09:00 Beijing, the same trading day (01:00 UTC, another UTC date)
    resale = assert_problem(order("enterprise", "sell"), 409, "carbon/insufficient-units")
    assert "T+1" in resale["detail"]
    assert tonnes(session, ids["enterprise"], BlockState.TRADABLE) == 100
    clock.advance(timedelta(hours=16))  # 01:00 Beijing the next day (a future instant: no token, the service)
    enterprise = session.scalars(select(User).where(User.username == "fj-enterprise")).one()
    request = PlaceOrderRequest(INSTRUMENT, "sell", "60.00", 100)
    next_day = place_order(session, request, actor=principal_of(enterprise, "test"), clock=clock, cache=MatcherCache())
    assert next_day["status"] == "open"
