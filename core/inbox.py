"""The in-app inbox: notices any feature posts to an organisation, read by its users.

Generic on purpose: a notice names its ``kind`` (a dotted slug such as ``reversal.proposed``), the
``subject`` it is about (``loss-event:7``, the audit log's subject form), a title, a body and an optional
link for the client to follow. Posting happens in the caller's transaction, beside the change and its audit
entry, so a notice exists exactly when the change it announces does. Reading marks a notice read (by
whom and when); notices are never deleted.

Invariants: a notice belongs to one organisation; ``read_at`` and ``read_by_user_id`` are both set or both
null; nobody reads another organisation's notices (they answer ``404``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.auth import Principal
from core.clock import Clock
from core.db import Base
from core.errors import InvalidInput, NotFound
from core.sqltypes import UtcDateTime

KIND_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$"


class InboxMessage(Base):
    """One notice to an organisation."""

    __tablename__ = "inbox_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    kind: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    read_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (
        CheckConstraint("(read_at IS NULL) = (read_by_user_id IS NULL)", name="read_both_or_neither"),
        Index("ix_inbox_message_organisation_id_id", "organisation_id", "id"),
    )


def post(
    session: Session,
    organisation_id: int,
    *,
    kind: str,
    subject: str,
    title: str,
    body: str,
    clock: Clock,
    link: str | None = None,
    data: dict[str, Any] | None = None,
) -> InboxMessage:
    """Post a notice to an organisation in the caller's transaction (the caller commits, with its audit entry)."""
    if not re.match(KIND_PATTERN, kind) or not title.strip():
        raise InvalidInput(f"an inbox notice needs a dotted kind and a title, got {kind!r}")
    message = InboxMessage(
        organisation_id=organisation_id, kind=kind, subject=subject, title=title[:300], body=body, link=link,
        data=data or {}, created_at=clock.now(),
    )  # fmt: skip
    session.add(message)
    session.flush()
    return message


def messages_for(session: Session, principal: Principal, *, unread_only: bool = False) -> list[InboxMessage]:
    """Return the caller's organisation's notices, newest first."""
    query = select(InboxMessage).where(InboxMessage.organisation_id == principal.organisation_id)
    if unread_only:
        query = query.where(InboxMessage.read_at.is_(None))
    return list(session.scalars(query.order_by(InboxMessage.id.desc())))


def get_message(session: Session, message_id: int, principal: Principal) -> InboxMessage:
    """Return one of the caller's organisation's notices (another organisation's answers ``404``)."""
    message = session.get(InboxMessage, message_id)
    if message is None or message.organisation_id != principal.organisation_id:
        raise NotFound(f"inbox message {message_id} does not exist")
    return message


def mark_read(session: Session, message_id: int, principal: Principal, *, clock: Clock) -> InboxMessage:
    """Mark a notice read by the caller (idempotent: the first reader and time are kept); commits."""
    message = get_message(session, message_id, principal)
    if message.read_at is None:
        message.read_at, message.read_by_user_id = clock.now(), principal.user_id
        session.commit()
    return message
