"""One-way auctions (单向竞价) over the API: the acceptance scenarios of issue 8, allocations computed by hand.

Instrument: FCT-2025, tick 0.01 CNY, buyer fee 50 bp, seller fee 30 bp (fees floored to the fen). The seller is
the Ningxia forestry bureau; the bidders are Fujian enterprises (three test buyers and the demo enterprise).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import BlockState
from core.auth import OrgKind
from core.clock import FixedClock
from tests.e2e.market_setup import (
    INSTRUMENT,
    Login,
    add_buyer,
    assert_books_balance,
    assert_problem,
    cash_of,
    clocked_login,
    counts,
    list_market,
    tonnes,
    total_cash,
)
from trading.models import AuctionBid, Trade

SELLER_T = 5_000
DEPOSIT = 5_000_000  # 50,000.00 CNY each


@pytest.fixture
def login(client: TestClient, clock: FixedClock) -> Login:
    return clocked_login(client, clock)


@pytest.fixture
def market(client: TestClient, login: Login, session: Session, clock: FixedClock) -> dict[str, int]:
    buyers = {name: add_buyer(session, name, "35") for name in ("fj-a", "fj-b", "fj-c")}
    buyers["gd-x"] = add_buyer(session, "gd-x", "44")
    ids = list_market(client, login, session, clock, tonnes=SELLER_T,
                      deposits=dict.fromkeys(("enterprise", "forest_owner", *buyers), DEPOSIT))  # fmt: skip
    return ids | buyers


def announce(client: TestClient, login: Login, clock: FixedClock, quantity: int, reserve: str, rule: str,
             **extra: object):  # fmt: skip
    body = {
        "instrument_id": INSTRUMENT,
        "quantity_t": quantity,
        "reserve_price_cny": reserve,
        "rule": rule,
        "starts_at": clock.now().isoformat(),
        "ends_at": (clock.now() + timedelta(hours=1)).isoformat(),
        **extra,
    }
    response = client.post("/api/v1/auctions", json=body, headers=login("forestry_bureau"))
    assert response.status_code == 201, response.text
    return response.json()


def bid(client: TestClient, login: Login, auction_id: int, who: str, price: str, quantity: int):
    body = {"price_cny": price, "quantity_t": quantity}
    return client.post(f"/api/v1/auctions/{auction_id}/bids", json=body, headers=login(who))


def close(client: TestClient, login: Login, clock: FixedClock, auction_id: int) -> dict:  # type: ignore[type-arg]
    clock.advance(timedelta(hours=1))
    response = client.post(f"/api/v1/auctions/{auction_id}/close", headers=login("operator"))
    assert response.status_code == 200, response.text
    return response.json()


def statuses(session: Session, auction_id: int) -> list[tuple[str, int, int | None]]:
    session.expire_all()
    rows = session.scalars(select(AuctionBid).where(AuctionBid.auction_id == auction_id).order_by(AuctionBid.id))
    result = [(b.status, b.allocated_t, b.paid_price_ticks) for b in rows]
    session.rollback()
    return result


def test_auction_over_subscribed_price_tie_broken_by_time_uniform_price(
    client: TestClient, login: Login, session: Session, market, clock: FixedClock
) -> None:
    auction = announce(client, login, clock, 1_000, "50.00", "uniform", qualification={"provinces": ["35"]})
    seller, money = market["forestry_bureau"], total_cash(session)
    assert tonnes(session, seller, BlockState.ESCROWED) == 1_000  # escrowed at announcement
    aid = auction["auction_id"]
    assert bid(client, login, aid, "fj-a", "55.00", 400).status_code == 201  # t1 at 55.00
    assert bid(client, login, aid, "fj-b", "58.00", 300).status_code == 201
    assert bid(client, login, aid, "fj-c", "55.00", 400).status_code == 201  # t3 at 55.00: behind fj-a
    assert bid(client, login, aid, "enterprise", "52.00", 200).status_code == 201
    # Qualification: Fujian (35) only.
    before = counts(session)
    assert_problem(bid(client, login, aid, "gd-x", "60.00", 100), 403, "auth/permission-denied")
    assert_problem(bid(client, login, aid, "forest_owner", "60.00", 100), 403, "auth/permission-denied")
    assert_problem(bid(client, login, aid, "forestry_bureau", "60.00", 100), 403, "auth/permission-denied")
    assert counts(session) == before
    # fj-b holds 300 × 58.00 = 17,400.00 + 0.5 % = 87.00 → 1,748,700 fen.
    assert cash_of(session, market["fj-b"]) == (DEPOSIT - 1_748_700, 1_748_700)
    # Sealed bids: a bidder sees only its own.
    assert len(client.get(f"/api/v1/auctions/{aid}/bids", headers=login("fj-a")).json()["items"]) == 1
    assert len(client.get(f"/api/v1/auctions/{aid}/bids", headers=login("forestry_bureau")).json()["items"]) == 0

    results = close(client, login, clock, aid)["results"]
    # By hand: fj-b 300 @58 → fj-a 400 @55 (earlier) → fj-c 300 of 400 @55 (marginal) → enterprise nothing.
    # Uniform price = the lowest accepted bid price = 55.00.
    assert results["reserve_met"] and results["allocated_t"] == 1_000 and results["unfilled_t"] == 0
    assert results["clearing_price_cny"] == "55.00"
    assert [(a["quantity_t"], a["price_cny"]) for a in results["allocations"]] == [
        (300, "55.00"), (400, "55.00"), (300, "55.00")]  # fmt: skip
    assert statuses(session, aid) == [("won", 400, 5500), ("won", 300, 5500), ("partial", 300, 5500),
                                      ("lost", 0, None)]  # fmt: skip
    # Cash by hand (fen): notional 300 × 5,500 = 1,650,000 (fee 8,250); 400 × 5,500 = 2,200,000 (fee 11,000).
    assert cash_of(session, market["fj-b"]) == (DEPOSIT - 1_650_000 - 8_250, 0)
    assert cash_of(session, market["fj-a"]) == (DEPOSIT - 2_200_000 - 11_000, 0)
    assert cash_of(session, market["fj-c"]) == (DEPOSIT - 1_650_000 - 8_250, 0)
    assert cash_of(session, market["enterprise"]) == (DEPOSIT, 0)
    # Seller: 5,500,000 less 0.3 % per trade (4,950 + 6,600 + 4,950); fee account: 27,500 + 16,500.
    assert cash_of(session, seller) == (5_500_000 - 16_500, 0)
    assert cash_of(session, market["operator"], "fee") == (44_000, 0)
    # Conservation: no fen created or lost, every tonne accounted for.
    assert total_cash(session) == money
    assert [tonnes(session, market[b], BlockState.TRADABLE) for b in ("fj-a", "fj-b", "fj-c")] == [400, 300, 300]
    assert tonnes(session, seller, BlockState.TRADABLE) == SELLER_T - 1_000
    assert tonnes(session, seller, BlockState.ESCROWED) == 0
    assert_books_balance(session)
    # Published: the public list and the seller's view of every bid after the close.
    public = client.get("/public/v1/auctions").json()["items"]
    assert [(a["auction_id"], a["status"], a["bids"]) for a in public] == [(aid, "closed", 4)]
    assert len(client.get(f"/api/v1/auctions/{aid}/bids", headers=login("forestry_bureau")).json()["items"]) == 4


def test_auction_pay_as_bid_allocations(client: TestClient, login: Login, session: Session, market,
                                        clock: FixedClock) -> None:  # fmt: skip
    aid = announce(client, login, clock, 600, "40.00", "pay_as_bid")["auction_id"]
    for who, price, quantity in [("fj-a", "45.00", 200), ("fj-b", "42.50", 300), ("fj-c", "41.00", 250),
                                 ("enterprise", "40.00", 100)]:  # fmt: skip
        assert bid(client, login, aid, who, price, quantity).status_code == 201
    money = total_cash(session)
    auction = close(client, login, clock, aid)
    results = auction["results"]
    # By hand: fj-a 200 @45.00, fj-b 300 @42.50, fj-c 100 of 250 @41.00 (marginal), enterprise nothing.
    assert results["clearing_price_cny"] is None and results["allocated_t"] == 600
    assert [(a["quantity_t"], a["price_cny"], a["notional_fen"]) for a in results["allocations"]] == [
        (200, "45.00", 900_000), (300, "42.50", 1_275_000), (100, "41.00", 410_000)]  # fmt: skip
    # Buyers pay their own price + ⌊0.5 %⌋: 4,500; 6,375; 2,050.
    assert cash_of(session, market["fj-a"]) == (DEPOSIT - 904_500, 0)
    assert cash_of(session, market["fj-b"]) == (DEPOSIT - 1_281_375, 0)
    assert cash_of(session, market["fj-c"]) == (DEPOSIT - 412_050, 0)
    assert cash_of(session, market["enterprise"]) == (DEPOSIT, 0)
    # Seller: 2,585,000 less ⌊0.3 %⌋ per trade: 2,700 + 3,825 + 1,230 = 7,755.
    assert cash_of(session, market["forestry_bureau"]) == (2_585_000 - 7_755, 0)
    assert total_cash(session) == money
    assert statuses(session, aid) == [("won", 200, 4500), ("won", 300, 4250), ("partial", 100, 4100),
                                      ("lost", 0, None)]  # fmt: skip
    trades = session.scalars(select(Trade).order_by(Trade.id)).all()
    assert [(t.mode, t.quantity_t, t.price_ticks) for t in trades] == [
        ("auction", 200, 4500), ("auction", 300, 4250), ("auction", 100, 4100)]  # fmt: skip
    session.rollback()
    assert_books_balance(session)


def test_auction_reserve_not_met(client: TestClient, login: Login, session: Session, market,
                                 clock: FixedClock) -> None:  # fmt: skip
    aid = announce(client, login, clock, 500, "70.00", "uniform")["auction_id"]
    seller = market["forestry_bureau"]
    before = counts(session)
    low = assert_problem(bid(client, login, aid, "fj-a", "69.99", 100), 422, "trading/order-rejected")
    assert low["reason"] == "below_reserve"
    assert counts(session) == before and cash_of(session, market["fj-a"]) == (DEPOSIT, 0)
    # A bid at the reserve, withdrawn before the close: its hold is released.
    placed = bid(client, login, aid, "fj-b", "70.00", 100).json()
    assert cash_of(session, market["fj-b"]) == (DEPOSIT - 703_500, 703_500)
    assert_problem(client.post(f"/api/v1/auction-bids/{placed['bid_id']}/withdraw", headers=login("fj-a")), 404,
                   "core/not-found")  # fmt: skip
    withdrawn = client.post(f"/api/v1/auction-bids/{placed['bid_id']}/withdraw", headers=login("fj-b"))
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert cash_of(session, market["fj-b"]) == (DEPOSIT, 0)
    # Too early to close.
    assert_problem(client.post(f"/api/v1/auctions/{aid}/close", headers=login("operator")), 409, "core/conflict")
    results = close(client, login, clock, aid)["results"]
    assert results == {"closed_at": results["closed_at"], "reserve_met": False, "allocated_t": 0, "unfilled_t": 500,
                       "clearing_price_cny": None, "allocations": []}  # fmt: skip
    assert tonnes(session, seller, BlockState.ESCROWED) == 0
    assert tonnes(session, seller, BlockState.TRADABLE) == SELLER_T
    # Closing again is idempotent: same answer, nothing written.
    after = counts(session)
    again = client.post(f"/api/v1/auctions/{aid}/close", headers=login("operator"))
    assert again.status_code == 200 and again.json()["results"] == results
    assert counts(session) == after
    assert_books_balance(session)


def test_bid_after_close_and_bad_bids_change_nothing(client: TestClient, login: Login, session: Session, market,
                                                     clock: FixedClock) -> None:  # fmt: skip
    aid = announce(client, login, clock, 300, "50.00", "uniform")["auction_id"]
    assert bid(client, login, aid, "fj-a", "51.00", 200).status_code == 201
    before = counts(session)
    assert_problem(bid(client, login, aid, "fj-b", "51.001", 100), 422, "trading/order-rejected")
    assert_problem(bid(client, login, aid, "fj-b", "51.00", 301), 422, "trading/order-rejected")
    assert_problem(bid(client, login, 999, "fj-b", "51.00", 10), 404, "core/not-found")
    assert_problem(bid(client, login, aid, "fj-b", "51.00", 100_000_000), 422, "trading/order-rejected")
    assert counts(session) == before
    clock.advance(timedelta(hours=1))  # the window has ended, not yet closed
    late = assert_problem(bid(client, login, aid, "fj-b", "60.00", 100), 409, "core/conflict")
    assert "closed for bids" in late["detail"]
    assert counts(session) == before
    results = client.post(f"/api/v1/auctions/{aid}/close", headers=login("operator")).json()["results"]
    # Under-subscribed: fj-a takes its 200 t at 51.00; 100 t return to the seller.
    assert (results["allocated_t"], results["unfilled_t"], results["clearing_price_cny"]) == (200, 100, "51.00")
    assert tonnes(session, market["forestry_bureau"], BlockState.TRADABLE) == SELLER_T - 200
    after = counts(session)
    assert_problem(bid(client, login, aid, "fj-b", "60.00", 100), 409, "core/conflict")
    assert counts(session) == after
    assert_books_balance(session)


def test_announcement_checks(client: TestClient, login: Login, session: Session, market, clock: FixedClock) -> None:
    now, later = clock.now().isoformat(), (clock.now() + timedelta(hours=1)).isoformat()
    base = {"instrument_id": INSTRUMENT, "quantity_t": 100, "reserve_price_cny": "50.00", "starts_at": now,
            "ends_at": later}  # fmt: skip
    before = counts(session)
    for change, status, slug in [
        ({"ends_at": now, "starts_at": later}, 422, "core/invalid-input"),
        ({"quantity_t": SELLER_T + 1}, 409, "carbon/insufficient-units"),
        ({"qualification": {"provinces": ["99"]}}, 422, "core/invalid-input"),
        ({"qualification": {"kinds": ["verifier"]}}, 422, "core/invalid-input"),
        ({"reserve_price_cny": "0"}, 422, "trading/order-rejected"),
        ({"rule": "dutch"}, 422, "core/invalid-request"),
    ]:
        response = client.post("/api/v1/auctions", json=base | change, headers=login("forestry_bureau"))
        assert_problem(response, status, slug)
    assert counts(session) == before
    assert session.scalar(select(func.count()).select_from(AuctionBid)) == 0
    session.rollback()
    kinds = {"kinds": [OrgKind.ENTERPRISE.value]}
    ok = client.post("/api/v1/auctions", json=base | {"qualification": kinds}, headers=login("forestry_bureau"))
    assert ok.status_code == 201 and ok.json()["qualification"] == kinds
    assert_problem(bid(client, login, ok.json()["auction_id"], "forest_owner", "50.00", 10), 403,
                   "auth/permission-denied")  # fmt: skip
    assert client.get(f"/public/v1/auctions/{ok.json()['auction_id']}").json()["status"] == "announced"


def test_scheduled_sweep_closes_due_auctions_and_expires_blocks(client: TestClient, login: Login, session: Session,
                                                                market, clock: FixedClock, app) -> None:  # fmt: skip
    aid = announce(client, login, clock, 100, "50.00", "uniform")["auction_id"]
    assert bid(client, login, aid, "fj-a", "50.00", 100).status_code == 201
    sweep = app.state.celery.tasks["shanhai.trading.sweep"]
    assert sweep.delay().get() == {"closed_auction_ids": [], "expired_block_trade_ids": []}  # not due yet
    clock.advance(timedelta(hours=1))
    assert sweep.delay().get() == {"closed_auction_ids": [aid], "expired_block_trade_ids": []}
    assert client.get(f"/public/v1/auctions/{aid}").json()["results"]["allocated_t"] == 100
    after = counts(session)
    assert sweep.delay().get() == {"closed_auction_ids": [], "expired_block_trade_ids": []}  # idempotent
    assert counts(session) == after
    assert_books_balance(session)
