"""A retirement keeps the signed tree head of the log ending with its audit entry, on SQLite and PostgreSQL.

The head is signed inside the retirement's transaction (the chain head is locked, so the log before the
entry is final) and stored with it; it verifies, its root is the root of the log's first ``seq`` entries as
anyone recomputes it after the commit, and a rolled-back retirement leaves the tree cache untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, Retirement, RetireUnits, issue_batch, retire_units
from core.audit import AuditEntry, iter_entries
from core.audit_tree import AuditTree, Notary
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.merkle import MerkleTree
from core.tree_head import verify_tree_head
from tests.conftest import seeded_session

AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, template_db: Path, tmp_path: Path) -> Iterator[Session]:
    with seeded_session(request.param, template_db, tmp_path, AT) as session:
        yield session


def root_after_commit(session: Session, size: int) -> str:
    tree = MerkleTree()
    for entry in iter_entries(session):
        tree.append(bytes.fromhex(entry.entry_hash))
    return tree.root(size).hex()


def test_a_retirement_keeps_the_head_that_first_included_its_entry(db: Session) -> None:
    clock, key, tree = FixedClock(AT), Ed25519PrivateKey.generate(), AuditTree()
    who = {u.organisation.kind: principal_of(u, "test") for u in db.scalars(select(User))}
    issue_batch(db, IssueBatch(1, "test:heads", CreditClass.FORESTRY_CARBON_TICKET, 2025, 100, 0),
                actor=who[OrgKind.REGISTRY], clock=clock)  # fmt: skip
    tree.sync(db)  # the cache holds the committed log
    bureau, notary = who[OrgKind.FORESTRY_BUREAU], Notary(tree, key)
    retirement = retire_units(db, RetireUnits(10, "b", "p", 2025), actor=bureau, clock=clock, notary=notary)
    head = retirement.kept_tree_head
    assert head is not None and verify_tree_head(head, key.public_key())
    entry = db.scalars(select(AuditEntry).where(AuditEntry.subject == f"retirement:{retirement.id}")).one()
    assert head.tree_size == entry.seq == retirement.audit_seq
    assert head.root_hash == root_after_commit(db, entry.seq)
    assert retirement.created_at.utcoffset() is not None
    retirement_id = db.scalar(select(Retirement.id).where(Retirement.id == retirement.id))
    db.expunge_all()
    stored = db.get(Retirement, retirement_id)
    assert stored is not None and stored.kept_tree_head == head  # stored, not signed again

    # a retirement signed and then rolled back: the cache never saw its entry
    def fail_after_signing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut before the commit")

    db.commit = fail_after_signing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="power cut"):
        retire_units(db, RetireUnits(5, "b", "p", 2025), actor=bureau, clock=clock, notary=notary)
    del db.commit
    db.rollback()
    later = retire_units(db, RetireUnits(5, "b", "p", 2025), actor=bureau, clock=clock, notary=notary)
    assert later.kept_tree_head is not None and later.audit_seq == head.tree_size + 1
    assert later.kept_tree_head.root_hash == root_after_commit(db, head.tree_size + 1)
    assert tree.sync(db) == head.tree_size + 1
