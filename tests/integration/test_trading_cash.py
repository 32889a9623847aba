"""Cash accounts: deposits and withdrawals by the operator, refusals that change nothing, broken books found."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.audit import AuditEntry, verify_chain
from core.auth import Organisation, OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import InsufficientFunds, InvalidInput, NotFound, PermissionDenied
from trading import cash
from trading.models import CashAccount, CashEntry

CLOCK = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Iterator[tuple[Session, dict[OrgKind, Principal]]]:
    path = tmp_path / "cash.db"
    shutil.copyfile(template_db, path)
    engine = make_engine(f"sqlite:///{path}")
    with make_session_factory(engine)() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        session.rollback()
        yield session, who
    engine.dispose()


def rows(session: Session) -> tuple[int, int, int]:
    counts = tuple(int(session.scalar(select(func.count()).select_from(m)) or 0)
                   for m in (CashAccount, CashEntry, AuditEntry))  # fmt: skip
    session.rollback()
    return counts  # type: ignore[return-value]


def test_deposit_and_withdraw(db: tuple[Session, dict[OrgKind, Principal]]) -> None:
    session, who = db
    operator, enterprise = who[OrgKind.OPERATOR], who[OrgKind.ENTERPRISE].organisation_id
    assert cash.balances(session, enterprise) == (0, 0)
    cash.deposit(session, cash.CashMovement(enterprise, 50_000, "BANK-1"), actor=operator, clock=CLOCK)
    account = cash.withdraw(session, cash.CashMovement(enterprise, 20_000, "BANK-2"), actor=operator, clock=CLOCK)
    assert (account.available_fen, account.held_fen) == (30_000, 0)
    assert cash.balances(session, enterprise) == (30_000, 0)
    kinds = session.scalars(select(CashEntry.kind).order_by(CashEntry.id)).all()
    assert kinds == ["deposit", "withdrawal"]
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(2)).all()
    assert actions == ["cash.withdrawn", "cash.deposited"]
    assert cash.cash_violations(session) == [] and verify_chain(session).ok
    session.rollback()


def test_refusals_change_nothing(db: tuple[Session, dict[OrgKind, Principal]]) -> None:
    session, who = db
    operator, enterprise = who[OrgKind.OPERATOR], who[OrgKind.ENTERPRISE]
    cash.deposit(session, cash.CashMovement(enterprise.organisation_id, 1_000, "BANK-1"), actor=operator, clock=CLOCK)
    before = rows(session)
    refusals: list[tuple[cash.CashMovement, Principal, type[Exception]]] = [
        (cash.CashMovement(enterprise.organisation_id, 1_001, "BANK-2"), operator, InsufficientFunds),
        (cash.CashMovement(enterprise.organisation_id, 10, "BANK-3"), enterprise, PermissionDenied),
        (cash.CashMovement(enterprise.organisation_id, 0, "BANK-4"), operator, InvalidInput),
        (cash.CashMovement(enterprise.organisation_id, True, "BANK-5"), operator, InvalidInput),  # type: ignore[arg-type]
        (cash.CashMovement(enterprise.organisation_id, 10, "  "), operator, InvalidInput),
    ]
    for movement, actor, error in refusals:
        with pytest.raises(error):
            cash.withdraw(session, movement, actor=actor, clock=CLOCK)
        session.rollback()
    with pytest.raises(NotFound):
        cash.deposit(session, cash.CashMovement(999_999, 10, "BANK-6"), actor=operator, clock=CLOCK)
    session.rollback()
    assert rows(session) == before
    assert cash.balances(session, enterprise.organisation_id) == (1_000, 0)


def test_hold_release_and_fee_account(db: tuple[Session, dict[OrgKind, Principal]]) -> None:
    session, who = db
    operator, enterprise = who[OrgKind.OPERATOR], who[OrgKind.ENTERPRISE].organisation_id
    cash.deposit(session, cash.CashMovement(enterprise, 1_000, "BANK-1"), actor=operator, clock=CLOCK)
    now = CLOCK.now()
    account = cash.cash_account(session, enterprise, now=now)
    with pytest.raises(InsufficientFunds):
        cash.hold(session, account, 1_001, "order:1", now)
    cash.hold(session, account, 600, "order:1", now)
    cash.release(session, account, 200, "order:1", now)
    cash.post(session, account, cash.HELD, 0, "noop", "order:1", now)  # nothing to record
    with pytest.raises(InsufficientFunds):
        cash.post(session, account, cash.HELD, -401, "trade", "order:1", now)
    session.rollback()
    account = cash.cash_account(session, enterprise, now=now)
    cash.hold(session, account, 600, "order:1", now)
    cash.release(session, account, 200, "order:1", now)
    fee = cash.fee_account(session, now=now)
    assert fee.kind == cash.FEE and fee.organisation_id == operator.organisation_id
    session.commit()
    assert cash.balances(session, enterprise) == (600, 400)
    assert cash.balances(session, operator.organisation_id, cash.FEE) == (0, 0)
    assert cash.cash_violations(session) == []
    session.rollback()


def test_fee_account_needs_an_operator(db: tuple[Session, dict[OrgKind, Principal]]) -> None:
    session, _ = db
    session.execute(update(Organisation).where(Organisation.kind == OrgKind.OPERATOR).values(kind=OrgKind.ENTERPRISE))
    with pytest.raises(NotFound):
        cash.fee_account(session, now=CLOCK.now())
    session.rollback()


def test_cash_violations_finds_broken_books(db: tuple[Session, dict[OrgKind, Principal]]) -> None:
    session, who = db
    operator, enterprise = who[OrgKind.OPERATOR], who[OrgKind.ENTERPRISE].organisation_id
    cash.deposit(session, cash.CashMovement(enterprise, 1_000, "BANK-1"), actor=operator, clock=CLOCK)
    # A balance edited behind the entries' back (as a bad migration or a manual fix would).
    session.execute(update(CashAccount).values(available_fen=1_500))
    problems = cash.cash_violations(session)
    assert any("available 1500 != entries 1000" in p for p in problems)
    assert any("deposits - withdrawals 1000" in p for p in problems)
    session.rollback()
