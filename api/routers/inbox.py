"""The in-app inbox of the caller's organisation (``core.inbox``): notices any feature posts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import ClockDep, CurrentUser, SessionDep
from api.fields import Answer, InstantText
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from core.inbox import InboxMessage, mark_read, messages_for

router = APIRouter(prefix="/api/v1", tags=["inbox"])


class InboxMessageOut(Answer):
    """A notice to the caller's organisation: what kind, about what, and whether someone read it."""

    id: int
    kind: str
    subject: str
    title: str
    body: str
    link: str | None
    data: dict[str, Any]
    created_at: InstantText
    read_at: InstantText | None
    read_by_user_id: int | None


def message_out(message: InboxMessage) -> InboxMessageOut:
    """Return a notice as answered."""
    return InboxMessageOut(
        id=message.id, kind=message.kind, subject=message.subject, title=message.title, body=message.body,
        link=message.link, data=message.data, created_at=message.created_at.isoformat(),
        read_at=message.read_at.isoformat() if message.read_at else None, read_by_user_id=message.read_by_user_id,
    )  # fmt: skip


@router.get("/inbox")
def list_inbox(
    session: SessionDep,
    principal: CurrentUser,
    request: Request,
    page: PageQuery,
    unread: Annotated[bool, Query(description="Only notices nobody of the organisation has read.")] = False,
) -> Page[InboxMessageOut]:
    """List the notices to the caller's organisation, newest first."""
    rows, following = slice_of(request, messages_for(session, principal, unread_only=unread), page)
    return Page[InboxMessageOut](items=[message_out(m) for m in rows], limit=page.limit, next=following)


@router.post("/inbox/{message_id}/read")
def read_inbox_message(
    message_id: IdPath, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> InboxMessageOut:
    """Mark a notice read (the first reader and time are kept); another organisation's notice is ``404``."""
    return message_out(mark_read(session, message_id, principal, clock=clock))
