"""Block trades (大宗协议) over the API: scenario M4 of registry-trading §8.2, confirmation by the named
counterparty only, DvP settlement through the order-book path, withdrawal, rejection and expiry.

Every refusal is a problem+json answer and leaves every state table as it was (rows counted before/after).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import BlockState
from core.clock import FixedClock
from tests.e2e.market_setup import (
    INSTRUMENT,
    TO_WEDNESDAY_1330,
    Login,
    assert_books_balance,
    assert_problem,
    cash_of,
    clocked_login,
    counts,
    list_market,
    tonnes,
    total_cash,
)
from trading.models import Trade

DEPOSIT = 800_000_000  # 8,000,000.00 CNY


@pytest.fixture
def login(client: TestClient, clock: FixedClock) -> Login:
    return clocked_login(client, clock)


@pytest.fixture
def market(client: TestClient, login: Login, session: Session, clock: FixedClock) -> dict[str, int]:
    ids = list_market(client, login, session, clock, tonnes=300_000, deposits={"enterprise": DEPOSIT})
    clock.advance(TO_WEDNESDAY_1330)
    return ids


def propose(client: TestClient, login: Login, who: str, counterparty: int, quantity: int, price: str,
            side: str = "sell"):  # fmt: skip
    body = {"instrument_id": INSTRUMENT, "side": side, "counterparty_organisation_id": counterparty,
            "quantity_t": quantity, "price_cny": price}  # fmt: skip
    return client.post("/api/v1/block-trades", json=body, headers=login(who))


def test_m4_block_mode(client: TestClient, login: Login, session: Session, market, clock: FixedClock) -> None:
    # Reference (previous close) 60.00, band ±30 % → 42.00–78.00; minimum 100,000 t; window 13:00–15:00.
    buyer, seller = market["enterprise"], market["forestry_bureau"]
    before = counts(session)
    small = assert_problem(propose(client, login, "forestry_bureau", buyer, 99_999, "60.00"), 422,
                           "trading/order-rejected")  # fmt: skip
    assert small["reason"] == "size_limit"
    high = assert_problem(
        propose(client, login, "forestry_bureau", buyer, 100_000, "78.60"), 422, "trading/order-rejected"
    )  # fmt: skip  (+31 %)
    assert high["reason"] == "out_of_band"
    low = assert_problem(propose(client, login, "forestry_bureau", buyer, 100_000, "41.99"), 422,
                         "trading/order-rejected")  # fmt: skip
    assert low["reason"] == "out_of_band"
    clock.advance(timedelta(hours=-3, minutes=-30))  # 10:00 in Shanghai
    morning = assert_problem(propose(client, login, "forestry_bureau", buyer, 100_000, "60.00"), 422,
                             "trading/order-rejected")  # fmt: skip
    assert morning["reason"] == "outside_session"
    clock.advance(timedelta(hours=5))  # 15:00: the window is half-open, closed at 15:00
    assert propose(client, login, "forestry_bureau", buyer, 100_000, "60.00").json()["reason"] == "outside_session"
    assert counts(session) == before
    assert tonnes(session, seller, BlockState.ESCROWED) == 0
    clock.advance(timedelta(hours=-2))  # 13:00: open

    # +30 % exactly (78.00) is accepted: the seller's 100,000 t go to escrow at proposal.
    accepted = propose(client, login, "forestry_bureau", buyer, 100_000, "78.00")
    assert accepted.status_code == 201, accepted.text
    block = accepted.json()
    assert block["status"] == "proposed" and block["escrowed_t"] == 100_000 and block["held_fen"] == 0
    assert block["reference_price_cny"] == "60.00" and block["expires_at"] == "2026-11-25T07:00:00+00:00"
    assert tonnes(session, seller, BlockState.ESCROWED) == 100_000

    # The counterparty confirms: cash is held and settled DvP in the same transaction.
    cash_before = total_cash(session)
    confirmed = client.post(f"/api/v1/block-trades/{block['block_trade_id']}/confirm", headers=login("enterprise"))
    assert confirmed.status_code == 200, confirmed.text
    done = confirmed.json()
    # 78.00 × 100,000 t = 7,800,000.00 CNY; buyer fee 0.5 % = 39,000.00; seller fee 0.3 % = 23,400.00.
    assert done["status"] == "settled" and done["held_fen"] == 0 and done["escrowed_t"] == 0
    assert done["trade"]["notional_fen"] == 780_000_000
    assert (done["trade"]["buyer_fee_fen"], done["trade"]["seller_fee_fen"]) == (3_900_000, 2_340_000)
    assert done["trade"]["serials"] == ["SH-FCT-64-000001-2025-000001-000000001-000100000"]
    assert cash_of(session, buyer) == (DEPOSIT - 783_900_000, 0)
    assert cash_of(session, seller) == (780_000_000 - 2_340_000, 0)
    assert cash_of(session, market["operator"], "fee") == (6_240_000, 0)
    assert total_cash(session) == cash_before
    assert tonnes(session, buyer, BlockState.TRADABLE) == 100_000
    assert tonnes(session, seller, BlockState.TRADABLE) == 200_000
    assert tonnes(session, seller, BlockState.ESCROWED) == 0
    trade = session.scalars(select(Trade)).one()
    assert (trade.mode, trade.block_trade_id, trade.buy_order_id) == ("block", block["block_trade_id"], None)
    session.rollback()
    fills = client.get("/api/v1/fills", headers=login("enterprise")).json()["items"]
    assert [(f["quantity_t"], f["price_cny"], f["side"]) for f in fills] == [(100_000, "78.00", "buy")]
    # A settled block cannot be confirmed again.
    again = client.post(f"/api/v1/block-trades/{block['block_trade_id']}/confirm", headers=login("enterprise"))
    assert_problem(again, 409, "core/conflict")
    assert_books_balance(session)


def test_confirming_someone_elses_block_is_forbidden(client: TestClient, login: Login, session: Session,
                                                    market) -> None:  # fmt: skip
    block = propose(client, login, "forestry_bureau", market["enterprise"], 100_000, "60.00").json()
    url = f"/api/v1/block-trades/{block['block_trade_id']}"
    before = counts(session)
    held = cash_of(session, market["enterprise"])
    assert_problem(client.post(f"{url}/confirm", headers=login("forest_owner")), 403, "auth/permission-denied")
    assert_problem(client.post(f"{url}/confirm", headers=login("forestry_bureau")), 403, "auth/permission-denied")
    assert_problem(client.post(f"{url}/reject", headers=login("forest_owner")), 403, "auth/permission-denied")
    assert_problem(client.post(f"{url}/withdraw", headers=login("enterprise")), 403, "auth/permission-denied")
    assert counts(session) == before and cash_of(session, market["enterprise"]) == held
    assert client.get(url, headers=login("forest_owner")).status_code == 404  # not a party: not visible
    assert client.get(url, headers=login("operator")).json()["status"] == "proposed"
    # The named counterparty declines: the seller's escrow returns.
    rejected = client.post(f"{url}/reject", headers=login("enterprise"))
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert tonnes(session, market["forestry_bureau"], BlockState.ESCROWED) == 0
    assert tonnes(session, market["forestry_bureau"], BlockState.TRADABLE) == 300_000
    assert [b["status"] for b in client.get("/api/v1/block-trades", headers=login("enterprise")).json()["items"]] == [
        "rejected"
    ]
    assert_books_balance(session)


def test_buyer_proposal_holds_cash_and_withdrawal_releases_it(client: TestClient, login: Login, session: Session,
                                                              market) -> None:  # fmt: skip
    buyer = market["enterprise"]
    proposed = propose(client, login, "enterprise", market["forestry_bureau"], 100_000, "50.00", side="buy")
    assert proposed.status_code == 201, proposed.text
    block = proposed.json()
    # 50.00 × 100,000 = 5,000,000.00 CNY + 0.5 % fee, held at proposal.
    assert block["held_fen"] == 502_500_000 and cash_of(session, buyer) == (DEPOSIT - 502_500_000, 502_500_000)
    assert tonnes(session, market["forestry_bureau"], BlockState.ESCROWED) == 0  # the seller has not agreed yet
    withdrawn = client.post(f"/api/v1/block-trades/{block['block_trade_id']}/withdraw", headers=login("enterprise"))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert cash_of(session, buyer) == (DEPOSIT, 0)
    late = client.post(f"/api/v1/block-trades/{block['block_trade_id']}/confirm", headers=login("forestry_bureau"))
    assert_problem(late, 409, "core/conflict")
    assert_books_balance(session)


def test_seller_confirms_a_buyer_proposal(client: TestClient, login: Login, session: Session, market) -> None:
    block = propose(client, login, "enterprise", market["forestry_bureau"], 120_000, "55.55", side="buy").json()
    confirmed = client.post(f"/api/v1/block-trades/{block['block_trade_id']}/confirm",
                            headers=login("forestry_bureau"))  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    # 55.55 × 120,000 = 6,666,000.00 CNY; fees ⌊0.5 %⌋ = 33,330.00 and ⌊0.3 %⌋ = 19,998.00.
    assert confirmed.json()["trade"]["notional_fen"] == 666_600_000
    assert cash_of(session, market["enterprise"]) == (DEPOSIT - 666_600_000 - 3_333_000, 0)
    assert cash_of(session, market["forestry_bureau"]) == (666_600_000 - 1_999_800, 0)
    assert tonnes(session, market["enterprise"], BlockState.TRADABLE) == 120_000
    assert_books_balance(session)


def test_counterparty_without_funds_changes_nothing(client: TestClient, login: Login, session: Session,
                                                    market) -> None:  # fmt: skip
    block = propose(client, login, "forestry_bureau", market["enterprise"], 200_000, "60.00").json()
    before = counts(session)
    broke = client.post(f"/api/v1/block-trades/{block['block_trade_id']}/confirm", headers=login("enterprise"))
    assert_problem(broke, 409, "trading/insufficient-funds")  # 12,060,000.00 CNY needed, 8,000,000.00 there
    assert counts(session) == before
    assert tonnes(session, market["forestry_bureau"], BlockState.ESCROWED) == 200_000
    assert cash_of(session, market["enterprise"]) == (DEPOSIT, 0)


def test_expiry_at_window_close_releases_holds(client: TestClient, login: Login, session: Session, market,
                                               clock: FixedClock) -> None:  # fmt: skip
    sell = propose(client, login, "forestry_bureau", market["enterprise"], 100_000, "60.00").json()
    buy = propose(client, login, "enterprise", market["forestry_bureau"], 100_000, "60.00", side="buy").json()
    assert cash_of(session, market["enterprise"])[1] == 603_000_000
    assert client.post("/api/v1/block-trades/expire", headers=login("operator")).json() == {
        "expired_block_trade_ids": []}  # fmt: skip
    clock.advance(timedelta(hours=1, minutes=30))  # 15:00 in Shanghai: the window has closed
    before = counts(session)
    late = client.post(f"/api/v1/block-trades/{sell['block_trade_id']}/confirm", headers=login("enterprise"))
    assert_problem(late, 409, "core/conflict")
    assert counts(session) == before
    swept = client.post("/api/v1/block-trades/expire", headers=login("operator"))
    assert swept.json() == {"expired_block_trade_ids": [sell["block_trade_id"], buy["block_trade_id"]]}
    assert cash_of(session, market["enterprise"]) == (DEPOSIT, 0)
    assert tonnes(session, market["forestry_bureau"], BlockState.ESCROWED) == 0
    statuses = {b["status"] for b in client.get("/api/v1/block-trades", headers=login("operator")).json()["items"]}
    assert statuses == {"expired"}
    after = counts(session)
    assert client.post("/api/v1/block-trades/expire", headers=login("operator")).json() == {
        "expired_block_trade_ids": []}  # fmt: skip
    assert counts(session) == after  # idempotent
    assert_books_balance(session)


def test_bad_counterparties_and_unknown_blocks(client: TestClient, login: Login, session: Session, market) -> None:
    before = counts(session)
    assert_problem(propose(client, login, "forestry_bureau", market["forestry_bureau"], 100_000, "60.00"), 422,
                   "core/invalid-input")  # fmt: skip
    assert_problem(propose(client, login, "forestry_bureau", market["verifier"], 100_000, "60.00"), 422,
                   "core/invalid-input")  # fmt: skip
    assert_problem(propose(client, login, "forestry_bureau", market["enterprise"], 100_000, "60.001"), 422,
                   "trading/order-rejected")  # fmt: skip
    assert_problem(propose(client, login, "forestry_bureau", market["enterprise"], 400_000, "60.00"), 409,
                   "carbon/insufficient-units")  # fmt: skip
    assert_problem(client.post("/api/v1/block-trades/999/confirm", headers=login("enterprise")), 404, "core/not-found")
    assert counts(session) == before
