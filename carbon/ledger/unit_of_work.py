"""The ledger's one transaction boundary: a unit of work that the caller commits (ADR 031).

Every ledger operation (:mod:`~carbon.ledger.issuance`, :mod:`~carbon.ledger.transfers`,
:mod:`~carbon.ledger.states`, :mod:`~carbon.ledger.retirement`, :mod:`~carbon.ledger.reversal`) takes a
:class:`UnitOfWork` and writes into it; none of them commits. The unit carries what used to travel through
``commit=`` flags and ``session.info`` keys:

* the session and the clock of the transaction;
* the audit entries the operations recorded, appended by :meth:`UnitOfWork.commit` (or
  :meth:`UnitOfWork.append_audit`) with one ``append_many`` as the transaction's last write, so the audit
  chain's head is locked last (ADR 015's lock order);
* the accounts already read and the account rows already locked, and the receivers already checked, in its
  current database transaction (forgotten when that transaction ends, a savepoint included: a savepoint rolled
  back releases the row locks taken inside it).

A registry command (``issue_batch``, ``transfer``, ``retire_units``…) opens a unit over the request's session
and commits it once; the exchange opens one per order-entry batch and commits it with the batch; a workflow
step that issues composes the issuance into its own unit. Pattern: Cosmic Python's ``with uow: … uow.commit()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from carbon.ledger.tables import Account, AccountKind
from core import audit
from core.clock import Clock


@dataclass
class _TransactionMemo:
    """What the current database transaction has done that need not be done again before it ends."""

    transaction: object
    locked: set[int] = field(default_factory=set)  # account ids whose rows it holds
    receivers: set[tuple[int, AccountKind]] = field(default_factory=set)  # receivers check_receiver passed
    accounts: dict[tuple[int, AccountKind], Account] = field(default_factory=dict)  # accounts read


class UnitOfWork:
    """One ledger transaction over ``session``: the operations write, the caller commits.

    Args:
        session: The session whose transaction the operations write in.
        clock: The time of every row and entry written.
        audit_events: A list to collect the audit entries in (a caller that appends entries of its own with
            them, such as an order-entry batch); a new list by default.
    """

    def __init__(self, session: Session, clock: Clock, *, audit_events: list[audit.Event] | None = None) -> None:
        self.session = session
        self.clock = clock
        self.audit: list[audit.Event] = [] if audit_events is None else audit_events
        self._memo: _TransactionMemo | None = None

    def record(self, actor: str, action: str, subject: str, payload: dict[str, Any]) -> None:
        """Record an audit entry, appended with the unit's others when it commits."""
        self.audit.append(audit.Event(actor, action, subject, payload))

    def append_audit(self) -> list[audit.AuditEntry]:
        """Append the recorded entries now (one ``append_many``: the audit head is locked here) and return them."""
        if not self.audit:
            return []
        entries = audit.append_many(self.session, self.audit, clock=self.clock)
        self.audit.clear()
        return entries

    def commit(self) -> None:
        """Append the recorded audit entries and commit: the unit's one transaction boundary."""
        self.append_audit()
        self.session.commit()

    def memo(self) -> _TransactionMemo:
        """Return the memo of the session's current transaction (a new one after every commit or rollback)."""
        self.session.connection()  # begin the transaction if none is open, so that it can be told from the next
        # The innermost transaction: a savepoint rolled back releases the row locks taken inside it.
        transaction = self.session.get_nested_transaction() or self.session.get_transaction()
        if self._memo is None or self._memo.transaction is not transaction:
            self._memo = _TransactionMemo(transaction)
        return self._memo
