"""Registry endpoints: holdings, transfers, pledges, retirements and certificates; the public registry."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import ClockDep, CurrentUser, SessionDep
from api.fields import Answer, DateText, HashScheme, InstantText
from api.pagination import Page, PageQuery, page_of
from api.params import IdPath
from carbon.ledger import (
    Account,
    AccountKind,
    BlockState,
    CreditClass,
    HoldingBlock,
    PendingTransfer,
    Retirement,
    RetireUnits,
    ReversalRule,
    TransferStatus,
    change_state,
    decide_transfer,
    expire_transfers,
    open_blocks,
    pending_transfer_of,
    retire_units,
    reverse,
    serial_of,
    transfer,
)
from carbon.ledger.certificates import certificate_facts, keep_tree_head, render_pdf, retirement_by_code
from carbon.models import ProjectStatus, Scheme
from carbon.public_registry import (
    BatchSummary,
    RetirementFilter,
    RetirementRow,
    batch_summaries,
    published_projects,
    retirements,
    retirements_csv_rows,
)
from core.audit_tree import Notary
from core.auth import OrgKind, Principal
from core.bounds import Id, MultilineText, Text, Tonnes
from core.clock import Clock
from core.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["registry"])
public = APIRouter(prefix="/public/v1", tags=["public registry"])
PDF = "application/pdf"


class TransferRequest(BaseModel):
    """Move tradable tonnes to another organisation (oldest vintage first, or from the named batches)."""

    model_config = ConfigDict(extra="forbid")
    to_organisation_id: Id
    quantity_t: Tonnes
    batch_ids: list[int] | None = None


class PledgeRequest(BaseModel):
    """Pledge, release or enforce tradable/pledged tonnes."""

    model_config = ConfigDict(extra="forbid")
    quantity_t: Tonnes
    bank_organisation_id: Id | None = None
    holder_organisation_id: Id | None = Field(default=None, description="For enforcement: the pledgor.")


class RetireRequest(BaseModel):
    """Retire tonnes for a beneficiary; ``use`` is 'voluntary' (default) or a compliance use."""

    model_config = ConfigDict(extra="forbid")
    quantity_t: Tonnes
    beneficiary: Text = Field(min_length=1, max_length=300)
    purpose: MultilineText = Field(min_length=1, max_length=2000)
    reporting_year: int = Field(ge=2000, le=2100)
    use: str = "voluntary"


class Block(Answer):
    """A serial block: its serial range, tonnes and state, and its batch's vintage and credit class."""

    serial: str
    quantity_t: int
    state: BlockState
    batch_id: int
    vintage: int
    credit_class: CreditClass


class Blocks(Answer):
    """Serial blocks with their tonnes totalled by state."""

    totals_t: dict[str, int] = Field(description="Tonnes by block state.")
    blocks: list[Block]


class Holdings(Blocks):
    """An organisation's open serial blocks by state."""

    organisation_id: int


class PendingTransferOut(Answer):
    """A transfer waiting for (or decided by) its receiver."""

    id: int
    status: TransferStatus
    quantity_t: int
    from_organisation_id: int
    to_organisation_id: int
    created_at: InstantText
    expires_at: InstantText
    decided_at: InstantText | None
    reason: str | None


class TransferResult(Blocks):
    """The blocks a transfer moved and, when the receiver must accept it, the pending transfer."""

    pending_transfer: PendingTransferOut | None


class PendingTransfers(Answer):
    """Pending transfers the caller's organisation must decide (incoming) or sent (outgoing)."""

    incoming: list[PendingTransferOut]
    outgoing: list[PendingTransferOut]


class ExpiredTransfers(Answer):
    """The transfers the expiry sweep returned to their senders."""

    expired: list[int]


class Reversal(Blocks):
    """The tonnes a reversal cancelled, from the buffer pool and from the proponent."""

    rule: ReversalRule
    from_buffer_t: int
    from_proponent_t: int


class ClassFacts(Answer):
    """A credit class as the certificate names it."""

    code: CreditClass
    zh: str
    en: str
    provisional: bool


class ProjectFacts(Answer):
    """A project behind retired tonnes."""

    code: str
    name: str
    province_code: str


class BatchFacts(Answer):
    """An issuance batch behind retired tonnes."""

    id: int
    number: int
    source: str
    credit_class: CreditClass
    vintage_year: int
    monitoring_report_id: int | None


class ReportFacts(Answer):
    """A monitoring report behind retired tonnes."""

    id: int
    project_code: str | None
    period_start: DateText
    period_end: DateText
    methodology: str
    plot_ids: list[int]


class PlotFacts(Answer):
    """A plot behind retired tonnes."""

    id: int
    code: str
    name: str
    project_code: str | None
    area_ha: float
    monitoring_report_ids: list[int]


class AuditEntryFacts(Answer):
    """The retirement's audit entry, as hashed into the log."""

    seq: int
    recorded_at: InstantText
    actor: str
    action: str
    subject: str
    payload: Any
    prev_hash: str
    entry_hash: str
    scheme: HashScheme


class TreeHeadFacts(Answer):
    """A signed tree head of the audit log (Ed25519)."""

    format: Literal["shanhai-sth/1"]
    algorithm: Literal["Ed25519"]
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str


class InclusionProofFacts(Answer):
    """The audit path of the retirement's entry under the kept tree head (RFC 6962)."""

    leaf_index: int
    tree_size: int
    audit_path: list[str]


class Certificate(Answer):
    """A retirement's certificate facts: the same in the POST answer, the public JSON and the PDF."""

    id: int
    format: Literal["shanhai-retirement-certificate/1"]
    verification_code: str
    verify_url: str
    quantity_t: int
    beneficiary: str
    purpose: str
    reporting_year: int
    use: str
    retired_at: InstantText
    serials: list[str]
    vintages: list[int]
    credit_classes: list[ClassFacts]
    projects: list[ProjectFacts]
    batches: list[BatchFacts]
    monitoring_reports: list[ReportFacts]
    plots: list[PlotFacts]
    audit_entry: AuditEntryFacts | None
    tree_head_kept: bool
    tree_head: TreeHeadFacts | None
    inclusion_proof: InclusionProofFacts | None
    certificate_url: str


class BatchOut(Answer):
    """An issuance batch with its supply by block state."""

    id: int
    project_code: str
    credit_class: CreditClass
    vintage: int
    province_code: str
    quantity_t: int
    buffer_t: int
    issued_at: InstantText
    supply_t: dict[str, int] = Field(description="Open tonnes by block state.")


class PublicRetirement(Answer):
    """A retirement as the public registry lists it."""

    verification_code: str
    retired_at: InstantText
    quantity_t: int
    beneficiary: str
    purpose: str
    reporting_year: int
    use: str
    projects: list[str]
    credit_classes: list[CreditClass]
    vintages: list[int]
    serials: list[str]


class PublicProjectProperties(Answer):
    """A public project's facts."""

    code: str
    name: str
    status: ProjectStatus
    scheme: Scheme
    province_code: str
    plots: int
    area_ha: float
    issued_t: int
    geometry: Literal["generalised (~1 km)"]


class PublicProjectFeature(Answer):
    """A public project: its generalised outline (GeoJSON geometry, or null without plots) and facts."""

    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: PublicProjectProperties


class PublicProjects(Answer):
    """Public projects as a GeoJSON FeatureCollection; ``limit`` and ``next`` (foreign members) page it."""

    type: Literal["FeatureCollection"]
    features: list[PublicProjectFeature]
    limit: int
    next: str | None


def _block_out(block: HoldingBlock) -> dict[str, Any]:
    return {
        "serial": serial_of(block).format(),
        "quantity_t": block.quantity,
        "state": block.state.value,
        "batch_id": block.batch_id,
        "vintage": block.batch.vintage_year,
        "credit_class": block.batch.credit_class.value,
    }


def _blocks_out(blocks: list[HoldingBlock]) -> dict[str, Any]:
    totals: dict[str, int] = defaultdict(int)
    for block in blocks:
        totals[block.state.value] += block.quantity
    return {"totals_t": dict(totals), "blocks": [_block_out(b) for b in blocks]}


@router.get("/holdings")
def read_holdings(session: SessionDep, principal: CurrentUser) -> Holdings:
    """The caller's organisation's open serial blocks by state."""
    return Holdings.model_validate(
        {"organisation_id": principal.organisation_id, **_blocks_out(open_blocks(session, principal.organisation_id))}
    )


@router.post("/transfers", status_code=201)
def create_transfer(
    body: TransferRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> TransferResult:
    """Transfer tradable tonnes to another organisation's holding account."""
    moved = transfer(
        session, from_organisation_id=principal.organisation_id, to_organisation_id=body.to_organisation_id,
        quantity_t=body.quantity_t, actor=principal, clock=clock, batch_ids=body.batch_ids,
    )  # fmt: skip
    offer_id = pending_transfer_of(moved)
    offer = session.get(PendingTransfer, offer_id) if offer_id is not None else None
    pending = _offer_out(session, offer) if offer is not None else None
    return TransferResult.model_validate({**_blocks_out(moved), "pending_transfer": pending})


def _offer_out(session: Any, offer: PendingTransfer) -> dict[str, Any]:
    sender, receiver = session.get(Account, offer.from_account_id), session.get(Account, offer.to_account_id)
    return {
        "id": offer.id, "status": offer.status.value, "quantity_t": offer.quantity_t,
        "from_organisation_id": sender.organisation_id, "to_organisation_id": receiver.organisation_id,
        "created_at": offer.created_at.isoformat(), "expires_at": offer.expires_at.isoformat(),
        "decided_at": offer.decided_at.isoformat() if offer.decided_at else None, "reason": offer.reason,
    }  # fmt: skip


@router.get("/transfers/pending")
def list_pending_transfers(session: SessionDep, principal: CurrentUser) -> PendingTransfers:
    """Transfers waiting for acceptance that the caller's organisation sent or must decide."""
    accounts = select(Account.id).where(Account.organisation_id == principal.organisation_id)
    offers = session.scalars(
        select(PendingTransfer)
        .where(PendingTransfer.status == TransferStatus.PENDING)
        .where(PendingTransfer.from_account_id.in_(accounts) | PendingTransfer.to_account_id.in_(accounts))
        .order_by(PendingTransfer.id)
    ).all()
    rows = [_offer_out(session, o) for o in offers]
    return PendingTransfers.model_validate({
        "incoming": [r for r in rows if r["to_organisation_id"] == principal.organisation_id],
        "outgoing": [r for r in rows if r["from_organisation_id"] == principal.organisation_id],
    })  # fmt: skip


class DecisionRequest(BaseModel):
    """The receiver's decision on a pending transfer."""

    model_config = ConfigDict(extra="forbid")
    reason: MultilineText = Field(default="", max_length=2000)


def _decided(session: Session, transfer_id: int, *, accept: bool, body: DecisionRequest, principal: Principal,
             clock: Clock) -> TransferResult:  # fmt: skip
    """Carry out the receiver's decision; return the moved blocks and the transfer as it now stands."""
    moved = decide_transfer(session, transfer_id, accept=accept, actor=principal, clock=clock, reason=body.reason)
    offer = session.get(PendingTransfer, transfer_id)
    assert offer is not None
    return TransferResult.model_validate({**_blocks_out(moved), "pending_transfer": _offer_out(session, offer)})


@router.post("/transfers/{transfer_id}/accept")
def accept_transfer(
    transfer_id: IdPath, body: DecisionRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> TransferResult:
    """The receiver accepts a pending transfer: its tonnes move to the receiver's account as tradable."""
    return _decided(session, transfer_id, accept=True, body=body, principal=principal, clock=clock)


@router.post("/transfers/{transfer_id}/reject")
def reject_transfer(
    transfer_id: IdPath, body: DecisionRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> TransferResult:
    """The receiver rejects a pending transfer: its tonnes return to the sender as tradable."""
    return _decided(session, transfer_id, accept=False, body=body, principal=principal, clock=clock)


@router.post("/transfers/expire")
def expire_pending_transfers(session: SessionDep, principal: CurrentUser, clock: ClockDep) -> ExpiredTransfers:
    """The registry returns the tonnes of every pending transfer past its deadline to their senders."""
    return ExpiredTransfers(expired=expire_transfers(session, actor=principal.actor, clock=clock))


@router.post("/pledges", status_code=201)
def create_pledge(body: PledgeRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> Blocks:
    """Pledge tradable tonnes to a bank (质押)."""
    moved = change_state(
        session, "pledge", organisation_id=principal.organisation_id, quantity_t=body.quantity_t, actor=principal,
        clock=clock, pledgee_organisation_id=body.bank_organisation_id,
    )  # fmt: skip
    return Blocks.model_validate(_blocks_out(moved))


@router.post("/pledges/release", status_code=201)
def release_pledge(body: PledgeRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> Blocks:
    """The pledgee bank releases pledged tonnes of a pledgor back to tradable."""
    if body.holder_organisation_id is None:
        raise NotFound("name the pledgor in holder_organisation_id")
    moved = change_state(
        session, "unpledge", organisation_id=body.holder_organisation_id, quantity_t=body.quantity_t, actor=principal,
        clock=clock,
    )  # fmt: skip
    return Blocks.model_validate(_blocks_out(moved))


@router.post("/pledges/enforce", status_code=201)
def enforce_pledge(body: PledgeRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> Blocks:
    """The pledgee bank takes pledged tonnes of a pledgor into its own account."""
    if body.holder_organisation_id is None:
        raise NotFound("name the pledgor in holder_organisation_id")
    moved = change_state(
        session, "enforce", organisation_id=body.holder_organisation_id, quantity_t=body.quantity_t, actor=principal,
        clock=clock,
    )  # fmt: skip
    return Blocks.model_validate(_blocks_out(moved))


def _notary(request: Request) -> Notary:
    return Notary(request.app.state.audit_tree, request.app.state.audit_signing_key)


def _retirement_out(session: Any, retirement: Retirement, request: Request, clock: Clock) -> Certificate:
    """The certificate's facts: the same in the POST answer, the public JSON and the PDF.

    The signed tree head is the one kept with the retirement (signed once: in its transaction, or at the first
    read for a retirement on fill — :func:`carbon.ledger.certificates.keep_tree_head`); only the inclusion proof
    under it is computed here — it is determined by the log and the head's size.
    """
    keep_tree_head(session, retirement, _notary(request), clock)
    base_url = request.app.state.settings.public_base_url
    verify_url = f"{base_url}/verify/{retirement.verification_code}"  # the certificate check page (the QR code)
    public_url = f"{base_url}/public/v1/retirements/{retirement.verification_code}"
    proof = None
    if retirement.audit_seq is not None:
        proof = request.app.state.audit_tree.inclusion_proof(session, retirement.audit_seq, retirement.audit_seq)
    facts = certificate_facts(session, retirement, verify_url=verify_url, proof=proof)
    return Certificate.model_validate(
        {"id": retirement.id, **facts, "certificate_url": f"{public_url}/certificate.pdf"}
    )


@router.post("/retirements", status_code=201)
def create_retirement(
    body: RetireRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep, request: Request
) -> Certificate:
    """Retire tonnes for good; returns the certificate facts and the certificate's public URL."""
    cmd = RetireUnits(body.quantity_t, body.beneficiary, body.purpose, body.reporting_year, body.use)
    retirement = retire_units(session, cmd, actor=principal, clock=clock, notary=_notary(request))
    return _retirement_out(session, retirement, request, clock)


@router.get("/retirements/{retirement_id}/certificate.pdf", response_class=Response,
            responses={200: {"content": {PDF: {}}}})  # fmt: skip
def read_certificate(
    retirement_id: IdPath, session: SessionDep, principal: CurrentUser, clock: ClockDep, request: Request
) -> Response:
    """The certificate PDF of one of the caller's retirements (auditors and the registry: any)."""
    retirement = session.get(Retirement, retirement_id)
    account = session.get(Account, retirement.account_id) if retirement else None
    own = account is not None and account.organisation_id == principal.organisation_id
    if retirement is None or not (own or principal.role in (OrgKind.AUDITOR, OrgKind.REGISTRY)):
        raise NotFound(f"retirement {retirement_id} does not exist")
    facts = _retirement_out(session, retirement, request, clock)
    return Response(render_pdf(facts.model_dump(mode="json")), media_type=PDF)


@public.get("/retirements/{code}")
def verify_retirement(code: str, session: SessionDep, clock: ClockDep, request: Request) -> Certificate:
    """Public verification of a certificate by its code: what was retired, for whom, from which project."""
    return _retirement_out(session, retirement_by_code(session, code), request, clock)


@public.get("/retirements/{code}/certificate.pdf", response_class=Response, responses={200: {"content": {PDF: {}}}})
def public_certificate(code: str, session: SessionDep, clock: ClockDep, request: Request) -> Response:
    """The certificate PDF, publicly, by its verification code."""
    facts = _retirement_out(session, retirement_by_code(session, code), request, clock)
    return Response(render_pdf(facts.model_dump(mode="json")), media_type=PDF)


def _batch_out(batch: BatchSummary) -> BatchOut:
    return BatchOut.model_validate({**asdict(batch), "issued_at": batch.issued_at.isoformat()})


@public.get("/batches")
def list_batches(session: SessionDep, request: Request, page: PageQuery) -> Page[BatchOut]:
    """Public list of issuance batches with their supply by state."""
    found = batch_summaries(session, limit=page.limit + 1, offset=page.offset)
    rows, following = page_of(request, found, page)
    return Page[BatchOut](items=[_batch_out(b) for b in rows], limit=page.limit, next=following)


@public.get("/buffer")
def read_buffer(session: SessionDep, clock: ClockDep) -> Blocks:
    """Public balance of the registry's buffer pool."""
    pool = session.scalars(select(Account).where(Account.kind == AccountKind.BUFFER)).first()
    blocks = [b for b in open_blocks(session) if pool is not None and b.account_id == pool.id]
    return Blocks.model_validate(_blocks_out(blocks))


class ReversalRequest(BaseModel):
    """Cancel tonnes of a project's batches from the buffer pool to cover a loss."""

    model_config = ConfigDict(extra="forbid")
    project_id: Id
    quantity_t: Tonnes
    reason: MultilineText = Field(min_length=3, max_length=2000, examples=["fire on 2026-04-02, 12 ha burnt"])


@router.post("/reversals", status_code=201)
def create_reversal(body: ReversalRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> Reversal:
    """The registry cancels the lost tonnes: buffer pool first, then per the class rule the proponent's holdings."""
    done = reverse(session, body.project_id, body.quantity_t, body.reason, actor=principal, clock=clock)
    return Reversal.model_validate({
        **_blocks_out(done.from_buffer + done.from_proponent),
        "rule": done.rule.value,
        "from_buffer_t": sum(b.quantity for b in done.from_buffer),
        "from_proponent_t": sum(b.quantity for b in done.from_proponent),
    })  # fmt: skip


@public.get("/projects")
def list_public_projects(session: SessionDep, request: Request, page: PageQuery) -> PublicProjects:
    """Public projects with generalised plot outlines (GeoJSON), issuance totals and status.

    Draft projects are their proponent's work in progress, not registry records: they are not listed. Each plot's
    bounding box grown by ~1 km, merged: where the project is, not the holders' boundaries.
    """
    found = published_projects(session, limit=page.limit + 1, offset=page.offset)
    projects, following = page_of(request, found, page)
    features = [
        {"type": "Feature", "geometry": p.outline,
         "properties": {"code": p.code, "name": p.name, "status": p.status, "scheme": p.scheme,
                        "province_code": p.province_code, "plots": p.plots,
                        "area_ha": float(round(p.area_m2 / 10_000, 1)), "issued_t": p.issued_t,
                        "geometry": "generalised (~1 km)"}}
        for p in projects
    ]  # fmt: skip
    return PublicProjects.model_validate(
        {"type": "FeatureCollection", "features": features, "limit": page.limit, "next": following}
    )


@public.get("/batches.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_batches_csv(session: SessionDep) -> Response:
    """All issuance batches with their supply by state, as CSV."""
    states = [s.value for s in BlockState]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "project_code", "credit_class", "vintage", "province_code", "quantity_t", "buffer_t",
                     "issued_at", *[f"{s}_t" for s in states]])  # fmt: skip
    for b in batch_summaries(session):
        writer.writerow([b.id, b.project_code, b.credit_class, b.vintage, b.province_code, b.quantity_t, b.buffer_t,
                         b.issued_at.isoformat(), *[b.supply_t.get(s, 0) for s in states]])  # fmt: skip
    return Response(buffer.getvalue(), media_type="text/csv")


def _public_retirement(row: RetirementRow) -> PublicRetirement:
    return PublicRetirement.model_validate({**asdict(row), "retired_at": row.retired_at.isoformat()})


BeneficiaryQuery = Annotated[str | None, Query(max_length=300, description="Part of the beneficiary's name.")]
YearQuery = Annotated[int | None, Query(ge=2000, le=2100, description="Reporting year.")]
ClassQuery = Annotated[CreditClass | None, Query(alias="class", description="Credit class code, e.g. FCT.")]
ProjectQuery = Annotated[str | None, Query(max_length=40, description="Project code, e.g. SH-64-000001.")]


@public.get("/retirements")
def list_public_retirements(
    session: SessionDep,
    beneficiary: BeneficiaryQuery = None,
    year: YearQuery = None,
    credit_class: ClassQuery = None,
    project: ProjectQuery = None,
    *,
    request: Request,
    page: PageQuery,
) -> Page[PublicRetirement]:
    """Public list of retirements, newest first, filtered by beneficiary, reporting year, class and project."""
    terms = RetirementFilter(beneficiary, year, credit_class, project)
    found = retirements(session, terms, limit=page.limit + 1, offset=page.offset)
    rows, following = page_of(request, found, page)
    return Page[PublicRetirement](items=[_public_retirement(r) for r in rows], limit=page.limit, next=following)


@public.get("/retirements.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_retirements_csv(
    session: SessionDep,
    beneficiary: BeneficiaryQuery = None,
    year: YearQuery = None,
    credit_class: ClassQuery = None,
    project: ProjectQuery = None,
) -> Response:
    """Every retirement matching the filters, newest first, as CSV (serial ranges separated by ';')."""
    terms = RetirementFilter(beneficiary, year, credit_class, project)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(retirements_csv_rows(session, terms))
    return Response(buffer.getvalue(), media_type="text/csv")
