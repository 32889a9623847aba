"""Service: eco-compensation agreements between GB/T 2260 regions, and the monitored readings they settle on.

An ecology bureau creates an agreement from its terms (:class:`ecovalue.formula.AgreementTerms`); every problem
of the terms against the state (unknown regions, party organisations that are not ecology bureaus, a benchmark run
on another layer or of another year, a region or indicator the benchmark run lacks) is listed at once and nothing
is written. Readings are immutable once recorded (a correction is a new reading on another date).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.auth import Organisation, OrgKind, Principal
from core.canonical import JCS_SCHEME, jcs_json, sha256_hex
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound
from core.regions import divisions
from ecovalue.formula import AgreementTerms, GepBasis
from ecovalue.models import Agreement, AgreementParty, Reading
from ecovalue.sources import finished_run, run_lines


def terms_text(terms: AgreementTerms) -> bytes:
    """Return the RFC 8785 bytes of a set of terms (what ``terms_sha256`` hashes)."""
    return jcs_json(terms.model_dump(mode="json"))


def _party_problems(session: Session, terms: AgreementTerms) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    known = divisions()
    for index, party in enumerate(terms.parties):
        if party.region_code not in known:
            problems.append({"pointer": f"/parties/{index}/region_code", "reason": "unknown-division"})
        org = session.get(Organisation, party.organisation_id)
        if org is None or org.kind is not OrgKind.ECOLOGY_BUREAU:
            problems.append({"pointer": f"/parties/{index}/organisation_id", "reason": "not-an-ecology-bureau"})
    return problems


def _basis_problems(session: Session, terms: AgreementTerms) -> list[dict[str, Any]]:
    basis = terms.basis
    if not isinstance(basis, GepBasis):
        return []
    pointer = "/basis/benchmark_run_id"
    try:
        run = finished_run(session, basis.benchmark_run_id, pointer=pointer)
    except NotFound:
        return [{"pointer": pointer, "reason": "no-such-run"}]
    except InvalidInput as error:
        return list(error.problems)
    problems: list[dict[str, Any]] = []
    if run.year != terms.benchmark_year:
        problems.append({"pointer": pointer, "reason": "run-of-another-year", "run_year": run.year})
    if run.inputs.get("region_layer") != basis.region_layer:
        problems.append({"pointer": "/basis/region_layer", "reason": "other-region-layer"})
        return problems
    try:
        run_lines(run, basis.region_codes, [basis.indicator], basis.measure, pointer="/basis")
    except InvalidInput as error:
        problems.extend(error.problems)
    return problems


def create_agreement(session: Session, terms: AgreementTerms, *, actor: Principal, clock: Clock) -> Agreement:
    """Record an agreement and its parties with its audit entry.

    Raises:
        InvalidInput: Every problem of the terms against the state.
        Conflict: An agreement with this code exists.
    """
    problems = _party_problems(session, terms) + _basis_problems(session, terms)
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) with the agreement's terms", problems)
    if session.scalars(select(Agreement.id).where(Agreement.code == terms.code)).first() is not None:
        raise Conflict(f"an agreement with code {terms.code!r} exists")
    text = terms_text(terms)
    agreement = Agreement(
        code=terms.code,
        title=terms.title,
        basis_kind=terms.basis.kind,
        benchmark_year=terms.benchmark_year,
        period_start_year=terms.period_start_year,
        period_end_year=terms.period_end_year,
        terms=text.decode("utf-8"),
        terms_sha256=sha256_hex(text),
        created_by_organisation_id=actor.organisation_id,
        created_by=actor.actor,
        created_at=clock.now(),
    )
    session.add(agreement)
    session.flush()
    session.add_all(
        AgreementParty(
            agreement_id=agreement.id,
            region_code=p.region_code,
            side=p.side.value,
            share=p.share,
            organisation_id=p.organisation_id,
        )
        for p in terms.parties
    )
    audit.append(
        session,
        actor=actor.actor,
        action="eco_agreement.created",
        subject=f"eco_agreement:{agreement.id}",
        payload={"code": terms.code, "terms_sha256": agreement.terms_sha256, "hash_scheme": JCS_SCHEME},
        clock=clock,
    )
    session.commit()
    return agreement


def get_agreement(session: Session, agreement_id: int) -> Agreement:
    """Return an agreement or raise :class:`NotFound`."""
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFound(f"eco-compensation agreement {agreement_id} does not exist")
    return agreement


def terms_of(agreement: Agreement) -> AgreementTerms:
    """Return an agreement's stored terms, validated."""
    return AgreementTerms.model_validate_json(agreement.terms)


def list_agreements(session: Session, *, region_code: str | None = None) -> list[Agreement]:
    """Return the agreements (those with ``region_code`` as a party when given), by id."""
    query = select(Agreement).order_by(Agreement.id)
    if region_code is not None:
        query = query.where(
            Agreement.id.in_(select(AgreementParty.agreement_id).where(AgreementParty.region_code == region_code))
        )
    return list(session.scalars(query))


def describe(agreement: Agreement) -> dict[str, Any]:
    """Return an agreement as JSON-ready data: identity, terms and their hash."""
    return {
        "id": agreement.id,
        "code": agreement.code,
        "title": agreement.title,
        "basis_kind": agreement.basis_kind,
        "benchmark_year": agreement.benchmark_year,
        "period_start_year": agreement.period_start_year,
        "period_end_year": agreement.period_end_year,
        "terms": terms_of(agreement).model_dump(mode="json"),
        "terms_sha256": agreement.terms_sha256,
        "created_by_organisation_id": agreement.created_by_organisation_id,
        "created_at": agreement.created_at.isoformat(),
    }


class RecordReading(BaseModel):
    """Command: one reading of an indicator at a monitoring section on a date."""

    model_config = ConfigDict(extra="forbid")

    section_code: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    indicator: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
    sampled_on: date
    # 15 significant digits: what both databases store exactly (core.sqltypes.ExactDecimal)
    value: Annotated[Decimal, Field(allow_inf_nan=False, max_digits=15, decimal_places=6)]
    unit: Annotated[str, Field(min_length=1, max_length=40)]
    method: Annotated[str, Field(min_length=1, max_length=300, description="Sampling and analysis method, lab.")]


def record_reading(session: Session, cmd: RecordReading, *, actor: Principal, clock: Clock) -> Reading:
    """Record a reading with its audit entry.

    Raises:
        Conflict: The section already has a reading of the indicator on that date.
    """
    duplicate = session.scalars(
        select(Reading.id).where(
            Reading.section_code == cmd.section_code,
            Reading.indicator == cmd.indicator,
            Reading.sampled_on == cmd.sampled_on,
        )
    ).first()
    if duplicate is not None:
        raise Conflict(
            f"section {cmd.section_code} has a {cmd.indicator} reading on {cmd.sampled_on} (reading {duplicate})"
        )
    reading = Reading(
        **cmd.model_dump(),
        recorded_by_organisation_id=actor.organisation_id,
        recorded_by=actor.actor,
        recorded_at=clock.now(),
    )
    session.add(reading)
    session.flush()
    audit.append(
        session,
        actor=actor.actor,
        action="eco_reading.recorded",
        subject=f"eco_reading:{reading.id}",
        payload={**cmd.model_dump(mode="json"), "value": str(cmd.value)},
        clock=clock,
    )
    session.commit()
    return reading


def list_readings(session: Session, *, section_code: str | None = None) -> list[Reading]:
    """Return the readings (of one section when given), by section, indicator and date."""
    query = select(Reading).order_by(Reading.section_code, Reading.indicator, Reading.sampled_on, Reading.id)
    if section_code is not None:
        query = query.where(Reading.section_code == section_code)
    return list(session.scalars(query))
