"""The store of every signed tree head, and the alarm when the log no longer extends the last one (ADR 028).

A signed head is a promise given out: "the log of ``tree_size`` entries has root ``root_hash``". Before
any head is signed, the log (as the tree rebuilt from it) must still keep the last promise: hold at least
``tree_size`` entries whose first ``tree_size`` leaves hash to ``root_hash``. When it does not — an entry
rewritten with the chain recomputed, or tail entries removed — :func:`check_extends` logs at ERROR with
both heads, counts the alarm (:func:`inconsistency_alarms`) and raises :class:`AuditLogInconsistent`
(``503 audit/log-inconsistent``); nothing is signed.

The store is the table ``audit_signed_head``, shared by every API and worker process (they share the
database, not a volume). It is insert-only: a trigger refuses ``UPDATE`` and ``DELETE`` (and ``TRUNCATE``
on PostgreSQL) whatever the role — a superuser bypasses grants, not triggers — and in production the table
belongs to a separate role, the application's role holding only ``SELECT`` and ``INSERT`` on it, so it
cannot drop the trigger either (migration ``0020``).

One row per tree size: the first head signed over that size. A later head over the same size commits to
the same root (or the check refuses it) and differs only by its timestamp, so it adds nothing to what the
alarm compares; storing it would let a public, unauthenticated ``GET /audit/tree-head`` grow the table
per request. The row is written in the signer's transaction: a head signed inside a command (a
retirement's) is stored if and only if the command commits.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base
from core.errors import AuditLogInconsistent
from core.merkle import MerkleTree
from core.metrics import record_audit_alarm
from core.tree_head import SignedTreeHead

logger = logging.getLogger(__name__)


class StoredTreeHead(Base):
    """One signed tree head as given out; never updated or deleted (triggers refuse it)."""

    __tablename__ = "audit_signed_head"

    tree_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))

    __table_args__ = (CheckConstraint("tree_size >= 0", name="tree_size_not_negative"),)

    def head(self) -> SignedTreeHead:
        """Return the stored head."""
        return SignedTreeHead(
            tree_size=self.tree_size,
            root_hash=self.root_hash,
            timestamp=self.timestamp,
            key_id=self.key_id,
            signature=self.signature,
        )


class _Counter:
    """A thread-safe count, read by the metrics exporter."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def increment(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


_ALARMS = _Counter()


def inconsistency_alarms() -> int:
    """Return how many times this process refused to sign an inconsistent log (a counter for metrics)."""
    return _ALARMS.value


def last_head(session: Session) -> SignedTreeHead | None:
    """Return the stored head of the largest tree, or ``None`` when no head was ever signed.

    Read it *before* reading the log: a head is stored only once the entries it covers are committed (or
    in their own transaction), so a log read afterwards holds at least as many entries.
    """
    row = session.scalars(select(StoredTreeHead).order_by(StoredTreeHead.tree_size.desc()).limit(1)).first()
    return None if row is None else row.head()


def check_extends(tree: MerkleTree, last: SignedTreeHead | None) -> None:
    """Refuse, loudly, a tree that is not a consistent extension of the last signed head ``last``.

    Raises:
        AuditLogInconsistent: ``tree`` has fewer entries than ``last`` (truncated) or its first
            ``last.tree_size`` leaves no longer hash to ``last.root_hash`` (rewritten).
    """
    if last is None:
        return
    if tree.size < last.tree_size:
        kind = "truncated"
        reason = f"entries were removed: the log has {tree.size} entries, the last signed head covers {last.tree_size}"
    elif tree.root(last.tree_size).hex() != last.root_hash:
        kind = "rewritten"
        reason = f"history was rewritten: the log's first {last.tree_size} entries no longer hash to the signed root"
    else:
        return
    _ALARMS.increment()
    record_audit_alarm(kind)  # shanhai_audit_alarms_total{kind} (ADR 029)
    log_root = tree.root().hex()
    logger.error(
        "audit log inconsistent, refusing to sign: %s; last signed head: tree_size=%d root_hash=%s "
        "(signed %s, key %s); log now: tree_size=%d root_hash=%s",
        reason, last.tree_size, last.root_hash, last.timestamp, last.key_id, tree.size, log_root,
    )  # fmt: skip
    raise AuditLogInconsistent(
        f"the audit log is not a consistent extension of the last signed tree head ({reason}); nothing is signed",
        signed_tree_size=last.tree_size,
        log_tree_size=tree.size,
    )


def record(session: Session, head: SignedTreeHead) -> None:
    """Store ``head`` in the caller's transaction (the caller commits), unless a head of its size is stored."""
    values: dict[str, Any] = {
        "tree_size": head.tree_size,
        "root_hash": head.root_hash,
        "timestamp": head.timestamp,
        "key_id": head.key_id,
        "signature": head.signature,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(StoredTreeHead).values(values).on_conflict_do_nothing(index_elements=["tree_size"]))
