"""Only organisations that may hold receive tonnes (issue 15 item 2, ADR 022), through the API.

Forestry bureaus, forest owners, enterprises and banks hold; a transfer to the verifier, the registry, the
operator, the ecology bureau or the auditor is refused with a 422 problem and writes nothing — before this
rule the tonnes were accepted and stranded, and the registry's tonnes showed up beside its buffer pool.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import BlockState, CreditClass, HoldingBlock, Movement, open_blocks
from core.audit import AuditEntry
from core.auth import OrgKind
from core.clock import FixedClock
from core.errors import InvalidInput

from .market_helpers import Login, issue, list_instrument, place, user_of

NON_HOLDERS = [OrgKind.VERIFIER, OrgKind.REGISTRY, OrgKind.OPERATOR, OrgKind.ECOLOGY_BUREAU, OrgKind.AUDITOR]
HOLDERS = [OrgKind.FOREST_OWNER, OrgKind.ENTERPRISE, OrgKind.BANK]


def rows(session: Session) -> tuple[int, ...]:
    session.expire_all()
    counted = tuple(int(session.scalar(select(func.count()).select_from(m)) or 0)
                    for m in (HoldingBlock, Movement, AuditEntry))  # fmt: skip
    session.rollback()
    return counted


def held(session: Session, kind: OrgKind) -> int:
    organisation_id = user_of(session, kind).organisation_id
    total = sum(b.quantity for b in open_blocks(session, organisation_id) if b.state is BlockState.TRADABLE)
    session.rollback()
    return total


@pytest.mark.parametrize("kind", NON_HOLDERS)
def test_a_transfer_to_an_organisation_that_may_not_hold_is_a_422_and_writes_nothing(
    client: TestClient, login: Login, session: Session, clock: FixedClock, kind: OrgKind
) -> None:
    issue(session, clock, 1, "test:hold-rule", CreditClass.FORESTRY_CARBON_TICKET, 100)
    receiver = user_of(session, kind).organisation_id
    session.rollback()
    buffer_before = client.get("/public/v1/buffer").json()
    bureau = login("forestry_bureau")  # a login is itself audited, so it comes before the count
    before = rows(session)
    body = {"to_organisation_id": receiver, "quantity_t": 10}
    response = client.post("/api/v1/transfers", json=body, headers=bureau)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("core/invalid-input") and kind.value in problem["detail"], problem
    assert rows(session) == before
    assert held(session, OrgKind.FORESTRY_BUREAU) == 100 and held(session, kind) == 0
    assert client.get("/public/v1/buffer").json() == buffer_before


@pytest.mark.parametrize("kind", HOLDERS)
def test_a_transfer_to_an_organisation_that_holds_goes_through(
    client: TestClient, login: Login, session: Session, clock: FixedClock, kind: OrgKind
) -> None:
    issue(session, clock, 1, "test:hold-rule", CreditClass.FORESTRY_CARBON_TICKET, 100)
    receiver = user_of(session, kind).organisation_id
    session.rollback()
    body = {"to_organisation_id": receiver, "quantity_t": 10}
    response = client.post("/api/v1/transfers", json=body, headers=login("forestry_bureau"))
    assert response.status_code == 201, response.text
    assert held(session, kind) == 10 and held(session, OrgKind.FORESTRY_BUREAU) == 90


def test_the_exchange_takes_no_buy_order_from_an_organisation_that_may_not_hold(
    client: TestClient, login: Login, session: Session, app: FastAPI, clock: FixedClock
) -> None:
    """The route admits traders only; the service itself refuses too, so nothing is ever delivered to them."""
    issue(session, clock, 1, "test:hold-rule", CreditClass.FORESTRY_CARBON_TICKET, 100)
    list_instrument(client, login, "FCT-2025", "FCT", "60")
    place(session, app, clock, OrgKind.FORESTRY_BUREAU, "FCT-2025", "sell", "60.00", 10)
    before = rows(session)
    with pytest.raises(InvalidInput, match="is a verifier and may not receive tonnes"):
        place(session, app, clock, OrgKind.VERIFIER, "FCT-2025", "buy", "60.00", 10)
    session.rollback()
    assert rows(session) == before and held(session, OrgKind.VERIFIER) == 0
