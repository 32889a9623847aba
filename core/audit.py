"""Append-only, hash-chained audit log.

Invariants:

* Entries are only ever inserted; sequence numbers are 1, 2, 3, … with no gap.
* Each entry names its canonicalization ``scheme`` (ADR 033):

  - ``rfc8785`` (every new entry): ``entry_hash = SHA-256(JCS({scheme, seq, recorded_at, actor, action,
    subject, payload, prev_hash}))`` with JCS the RFC 8785 JSON Canonicalization Scheme — the scheme is inside
    the hashed object, so an entry cannot be re-read under the other one;
  - ``shanhai-json/1`` (entries written before revision ``0019``, and a new entry whose payload holds an
    integer beyond ±(2**53 - 1), which RFC 8785 cannot write): ``entry_hash =
    SHA-256(canonical_json({seq, recorded_at, actor, action, subject, payload, prev_hash}))``.

  Each entry's ``prev_hash`` is the previous entry's ``entry_hash`` (the genesis value for entry 1).
* The stored ``payload`` text is exactly the scheme's canonical JSON of the payload: :func:`check_entry`
  refuses any other text, so the hash covers the exact stored bytes (a duplicate key, which JSON decoding
  drops, is caught).
* ``audit_head`` holds the last sequence number and hash. :func:`append` locks that row
  (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers with ``BEGIN IMMEDIATE``), so
  concurrent transactions queue on the head and never fork the chain. ``UNIQUE(prev_hash)`` makes a fork
  impossible even if the lock were bypassed.
* An entry is written in the same transaction as the change it records: :func:`append` never commits.

:func:`verify_chain` recomputes every hash and reports the first entry that does not verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.canonical import JCS_SCHEME as JCS_SCHEME  # the schemes are core.canonical's (ADR 033)
from core.canonical import LEGACY_SCHEME as LEGACY_SCHEME
from core.canonical import SCHEMES as SCHEMES
from core.canonical import (
    canonical_hash,
    canonical_json,
    jcs_json,
    jcs_ready,
    jcs_representable,
    sha256_hex,
)
from core.clock import Clock
from core.db import Base

GENESIS_HASH = "0" * 64
HEAD_ID = 1


class AuditEntry(Base):
    """One audit-log entry. Never updated or deleted."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recorded_at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scheme: Mapped[str] = mapped_column(String(20), server_default=LEGACY_SCHEME)

    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint(f"scheme IN ('{LEGACY_SCHEME}', '{JCS_SCHEME}')", name="scheme_known"),
    )

    def payload_value(self) -> Any:
        """Return the decoded payload."""
        return json.loads(self.payload)


class AuditHead(Base):
    """The chain head: one row (id = 1) with the last sequence number and hash."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


def entry_hash(
    *,
    seq: int,
    recorded_at: str,
    actor: str,
    action: str,
    subject: str,
    payload: Any,
    prev_hash: str,
    scheme: str = LEGACY_SCHEME,
) -> str:
    """Return the hash of one entry's content under its canonicalization ``scheme``.

    >>> entry_hash(seq=1, recorded_at="2026-01-01T00:00:00+00:00", actor="u:1", action="a",
    ...            subject="s", payload={}, prev_hash=GENESIS_HASH)[:12]
    'bd9559d432e8'
    >>> entry_hash(seq=1, recorded_at="2026-01-01T00:00:00+00:00", actor="u:1", action="a",
    ...            subject="s", payload={}, prev_hash=GENESIS_HASH, scheme=JCS_SCHEME)[:12]
    'ccf97f35cdfd'

    Raises:
        ValueError: ``scheme`` is unknown, or the content has no form in it.
    """
    content = {
        "seq": seq,
        "recorded_at": recorded_at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    if scheme == LEGACY_SCHEME:
        return canonical_hash(content)
    if scheme == JCS_SCHEME:
        return sha256_hex(jcs_json({"scheme": scheme, **content}))
    raise ValueError(f"unknown canonicalization scheme {scheme!r}")


def payload_text(payload: Any, scheme: str) -> str:
    """Return the stored text of ``payload`` under ``scheme``: its canonical JSON in that scheme."""
    if scheme == JCS_SCHEME:
        return jcs_json(payload).decode("utf-8")
    return canonical_json(payload).decode("utf-8")


def scheme_for(payload: Any) -> str:
    """Return the scheme a new entry with ``payload`` is written under: RFC 8785 whenever it can write it."""
    return JCS_SCHEME if jcs_representable(jcs_ready(payload)) else LEGACY_SCHEME


def _lock_head(session: Session) -> AuditHead:
    # No autoflush: the caller's pending changes are flushed once, with the entries, by append_many.
    with session.no_autoflush:
        query = select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
        head = session.execute(query).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=HEAD_ID, seq=0, entry_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


@dataclass(frozen=True)
class Event:
    """One change to record: who did what to which subject, with its detail."""

    actor: str
    action: str
    subject: str
    payload: Any


def append(session: Session, *, actor: str, action: str, subject: str, payload: Any, clock: Clock) -> AuditEntry:
    """Append one entry in the caller's transaction (the caller commits).

    Args:
        session: The caller's session; its transaction gets the entry.
        actor: Who did it, e.g. ``"user:12"`` or ``"system:worker"``.
        action: Dotted verb, e.g. ``"plot.registered"``.
        subject: What it was done to, e.g. ``"plot:7"``.
        payload: JSON-serialisable detail; stored in canonical form.
        clock: Source of the entry's timestamp.
    """
    [entry] = append_many(session, [Event(actor, action, subject, payload)], clock=clock)
    return entry


def append_many(session: Session, events: Sequence[Event], *, clock: Clock) -> list[AuditEntry]:
    """Append several entries in order under one lock of the chain head (the caller commits)."""
    head = _lock_head(session)
    recorded_at = clock.now().isoformat()
    entries = []
    for event in events:
        scheme = scheme_for(event.payload)
        text = payload_text(event.payload, scheme)
        seq = head.seq + 1
        digest = entry_hash(
            seq=seq,
            recorded_at=recorded_at,
            actor=event.actor,
            action=event.action,
            subject=event.subject,
            payload=json.loads(text),
            prev_hash=head.entry_hash,
            scheme=scheme,
        )
        entries.append(
            AuditEntry(
                seq=seq,
                recorded_at=recorded_at,
                actor=event.actor,
                action=event.action,
                subject=event.subject,
                payload=text,
                prev_hash=head.entry_hash,
                entry_hash=digest,
                scheme=scheme,
            )
        )
        head.seq = seq
        head.entry_hash = digest
    session.add_all(entries)
    session.flush()
    return entries


@dataclass(frozen=True)
class ChainReport:
    """Outcome of :func:`verify_chain`."""

    ok: bool
    entries: int
    head_hash: str
    first_broken_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_hash": self.head_hash,
            "first_broken_seq": self.first_broken_seq,
            "reason": self.reason,
        }


def iter_entries(session: Session, *, after: int = 0, batch_size: int = 1000) -> Iterator[AuditEntry]:
    """Yield the entries with ``seq > after`` in sequence order, reading ``batch_size`` rows at a time."""
    last = after
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch_size)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


class ChainEntry(Protocol):
    """The fields of an entry that its hash covers: an ``AuditEntry`` row or an exported line."""

    seq: int
    recorded_at: str
    actor: str
    action: str
    subject: str
    payload: str
    prev_hash: str
    entry_hash: str
    scheme: str


def check_entry(entry: ChainEntry, expected_seq: int, prev_hash: str) -> str | None:
    """Return why ``entry`` does not follow ``prev_hash`` as entry ``expected_seq``, or ``None`` when it does."""
    if entry.seq != expected_seq:
        return f"sequence gap: expected {expected_seq}, found {entry.seq}"
    if entry.prev_hash != prev_hash:
        return "prev_hash does not match the previous entry's hash"
    if entry.scheme not in SCHEMES:
        return f"unknown canonicalization scheme {entry.scheme!r}"
    try:
        payload = json.loads(entry.payload)
        datetime.fromisoformat(entry.recorded_at)
        canonical = payload_text(payload, entry.scheme)
    except ValueError:
        return "payload or timestamp is not readable"
    if canonical != entry.payload:
        # The hash covers the decoded payload; only the canonical text decodes to it one way, so any other
        # stored text (a duplicate key, spacing, key order) would change the bytes and keep the hash.
        return "payload is not the canonical JSON the entry was hashed over"
    recomputed = entry_hash(
        seq=entry.seq,
        recorded_at=entry.recorded_at,
        actor=entry.actor,
        action=entry.action,
        subject=entry.subject,
        payload=payload,
        prev_hash=entry.prev_hash,
        scheme=entry.scheme,
    )
    if recomputed != entry.entry_hash:
        return "entry_hash does not match the entry's content"
    return None


def verify_chain(session: Session) -> ChainReport:
    """Recompute the whole chain; report the first entry that does not verify."""
    prev_hash = GENESIS_HASH
    count = 0
    for entry in iter_entries(session):
        reason = check_entry(entry, count + 1, prev_hash)
        if reason is not None:
            return ChainReport(False, count, prev_hash, entry.seq, reason)
        prev_hash = entry.entry_hash
        count += 1
    head = session.get(AuditHead, HEAD_ID)
    head_seq, head_hash = (head.seq, head.entry_hash) if head else (0, GENESIS_HASH)
    if head_seq != count or head_hash != prev_hash:
        return ChainReport(
            False, count, prev_hash, min(head_seq, count) + 1, "chain head does not match the last entry"
        )
    return ChainReport(True, count, prev_hash)
