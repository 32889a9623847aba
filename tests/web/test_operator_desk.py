"""The operator's desk lists instruments and runs auctions (issue 25, ADR 044): the server's side.

The browser journey (``tests/browser/test_operator_desk.py``) shows the screens; these pin what the server does:
the reference price typed in CNY becomes whole ticks exactly (or is refused), a listing and an announcement are
audited as over the API, a refusal writes nothing, a form without its CSRF token or from another role changes
nothing, an auction cannot be closed before its window ends and, once closed, its allocations are published.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import BlockState
from core.audit import AuditEntry
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.errors import PermissionDenied
from tests.conftest import USER_OF_ROLE
from tests.e2e.market_setup import INSTRUMENT, cash_of, clocked_login, counts, list_market, org_id, tonnes
from tests.web.helpers import csrf_of, log_in
from trading import auctions
from trading.models import Auction, InstrumentRow

#: The clock fixture is 2026-11-25 09:30 UTC, 17:30 in Beijing: the window as a datetime-local input sends it.
OPENS, CLOSES = "2026-11-25T17:29", "2026-11-25T17:40"


@pytest.fixture(autouse=True)
def english(client: TestClient) -> None:
    """The pages in English, so that the assertions read the messages' ids."""
    client.headers["Accept-Language"] = "en"


def listing_form(token: str, **changes: str) -> dict[str, str]:
    form = {"csrf_token": token, "instrument_id": "FCT-2024", "credit_class": "FCT", "vintage_year": "2024",
            "reference_price_cny": "60.07", "hours": "national", "style": "price_time", "resale_next_day": "on",
            "buyer_fee_bp": "50", "seller_fee_bp": "30", "block_min_t": "10", "block_band_bp": "3000",
            "block_opens": "00:00", "block_closes": "24:00"}  # fmt: skip
    return {**form, **changes}


def instrument(session: Session, instrument_id: str) -> InstrumentRow | None:
    session.expire_all()
    row = session.get(InstrumentRow, instrument_id)
    session.rollback()
    return row


def audit_actions(session: Session) -> list[str]:
    found = list(session.scalars(select(AuditEntry.action).where(~AuditEntry.action.startswith("auth."))
                                 .order_by(AuditEntry.seq)))  # fmt: skip
    session.rollback()
    return found


def desk_token(client: TestClient) -> str:
    page = client.get("/operator")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def test_the_operator_lists_an_instrument_at_an_exact_price_and_it_shows_on_the_market(
    client: TestClient, session: Session
) -> None:
    assert log_in(client, "operator").status_code == 303
    answer = client.post("/operator/instruments", data=listing_form(desk_token(client)), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/operator?done=listed&id=FCT-2024")
    row = instrument(session, "FCT-2024")
    assert row is not None
    assert (row.reference_price_ticks, row.tick_fen, row.always_open, row.resale_next_day) == (6007, 1, False, True)
    assert (row.block_min_t, row.block_band_bp, row.block_open_minute, row.block_close_minute) == (10, 3000, 0, 1440)
    assert (row.buyer_fee_bp, row.seller_fee_bp, row.province_code) == (50, 30, None)
    assert audit_actions(session)[-1] == "instrument.listed"
    desk = client.get("/operator?done=listed&id=FCT-2024").text
    assert "Instrument FCT-2024 is listed." in desk and "60.07" in desk
    assert 'href="/market/FCT-2024"' in client.get("/market").text
    assert client.get("/market/FCT-2024").status_code == 200
    always = listing_form(desk_token(client), instrument_id="CCA-2025", credit_class="CCA", vintage_year="2025",
                          reference_price_cny="45", hours="always", province_code="35", resale_next_day="")  # fmt: skip
    assert client.post("/operator/instruments", data=always, follow_redirects=False).status_code == 303
    row = instrument(session, "CCA-2025")
    assert row is not None and (row.reference_price_ticks, row.always_open, row.resale_next_day) == (4500, True, False)
    assert row.province_code == "35"


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"reference_price_cny": "60.071"}, 422),  # a third decimal: not on the fen tick
        ({"reference_price_cny": "6e1"}, 422),  # never read as a float
        ({"reference_price_cny": "-60"}, 422),
        ({"credit_class": "XYZ"}, 422),  # the service's refusal
        ({"style": "dutch"}, 422),
        ({"block_opens": "16:00", "block_closes": "15:00"}, 422),
        ({"block_closes": "25:00"}, 422),
        ({"buyer_fee_bp": "1001"}, 422),
        ({"hours": "sometimes"}, 422),
        ({"instrument_id": "FCT 2024"}, 422),
    ],
)
def test_a_refused_listing_is_a_problem_page_and_writes_nothing(
    client: TestClient, session: Session, changes: dict[str, str], status: int
) -> None:
    log_in(client, "operator")
    before = audit_actions(session)
    answer = client.post("/operator/instruments", data=listing_form(desk_token(client), **changes))
    assert answer.status_code == status and "<h1>" in answer.text, answer.text
    assert instrument(session, "FCT-2024") is None and audit_actions(session) == before


def test_a_taken_code_no_csrf_token_or_another_role_changes_nothing(client: TestClient, session: Session) -> None:
    log_in(client, "operator")
    token = desk_token(client)
    assert client.post("/operator/instruments", data=listing_form(token), follow_redirects=False).status_code == 303
    before = audit_actions(session)
    again = client.post("/operator/instruments", data=listing_form(token, reference_price_cny="70"))
    assert again.status_code == 409 and "exists already" in again.text
    assert client.post("/operator/instruments", data=listing_form("")).status_code == 403
    assert client.post("/operator/instruments", data=listing_form("0" * 64)).status_code == 403
    row = instrument(session, "FCT-2024")
    assert row is not None and row.reference_price_ticks == 6007 and audit_actions(session) == before
    client.cookies.clear()
    assert log_in(client, "enterprise").status_code == 303
    assert client.get("/operator").status_code == 403
    token = csrf_of(client.get("/market").text)
    refused = client.post("/operator/instruments", data=listing_form(token, instrument_id="CCA-2025"))
    assert refused.status_code == 403 and instrument(session, "CCA-2025") is None
    form = {"csrf_token": token, "instrument_id": INSTRUMENT, "seller_organisation_id": "1", "quantity_t": "10",
            "reserve_price_cny": "1", "starts_at": OPENS, "ends_at": CLOSES}  # fmt: skip
    assert client.post("/operator/auctions", data=form).status_code == 403
    assert client.post("/operator/auctions/1/close", data={"csrf_token": token}).status_code == 403
    client.cookies.clear()
    assert client.post("/operator/instruments", data=listing_form(token), follow_redirects=False).status_code in {
        303, 401, 403}  # anonymous: to the login page or refused, never listed  # fmt: skip
    assert audit_actions(session) == before


def test_the_operator_announces_and_closes_an_auction_and_the_allocation_is_public(
    client: TestClient, session: Session, clock: FixedClock
) -> None:
    login = clocked_login(client, clock)
    ids = list_market(client, login, session, clock, tonnes=1_000, deposits={"enterprise": 10_000_000})
    seller, buyer = ids["forestry_bureau"], ids["enterprise"]
    assert log_in(client, "operator").status_code == 303
    token = desk_token(client)
    form = {"csrf_token": token, "instrument_id": INSTRUMENT, "seller_organisation_id": str(seller),
            "quantity_t": "300", "reserve_price_cny": "58.00", "starts_at": OPENS, "ends_at": CLOSES,
            "rule": "uniform"}  # fmt: skip

    before = counts(session)
    for changes, status in [({"reserve_price_cny": "58.005"}, 422), ({"quantity_t": "1.5"}, 422),
                            ({"quantity_t": "2000"}, 409), ({"ends_at": "2026-11-25T17:00"}, 422),
                            ({"seller_organisation_id": str(ids["registry"])}, 422),
                            ({"seller_organisation_id": "999999"}, 404), ({"provinces": "99"}, 422),
                            ({"kinds": "bank"}, 422), ({"csrf_token": ""}, 403)]:  # fmt: skip
        answer = client.post("/operator/auctions", data={**form, **changes})
        assert answer.status_code == status, (changes, answer.status_code, answer.text[:300])
    assert counts(session) == before  # every refusal wrote nothing

    announced = client.post("/operator/auctions", data=form, follow_redirects=False)
    assert announced.status_code == 303, announced.text
    terms = session.execute(select(Auction.id, Auction.seller_organisation_id, Auction.quantity_t,
                                   Auction.reserve_price_ticks)).one()  # fmt: skip
    session.rollback()
    assert tuple(terms)[1:] == (seller, 300, 5800)
    auction_id = terms[0]
    assert tonnes(session, seller, BlockState.ESCROWED) == 300
    actor, payload = session.execute(select(AuditEntry.actor, AuditEntry.payload)
                                     .where(AuditEntry.action == "auction.announced")).one()  # fmt: skip
    session.rollback()
    operator = session.scalars(select(User.id).where(User.username == USER_OF_ROLE["operator"])).one()
    session.rollback()
    assert json.loads(payload)["seller_organisation_id"] == seller and actor == f"user:{operator}"
    desk = client.get("/operator").text
    assert f"Auction {auction_id} is announced" not in desk and f'data-auction="{auction_id}"' in desk
    assert "Open for bids" in desk and f"close-{auction_id}" not in desk

    bid = {"price_cny": "59.37", "quantity_t": 120}
    placed = client.post(f"/api/v1/auctions/{auction_id}/bids", json=bid, headers=login("enterprise"))
    assert placed.status_code == 201, placed.text
    early = client.post(f"/operator/auctions/{auction_id}/close", data={"csrf_token": token})
    assert early.status_code == 409 and "cannot close yet" in early.text

    clock.advance(timedelta(minutes=15))
    assert client.post(f"/operator/auctions/{auction_id}/close", data={"csrf_token": ""}).status_code == 403
    awaiting = client.get("/operator").text
    assert "Awaiting its close" in awaiting and f'data-testid="close-{auction_id}"' in awaiting
    closed = client.post(f"/operator/auctions/{auction_id}/close", data={"csrf_token": token}, follow_redirects=False)
    assert closed.status_code == 303
    assert audit_actions(session)[-1] in {"auction.closed", "trade.settled"} and "auction.closed" in audit_actions(
        session)  # fmt: skip
    desk = client.get(f"/operator?done=closed&id={auction_id}").text
    assert f"Auction {auction_id} is closed" in desk
    assert "#1: 120 t × 59.37 = 7,124.40 CNY" in desk  # 120 × 59.37 exactly, to the fen
    assert tonnes(session, seller, BlockState.ESCROWED) == 0
    assert cash_of(session, buyer)[1] == 0  # the rest of the hold released
    client.cookies.clear()
    public = client.get(f"/auctions/{auction_id}").text
    assert "59.37" in public and "120" in public and "Closed" in public


def test_only_the_operator_names_another_seller(client: TestClient, session: Session, clock: FixedClock) -> None:
    login = clocked_login(client, clock)
    ids = list_market(client, login, session, clock, tonnes=100, deposits={})
    enterprise = session.scalars(select(User).where(User.organisation_id == ids["enterprise"])).first()
    assert enterprise is not None
    command = auctions.AnnounceAuction(INSTRUMENT, 10, "60", clock.now(), clock.now() + timedelta(hours=1),
                                       seller_organisation_id=ids["forestry_bureau"])  # fmt: skip
    with pytest.raises(PermissionDenied):
        auctions.announce(session, command, actor=principal_of(enterprise, "test"), clock=clock)
    session.rollback()
    assert session.scalars(select(Auction)).first() is None
    assert org_id(session, OrgKind.OPERATOR) not in {ids["forestry_bureau"], ids["enterprise"]}
