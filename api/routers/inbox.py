"""The in-app inbox of the caller's organisation (``core/inbox.py``): alerts and requests waiting for it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import ClockDep, CurrentUser, SessionDep
from api.fields import Answer, InstantText
from api.pagination import Page, PageQuery, page_of
from api.params import IdPath
from core import inbox

router = APIRouter(prefix="/api/v1/inbox", tags=["inbox"])


class InboxMessageOut(Answer):
    """A message to the caller's organisation: what kind, about which subject, and when it was read."""

    id: int
    kind: str
    subject: str
    title: str
    body: str
    payload: dict[str, Any]
    created_at: InstantText
    read_at: InstantText | None


def _out(message: inbox.InboxMessage) -> InboxMessageOut:
    return InboxMessageOut(
        id=message.id,
        kind=message.kind,
        subject=message.subject,
        title=message.title,
        body=message.body,
        payload=message.payload,
        created_at=message.created_at.isoformat(),
        read_at=message.read_at.isoformat() if message.read_at else None,
    )


@router.get("")
def list_inbox(
    session: SessionDep,
    principal: CurrentUser,
    request: Request,
    page: PageQuery,
    unread: Annotated[bool, Query(description="Only the messages not yet read.")] = False,
) -> Page[InboxMessageOut]:
    """List the messages of the caller's organisation, newest first."""
    rows = inbox.messages_of(
        session, principal.organisation_id, unread_only=unread, limit=page.limit + 1, offset=page.offset
    )
    items, following = page_of(request, rows, page)
    return Page[InboxMessageOut](items=[_out(m) for m in items], limit=page.limit, next=following)


@router.post("/{message_id}/read")
def mark_inbox_read(
    message_id: IdPath, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> InboxMessageOut:
    """Mark a message of the caller's organisation read."""
    return _out(inbox.mark_read(session, message_id, principal.organisation_id, clock=clock))
