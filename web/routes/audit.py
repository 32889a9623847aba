"""The auditor's desk: the audit log browsed, its chain verified, signed tree heads kept and checked (issue 25).

``/audit`` lists entries (newest first; filtered by kind — the action —, organisation and Beijing dates) with
each entry's payload and hashes, the chain's verdict when asked (``core.audit.verify_chain``, as
``GET /api/v1/audit/verify``), and the signed head of the whole log now (``publish_tree_head``, as
``GET /api/v1/audit/tree-head``: it is stored in the head store, ADR 028). When the log no longer extends the
last signed head the server signs nothing: the page shows the alarm and the log's unsigned root instead.

The browser does the checks that matter to an auditor who trusts nobody (``audit-page.mjs`` with the
``verify.mjs`` functions the certificate page uses, ADR 034/033): the current head's Ed25519 signature; a head
kept earlier (downloaded from ``/audit/tree-head.json``) read from a file, its own signature, and the RFC 9162
consistency proof from its size to today's (``GET /api/v1/audit/proofs/consistency``); the inclusion proof of
any listed entry, its hash recomputed from the row shown.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, JSONResponse

from access.deps import ClockDep, SessionDep, authorize
from core.audit import AuditEntry, verify_chain
from core.audit_tree import AuditTree, publish_tree_head
from core.auth import Organisation, Principal, User
from core.bounds import INT64_MAX
from core.errors import AuditLogInconsistent
from core.tree_head import key_id, raw_public_key
from web.i18n import BEIJING
from web.pages import query_date, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
#: Entries per page of the log (older pages follow with ``before``).
PAGE_SIZE = 50


def entries_page(
    session: Session, *, action: str | None, organisation_id: int | None, day_from: date | None, day_to: date | None,
    before: int | None,
) -> tuple[list[AuditEntry], int | None]:  # fmt: skip
    """Return one page of entries, newest first, and the ``before`` cursor of the next (older) page."""
    query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(PAGE_SIZE + 1)
    if action:
        query = query.where(AuditEntry.action == action)
    if organisation_id is not None:
        ids = session.scalars(select(User.id).where(User.organisation_id == organisation_id))
        query = query.where(AuditEntry.actor.in_([f"user:{i}" for i in ids]))
    if day_from is not None:
        query = query.where(AuditEntry.recorded_at >= _utc_text(day_from))
    if day_to is not None:
        query = query.where(AuditEntry.recorded_at < _utc_text(day_to + timedelta(days=1)))
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    found = list(session.scalars(query))
    following = found[PAGE_SIZE - 1].seq if len(found) > PAGE_SIZE else None
    return found[:PAGE_SIZE], following


def _utc_text(day: date) -> str:
    """Midnight of ``day`` in Beijing as the log's UTC text (``2026-11-24T16:00:00+00:00``)."""
    return datetime.combine(day, time(0), tzinfo=BEIJING).astimezone(UTC).isoformat()


def current_head(request: Request, session: Session, clock: ClockDep) -> dict[str, Any]:
    """Sign (and store) the head of the whole log now; when the log is inconsistent, its unsigned root and why."""
    state = request.app.state
    tree: AuditTree = state.audit_tree
    try:
        head = publish_tree_head(session, tree, state.audit_signing_key, clock)
    except AuditLogInconsistent as error:
        session.rollback()
        size = tree.sync(session)
        root = tree.consistency_proof(session, size, size).second_root_hash if size else ""
        session.rollback()
        return {"head": None, "alarm": str(error), "signed_tree_size": error.signed_tree_size, "tree_size": size,
                "root_hash": root}  # fmt: skip
    return {"head": head.as_dict(), "alarm": None, "tree_size": head.tree_size, "root_hash": head.root_hash}


def entry_record(entry: AuditEntry) -> dict[str, Any]:
    """One entry as hashed (what the browser recomputes the entry hash from)."""
    return {"seq": entry.seq, "recorded_at": entry.recorded_at, "actor": entry.actor, "action": entry.action,
            "subject": entry.subject, "payload": entry.payload_value(), "prev_hash": entry.prev_hash,
            "entry_hash": entry.entry_hash, "scheme": entry.scheme}  # fmt: skip


@router.get("/audit", response_class=HTMLResponse)
def page_audit(
    request: Request, session: SessionDep, clock: ClockDep, person: Person,
    action: Annotated[str | None, Query(max_length=100)] = None,
    organisation: Annotated[str, Query(max_length=10, pattern=r"^\d{0,10}$")] = "",
    day_from: Annotated[str, Query(alias="from", max_length=10)] = "",
    day_to: Annotated[str, Query(alias="to", max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    verify: Annotated[bool, Query()] = False,
) -> HTMLResponse:  # fmt: skip
    """The log, the chain's verdict (on request), the signed head now, and the browser's checks.

    The filter form sends empty fields for "any"; a malformed date is the 422 problem page.
    """
    entries, following = entries_page(session, action=action or None,
                                      organisation_id=int(organisation) if organisation else None,
                                      day_from=query_date(day_from, "from"), day_to=query_date(day_to, "to"),
                                      before=before)  # fmt: skip
    actions = list(session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
    organisations = list(session.scalars(select(Organisation).order_by(Organisation.id)))
    chain = verify_chain(session).as_dict() if verify else None
    session.rollback()
    head = current_head(request, session, clock)
    public_key = request.app.state.audit_signing_key.public_key()
    records = [entry_record(e) for e in entries]
    user_ids = {int(r["actor"][5:]) for r in records if r["actor"].startswith("user:") and r["actor"][5:].isdigit()}
    names = session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all() if user_ids else []
    actor_names: dict[str, str] = {f"user:{user_id}": username for user_id, username in names}
    island = {"head": head["head"], "tree_size": head["tree_size"], "root_hash": head["root_hash"],
              "public_key_hex": raw_public_key(public_key).hex(), "entries": records}  # fmt: skip
    filters = {"action": action or "", "organisation": int(organisation) if organisation else None,
               "from": day_from, "to": day_to}  # fmt: skip
    older = None
    if following is not None:
        query = {k: v for k, v in filters.items() if v} | {"before": following}
        older = "/audit?" + urlencode(query)
    context = {"entries": records, "actions": actions, "organisations": organisations, "filters": filters,
               "chain": chain, "current": head, "actor_names": actor_names, "key_id": key_id(public_key),
               "older": older, "island": json.dumps(island, ensure_ascii=False)}  # fmt: skip
    return render(request, "audit.html", context, principal=person)


@router.get("/audit/tree-head.json")
def page_audit_tree_head(request: Request, session: SessionDep, clock: ClockDep, _person: Person) -> JSONResponse:
    """The signed head of the whole log now, as a file to keep (``503`` problem when the log is inconsistent)."""
    head = publish_tree_head(session, request.app.state.audit_tree, request.app.state.audit_signing_key, clock)
    name = f"shanhai-tree-head-{head.tree_size}.json"
    return JSONResponse(head.as_dict(), headers={"Content-Disposition": f'attachment; filename="{name}"'})
