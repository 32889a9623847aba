"""Holdings for every holder (issue 22): serial blocks by batch and state, transfers, pledges, retirements.

The page calls the ledger's services the JSON API calls (``carbon.ledger``: ``open_blocks``, ``transfer``,
``decide_transfer``, ``change_state``, ``retire_units``), never HTTP to itself; their refusals (a receiver that
may not hold, too few tradable tonnes, a bank that is not the pledgee) become problem pages as the API's become
problem+json. A retirement answers with its certificate: the PDF and the ``/verify/{code}`` page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from carbon.ledger import (
    COMPLIANCE_RULES,
    HOLDER_KINDS,
    Account,
    BlockState,
    HoldingBlock,
    PendingTransfer,
    Retirement,
    RetireUnits,
    TransferStatus,
    change_state,
    decide_transfer,
    open_blocks,
    retire_units,
    serial_of,
    transfer,
)
from carbon.models import Project
from core.audit_tree import Notary
from core.auth import Organisation, OrgKind, Principal
from core.errors import InvalidInput
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
Tonnes = Annotated[int, Form(ge=1, le=10**12)]
OrgField = Annotated[int, Form(ge=1, le=2**31 - 1)]
STATES = (BlockState.TRADABLE, BlockState.PENDING, BlockState.ESCROWED, BlockState.PLEDGED, BlockState.RETIRED)
STATE_LABELS = {
    "tradable": N_("Tradable"), "pending": N_("Awaiting acceptance"), "escrowed": N_("Escrowed"),
    "pledged": N_("Pledged"), "retired": N_("Retired"), "cancelled": N_("Cancelled"),
}  # fmt: skip
DONE_LABELS = {
    "transfer": N_("The transfer was made."), "accept": N_("The transfer was accepted."),
    "reject": N_("The transfer was rejected."), "pledge": N_("The tonnes were pledged."),
    "release": N_("The pledge was released."), "enforce": N_("The pledge was enforced."),
    "retire": N_("The tonnes were retired."),
}  # fmt: skip
USE_LABELS = {"voluntary": N_("voluntary"), "compliance:fujian": N_("Fujian compliance (福建履约)")}


def _blocks(session: Session, blocks: list[HoldingBlock]) -> list[dict[str, Any]]:
    projects: dict[int, Project | None] = {}
    rows = []
    for block in blocks:
        batch = block.batch
        if batch.project_id not in projects:
            projects[batch.project_id] = session.get(Project, batch.project_id)
        rows.append({"block": block, "batch": batch, "serial": serial_of(block).format(),
                     "project": projects[batch.project_id]})  # fmt: skip
    return rows


def _offers(session: Session, organisation_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    accounts = select(Account.id).where(Account.organisation_id == organisation_id)
    offers = session.scalars(
        select(PendingTransfer)
        .where(PendingTransfer.status == TransferStatus.PENDING)
        .where(PendingTransfer.from_account_id.in_(accounts) | PendingTransfer.to_account_id.in_(accounts))
        .order_by(PendingTransfer.id)
    ).all()
    incoming: list[dict[str, Any]] = []
    outgoing: list[dict[str, Any]] = []
    for offer in offers:
        sender, receiver = session.get(Account, offer.from_account_id), session.get(Account, offer.to_account_id)
        assert sender is not None and receiver is not None
        row = {"offer": offer, "from": session.get(Organisation, sender.organisation_id),
               "to": session.get(Organisation, receiver.organisation_id)}  # fmt: skip
        (incoming if receiver.organisation_id == organisation_id else outgoing).append(row)
    return incoming, outgoing


def _pledged_to(session: Session, bank_id: int) -> list[dict[str, Any]]:
    """Return the pledgors of the bank with their pledged tonnes."""
    blocks = session.scalars(
        select(HoldingBlock).where(
            HoldingBlock.state == BlockState.PLEDGED, HoldingBlock.closed_at.is_(None),
            HoldingBlock.pledgee_organisation_id == bank_id,
        )
    ).all()  # fmt: skip
    totals: dict[int, int] = {}
    for block in blocks:
        account = session.get(Account, block.account_id)
        assert account is not None
        totals[account.organisation_id] = totals.get(account.organisation_id, 0) + block.quantity
    return [{"organisation": session.get(Organisation, org), "quantity_t": t} for org, t in sorted(totals.items())]


@router.get("/holdings", response_class=HTMLResponse)
def page_holdings(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """The organisation's serial blocks by batch, serial range and state; transfers, pledges, retirements."""
    org = person.organisation_id
    blocks = open_blocks(session, org)
    totals = {state.value: 0 for state in STATES}
    for block in blocks:
        if block.state.value in totals:
            totals[block.state.value] += block.quantity
    incoming, outgoing = _offers(session, org)
    others = session.scalars(
        select(Organisation)
        .where(Organisation.kind.in_(HOLDER_KINDS), Organisation.id != org)
        .order_by(Organisation.id)
    ).all()
    accounts = select(Account.id).where(Account.organisation_id == org)
    retirements = session.scalars(
        select(Retirement).where(Retirement.account_id.in_(accounts)).order_by(Retirement.id.desc()).limit(50)
    ).all()
    is_bank = person.role is OrgKind.BANK
    context = {
        "blocks": _blocks(session, blocks), "totals": totals, "incoming": incoming, "outgoing": outgoing,
        "receivers": others, "banks": [o for o in others if o.kind is OrgKind.BANK],
        "is_bank": is_bank, "pledgors": _pledged_to(session, org) if is_bank else [],
        "retirements": retirements, "uses": ["voluntary", *COMPLIANCE_RULES], "use_labels": USE_LABELS,
        "state_labels": STATE_LABELS, "done_labels": DONE_LABELS,
        "done": request.query_params.get("done", ""), "retired": request.query_params.get("retired", ""),
    }  # fmt: skip
    return render(request, "holdings.html", context, principal=person)


def _back(done: str, **extra: str) -> RedirectResponse:
    query = "&".join(f"{k}={v}" for k, v in {"done": done, **extra}.items())
    return RedirectResponse(f"/holdings?{query}", status_code=303)


@router.post("/holdings/transfer")
def page_holdings_transfer(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    to_organisation_id: OrgField, quantity_t: Tonnes, csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Transfer tradable tonnes (oldest vintage first) to an organisation that may hold."""
    check_csrf(request, settings, csrf_token)
    transfer(session, from_organisation_id=person.organisation_id, to_organisation_id=to_organisation_id,
             quantity_t=quantity_t, actor=person, clock=clock)  # fmt: skip
    return _back("transfer")


@router.post("/holdings/transfers/{transfer_id}/{decision}")
def page_holdings_decide(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    transfer_id: Annotated[int, Path(ge=1, le=2**31 - 1)], decision: Annotated[str, Path(pattern="^(accept|reject)$")],
    csrf_token: CsrfField = "", reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    """The receiver accepts or rejects an incoming transfer."""
    check_csrf(request, settings, csrf_token)
    decide_transfer(session, transfer_id, accept=decision == "accept", actor=person, clock=clock, reason=reason)
    return _back(decision)


@router.post("/holdings/pledge")
def page_holdings_pledge(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    bank_organisation_id: OrgField, quantity_t: Tonnes, csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Pledge tradable tonnes to a bank (质押)."""
    check_csrf(request, settings, csrf_token)
    change_state(session, "pledge", organisation_id=person.organisation_id, quantity_t=quantity_t, actor=person,
                 clock=clock, pledgee_organisation_id=bank_organisation_id)  # fmt: skip
    return _back("pledge")


@router.post("/holdings/pledges/{action}")
def page_holdings_pledge_decide(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    action: Annotated[str, Path(pattern="^(release|enforce)$")], holder_organisation_id: OrgField, quantity_t: Tonnes,
    csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """The pledgee bank releases pledged tonnes to their holder, or enforces the pledge (takes them)."""
    check_csrf(request, settings, csrf_token)
    kind = "unpledge" if action == "release" else "enforce"
    change_state(session, kind, organisation_id=holder_organisation_id, quantity_t=quantity_t, actor=person,
                 clock=clock)  # fmt: skip
    return _back(action)


@router.post("/holdings/retire")
def page_holdings_retire(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    quantity_t: Tonnes,
    beneficiary: Annotated[str, Form(min_length=1, max_length=300)],
    purpose: Annotated[str, Form(min_length=1, max_length=2000)],
    reporting_year: Annotated[int, Form(ge=2000, le=2100)],
    use: Annotated[str, Form(max_length=100)] = "voluntary",
    csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Retire tonnes for a beneficiary; answer with the certificate's verification code."""
    check_csrf(request, settings, csrf_token)
    if use != "voluntary" and use not in COMPLIANCE_RULES:
        raise InvalidInput(f"unknown use {use!r}", [{"pointer": "/use"}])
    notary = Notary(request.app.state.audit_tree, request.app.state.audit_signing_key)
    cmd = RetireUnits(quantity_t, beneficiary.strip(), purpose.strip(), reporting_year, use)
    retirement = retire_units(session, cmd, actor=person, clock=clock, notary=notary)
    return _back("retire", retired=retirement.verification_code)
