"""The in-app inbox: short messages to an organisation (an alert, a request waiting for it), read in the app.

Deliberately generic (ADR 039): a message names its organisation, a ``kind`` (a stable dotted code such as
``eco_pledge.alert``), the ``subject`` it is about (``eco_pledge:3``, as audit subjects are written), a title, a
body and a JSON payload. :func:`post` adds a message in the caller's transaction and never commits, so a message
exists exactly when the change it announces does; the change itself is audited by its service. Reading is
per organisation: every user of the organisation sees its messages; marking one read is not registry state and is
not audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import Clock
from core.db import Base
from core.errors import NotFound
from core.sqltypes import UtcDateTime


class InboxMessage(Base):
    """One message to an organisation."""

    __tablename__ = "inbox_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


def post(
    session: Session,
    *,
    organisation_id: int,
    kind: str,
    subject: str,
    title: str,
    body: str,
    payload: dict[str, Any],
    clock: Clock,
) -> InboxMessage:
    """Add a message to an organisation's inbox (flushed, not committed)."""
    message = InboxMessage(
        organisation_id=organisation_id,
        kind=kind,
        subject=subject,
        title=title[:300],
        body=body,
        payload=payload,
        created_at=clock.now(),
    )
    session.add(message)
    session.flush()
    return message


def messages_of(
    session: Session, organisation_id: int, *, unread_only: bool = False, limit: int = 100, offset: int = 0
) -> list[InboxMessage]:
    """Return an organisation's messages, newest first (``limit`` rows from ``offset``)."""
    query = select(InboxMessage).where(InboxMessage.organisation_id == organisation_id)
    if unread_only:
        query = query.where(InboxMessage.read_at.is_(None))
    return list(session.scalars(query.order_by(InboxMessage.id.desc()).limit(limit).offset(offset)))


def mark_read(session: Session, message_id: int, organisation_id: int, *, clock: Clock) -> InboxMessage:
    """Mark an organisation's message read (once; a second call keeps the first time) and commit.

    Raises:
        NotFound: No such message in the organisation's inbox.
    """
    message = session.get(InboxMessage, message_id)
    if message is None or message.organisation_id != organisation_id:
        raise NotFound(f"inbox message {message_id} does not exist")
    if message.read_at is None:
        message.read_at = clock.now()
        session.commit()
    return message
