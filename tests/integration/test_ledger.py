"""The registry ledger on a real database: operations, permissions, and a stateful property test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import (
    BlockState,
    CreditClass,
    CreditClassPolicy,
    HoldingBlock,
    IssueBatch,
    Movement,
    PendingTransfer,
    RetireUnits,
    ReversalRule,
    TransferStatus,
    account_of,
    change_state,
    decide_transfer,
    expire_transfers,
    issue_batch,
    ledger_violations,
    open_blocks,
    pending_transfer_of,
    retire_units,
    reverse,
    serials,
    settle_escrowed,
    transfer,
)
from carbon.models import Project
from carbon.serials import parse_block
from core.audit import AuditEntry, verify_chain
from core.auth import OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import Conflict, InsufficientUnits, InvalidInput, NotFound, PermissionDenied


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
            self.clock = clock

        def teardown(self) -> None:
            self.session.close()
            self.engine.dispose()

        def attempt(self, action) -> None:  # type: ignore[no-untyped-def]
            try:
                action()
            except (InsufficientUnits, PermissionDenied, InvalidInput, Conflict, NotFound):
                self.session.rollback()

        @rule(
            quantity=st.integers(1, 500),
            buffer=st.integers(0, 50),
            credit_class=st.sampled_from([CreditClass.FORESTRY_CARBON_TICKET, CreditClass.CCER_AFFORESTATION]),
        )
        def issue(self, quantity: int, buffer: int, credit_class: CreditClass) -> None:
            # CCA requires the receiver's acceptance (seeded rule), so its transfers become pending offers.
            self.sources += 1
            cmd = IssueBatch(1, f"prop:{self.sources}", credit_class, 2025, quantity, min(buffer, quantity))
            self.attempt(lambda: issue_batch(self.session, cmd, actor=self.who[OrgKind.REGISTRY], clock=self.clock))

        @rule(accept=st.booleans(), pick=st.integers(0, 10**6), by=st.sampled_from(ORGS))
        def decide(self, accept: bool, pick: int, by: OrgKind) -> None:
            offers = self.session.scalars(
                select(PendingTransfer.id).where(PendingTransfer.status == TransferStatus.PENDING)
            ).all()
            self.session.rollback()
            if offers:
                offer = offers[pick % len(offers)]
                self.attempt(lambda: decide_transfer(self.session, offer, accept=accept, actor=self.who[by],
                                                     clock=self.clock))  # fmt: skip

        @rule(days=st.integers(0, 8))
        def expire(self, days: int) -> None:
            self.clock = FixedClock(self.clock.now() + timedelta(days=days))
            self.attempt(lambda: expire_transfers(self.session, actor="system:test", clock=self.clock))

        @rule(quantity=st.integers(1, 300))
        def reverse(self, quantity: int) -> None:
            self.attempt(lambda: reverse(self.session, 1, quantity, "fire", actor=self.who[OrgKind.REGISTRY],
                                         clock=self.clock))  # fmt: skip

        @rule(a=st.sampled_from(ORGS), b=st.sampled_from(ORGS), quantity=st.integers(1, 300))
        def transfer(self, a: OrgKind, b: OrgKind, quantity: int) -> None:
            self.attempt(lambda: transfer(self.session, from_organisation_id=self.who[a].organisation_id,
                                          to_organisation_id=self.who[b].organisation_id, quantity_t=quantity,
                                          actor=self.who[a], clock=self.clock))  # fmt: skip

        @rule(
            org=st.sampled_from(ORGS),
            kind=st.sampled_from(["escrow", "release", "pledge"]),
            quantity=st.integers(1, 200),
        )
        def change(self, org: OrgKind, kind: str, quantity: int) -> None:
            bank = self.who[OrgKind.BANK].organisation_id
            self.attempt(lambda: change_state(self.session, kind, organisation_id=self.who[org].organisation_id,
                                              quantity_t=quantity, actor=self.who[org], clock=self.clock,
                                              pledgee_organisation_id=bank))  # fmt: skip

        @rule(org=st.sampled_from(ORGS), kind=st.sampled_from(["enforce", "unpledge"]), quantity=st.integers(1, 200))
        def bank_acts(self, org: OrgKind, kind: str, quantity: int) -> None:
            holder = self.who[org].organisation_id
            self.attempt(lambda: change_state(self.session, kind, organisation_id=holder, quantity_t=quantity,
                                              actor=self.who[OrgKind.BANK], clock=self.clock))  # fmt: skip

        @rule(org=st.sampled_from(ORGS), quantity=st.integers(1, 200))
        def retire(self, org: OrgKind, quantity: int) -> None:
            cmd = RetireUnits(quantity, "beneficiary", "purpose", 2026)
            self.attempt(lambda: retire_units(self.session, cmd, actor=self.who[org], clock=self.clock))

        @rule(org=st.sampled_from(ORGS), quantity=st.integers(1, 100))
        def cancel(self, org: OrgKind, quantity: int) -> None:
            self.attempt(lambda: change_state(self.session, "cancel", organisation_id=self.who[org].organisation_id,
                                              quantity_t=quantity, actor=self.who[OrgKind.REGISTRY], clock=self.clock,
                                              reason="reversal: fire"))  # fmt: skip

        @invariant()
        def consistent(self) -> None:
            assert ledger_violations(self.session) == []
            # Every pending offer holds exactly its tonnes in pending blocks; decided offers hold none.
            pending = self.session.execute(
                select(
                    HoldingBlock.pending_transfer_id, func.sum(HoldingBlock.serial_end - HoldingBlock.serial_start + 1)
                )
                .where(HoldingBlock.closed_at.is_(None), HoldingBlock.state == BlockState.PENDING)
                .group_by(HoldingBlock.pending_transfer_id)
            ).all()
            offers = self.session.execute(
                select(PendingTransfer.id, PendingTransfer.quantity_t).where(
                    PendingTransfer.status == TransferStatus.PENDING
                )
            ).all()
            assert dict(pending) == dict(offers)
            assert verify_chain(self.session).ok
            self.session.rollback()

    run_state_machine_as_test(
        Ledger, settings=settings(max_examples=15, stateful_step_count=25, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow])
    )  # fmt: skip


def test_an_operation_spanning_many_blocks_reads_them_page_by_page(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise, owner = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE], who[OrgKind.FOREST_OWNER]
    for n in range(2):
        issue(db, who, clock, f"pages:{n}", quantity=200, buffer=0)
    # Alternate single tonnes between two receivers: the enterprise gets serials 1, 3, 5, … — 150 blocks that
    # are not adjacent (so not coalesced); taking 140 of them back spans three pages of 64.
    for _ in range(150):
        for receiver in (enterprise, owner):
            transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=receiver.organisation_id,
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


def test_adjacent_blocks_of_one_holder_are_coalesced_and_history_is_kept(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    batch = issue(db, who, clock, "coalesce:1", quantity=200, buffer=0)
    for _ in range(50):
        transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                 quantity_t=1, actor=bureau, clock=clock)  # fmt: skip
    [block] = open_blocks(db, enterprise.organisation_id)
    assert (block.serial_start, block.serial_end, block.state) == (1, 50, BlockState.TRADABLE)
    # Each transfer still journals its own tonne and its own audit entry; closed rows stay as history.
    moves = db.scalars(select(Movement).where(Movement.batch_id == batch.id, Movement.kind == "transfer")).all()
    assert [(m.serial_start, m.serial_end) for m in moves] == [(n, n) for n in range(1, 51)]
    assert db.scalar(select(func.count()).select_from(HoldingBlock).where(HoldingBlock.closed_at.is_not(None))) >= 99
    # A pledged piece is not merged with tradable neighbours, and is merged back when released.
    bank = who[OrgKind.BANK]
    change_state(db, "pledge", organisation_id=enterprise.organisation_id, quantity_t=10, actor=enterprise,
                 clock=clock, pledgee_organisation_id=bank.organisation_id)  # fmt: skip
    assert len(open_blocks(db, enterprise.organisation_id)) == 2
    change_state(db, "unpledge", organisation_id=enterprise.organisation_id, quantity_t=10, actor=bank, clock=clock)
    assert [(b.serial_start, b.serial_end) for b in open_blocks(db, enterprise.organisation_id)] == [(1, 50)]
    # Retired blocks never merge (they are final): two retirements stay two blocks.
    for _ in range(2):
        retire_units(db, RetireUnits(5, "b", "p", 2026), actor=enterprise, clock=clock)
    retired = [b for b in open_blocks(db, enterprise.organisation_id) if b.state is BlockState.RETIRED]
    assert [(b.serial_start, b.serial_end) for b in retired] == [(1, 5), (6, 10)]
    assert ledger_violations(db) == [] and verify_chain(db).ok


def issue_class(session: Session, who: dict[OrgKind, Principal], clock: FixedClock, source: str,
                credit_class: CreditClass, quantity: int = 1000, buffer: int = 100) -> int:  # fmt: skip
    cmd = IssueBatch(1, source, credit_class, 2025, quantity, buffer)
    return issue_batch(session, cmd, actor=who[OrgKind.REGISTRY], clock=clock).id


def counts(session: Session) -> tuple[int, ...]:
    try:
        return tuple(
            session.scalar(select(func.count()).select_from(model))  # type: ignore[misc]
            for model in (HoldingBlock, Movement, PendingTransfer, AuditEntry)
        )
    finally:
        session.rollback()


def test_a_class_that_requires_acceptance_waits_for_the_receiver(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise, owner = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE], who[OrgKind.FOREST_OWNER]
    issue_class(db, who, clock, "accept:1", CreditClass.CCER_AFFORESTATION)  # CCA requires acceptance (seeded)
    moved = transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                     quantity_t=300, actor=bureau, clock=clock)  # fmt: skip
    offer_id = pending_transfer_of(moved)
    assert offer_id is not None and [b.state for b in moved] == [BlockState.PENDING]
    assert held(db, bureau.organisation_id, BlockState.PENDING) == 300 and held(db, enterprise.organisation_id) == 0
    # Pending tonnes cannot go anywhere else: not transferred, pledged, retired or escrowed again.
    before = counts(db)
    with pytest.raises(InsufficientUnits):
        transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=owner.organisation_id,
                 quantity_t=601, actor=bureau, clock=clock)  # fmt: skip
    db.rollback()
    with pytest.raises(InsufficientUnits):
        retire_units(db, RetireUnits(601, "b", "p", 2026), actor=bureau, clock=clock)
    db.rollback()
    with pytest.raises(InsufficientUnits):
        change_state(db, "escrow", organisation_id=bureau.organisation_id, quantity_t=601, actor=bureau, clock=clock)
    db.rollback()
    # Only the receiver decides.
    with pytest.raises(NotFound):
        decide_transfer(db, offer_id, accept=True, actor=owner, clock=clock)
    db.rollback()
    with pytest.raises(NotFound):
        decide_transfer(db, offer_id, accept=True, actor=bureau, clock=clock)
    db.rollback()
    assert counts(db) == before
    accepted = decide_transfer(db, offer_id, accept=True, actor=enterprise, clock=clock)
    assert sum(b.quantity for b in accepted) == 300 and held(db, enterprise.organisation_id) == 300
    assert held(db, bureau.organisation_id, BlockState.PENDING) == 0
    with pytest.raises(Conflict, match="accepted already"):
        decide_transfer(db, offer_id, accept=False, actor=enterprise, clock=clock)
    db.rollback()
    # A rejected offer returns to the sender and merges back with its neighbours.
    second = pending_transfer_of(
        transfer(
            db,
            from_organisation_id=bureau.organisation_id,
            to_organisation_id=owner.organisation_id,
            quantity_t=100,
            actor=bureau,
            clock=clock,
        )
    )
    assert second is not None
    decide_transfer(db, second, accept=False, actor=owner, clock=clock, reason="wrong vintage")
    assert held(db, bureau.organisation_id) == 600 and held(db, owner.organisation_id) == 0
    bureau_blocks = [b for b in open_blocks(db, bureau.organisation_id) if b.state is BlockState.TRADABLE]
    assert [(b.serial_start, b.serial_end) for b in bureau_blocks] == [(301, 900)]
    actions = db.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions[-4:] == ["units.transfer_offered", "units.transfer_accepted", "units.transfer_offered",
                            "units.transfer_rejected"]  # fmt: skip
    assert ledger_violations(db) == [] and verify_chain(db).ok


def test_a_pending_transfer_expires_and_its_tonnes_return(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    issue_class(db, who, clock, "expire:1", CreditClass.ECOLOGICAL_RESTORATION)
    offer_id = pending_transfer_of(
        transfer(
            db,
            from_organisation_id=bureau.organisation_id,
            to_organisation_id=enterprise.organisation_id,
            quantity_t=50,
            actor=bureau,
            clock=clock,
        )
    )
    assert offer_id is not None
    assert expire_transfers(db, actor="system:test", clock=clock) == []  # not yet
    later = FixedClock(clock.now() + timedelta(days=7))
    with pytest.raises(Conflict, match="expired"):
        decide_transfer(db, offer_id, accept=True, actor=enterprise, clock=later)
    db.rollback()
    assert expire_transfers(db, actor="system:test", clock=later) == [offer_id]
    assert db.get(PendingTransfer, offer_id).status is TransferStatus.EXPIRED  # type: ignore[union-attr]
    assert held(db, bureau.organisation_id) == 900 and held(db, enterprise.organisation_id) == 0
    assert db.scalars(select(AuditEntry.action).order_by(AuditEntry.seq.desc())).first() == "units.transfer_expired"
    assert ledger_violations(db) == [] and verify_chain(db).ok


def test_a_class_without_acceptance_transfers_at_once_and_the_rule_is_a_row(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    issue_class(db, who, clock, "fct:1", CreditClass.FORESTRY_CARBON_TICKET)
    moved = transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                     quantity_t=10, actor=bureau, clock=clock)  # fmt: skip
    assert pending_transfer_of(moved) is None and held(db, enterprise.organisation_id) == 10
    policy = db.get(CreditClassPolicy, "FCT")
    assert policy is not None
    policy.requires_acceptance = True  # the registry changes a class's rule by updating its row
    db.commit()
    moved = transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise.organisation_id,
                     quantity_t=10, actor=bureau, clock=clock)  # fmt: skip
    assert pending_transfer_of(moved) is not None and held(db, enterprise.organisation_id) == 10


def test_a_reversal_takes_the_buffer_first_then_the_proponent_per_class_rule(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    registry, bureau, enterprise = who[OrgKind.REGISTRY], who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    issue_class(db, who, clock, "rev:1", CreditClass.FORESTRY_CARBON_TICKET, 1000, 100)  # buffer_then_proponent
    transfer(
        db,
        from_organisation_id=bureau.organisation_id,
        to_organisation_id=enterprise.organisation_id,
        quantity_t=850,
        actor=bureau,
        clock=clock,
    )  # fmt: skip
    # the proponent keeps 50 t
    done = reverse(db, 1, 60, "fire on 2026-04-02", actor=registry, clock=clock)
    assert (sum(b.quantity for b in done.from_buffer), done.from_proponent) == (60, [])
    # Shortfall: 40 t left in the buffer, 70 t lost → 40 from the buffer, 30 from the proponent's tradable tonnes.
    done = reverse(db, 1, 70, "logging found by the 2026 survey", actor=registry, clock=clock)
    assert done.rule is ReversalRule.BUFFER_THEN_PROPONENT
    assert sum(b.quantity for b in done.from_buffer) == 40 and sum(b.quantity for b in done.from_proponent) == 30
    assert held(db, bureau.organisation_id) == 20 and held(db, enterprise.organisation_id) == 850
    entries = db.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(2)).all()
    assert {e.action for e in entries} == {"units.reversed"}
    assert {e.payload_value()["quantity_t"] for e in entries} == {40, 30}
    assert all(e.payload_value()["reason"] == "reversal: logging found by the 2026 survey" for e in entries)
    # More than the buffer and the proponent hold: refused as a whole, nothing written.
    before = counts(db)
    with pytest.raises(InsufficientUnits, match="21 t lost"):
        reverse(db, 1, 21, "flood", actor=registry, clock=clock)
    db.rollback()
    assert counts(db) == before
    with pytest.raises(PermissionDenied):
        reverse(db, 1, 1, "fire", actor=bureau, clock=clock)
    db.rollback()
    with pytest.raises(InvalidInput):
        reverse(db, 1, 1, "  ", actor=registry, clock=clock)
    db.rollback()
    assert ledger_violations(db) == [] and verify_chain(db).ok


def test_a_buffer_only_class_refuses_a_shortfall(db: Session, clock: FixedClock) -> None:
    who = principals(db)
    registry = who[OrgKind.REGISTRY]
    issue_class(db, who, clock, "ofs:1", CreditClass.OCEAN_FISHERY, 500, 20)  # OFS: buffer_only (seeded)
    before = counts(db)
    with pytest.raises(InsufficientUnits, match="buffer_only"):
        reverse(db, 1, 21, "storm surge", actor=registry, clock=clock)
    db.rollback()
    assert counts(db) == before
    done = reverse(db, 1, 20, "storm surge", actor=registry, clock=clock)
    assert done.rule is ReversalRule.BUFFER_ONLY and sum(b.quantity for b in done.from_buffer) == 20
    assert ledger_violations(db) == []


def test_only_organisations_that_may_hold_receive_tonnes_on_every_crediting_path(
    db: Session, clock: FixedClock
) -> None:
    """Issue 15 item 2 (ADR 022): transfer, acceptance of a pending transfer, delivery and issuance."""
    who = principals(db)
    bureau, verifier = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.VERIFIER]
    batch = issue(db, who, clock, "hold:1")
    for kind in (OrgKind.VERIFIER, OrgKind.REGISTRY, OrgKind.OPERATOR, OrgKind.ECOLOGY_BUREAU, OrgKind.AUDITOR):
        with pytest.raises(InvalidInput, match=f"is a {kind.value} and may not receive tonnes"):
            transfer(db, from_organisation_id=bureau.organisation_id, to_organisation_id=who[kind].organisation_id,
                     quantity_t=10, actor=bureau, clock=clock)  # fmt: skip
        db.rollback()
    # Delivery of escrowed tonnes (the exchange's settlement) refuses a buyer that may not hold.
    change_state(db, "escrow", organisation_id=bureau.organisation_id, quantity_t=10, actor=bureau, clock=clock)
    with pytest.raises(InvalidInput, match="may not receive tonnes"):
        settle_escrowed(db, organisation_id=bureau.organisation_id, quantity_t=10, batch_ids=[batch.id],
                        actor="test", clock=clock, to_organisation_id=verifier.organisation_id)  # fmt: skip
    db.rollback()
    # A pending transfer offered to an organisation that may not hold (made before the rule) cannot be accepted.
    cca = issue_class(db, who, clock, "hold:2", CreditClass.CCER_AFFORESTATION)
    moved = transfer(db, from_organisation_id=bureau.organisation_id,
                     to_organisation_id=who[OrgKind.ENTERPRISE].organisation_id, quantity_t=5, actor=bureau,
                     clock=clock, batch_ids=[cca])  # fmt: skip
    offer = db.get(PendingTransfer, pending_transfer_of(moved))
    assert offer is not None
    offer.to_account_id = account_of(db, verifier.organisation_id, now=clock.now()).id
    db.commit()
    with pytest.raises(InvalidInput, match="may not receive tonnes"):
        decide_transfer(db, offer.id, accept=True, actor=verifier, clock=clock)
    db.rollback()
    assert decide_transfer(db, offer.id, accept=False, actor=verifier, clock=clock)  # a refusal returns them
    # Issuance to a proponent that may not hold (the rule covers every credit, the buffer pool excepted).
    project = db.get(Project, 1)
    assert project is not None
    project.organisation_id = verifier.organisation_id
    db.flush()
    with pytest.raises(InvalidInput, match="may not receive tonnes"):
        issue(db, who, clock, "hold:3")
    db.rollback()
    assert issue(db, who, clock, "hold:4").buffer_t == 100  # the registry's buffer pool still receives
    assert held(db, verifier.organisation_id) == 0
    assert ledger_violations(db) == [] and verify_chain(db).ok
