"""The certificate check: ``/verify`` (enter a code) and ``/verify/{code}`` (where the certificate's QR code points).

The page states the retirement, its serials, beneficiary and plots, the signed tree head kept with it, and two
verdicts side by side: the server's (``carbon.certificates.check_certificate``, the same check as
``shanhai audit verify-certificate``) and the browser's own (``verify.mjs``: WebCrypto Ed25519 over the head,
SHA-256 of the entry, the inclusion proof to the signed root), which trusts nothing but the facts and the log's
public key. With JavaScript off the server's verdict is shown, and the page says the browser check did not run.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, authorize
from carbon.ledger.certificates import certificate_facts, check_certificate, keep_tree_head, retirement_by_code
from core.audit_tree import AuditTree, Notary
from core.auth import Principal
from core.clock import Clock
from core.tree_head import key_id, raw_public_key
from web.pages import render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal | None, Depends(authorize)]
#: Verification codes are letters and digits (with dashes); anything else is refused before a query.
CODE = re.compile(r"^[A-Za-z0-9-]{4,40}$")


def certificate_view(request: Request, session: Session, code: str, clock: Clock) -> dict[str, Any]:
    """Return the certificate's facts (as the public JSON states them) and the server's verdict on them."""
    state = request.app.state
    tree: AuditTree = state.audit_tree
    retirement = retirement_by_code(session, code)
    keep_tree_head(session, retirement, Notary(tree, state.audit_signing_key), clock)
    proof = None
    if retirement.audit_seq is not None:
        proof = tree.inclusion_proof(session, retirement.audit_seq, retirement.audit_seq)
    verify_url = f"{state.settings.public_base_url}/verify/{retirement.verification_code}"
    facts = certificate_facts(session, retirement, verify_url=verify_url, proof=proof)
    public_key = state.audit_signing_key.public_key()
    problems = check_certificate(facts, public_key)
    return {"facts": facts, "problems": problems, "public_key_hex": raw_public_key(public_key).hex(),
            "key_id": key_id(public_key)}  # fmt: skip


@router.get("/verify", response_class=HTMLResponse)
def page_verify(request: Request, person: Person, code: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """Enter a verification code (or follow a certificate's QR code)."""
    if code:
        cleaned = code.strip().upper()
        if CODE.match(cleaned):
            return RedirectResponse(f"/verify/{cleaned}", status_code=303)
        return render(request, "verify_form.html", {"code": code, "invalid": True}, principal=person,
                      status_code=422)  # fmt: skip
    return render(request, "verify_form.html", {"code": "", "invalid": False}, principal=person)


@router.get("/verify/{code}", response_class=HTMLResponse)
def page_verify_certificate(
    request: Request, session: SessionDep, clock: ClockDep, person: Person,
    code: Annotated[str, Path(pattern=CODE.pattern)],
) -> HTMLResponse:  # fmt: skip
    """The certificate, the server's verdict and the browser's own check."""
    view = certificate_view(request, session, code, clock)
    payload = {"facts": view["facts"], "public_key_hex": view["public_key_hex"]}
    context = {**view, "verification_data": json.dumps(payload, ensure_ascii=False),
               "pdf_url": f"/public/v1/retirements/{view['facts']['verification_code']}/certificate.pdf",
               "json_url": f"/public/v1/retirements/{view['facts']['verification_code']}"}  # fmt: skip
    return render(request, "verify.html", context, principal=person)
