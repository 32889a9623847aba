"""Read and verify the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.deps import CurrentUser, SessionDep
from core.audit import AuditEntry, verify_chain

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("/entries")
def list_audit_entries(
    session: SessionDep,
    _principal: CurrentUser,
    after: Annotated[int, Query(ge=0, description="Return entries with a greater sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    subject: str | None = None,
) -> list[dict[str, Any]]:
    """Return audit entries in sequence order."""
    query = select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    return [
        {
            "seq": e.seq,
            "recorded_at": e.recorded_at,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "payload": e.payload_value(),
            "prev_hash": e.prev_hash,
            "entry_hash": e.entry_hash,
        }
        for e in session.scalars(query)
    ]


@router.get("/verify")
def verify_audit_log(session: SessionDep, _principal: CurrentUser) -> dict[str, Any]:
    """Recompute the hash chain and report the first broken entry, if any."""
    return verify_chain(session).as_dict()
