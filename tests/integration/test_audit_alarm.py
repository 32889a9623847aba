"""The audit log raises the alarm: no head is signed over a log that no longer extends the last signed one.

On SQLite and PostgreSQL: an insider rewrites an entry and recomputes the chain, or removes tail entries;
every signing path — a new process's tree included — answers ``AuditLogInconsistent`` (503
``audit/log-inconsistent``), logs at ERROR with both heads, counts the alarm, and signs nothing; a
retirement then fails and writes nothing. An honest extension keeps signing. The head store refuses
``UPDATE`` and ``DELETE`` whatever the role.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, Retirement, RetireUnits, issue_batch, retire_units
from core import audit, audit_heads
from core.audit import AuditEntry, AuditHead
from core.audit_heads import StoredTreeHead
from core.audit_tree import AuditTree, Notary
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.errors import AuditLogInconsistent
from core.merkle import MerkleTree
from tests.conftest import rewrite_audit_entry, seeded_session

AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, template_db: Path, tmp_path: Path) -> Iterator[Session]:
    with seeded_session(request.param, template_db, tmp_path, AT) as session:
        yield session


def append_some(session: Session, n: int) -> None:
    for i in range(n):
        audit.append(session, actor="user:1", action="test.did", subject=f"thing:{i}", payload={"i": i},
                     clock=FixedClock(AT))  # fmt: skip
    session.commit()


def rewrite_with_recomputed_chain(session: Session, seq: int) -> None:
    """The insider: rewrite entry ``seq`` and recompute every later hash and the chain head."""
    rewrite_audit_entry(session, seq, {"i": "rewritten"})
    assert audit.verify_chain(session).ok  # the chain alone cannot tell
    session.rollback()


def truncate_tail(session: Session, keep: int) -> None:
    """The insider: remove every entry after ``keep`` and move the chain head back."""
    last_hash = session.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == keep))
    session.execute(delete(AuditEntry).where(AuditEntry.seq > keep))
    session.execute(update(AuditHead).values(seq=keep, entry_hash=last_hash))
    session.commit()
    assert audit.verify_chain(session).ok
    session.rollback()


def signed_head_count(session: Session) -> int:
    count = session.scalar(select(func.count()).select_from(StoredTreeHead)) or 0
    session.rollback()
    return count


def test_an_honest_extension_keeps_signing_and_every_head_is_stored(db: Session) -> None:
    tree, clock = AuditTree(), FixedClock(AT)
    first = tree.tree_head(db, KEY, clock)
    db.commit()
    append_some(db, 3)
    second = AuditTree().tree_head(db, KEY, clock)  # another process: reads the shared store, agrees
    db.commit()
    prefix = tree.head_at(db, first.tree_size + 1, KEY, clock)
    db.commit()
    assert second.tree_size == first.tree_size + 3
    stored = {row.tree_size: row.head() for row in db.scalars(select(StoredTreeHead))}
    assert stored == {head.tree_size: head for head in (first, second, prefix)}
    again = tree.tree_head(db, KEY, FixedClock(datetime(2026, 12, 1, tzinfo=UTC)))  # same tree, later
    db.commit()
    assert again.root_hash == second.root_hash and signed_head_count(db) == 3  # one row per size


@pytest.mark.parametrize("damage", ["rewrite", "truncate"])
def test_a_rewritten_or_truncated_log_is_refused_by_every_signing_path_and_process(
    db: Session, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    tree, clock = AuditTree(), FixedClock(AT)
    append_some(db, 4)
    kept = tree.tree_head(db, KEY, clock)
    db.commit()
    if damage == "rewrite":
        rewrite_with_recomputed_chain(db, kept.tree_size - 1)
    else:
        truncate_tail(db, kept.tree_size - 2)
    stored_before, alarms_before = signed_head_count(db), audit_heads.inconsistency_alarms()

    caplog.set_level(logging.ERROR, logger="core.audit_heads")
    with pytest.raises(AuditLogInconsistent) as raised:
        tree.tree_head(db, KEY, clock)
    db.rollback()
    assert raised.value.slug == "audit/log-inconsistent"
    assert raised.value.signed_tree_size == kept.tree_size
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert kept.root_hash in record.getMessage()  # the last signed head …
    forged = MerkleTree()
    for entry in audit.iter_entries(db):
        forged.append(bytes.fromhex(entry.entry_hash))
    db.rollback()
    log_root = forged.root().hex()  # the log's head as it is now
    assert log_root in record.getMessage() and log_root != kept.root_hash  # … and the log's
    reason = "history was rewritten" if damage == "rewrite" else "entries were removed"
    assert reason in record.getMessage()

    second_process = AuditTree()
    for sign in (
        lambda: second_process.tree_head(db, KEY, clock),
        lambda: second_process.head_at(db, 1, KEY, clock),
        lambda: second_process.anchor_entry(db, 1, KEY, clock),
        lambda: tree.head_at(db, 1, KEY, clock),
    ):
        with pytest.raises(AuditLogInconsistent):
            sign()
        db.rollback()
    assert audit_heads.inconsistency_alarms() == alarms_before + 5
    assert signed_head_count(db) == stored_before  # nothing signed, nothing stored


def test_a_retirement_over_a_rewritten_log_fails_and_writes_nothing(db: Session) -> None:
    clock, tree = FixedClock(AT), AuditTree()
    who = {u.organisation.kind: principal_of(u, "test") for u in db.scalars(select(User))}
    issue_batch(db, IssueBatch(1, "test:alarm", CreditClass.FORESTRY_CARBON_TICKET, 2025, 100, 0),
                actor=who[OrgKind.REGISTRY], clock=clock)  # fmt: skip
    notary = Notary(tree, KEY)
    retire_units(db, RetireUnits(10, "b", "p", 2025), actor=who[OrgKind.FORESTRY_BUREAU], clock=clock, notary=notary)
    size = db.scalar(select(func.max(AuditEntry.seq)))
    assert size is not None
    rewrite_with_recomputed_chain(db, size - 1)
    retirements, entries = db.scalar(select(func.count()).select_from(Retirement)), size
    db.rollback()

    with pytest.raises(AuditLogInconsistent):
        retire_units(db, RetireUnits(5, "b", "p", 2025), actor=who[OrgKind.FORESTRY_BUREAU], clock=clock,
                     notary=Notary(AuditTree(), KEY))  # fmt: skip
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Retirement)) == retirements
    assert db.scalar(select(func.max(AuditEntry.seq))) == entries
    with pytest.raises(AuditLogInconsistent):
        notary.head_at(
            db, 1, clock
        )  # what a certificate's first read signs (carbon.ledger.certificates.keep_tree_head)
    db.rollback()


def test_the_head_store_refuses_update_and_delete(db: Session) -> None:
    AuditTree().tree_head(db, KEY, FixedClock(AT))
    db.commit()
    for statement in (
        update(StoredTreeHead).values(root_hash="0" * 64),
        delete(StoredTreeHead),
    ):
        with pytest.raises(DBAPIError, match="insert-only"):
            db.execute(statement)
        db.rollback()
    if db.get_bind().dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="insert-only"):
            db.execute(text("TRUNCATE audit_signed_head"))
        db.rollback()
    assert signed_head_count(db) == 1
