"""GEP results put to work (ADR 039): eco-compensation and ecological-product rights.

Agreements, readings, statements, obligations and reports of eco-compensation between regions; rights, banks'
policies and pledges of ecological products.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import Field

from api.deps import ClockDep, CurrentUser, SessionDep
from api.downloads import CSV, XLSX, attachment
from api.fields import Answer, Cny, DateText, DecimalText, HashScheme, InstantText, with_cny
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from core.auth import OrgKind
from ecovalue import agreements, pledges, reports, rights, statements
from ecovalue.formula import EXAMPLE_TERMS, MET, MISSED, AgreementTerms
from ecovalue.models import (
    Decision,
    Obligation,
    ObligationStatus,
    PledgeStatus,
    Reading,
    RightStatus,
    StatementStatus,
)

router = APIRouter(prefix="/api/v1/eco", tags=["eco-compensation and product rights"])

RegionCodePath = Annotated[str, Path(pattern=r"^\d{6}$", description="GB/T 2260 six-digit division code.")]
RegionCodeQuery = Annotated[str | None, Query(pattern=r"^\d{6}$", description="Only those with this region.")]
#: Who sees every pledge (the others see their own as bank or pledgor).
PLEDGE_OVERSIGHT = frozenset({OrgKind.ECOLOGY_BUREAU, OrgKind.AUDITOR, OrgKind.REGISTRY})
#: Who pays whom: the beneficiaries the providers (the benchmark met), or the providers the beneficiaries.
Direction = Literal["beneficiaries_pay_providers", "providers_pay_beneficiaries"]
assert (MET, MISSED) == get_args(Direction)


class AgreementOut(Answer):
    """An agreement: identity, period, its terms as stored and their RFC 8785 hash."""

    id: int
    code: str
    title: str
    basis_kind: str
    benchmark_year: int
    period_start_year: int
    period_end_year: int
    terms: dict[str, Any] = Field(description="The terms (parties, basis, formula) as `AgreementTerms`.")
    terms_sha256: str
    created_by_organisation_id: int
    created_at: InstantText


class ReadingOut(Answer):
    """A monitored reading at a section."""

    id: int
    section_code: str
    indicator: str
    sampled_on: DateText
    value: DecimalText
    unit: str
    method: str
    recorded_by_organisation_id: int
    recorded_at: InstantText


class StatementTerm(Answer):
    """One term of a statement: its source, formula, inputs and result (decimal text) with its unit."""

    name: str
    source: str
    formula: str
    inputs: dict[str, str]
    result: str
    unit: str


class StatementObligation(Answer):
    """What one payer region owes one payee region under the statement."""

    payer_region: str
    payer_organisation_id: int
    payee_region: str
    payee_organisation_id: int
    amount_fen: int
    amount_cny: Cny


class StatementResponseOut(Answer):
    """A party organisation's answer."""

    organisation_id: int
    decision: Decision
    comment: str
    responded_at: InstantText


class StatementOut(Answer):
    """A settlement statement: every term, the amount, its direction, the obligations, the hash and the answers."""

    id: int
    agreement_id: int
    agreement_code: str
    year: int
    status: StatementStatus
    amount_fen: int
    amount_cny: Cny
    direction: Direction
    benchmark_met: bool
    terms: list[StatementTerm]
    obligations: list[StatementObligation]
    record_sha256: str
    hash_scheme: HashScheme
    responses: list[StatementResponseOut]
    created_at: InstantText
    closed_at: InstantText | None
    record: dict[str, Any] | None = Field(default=None, description="The hashed record (single reads only).")


class ObligationOut(Answer):
    """A payment obligation in CNY from a confirmed statement."""

    id: int
    statement_id: int
    payer_region: str
    payer_organisation_id: int
    payee_region: str
    payee_organisation_id: int
    amount_fen: int
    amount_cny: Cny
    currency: str
    status: ObligationStatus
    created_at: InstantText
    paid_at: InstantText | None
    payment_reference: str | None


class ValuationOut(Answer):
    """One valuation of a right, with its record tracing the value to the run's lines."""

    run_id: int
    valuation_date: DateText
    value_fen: int
    value_cny: Cny
    record_sha256: str
    record: dict[str, Any]


class RightOut(Answer):
    """An ecological-product right: owner, regions, indicators, area, its current value and every valuation."""

    id: int
    serial: str
    owner_organisation_id: int
    county_code: str
    region_layer: str
    region_codes: list[str]
    indicators: list[str]
    area_m2: DecimalText
    method: str
    status: RightStatus
    valuation_run_id: int
    valuation_date: DateText
    value_fen: int
    value_cny: Cny
    valuations: list[ValuationOut]
    created_at: InstantText


class PolicyOut(Answer):
    """A bank's loan-to-value limit for new pledges and its alert level."""

    organisation_id: int
    max_ltv: DecimalText
    alert_ltv: DecimalText
    updated_at: InstantText


class PledgeOut(Answer):
    """A pledge of a right to a bank, with the right's current value and the loan-to-value."""

    id: int
    right_id: int
    right_serial: str
    bank_organisation_id: int
    pledgor_organisation_id: int
    loan_fen: int
    loan_cny: Cny
    value_fen: int
    value_cny: Cny
    ltv: DecimalText | None
    status: PledgeStatus
    comment: str
    created_at: InstantText
    decided_at: InstantText | None
    ended_at: InstantText | None


def _statement(data: dict[str, Any]) -> StatementOut:
    data = with_cny(data, "amount")
    data["obligations"] = [with_cny(o, "amount") for o in data["obligations"]]
    return StatementOut.model_validate(data)


def _reading(reading: Reading) -> ReadingOut:
    return ReadingOut(
        id=reading.id,
        section_code=reading.section_code,
        indicator=reading.indicator,
        sampled_on=reading.sampled_on.isoformat(),
        value=str(reading.value),
        unit=reading.unit,
        method=reading.method,
        recorded_by_organisation_id=reading.recorded_by_organisation_id,
        recorded_at=reading.recorded_at.isoformat(),
    )


def _obligation(o: Obligation) -> ObligationOut:
    return ObligationOut.model_validate(
        with_cny(
            {
                "id": o.id,
                "statement_id": o.statement_id,
                "payer_region": o.payer_region,
                "payer_organisation_id": o.payer_organisation_id,
                "payee_region": o.payee_region,
                "payee_organisation_id": o.payee_organisation_id,
                "amount_fen": o.amount_fen,
                "currency": o.currency,
                "status": o.status.value,
                "created_at": o.created_at.isoformat(),
                "paid_at": o.paid_at.isoformat() if o.paid_at else None,
                "payment_reference": o.payment_reference,
            },
            "amount",
        )
    )


def _right(data: dict[str, Any]) -> RightOut:
    data = with_cny(data, "value")
    data["valuations"] = [with_cny(v, "value") for v in data["valuations"]]
    return RightOut.model_validate(data)


def _pledge(data: dict[str, Any]) -> PledgeOut:
    return PledgeOut.model_validate(with_cny(data, "loan", "value"))


def _policy(policy: Any) -> PolicyOut:
    return PolicyOut(
        organisation_id=policy.organisation_id,
        max_ltv=str(policy.max_ltv),
        alert_ltv=str(policy.alert_ltv),
        updated_at=policy.updated_at.isoformat(),
    )


# agreements and readings -------------------------------------------------------------------------------------


@router.post("/agreements", status_code=201)
def create_eco_agreement(
    body: Annotated[AgreementTerms, Body(examples=[EXAMPLE_TERMS])],
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> AgreementOut:
    """Create an eco-compensation agreement between GB/T 2260 regions; every problem of its terms is listed."""
    agreement = agreements.create_agreement(session, body, actor=principal, clock=clock)
    return AgreementOut.model_validate(agreements.describe(agreement))


@router.get("/agreements")
def list_eco_agreements(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery, region_code: RegionCodeQuery = None
) -> Page[AgreementOut]:
    """List the agreements (those where ``region_code`` is a party, when given)."""
    rows, following = slice_of(request, agreements.list_agreements(session, region_code=region_code), page)
    items = [AgreementOut.model_validate(agreements.describe(a)) for a in rows]
    return Page[AgreementOut](items=items, limit=page.limit, next=following)


@router.get("/agreements/{agreement_id}")
def read_eco_agreement(agreement_id: IdPath, session: SessionDep, _principal: CurrentUser) -> AgreementOut:
    """Return an agreement with its terms and their hash."""
    return AgreementOut.model_validate(agreements.describe(agreements.get_agreement(session, agreement_id)))


@router.post("/readings", status_code=201)
def record_eco_reading(
    body: agreements.RecordReading, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> ReadingOut:
    """Record a monitored reading (a water-quality index at a boundary section, say); readings are immutable."""
    return _reading(agreements.record_reading(session, body, actor=principal, clock=clock))


@router.get("/readings")
def list_eco_readings(
    session: SessionDep,
    _principal: CurrentUser,
    request: Request,
    page: PageQuery,
    section_code: Annotated[str | None, Query(min_length=1, max_length=60)] = None,
) -> Page[ReadingOut]:
    """List the readings (of one section when given), by section, indicator and date."""
    rows, following = slice_of(request, agreements.list_readings(session, section_code=section_code), page)
    return Page[ReadingOut](items=[_reading(r) for r in rows], limit=page.limit, next=following)


# statements, obligations, reports ------------------------------------------------------------------------------


@router.post("/agreements/{agreement_id}/statements", status_code=201)
def compute_eco_statement(
    agreement_id: IdPath,
    body: statements.ComputeStatement,
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> StatementOut:
    """Compute a year's settlement statement from the stored run lines or readings (issued, hashed)."""
    statement = statements.compute_statement(session, agreement_id, body, actor=principal, clock=clock)
    return _statement(statements.describe(statement, with_record=True))


@router.get("/agreements/{agreement_id}/statements")
def list_eco_statements(
    agreement_id: IdPath, session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[StatementOut]:
    """List an agreement's statements by year."""
    rows, following = slice_of(request, statements.list_statements(session, agreement_id), page)
    return Page[StatementOut](
        items=[_statement(statements.describe(s)) for s in rows], limit=page.limit, next=following
    )


@router.get("/statements/{statement_id}")
def read_eco_statement(statement_id: IdPath, session: SessionDep, _principal: CurrentUser) -> StatementOut:
    """Return a statement with its hashed record (recompute it with ``shanhai eco recompute``)."""
    return _statement(statements.describe(statements.get_statement(session, statement_id), with_record=True))


@router.post("/statements/{statement_id}/confirm")
def confirm_eco_statement(
    statement_id: IdPath,
    body: statements.Respond,
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> StatementOut:
    """Confirm a statement for the caller's party organisation; the last confirmation creates the obligations."""
    statement = statements.respond(session, statement_id, Decision.CONFIRM, body, actor=principal, clock=clock)
    return _statement(statements.describe(statement))


@router.post("/statements/{statement_id}/dispute")
def dispute_eco_statement(
    statement_id: IdPath,
    body: statements.Respond,
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> StatementOut:
    """Dispute a statement with a comment (required); the statement closes and a new one may be computed."""
    statement = statements.respond(session, statement_id, Decision.DISPUTE, body, actor=principal, clock=clock)
    return _statement(statements.describe(statement))


@router.get("/obligations")
def list_eco_obligations(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery, region_code: RegionCodeQuery = None
) -> Page[ObligationOut]:
    """List the payment obligations (of a payer or payee region when given)."""
    rows, following = slice_of(request, statements.list_obligations(session, region_code=region_code), page)
    return Page[ObligationOut](items=[_obligation(o) for o in rows], limit=page.limit, next=following)


@router.post("/obligations/{obligation_id}/paid")
def record_eco_payment(
    obligation_id: IdPath,
    body: statements.SettleObligation,
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> ObligationOut:
    """Record, as the payee, that an obligation was paid (with the payment's reference)."""
    return _obligation(statements.settle_obligation(session, obligation_id, body, actor=principal, clock=clock))


def _about(kind: str, key: str) -> dict[str, str]:
    return {
        "report": f"eco-compensation by {kind}: {key}",
        "amounts": "CNY from integer fen; the CSV is the exact form",
        "recompute": "shanhai eco recompute (every statement's record_sha256)",
    }


@router.get("/agreements/{agreement_id}/report.csv", response_class=Response, responses={200: {"content": {CSV: {}}}})
def export_eco_agreement_csv(agreement_id: IdPath, session: SessionDep, _principal: CurrentUser) -> Response:
    """Return an agreement's statements and obligations as CSV."""
    text = reports.to_csv(reports.agreement_rows(session, agreement_id), reports.AGREEMENT_HEADER)
    return attachment(text, CSV, f"eco-agreement-{agreement_id}.csv")


@router.get("/agreements/{agreement_id}/report.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def export_eco_agreement_xlsx(agreement_id: IdPath, session: SessionDep, _principal: CurrentUser) -> Response:
    """Return an agreement's statements and obligations as an Excel workbook."""
    rows = reports.agreement_rows(session, agreement_id)
    content = reports.to_xlsx(
        rows, title="Statements", about=_about("agreement", str(agreement_id)), header=reports.AGREEMENT_HEADER
    )
    return attachment(content, XLSX, f"eco-agreement-{agreement_id}.xlsx")


@router.get("/regions/{region_code}/report.csv", response_class=Response, responses={200: {"content": {CSV: {}}}})
def export_eco_region_csv(region_code: RegionCodePath, session: SessionDep, _principal: CurrentUser) -> Response:
    """Return what a region pays and receives, per statement of its agreements, with the confirmed total, as CSV."""
    text = reports.to_csv(reports.region_rows(session, region_code), reports.REGION_HEADER)
    return attachment(text, CSV, f"eco-region-{region_code}.csv")


@router.get("/regions/{region_code}/report.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def export_eco_region_xlsx(region_code: RegionCodePath, session: SessionDep, _principal: CurrentUser) -> Response:
    """Return what a region pays and receives, per statement of its agreements, as an Excel workbook."""
    rows = reports.region_rows(session, region_code)
    content = reports.to_xlsx(rows, title="Region", about=_about("region", region_code), header=reports.REGION_HEADER)
    return attachment(content, XLSX, f"eco-region-{region_code}.xlsx")


# rights, policies, pledges ------------------------------------------------------------------------------------


@router.post("/rights", status_code=201)
def register_eco_right(
    body: rights.RegisterRight, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> RightOut:
    """Register an ecological-product right valued by a GEP run (its serial and valuation record)."""
    return _right(rights.describe(rights.register_right(session, body, actor=principal, clock=clock)))


@router.get("/rights")
def list_eco_rights(
    session: SessionDep,
    _principal: CurrentUser,
    request: Request,
    page: PageQuery,
    owner_organisation_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Page[RightOut]:
    """List the rights (of one owner when given)."""
    rows, following = slice_of(request, rights.list_rights(session, owner_organisation_id=owner_organisation_id), page)
    return Page[RightOut](items=[_right(rights.describe(r)) for r in rows], limit=page.limit, next=following)


@router.get("/rights/{right_id}")
def read_eco_right(right_id: IdPath, session: SessionDep, _principal: CurrentUser) -> RightOut:
    """Return a right with every valuation and its record."""
    return _right(rights.describe(rights.get_right(session, right_id)))


@router.post("/rights/{right_id}/revaluations")
def revalue_eco_right(
    right_id: IdPath, body: rights.Revalue, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> RightOut:
    """Re-value a right with a newer run; active pledges past their bank's alert level raise an inbox alert."""
    return _right(rights.describe(rights.revalue_right(session, right_id, body, actor=principal, clock=clock)))


@router.put("/bank-policy")
def set_eco_bank_policy(
    body: pledges.SetPolicy, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> PolicyOut:
    """Set the caller's bank's loan-to-value limit and alert level for pledges of rights."""
    return _policy(pledges.set_policy(session, body, actor=principal, clock=clock))


@router.get("/bank-policies")
def list_eco_bank_policies(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[PolicyOut]:
    """List the banks' policies."""
    rows, following = slice_of(request, pledges.list_policies(session), page)
    return Page[PolicyOut](items=[_policy(p) for p in rows], limit=page.limit, next=following)


@router.post("/rights/{right_id}/pledges", status_code=201)
def request_eco_pledge(
    right_id: IdPath, body: pledges.RequestPledge, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> PledgeOut:
    """Ask a bank, as the right's owner, to take it as collateral for a loan (the bank accepts or declines)."""
    pledge = pledges.request_pledge(session, right_id, body, actor=principal, clock=clock)
    return _pledge(pledges.describe(pledge))


@router.get("/pledges")
def list_eco_pledges(session: SessionDep, principal: CurrentUser, request: Request, page: PageQuery) -> Page[PledgeOut]:
    """List the pledges: a bank's or an owner's own; every pledge for ecology bureaus, auditors and the registry."""
    organisation = None if principal.role in PLEDGE_OVERSIGHT else principal.organisation_id
    rows, following = slice_of(request, pledges.list_pledges(session, organisation_id=organisation), page)
    return Page[PledgeOut](items=[_pledge(pledges.describe(p)) for p in rows], limit=page.limit, next=following)


@router.post("/pledges/{pledge_id}/accept")
def accept_eco_pledge(
    pledge_id: IdPath, body: pledges.BankDecision, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> PledgeOut:
    """Accept a requested pledge, as its bank (refused above the bank's loan-to-value limit)."""
    return _pledge(pledges.describe(pledges.accept_pledge(session, pledge_id, body, actor=principal, clock=clock)))


@router.post("/pledges/{pledge_id}/decline")
def decline_eco_pledge(
    pledge_id: IdPath, body: pledges.BankDecision, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> PledgeOut:
    """Decline a requested pledge, as its bank."""
    return _pledge(pledges.describe(pledges.decline_pledge(session, pledge_id, body, actor=principal, clock=clock)))


@router.post("/pledges/{pledge_id}/release")
def release_eco_pledge(
    pledge_id: IdPath, body: pledges.BankDecision, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> PledgeOut:
    """Release an active pledge, as its bank (the loan is repaid)."""
    return _pledge(pledges.describe(pledges.release_pledge(session, pledge_id, body, actor=principal, clock=clock)))


@router.post("/pledges/{pledge_id}/enforce")
def enforce_eco_pledge(
    pledge_id: IdPath, body: pledges.BankDecision, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> PledgeOut:
    """Enforce an active pledge, as its bank (the loan defaulted): the right passes to the bank."""
    return _pledge(pledges.describe(pledges.enforce_pledge(session, pledge_id, body, actor=principal, clock=clock)))
