"""The registry ledger on a real database: operations, permissions, and a stateful property test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import (
    IssueBatch,
    RetireUnits,
    change_state,
    issue_batch,
    ledger_violations,
    open_blocks,
    retire_units,
    serials,
    transfer,
)
from carbon.models import BlockState, CreditClass
from carbon.serials import parse_block
from core.audit import verify_chain
from core.auth import OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import Conflict, InsufficientUnits, InvalidInput, PermissionDenied


def principals(session: Session) -> dict[OrgKind, Principal]:
    users = session.scalars(select(User)).all()
    return {u.organisation.kind: principal_of(u, "test") for u in users}


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Iterator[Session]:
    path = tmp_path / "ledger.db"
    shutil.copyfile(template_db, path)
    engine = make_engine(f"sqlite:///{path}")
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def issue(
    session: Session,
    who: dict[OrgKind, Principal],
    clock: FixedClock,
    source: str,
    quantity: int = 1000,
    buffer: int = 100,
):
    cmd = IssueBatch(1, source, CreditClass.FORESTRY_CARBON_TICKET, 2025, quantity, buffer)
    return issue_batch(session, cmd, actor=who[OrgKind.REGISTRY], clock=clock)


def held(session: Session, org_id: int, state: BlockState = BlockState.TRADABLE) -> int:
    return sum(b.quantity for b in open_blocks(session, org_id) if b.state is state)


def test_issue_transfer_retire(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    batch = issue(db, who, clock, "test:1")
    assert held(db, bureau.organisation_id) == 900
    moved = transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                     quantity_t=250, actor=bureau, clock=clock)  # fmt: skip
    assert serials(moved) == [f"SH-FCT-64-000001-2025-{batch.batch_number:06d}-000000001-000000250"]
    retirement = retire_units(
        db, RetireUnits(100, "Xiamen Haicang port", "offset 2025 emissions", 2025), actor=enterprise, clock=clock
    )
    assert (
        held(db, enterprise.organisation_id) == 150 and held(db, enterprise.organisation_id, BlockState.RETIRED) == 100
    )
    assert len(retirement.verification_code) == 16
    assert ledger_violations(db) == [] and verify_chain(db).ok
    assert parse_block(serials(moved)[0]).quantity == 250


def test_rules_are_enforced(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise, bank = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE], who[OrgKind.BANK]
    with pytest.raises(PermissionDenied, match="issuer is the registry"):
        issue_batch(db, IssueBatch(1, "x", CreditClass.FORESTRY_CARBON_TICKET, 2025, 10, 0), actor=bureau, clock=clock)
    db.rollback()
    issue(db, who, clock, "test:2")
    with pytest.raises(Conflict, match="no double issuance"):
        issue(db, who, clock, "test:2")
    db.rollback()
    with pytest.raises(InsufficientUnits):
        transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                 quantity_t=901, actor=bureau, clock=clock)  # fmt: skip
    db.rollback()
    with pytest.raises(PermissionDenied):
        transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                 quantity_t=1, actor=enterprise, clock=clock)  # fmt: skip
    db.rollback()
    with pytest.raises(InvalidInput):
        transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                 quantity_t=1.5, actor=bureau, clock=clock)  # type: ignore[arg-type]  # fmt: skip
    db.rollback()
    change_state(db, "pledge", organisation_id=bureau.organisation_id, quantity_t=300, actor=bureau, clock=clock,
                 pledgee_organisation_id=bank.organisation_id)  # fmt: skip
    with pytest.raises(InsufficientUnits):  # pledged units do not move
        transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                 quantity_t=601, actor=bureau, clock=clock)  # fmt: skip
    db.rollback()
    with pytest.raises(PermissionDenied, match="pledgee"):
        change_state(
            db, "enforce", organisation_id=bureau.organisation_id, quantity_t=10, actor=enterprise, clock=clock
        )
    db.rollback()
    change_state(db, "enforce", organisation_id=bureau.organisation_id, quantity_t=100, actor=bank, clock=clock)
    assert held(db, bank.organisation_id) == 100 and held(db, bureau.organisation_id, BlockState.PLEDGED) == 200
    with pytest.raises(PermissionDenied, match="reason"):
        change_state(
            db, "cancel", organisation_id=bureau.organisation_id, quantity_t=1, actor=who[OrgKind.REGISTRY], clock=clock
        )
    db.rollback()
    assert ledger_violations(db) == []


ORGS = [OrgKind.FORESTRY_BUREAU, OrgKind.ENTERPRISE, OrgKind.FOREST_OWNER]


def test_random_sequences_keep_every_invariant(template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))

    class Ledger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            path = tmp_path_factory.mktemp("ledger") / "l.db"
            shutil.copyfile(template_db, path)
            self.engine = make_engine(f"sqlite:///{path}")
            self.session = make_session_factory(self.engine)()
            self.who = principals(self.session)
            self.sources = 0

        def teardown(self) -> None:
            self.session.close()
            self.engine.dispose()

        def attempt(self, action) -> None:  # type: ignore[no-untyped-def]
            try:
                action()
            except (InsufficientUnits, PermissionDenied, InvalidInput, Conflict):
                self.session.rollback()

        @rule(quantity=st.integers(1, 500), buffer=st.integers(0, 50))
        def issue(self, quantity: int, buffer: int) -> None:
            self.sources += 1
            self.attempt(
                lambda: issue(self.session, self.who, clock, f"prop:{self.sources}", quantity, min(buffer, quantity))
            )

        @rule(a=st.sampled_from(ORGS), b=st.sampled_from(ORGS), quantity=st.integers(1, 300))
        def transfer(self, a: OrgKind, b: OrgKind, quantity: int) -> None:
            self.attempt(lambda: transfer(self.session, from_organisation_id=self.who[a].organisation_id,
                                          to_organisation_id=self.who[b].organisation_id, quantity_t=quantity,
                                          actor=self.who[a], clock=clock))  # fmt: skip

        @rule(
            org=st.sampled_from(ORGS),
            kind=st.sampled_from(["escrow", "release", "pledge"]),
            quantity=st.integers(1, 200),
        )
        def change(self, org: OrgKind, kind: str, quantity: int) -> None:
            bank = self.who[OrgKind.BANK].organisation_id
            self.attempt(lambda: change_state(self.session, kind, organisation_id=self.who[org].organisation_id,
                                              quantity_t=quantity, actor=self.who[org], clock=clock,
                                              pledgee_organisation_id=bank))  # fmt: skip

        @rule(org=st.sampled_from(ORGS), kind=st.sampled_from(["enforce", "unpledge"]), quantity=st.integers(1, 200))
        def bank_acts(self, org: OrgKind, kind: str, quantity: int) -> None:
            holder = self.who[org].organisation_id
            self.attempt(lambda: change_state(self.session, kind, organisation_id=holder, quantity_t=quantity,
                                              actor=self.who[OrgKind.BANK], clock=clock))  # fmt: skip

        @rule(org=st.sampled_from(ORGS), quantity=st.integers(1, 200))
        def retire(self, org: OrgKind, quantity: int) -> None:
            cmd = RetireUnits(quantity, "beneficiary", "purpose", 2026)
            self.attempt(lambda: retire_units(self.session, cmd, actor=self.who[org], clock=clock))

        @rule(org=st.sampled_from(ORGS), quantity=st.integers(1, 100))
        def cancel(self, org: OrgKind, quantity: int) -> None:
            self.attempt(lambda: change_state(self.session, "cancel", organisation_id=self.who[org].organisation_id,
                                              quantity_t=quantity, actor=self.who[OrgKind.REGISTRY], clock=clock,
                                              reason="reversal: fire"))  # fmt: skip

        @invariant()
        def consistent(self) -> None:
            assert ledger_violations(self.session) == []
            assert verify_chain(self.session).ok
            self.session.rollback()

    run_state_machine_as_test(
        Ledger, settings=settings(max_examples=15, stateful_step_count=25, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow])
    )  # fmt: skip


def test_an_operation_spanning_many_blocks_reads_them_page_by_page(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    for n in range(3):
        issue(db, who, clock, f"pages:{n}", quantity=200, buffer=0)
    # 150 single-tonne transfers leave the enterprise with 150 blocks (adjacent serials, stored separately);
    # taking 140 of them back spans three pages of 64.
    for _ in range(150):
        transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                 quantity_t=1, actor=bureau, clock=clock)  # fmt: skip
    assert len(open_blocks(db, enterprise.organisation_id)) == 150
    moved = transfer(db, from_organisation_id=enterprise.organisation_id, to_organisation_id=bureau.organisation_id,
                     quantity_t=140, actor=enterprise, clock=clock)  # fmt: skip
    assert sum(b.quantity for b in moved) == 140 and len(moved) == 140
    with pytest.raises(InsufficientUnits, match="holds 10 t"):
        transfer(db, from_organisation_id=enterprise.organisation_id, to_organisation_id=bureau.organisation_id,
                 quantity_t=11, actor=enterprise, clock=clock)  # fmt: skip
    db.rollback()
    assert ledger_violations(db) == []
