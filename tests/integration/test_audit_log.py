"""The audit hash chain on SQLite, and ``shanhai audit verify`` on a tampered row."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core import audit
from core.audit import AuditEntry, AuditHead, verify_chain
from core.clock import FixedClock
from core.settings import Settings, get_settings
from shanhai.cli import main


@pytest.fixture
def db(app: object, session: Session) -> Session:
    return session


def append_some(session: Session, clock: FixedClock, n: int = 3) -> list[AuditEntry]:
    entries = [
        audit.append(session, actor="user:1", action="test.did", subject=f"thing:{i}", payload={"i": i}, clock=clock)
        for i in range(n)
    ]
    session.commit()
    return entries


def test_chain_links_and_verifies(db: Session, clock: FixedClock) -> None:
    first_seq = verify_chain(db).entries
    entries = append_some(db, clock)
    assert [e.seq for e in entries] == [first_seq + 1, first_seq + 2, first_seq + 3]
    assert entries[1].prev_hash == entries[0].entry_hash
    report = verify_chain(db)
    assert report.ok and report.entries == first_seq + 3 and report.head_hash == entries[-1].entry_hash
    head = db.get(AuditHead, 1)
    assert head is not None and head.seq == entries[-1].seq


def test_tampered_payload_is_reported_with_its_sequence(db: Session, clock: FixedClock) -> None:
    entries = append_some(db, clock)
    target = entries[1].seq
    db.execute(update(AuditEntry).where(AuditEntry.seq == target).values(payload='{"i":99}'))
    db.commit()
    report = verify_chain(db)
    assert not report.ok and report.first_broken_seq == target
    assert "entry_hash" in (report.reason or "")


@pytest.mark.parametrize(
    "stored_text",
    [
        '{"i":1,"i":"forged"}',  # the duplicate key a JSON decoder drops: same decoded value, other bytes
        '{"i":1,"i":1}',
        '{"i": 1}',
    ],
)
def test_a_payload_that_is_not_the_hashed_canonical_text_is_reported(
    db: Session, clock: FixedClock, stored_text: str
) -> None:
    entries = append_some(db, clock)
    target = entries[1].seq
    assert entries[1].payload == '{"i":1}'
    db.execute(update(AuditEntry).where(AuditEntry.seq == target).values(payload=stored_text))
    db.commit()
    report = verify_chain(db)
    assert not report.ok and report.first_broken_seq == target
    assert "canonical" in (report.reason or "")


def test_deleted_tail_is_reported(db: Session, clock: FixedClock) -> None:
    entries = append_some(db, clock)
    db.execute(delete(AuditEntry).where(AuditEntry.seq == entries[-1].seq))
    db.commit()
    report = verify_chain(db)
    assert not report.ok and report.first_broken_seq == entries[-1].seq


def test_deleted_middle_entry_is_a_gap(db: Session, clock: FixedClock) -> None:
    entries = append_some(db, clock)
    db.execute(delete(AuditEntry).where(AuditEntry.seq == entries[0].seq))
    db.commit()
    report = verify_chain(db)
    assert not report.ok and report.first_broken_seq == entries[1].seq and "gap" in (report.reason or "")


def test_rolled_back_change_leaves_no_entry(db: Session, clock: FixedClock) -> None:
    before = verify_chain(db).entries
    audit.append(db, actor="user:1", action="test.did", subject="x", payload={}, clock=clock)
    db.rollback()
    assert verify_chain(db).entries == before
    assert db.scalar(select(AuditHead.seq)) == before


def test_cli_verify_names_the_tampered_entry(
    settings: Settings,
    db: Session,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHANHAI_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("SHANHAI_DATA_DIR", str(Path(settings.data_dir)))
    get_settings.cache_clear()
    try:
        assert main(["audit", "verify"]) == 0
        target = append_some(db, clock)[0].seq
        db.execute(update(AuditEntry).where(AuditEntry.seq == target).values(payload='{"i":"forged"}'))
        db.commit()
        assert main(["audit", "verify"]) == 1
        captured = capsys.readouterr()
        assert f"audit chain broken at entry {target}" in captured.err
        assert f'"first_broken_seq": {target}' in captured.out
    finally:
        get_settings.cache_clear()
