"""Shared set-up of the block-trade and auction tests: an instrument, tonnes, cash, extra buyers, row counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import (
    BlockState,
    CreditClass,
    HoldingBlock,
    IssueBatch,
    Movement,
    issue_batch,
    ledger_violations,
    open_blocks,
)
from core.audit import AuditEntry, verify_chain
from core.auth import Organisation, OrgKind, User, hash_password, principal_of
from core.clock import FixedClock
from tests.conftest import PASSWORDS, USER_OF_ROLE
from trading.cash import cash_violations
from trading.models import Auction, AuctionBid, BlockTrade, CashAccount, CashEntry, Trade

Login = Callable[[str], dict[str, str]]
INSTRUMENT = "FCT-2025"
#: The clock fixture is Wed 2026-11-25 09:30 UTC = 17:30 in Shanghai; 4 h earlier is 13:30, inside the block
#: window. (Backwards, not to Thursday: PyJWT refuses a token issued after the real wall-clock time.)
TO_WEDNESDAY_1330 = timedelta(hours=-4)
STATE_TABLES = (BlockTrade, Auction, AuctionBid, Trade, CashEntry, Movement, HoldingBlock, AuditEntry)


def org_id(session: Session, kind: OrgKind) -> int:
    found = session.scalars(select(Organisation.id).where(Organisation.kind == kind).order_by(Organisation.id)).first()
    session.rollback()
    assert found is not None
    return found


def list_market(client: TestClient, login: Login, session: Session, clock: FixedClock, *, tonnes: int,
                deposits: dict[str, int]) -> dict[str, int]:  # fmt: skip
    """Issue ``tonnes`` to the Ningxia bureau, list the instrument (60.00, fees 50/30 bp), deposit cash."""
    registry = next(u for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.REGISTRY)
    issue_batch(session, IssueBatch(1, "test:market", CreditClass.FORESTRY_CARBON_TICKET, 2025, tonnes, 0),
                actor=principal_of(registry, "test"), clock=clock)  # fmt: skip
    body = {"instrument_id": INSTRUMENT, "credit_class": "FCT", "vintage_year": 2025, "reference_price_cny": "60",
            "always_open": True, "buyer_fee_bp": 50, "seller_fee_bp": 30}  # fmt: skip
    assert client.post("/api/v1/instruments", json=body, headers=login("operator")).status_code == 201
    ids = {kind.value: org_id(session, kind) for kind in OrgKind}
    for who, amount in deposits.items():
        organisation = ids.get(who) or org_id_by_user(session, who)
        deposit = {"organisation_id": organisation, "amount_fen": amount, "reference": f"BANK-{who}"}
        assert client.post("/api/v1/cash/deposits", json=deposit, headers=login("operator")).status_code == 201
    return ids


def org_id_by_user(session: Session, username: str) -> int:
    found = session.scalars(select(User.organisation_id).where(User.username == username)).one()
    session.rollback()
    return found


def add_buyer(session: Session, username: str, province: str, kind: OrgKind = OrgKind.ENTERPRISE) -> int:
    """Create a buyer organisation with one user (password ``pw-<username>``); return the organisation id."""
    now = datetime(2026, 11, 25, tzinfo=UTC)
    org = Organisation(name=f"Test buyer {username}", kind=kind, province_code=province, created_at=now)
    user = User(organisation=org, username=username, display_name=username,
                password_hash=hash_password(f"pw-{username}"), created_at=now)  # fmt: skip
    session.add_all([org, user])
    session.commit()
    organisation_id = org.id
    session.rollback()
    return organisation_id


def clocked_login(client: TestClient, clock: FixedClock) -> Login:
    """Return a login function for demo users (by role or name) and test buyers, whose tokens follow the clock.

    Tokens last 15 minutes of the app's clock, and these tests move the clock by hours: a token is cached
    only for the instant it was issued at.
    """
    cache: dict[tuple[str, datetime], dict[str, str]] = {}

    def _login(who: str) -> dict[str, str]:
        username = USER_OF_ROLE.get(who, who)
        key = (username, clock.now())
        if key not in cache:
            password = PASSWORDS.get(username, f"pw-{username}")
            response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
            assert response.status_code == 200, response.text
            cache[key] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return cache[key]

    return _login


def counts(session: Session) -> dict[str, int]:
    """Rows of every table a block-trade or auction command may write (logins' audit entries left out)."""
    session.expire_all()
    result = {m.__tablename__: int(session.scalar(select(func.count()).select_from(m)) or 0) for m in STATE_TABLES}
    # A test's first request as a user logs in, which is itself audited (auth.*); it is not the command's write.
    logins = select(func.count()).select_from(AuditEntry).where(AuditEntry.action.startswith("auth."))
    result[AuditEntry.__tablename__] -= int(session.scalar(logins) or 0)
    session.rollback()
    return result


def tonnes(session: Session, organisation_id: int, state: BlockState) -> int:
    session.expire_all()
    total = sum(b.quantity for b in open_blocks(session, organisation_id) if b.state is state)
    session.rollback()
    return total


def cash_of(session: Session, organisation_id: int, kind: str = "trading") -> tuple[int, int]:
    """(available_fen, held_fen) of an organisation's account."""
    session.expire_all()
    account = session.scalars(
        select(CashAccount).where(CashAccount.organisation_id == organisation_id, CashAccount.kind == kind)
    ).one_or_none()
    result = (0, 0) if account is None else (account.available_fen, account.held_fen)
    session.rollback()
    return result


def total_cash(session: Session) -> int:
    session.expire_all()
    total = session.scalar(select(func.sum(CashAccount.available_fen + CashAccount.held_fen)))
    session.rollback()
    return int(total or 0)


def assert_books_balance(session: Session) -> None:
    session.expire_all()
    assert cash_violations(session) == []
    assert ledger_violations(session) == []
    assert verify_chain(session).ok
    session.rollback()


def assert_problem(response, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"urn:shanhai:problem:{slug}", body
    return body
