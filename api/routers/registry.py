"""Registry endpoints: holdings, transfers, pledges, retirements and certificates; the public registry."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from api.deps import ClockDep, CurrentUser, SessionDep
from carbon.certificates import certificate_facts, render_pdf, retirement_by_code
from carbon.ledger import RetireUnits, change_state, open_blocks, retire_units, reverse, serial_of, transfer
from carbon.models import Account, AccountKind, Batch, BlockState, HoldingBlock, Project, Retirement
from carbon.plots import list_plots
from core.auth import OrgKind
from core.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["registry"])
public = APIRouter(prefix="/public/v1", tags=["public registry"])
PDF = "application/pdf"


class TransferRequest(BaseModel):
    """Move tradable tonnes to another organisation (oldest vintage first, or from the named batches)."""

    model_config = ConfigDict(extra="forbid")
    to_organisation_id: int
    quantity_t: int = Field(gt=0, strict=True)
    batch_ids: list[int] | None = None


class PledgeRequest(BaseModel):
    """Pledge, release or enforce tradable/pledged tonnes."""

    model_config = ConfigDict(extra="forbid")
    quantity_t: int = Field(gt=0, strict=True)
    bank_organisation_id: int | None = None
    holder_organisation_id: int | None = Field(default=None, description="For enforcement: the pledgor.")


class RetireRequest(BaseModel):
    """Retire tonnes for a beneficiary; ``use`` is 'voluntary' (default) or a compliance use."""

    model_config = ConfigDict(extra="forbid")
    quantity_t: int = Field(gt=0, strict=True)
    beneficiary: str = Field(min_length=1, max_length=300)
    purpose: str = Field(min_length=1, max_length=2000)
    reporting_year: int = Field(ge=2000, le=2100)
    use: str = "voluntary"


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
def read_holdings(session: SessionDep, principal: CurrentUser) -> dict[str, Any]:
    """The caller's organisation's open serial blocks by state."""
    return {
        "organisation_id": principal.organisation_id,
        **_blocks_out(open_blocks(session, principal.organisation_id)),
    }


@router.post("/transfers", status_code=201)
def create_transfer(
    body: TransferRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> dict[str, Any]:
    """Transfer tradable tonnes to another organisation's holding account."""
    moved = transfer(
        session, from_organisation_id=principal.organisation_id, to_organisation_id=body.to_organisation_id,
        quantity_t=body.quantity_t, actor=principal, clock=clock, batch_ids=body.batch_ids,
    )  # fmt: skip
    return _blocks_out(moved)


@router.post("/pledges", status_code=201)
def create_pledge(body: PledgeRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> dict[str, Any]:
    """Pledge tradable tonnes to a bank (质押)."""
    moved = change_state(
        session, "pledge", organisation_id=principal.organisation_id, quantity_t=body.quantity_t, actor=principal,
        clock=clock, pledgee_organisation_id=body.bank_organisation_id,
    )  # fmt: skip
    return _blocks_out(moved)


@router.post("/pledges/release", status_code=201)
def release_pledge(body: PledgeRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> dict[str, Any]:
    """The pledgee bank releases pledged tonnes of a pledgor back to tradable."""
    if body.holder_organisation_id is None:
        raise NotFound("name the pledgor in holder_organisation_id")
    moved = change_state(
        session, "unpledge", organisation_id=body.holder_organisation_id, quantity_t=body.quantity_t, actor=principal,
        clock=clock,
    )  # fmt: skip
    return _blocks_out(moved)


@router.post("/pledges/enforce", status_code=201)
def enforce_pledge(body: PledgeRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep) -> dict[str, Any]:
    """The pledgee bank takes pledged tonnes of a pledgor into its own account."""
    if body.holder_organisation_id is None:
        raise NotFound("name the pledgor in holder_organisation_id")
    moved = change_state(
        session, "enforce", organisation_id=body.holder_organisation_id, quantity_t=body.quantity_t, actor=principal,
        clock=clock,
    )  # fmt: skip
    return _blocks_out(moved)


def _retirement_out(session: Any, retirement: Retirement, request: Request) -> dict[str, Any]:
    base_url = request.app.state.settings.public_base_url
    verify_url = f"{base_url}/public/v1/retirements/{retirement.verification_code}"
    facts = certificate_facts(session, retirement, verify_url=verify_url)
    if facts["audit_entry"] is not None:
        # Anchor the retirement's audit entry in the Merkle tree with a signed head of the same size:
        # whoever keeps the certificate can check it against the log without trusting the operator.
        position, head = request.app.state.audit_tree.anchor_entry(
            session, facts["audit_entry"]["seq"], request.app.state.audit_signing_key, request.app.state.clock
        )
        facts["audit_entry"] |= {"leaf_index": position.leaf_index, "tree_size": position.tree_size,
                                 "root_hash": position.root_hash, "tree_head": head.as_dict()}  # fmt: skip
    return {"id": retirement.id, **facts, "certificate_url": f"{verify_url}/certificate.pdf"}


@router.post("/retirements", status_code=201)
def create_retirement(
    body: RetireRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep, request: Request
) -> dict[str, Any]:
    """Retire tonnes for good; returns the certificate facts and the certificate's public URL."""
    cmd = RetireUnits(body.quantity_t, body.beneficiary, body.purpose, body.reporting_year, body.use)
    retirement = retire_units(session, cmd, actor=principal, clock=clock)
    return _retirement_out(session, retirement, request)


@router.get("/retirements/{retirement_id}/certificate.pdf", response_class=Response,
            responses={200: {"content": {PDF: {}}}})  # fmt: skip
def read_certificate(retirement_id: int, session: SessionDep, principal: CurrentUser, request: Request) -> Response:
    """The certificate PDF of one of the caller's retirements (auditors and the registry: any)."""
    retirement = session.get(Retirement, retirement_id)
    account = session.get(Account, retirement.account_id) if retirement else None
    own = account is not None and account.organisation_id == principal.organisation_id
    if retirement is None or not (own or principal.role in (OrgKind.AUDITOR, OrgKind.REGISTRY)):
        raise NotFound(f"retirement {retirement_id} does not exist")
    facts = _retirement_out(session, retirement, request)
    return Response(render_pdf(facts), media_type=PDF)


@public.get("/retirements/{code}")
def verify_retirement(code: str, session: SessionDep, request: Request) -> dict[str, Any]:
    """Public verification of a certificate by its code: what was retired, for whom, from which project."""
    return _retirement_out(session, retirement_by_code(session, code), request)


@public.get("/retirements/{code}/certificate.pdf", response_class=Response, responses={200: {"content": {PDF: {}}}})
def public_certificate(code: str, session: SessionDep, request: Request) -> Response:
    """The certificate PDF, publicly, by its verification code."""
    facts = _retirement_out(session, retirement_by_code(session, code), request)
    return Response(render_pdf(facts), media_type=PDF)


@public.get("/batches")
def list_batches(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Public list of issuance batches with their supply by state."""
    batches = session.scalars(select(Batch).order_by(Batch.id).limit(limit).offset(offset)).all()
    supply_rows = session.execute(
        select(
            HoldingBlock.batch_id, HoldingBlock.state, func.sum(HoldingBlock.serial_end - HoldingBlock.serial_start + 1)
        )
        .where(HoldingBlock.closed_at.is_(None), HoldingBlock.batch_id.in_([b.id for b in batches]))
        .group_by(HoldingBlock.batch_id, HoldingBlock.state)
    ).all()
    supply: dict[int, dict[str, int]] = defaultdict(dict)
    for batch_id, state, quantity in supply_rows:
        supply[batch_id][BlockState(state).value] = int(quantity)
    return [
        {"id": b.id, "project_code": b.project.code, "credit_class": b.credit_class.value, "vintage": b.vintage_year,
         "province_code": b.province_code, "quantity_t": b.quantity_t, "buffer_t": b.buffer_t,
         "issued_at": b.issued_at.isoformat(), "supply_t": supply[b.id]}
        for b in batches
    ]  # fmt: skip


@public.get("/buffer")
def read_buffer(session: SessionDep, clock: ClockDep) -> dict[str, Any]:
    """Public balance of the registry's buffer pool."""
    pool = session.scalars(select(Account).where(Account.kind == AccountKind.BUFFER)).first()
    blocks = [b for b in open_blocks(session) if pool is not None and b.account_id == pool.id]
    return _blocks_out(blocks)


class ReversalRequest(BaseModel):
    """Cancel tonnes of a project's batches from the buffer pool to cover a loss."""

    model_config = ConfigDict(extra="forbid")
    project_id: int
    quantity_t: int = Field(gt=0, strict=True)
    reason: str = Field(min_length=3, max_length=2000, examples=["fire on 2026-04-02, 12 ha burnt"])


@router.post("/reversals", status_code=201)
def create_reversal(
    body: ReversalRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> dict[str, Any]:
    """The registry cancels buffer-pool tonnes of the project's batches, with the reason (a reversal)."""
    return _blocks_out(reverse(session, body.project_id, body.quantity_t, body.reason, actor=principal, clock=clock))


#: Public plot outlines are generalised to about 1 km: exact boundaries of holders' land need a login.
PUBLIC_GEOMETRY_DEG = 0.01


@public.get("/projects")
def list_public_projects(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Public projects with generalised plot outlines (GeoJSON), issuance totals and status."""
    projects = session.scalars(select(Project).order_by(Project.id).limit(limit).offset(offset)).all()
    features = []
    for project in projects:
        plots = list_plots(session, project.id)
        issued = session.scalar(select(func.sum(Batch.quantity_t)).where(Batch.project_id == project.id)) or 0
        # Each plot's bounding box grown by ~1 km, merged: where the project is, not the holders' boundaries.
        boxes = [p.geometry.envelope.buffer(PUBLIC_GEOMETRY_DEG) for p in plots]
        outline = shapely.unary_union(boxes) if boxes else None
        geometry = shapely.set_precision(outline, PUBLIC_GEOMETRY_DEG) if outline is not None else None
        features.append({
            "type": "Feature",
            "geometry": geometry.__geo_interface__ if geometry is not None else None,
            "properties": {"code": project.code, "name": project.name, "status": project.status.value,
                           "scheme": project.scheme.value, "province_code": project.province_code,
                           "plots": len(plots), "area_ha": round(sum(p.area_m2 for p in plots) / 10_000, 1),
                           "issued_t": int(issued), "geometry": "generalised (~1 km)"},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


@public.get("/batches.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_batches_csv(session: SessionDep) -> Response:
    """All issuance batches with their supply by state, as CSV."""
    rows = list_batches(session, limit=500, offset=0)
    states = [s.value for s in BlockState]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "project_code", "credit_class", "vintage", "province_code", "quantity_t", "buffer_t",
                     "issued_at", *[f"{s}_t" for s in states]])  # fmt: skip
    for row in rows:
        writer.writerow([row["id"], row["project_code"], row["credit_class"], row["vintage"], row["province_code"],
                         row["quantity_t"], row["buffer_t"], row["issued_at"],
                         *[row["supply_t"].get(s, 0) for s in states]])  # fmt: skip
    return Response(buffer.getvalue(), media_type="text/csv")
