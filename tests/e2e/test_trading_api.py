"""Order entry over the API: holds, escrow, DvP settlement, idempotency, T+1, retire on fill.

Scenarios of reference registry-trading §8: M7, M10, M15, M18 and R5, R12, R15; M16 is in
``tests/integration/test_trading_crash.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import BlockState, CreditClass, IssueBatch, issue_batch, ledger_violations, open_blocks
from carbon.ledger.certificates import check_certificate, facts_of_pdf
from core.audit import verify_chain
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from trading.cash import cash_violations
from trading.journal import MatcherCache, rebuild_book
from trading.models import CashEntry, Trade, TradeOrder
from trading.order_entry import PlaceOrderRequest, place_order

Login = Callable[[str], dict[str, str]]
INSTRUMENT = "FCT-2025"


def org_id(session: Session, kind: OrgKind) -> int:
    user = session.scalars(select(User)).all()
    return next(u.organisation_id for u in user if u.organisation.kind is kind)


@pytest.fixture
def market(client: TestClient, login: Login, session: Session, clock: FixedClock) -> dict[str, int]:
    registry = next(u for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.REGISTRY)
    issue_batch(session, IssueBatch(1, "test:trading", CreditClass.FORESTRY_CARBON_TICKET, 2025, 1000, 0),
                actor=principal_of(registry, "test"), clock=clock)  # fmt: skip
    body = {"instrument_id": INSTRUMENT, "credit_class": "FCT", "vintage_year": 2025, "reference_price_cny": "60",
            "always_open": True, "buyer_fee_bp": 50, "seller_fee_bp": 30}  # fmt: skip
    assert client.post("/api/v1/instruments", json=body, headers=login("operator")).status_code == 201
    ids = {kind.value: org_id(session, kind) for kind in OrgKind}
    session.rollback()  # SQLite: never keep a transaction (a write lock) open beside the app
    deposit = {"organisation_id": ids["enterprise"], "amount_fen": 1_000_000, "reference": "BANK-0001"}
    assert client.post("/api/v1/cash/deposits", json=deposit, headers=login("operator")).status_code == 201
    return ids


def order(client: TestClient, login: Login, who: str, side: str, price: str, quantity: int, **extra: object):
    headers = login(who) | extra.pop("headers", {})  # type: ignore[operator]
    body = {"instrument_id": INSTRUMENT, "side": side, "price_cny": price, "quantity_t": quantity, **extra}
    return client.post("/api/v1/orders", json=body, headers=headers)


def balances(client: TestClient, login: Login, who: str) -> dict[str, int]:
    return client.get("/api/v1/cash", headers=login(who)).json()


def held_t(session: Session, organisation_id: int, state: BlockState) -> int:
    session.expire_all()
    total = sum(b.quantity for b in open_blocks(session, organisation_id) if b.state is state)
    session.rollback()
    return total


def count(session: Session, model: type) -> int:
    total = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return int(total or 0)


def assert_conserved(session: Session, total_fen: int) -> None:
    session.expire_all()
    assert cash_violations(session) == []
    assert ledger_violations(session) == []
    assert verify_chain(session).ok
    deposits = session.scalar(select(func.sum(CashEntry.amount_fen)).where(CashEntry.kind == "deposit"))
    assert deposits == total_fen
    session.rollback()


def test_m10_pre_trade_checks_and_freezing(client: TestClient, login: Login, session: Session, market) -> None:
    # A bid whose notional (with fee) exceeds the funds → rejected, nothing changes.
    too_big = order(client, login, "enterprise", "buy", "60.00", 200)  # 12,000 CNY + fee > 10,000 CNY
    assert too_big.status_code == 409, too_big.text
    assert too_big.json()["type"].endswith("trading/insufficient-funds")
    assert balances(client, login, "enterprise")["held_fen"] == 0
    assert count(session, TradeOrder) == 0
    # Accepted: funds frozen (price × qty + 0.5 % fee).
    accepted = order(client, login, "enterprise", "buy", "60.00", 100)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["held_fen"] == 600_000 + 3_000
    assert balances(client, login, "enterprise") == {
        "organisation_id": market["enterprise"], "available_fen": 397_000, "held_fen": 603_000,
        "available_cny": "3970.00", "held_cny": "6030.00"}  # fmt: skip
    # A sell freezes tonnes in escrow; too many tonnes → rejected.
    bureau = market["forestry_bureau"]
    short = order(client, login, "forestry_bureau", "sell", "61.00", 5000)
    assert short.status_code == 409 and short.json()["type"].endswith("carbon/insufficient-units")
    sell = order(client, login, "forestry_bureau", "sell", "61.00", 200)
    assert sell.status_code == 201 and held_t(session, bureau, BlockState.ESCROWED) == 200
    # Cancelling unfreezes.
    buy_id, sell_id = accepted.json()["order_id"], sell.json()["order_id"]
    assert client.post(f"/api/v1/orders/{buy_id}/cancel", headers=login("enterprise")).json()["status"] == "cancelled"
    assert balances(client, login, "enterprise")["available_fen"] == 1_000_000
    assert client.post(f"/api/v1/orders/{sell_id}/cancel", headers=login("forestry_bureau")).status_code == 200
    assert held_t(session, bureau, BlockState.ESCROWED) == 0 and held_t(session, bureau, BlockState.TRADABLE) == 1000
    assert_conserved(session, 1_000_000)


def test_fill_settles_dvp_with_fees(client: TestClient, login: Login, session: Session, market) -> None:
    sell = order(client, login, "forestry_bureau", "sell", "59.50", 100).json()
    buy = order(client, login, "enterprise", "buy", "60.00", 150).json()
    assert buy["status"] == "open" and buy["filled_t"] == 100 and buy["remaining_t"] == 50
    [fill] = buy["fills"]
    assert fill["price_cny"] == "59.50" and fill["quantity_t"] == 100 and fill["fee_fen"] == 2_975
    assert fill["serials"] == ["SH-FCT-64-000001-2025-000001-000000001-000000100"]
    # Buyer: paid 595,000 + 2,975 fee; still holds 50 t × 60.00 + fee for the rest.
    assert balances(client, login, "enterprise") == {
        "organisation_id": market["enterprise"], "available_fen": 1_000_000 - 597_975 - 301_500,
        "held_fen": 301_500, "available_cny": "1005.25", "held_cny": "3015.00"}  # fmt: skip
    assert balances(client, login, "forestry_bureau")["available_fen"] == 595_000 - 1_785
    assert held_t(session, market["enterprise"], BlockState.TRADABLE) == 100
    assert client.get(f"/api/v1/orders/{sell['order_id']}", headers=login("forestry_bureau")).json()["status"] == (
        "filled"
    )
    assert len(client.get("/api/v1/fills", headers=login("enterprise")).json()["items"]) == 1
    assert [
        o["order_id"] for o in client.get("/api/v1/orders?status=open", headers=login("enterprise")).json()["items"]
    ] == [buy["order_id"]]
    # Amend the remainder down and its price: the hold follows.
    amended = client.post(f"/api/v1/orders/{buy['order_id']}/amend", json={"quantity_t": 20, "price_cny": "58.00"},
                          headers=login("enterprise"))  # fmt: skip
    assert amended.status_code == 200, amended.text
    assert amended.json()["held_fen"] == 116_000 + 580
    assert balances(client, login, "enterprise")["held_fen"] == 116_580
    assert_conserved(session, 1_000_000)


def test_m7_t_plus_one_resale(client: TestClient, login: Login, session: Session, market, clock: FixedClock) -> None:
    order(client, login, "forestry_bureau", "sell", "60.00", 100)
    assert order(client, login, "enterprise", "buy", "60.00", 100).json()["status"] == "filled"
    same_day = order(client, login, "enterprise", "sell", "60.00", 100)
    assert same_day.status_code == 409 and "T+1" in same_day.json()["detail"]
    assert held_t(session, market["enterprise"], BlockState.ESCROWED) == 0
    clock.advance(timedelta(hours=7))  # 17:30 → 00:30 Beijing time: the next trading day
    enterprise = next(u for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.ENTERPRISE)
    next_day = place_order(session, PlaceOrderRequest(INSTRUMENT, "sell", "60.00", 100),
                           actor=principal_of(enterprise, "test"), clock=clock, cache=MatcherCache())  # fmt: skip
    assert next_day["status"] == "open"
    assert held_t(session, market["enterprise"], BlockState.ESCROWED) == 100


def test_m18_retire_on_fill(client: TestClient, login: Login, session: Session, market, app: FastAPI) -> None:
    order(client, login, "forestry_bureau", "sell", "60.00", 40)
    buy = order(client, login, "enterprise", "buy", "60.00", 40, retire_on_fill=True,
                beneficiary="Xiamen port", purpose="offset 2026 emissions").json()  # fmt: skip
    [fill] = buy["fills"]
    assert fill["retirement_id"] is not None
    assert held_t(session, market["enterprise"], BlockState.RETIRED) == 40
    assert held_t(session, market["enterprise"], BlockState.TRADABLE) == 0
    certificate = client.get(
        f"/api/v1/retirements/{fill['retirement_id']}/certificate.pdf", headers=login("enterprise")
    )
    assert certificate.status_code == 200 and certificate.content.startswith(b"%PDF")
    # Retired on fill, recorded as a direct retirement is, with a kept head: the certificate verifies offline.
    facts = facts_of_pdf(certificate.content)
    assert facts["audit_entry"]["action"] == "units.retired" and facts["tree_head_kept"] is True
    assert facts["tree_head"]["tree_size"] == facts["audit_entry"]["seq"]
    assert facts["audit_entry"]["payload"]["serials"] == facts["serials"] and facts["quantity_t"] == 40
    assert check_certificate(facts, app.state.audit_signing_key.public_key()) == []
    public = client.get(f"/public/v1/retirements/{facts['verification_code']}").json()
    assert public["tree_head"] == facts["tree_head"]  # kept once: the same head on every later read
    assert order(client, login, "forestry_bureau", "buy", "60.00", 1, retire_on_fill=True).status_code == 422


def test_r15_idempotency_key(client: TestClient, login: Login, session: Session, market) -> None:
    key = {"Idempotency-Key": "order-0001"}
    first = order(client, login, "enterprise", "buy", "60.00", 10, headers=key)
    again = order(client, login, "enterprise", "buy", "60.00", 10, headers=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert count(session, TradeOrder) == 1
    other = order(client, login, "enterprise", "buy", "60.00", 11, headers=key)
    assert other.status_code == 409 and other.json()["type"].endswith("core/idempotency-conflict")
    assert count(session, TradeOrder) == 1
    assert balances(client, login, "enterprise")["held_fen"] == 60_300


def test_bad_input_changes_nothing(client: TestClient, login: Login, session: Session, market) -> None:
    someone_else = order(
        client, login, "enterprise", "buy", "60.00", 1, account_organisation_id=market["forestry_bureau"]
    )
    assert someone_else.status_code == 403
    off_tick = order(client, login, "enterprise", "buy", "60.005", 1)
    assert off_tick.status_code == 422 and off_tick.json()["reason"] == "off_tick"
    out_of_band = order(client, login, "enterprise", "buy", "66.01", 1)
    assert out_of_band.status_code == 422 and out_of_band.json()["reason"] == "out_of_band"
    assert order(client, login, "enterprise", "buy", "60", 1, quantity_x=1).status_code == 422
    mine = order(client, login, "enterprise", "buy", "60.00", 1).json()["order_id"]
    assert client.post(f"/api/v1/orders/{mine}/cancel", headers=login("forest_owner")).status_code == 404
    assert count(session, TradeOrder) == 1
    assert balances(client, login, "enterprise")["held_fen"] == 6_030
    assert_conserved(session, 1_000_000)


def test_r5_r12_escrowed_tonnes_cannot_move(client: TestClient, login: Login, session: Session, market) -> None:
    order(client, login, "forestry_bureau", "sell", "60.00", 900)
    # R12: listed tonnes are escrowed; transferring or retiring them is refused (R5: overdraft), nothing moves.
    transfer = {"to_organisation_id": market["enterprise"], "quantity_t": 200}
    refused = client.post("/api/v1/transfers", json=transfer, headers=login("forestry_bureau"))
    assert refused.status_code == 409
    assert held_t(session, market["forestry_bureau"], BlockState.ESCROWED) == 900
    assert held_t(session, market["forestry_bureau"], BlockState.TRADABLE) == 100


def test_ioc_leftover_and_end_of_day_release(client: TestClient, login: Login, session: Session, market) -> None:
    order(client, login, "forestry_bureau", "sell", "60.00", 30)
    ioc = order(client, login, "enterprise", "buy", "60.00", 50, time_in_force="ioc").json()
    assert ioc["status"] == "cancelled" and ioc["filled_t"] == 30 and ioc["held_fen"] == 0
    day = order(client, login, "forestry_bureau", "sell", "61.00", 70, time_in_force="day").json()
    closed = client.post(f"/api/v1/instruments/{INSTRUMENT}/end-of-day", headers=login("operator")).json()
    assert closed["expired_order_ids"] == [day["order_id"]] and closed["close_price_cny"] == "60.00"
    assert held_t(session, market["forestry_bureau"], BlockState.ESCROWED) == 0
    assert balances(client, login, "enterprise")["held_fen"] == 0
    session.expire_all()
    assert rebuild_book(session, INSTRUMENT).states[INSTRUMENT].book.orders == {}
    session.rollback()
    assert count(session, Trade) == 1
    assert_conserved(session, 1_000_000)
