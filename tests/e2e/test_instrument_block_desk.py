"""The operator sets an instrument's block desk when listing it (ADR 013): minimum, band and window.

The clock fixture is Wednesday 2026-11-25 09:30 UTC = 17:30 in Shanghai, outside the default 13:00–15:00
block window; a listing whose window is the whole local day accepts a block trade then, and refuses one
below its own minimum. Bad desk settings are refused as a problem and list nothing.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import OrgKind
from core.clock import FixedClock
from tests.e2e.market_setup import Login, assert_problem, clocked_login, list_market, org_id
from trading.models import BlockTrade, InstrumentRow

LISTING = {"credit_class": "FCT", "vintage_year": 2025, "reference_price_cny": "60.00", "always_open": True}
WHOLE_DAY = {"block_min_t": 100, "block_open_minute": 0, "block_close_minute": 24 * 60}


@pytest.fixture
def login(client: TestClient, clock: FixedClock) -> Login:
    return clocked_login(client, clock)


def propose(client: TestClient, login: Login, instrument: str, counterparty: int, quantity: int):
    body = {"instrument_id": instrument, "side": "sell", "counterparty_organisation_id": counterparty,
            "quantity_t": quantity, "price_cny": "61.00"}  # fmt: skip
    return client.post("/api/v1/block-trades", json=body, headers=login("forestry_bureau"))


def test_a_listing_sets_its_block_desk(client: TestClient, login: Login, session: Session, clock: FixedClock) -> None:
    list_market(client, login, session, clock, tonnes=1_000, deposits={"enterprise": 10_000_000})  # FCT-2025: defaults
    listed = client.post("/api/v1/instruments", json={"instrument_id": "FCT-2025-DEMO", **LISTING, **WHOLE_DAY},
                         headers=login("operator"))  # fmt: skip
    assert listed.status_code == 201, listed.text
    assert {k: listed.json()[k] for k in [*WHOLE_DAY, "block_band_bp"]} == {**WHOLE_DAY, "block_band_bp": 3_000}
    shown = {
        row["instrument_id"]: row
        for row in client.get("/api/v1/instruments", headers=login("enterprise")).json()["items"]
    }
    assert shown["FCT-2025"]["block_min_t"] == 100_000
    assert (shown["FCT-2025"]["block_open_minute"], shown["FCT-2025"]["block_close_minute"]) == (780, 900)
    assert shown["FCT-2025-DEMO"]["block_open_minute"] == 0

    buyer = org_id(session, OrgKind.ENTERPRISE)
    # 17:30 in Shanghai: the default desk is closed, the whole-day desk is open.
    closed = assert_problem(propose(client, login, "FCT-2025", buyer, 100_000), 422, "trading/order-rejected")
    assert closed["reason"] == "outside_session"
    small = assert_problem(propose(client, login, "FCT-2025-DEMO", buyer, 99), 422, "trading/order-rejected")
    assert small["reason"] == "size_limit"
    proposed = propose(client, login, "FCT-2025-DEMO", buyer, 200)
    assert proposed.status_code == 201, proposed.text
    confirmed = client.post(
        f"/api/v1/block-trades/{proposed.json()['block_trade_id']}/confirm", headers=login("enterprise")
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "settled"


@pytest.mark.parametrize(
    "desk",
    [
        {"block_open_minute": 900, "block_close_minute": 780},  # closes before it opens
        {"block_open_minute": 0, "block_close_minute": 24 * 60 + 1},  # beyond the local day
        {"block_min_t": 0},
        {"block_band_bp": 10_000},
        {"block_min_t": 100.5},
    ],
)
def test_a_bad_block_desk_lists_nothing(client: TestClient, login: Login, session: Session, desk: dict) -> None:
    response = client.post("/api/v1/instruments", json={"instrument_id": "FCT-BAD", **LISTING, **desk},
                           headers=login("operator"))  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert session.scalar(select(func.count()).select_from(InstrumentRow)) == 0
    assert session.scalar(select(func.count()).select_from(BlockTrade)) == 0
