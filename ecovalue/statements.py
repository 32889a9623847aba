"""Service: settlement statements of eco-compensation agreements, their confirmation, and their recomputation.

Invariant: a statement row's ``record`` is the RFC 8785 text of its record and ``record_sha256`` its SHA-256.
:func:`build_record` is a function of the agreement's terms, the year and the sources alone, so
:func:`recompute` rebuilds the record from the sources it holds (offline) and :func:`rebuild` rebuilds it from
the database (the same run lines and readings, read again); both reproduce the hash byte for byte or say what
differs. When every party organisation has confirmed, the statement's obligations become payment obligations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.auth import Principal
from core.canonical import JCS_SCHEME, jcs_json, sha256_hex
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ecovalue.agreements import get_agreement, terms_of
from ecovalue.formula import MAX_FEN, AgreementTerms, GepBasis, MonitoredBasis, settle
from ecovalue.models import (
    Agreement,
    Decision,
    Obligation,
    ObligationStatus,
    Statement,
    StatementResponse,
    StatementStatus,
)
from ecovalue.sources import gep_source, reading_source, standard_source, total_of, unit_of

RECORD_KIND = "eco-compensation-statement"
RECORD_FORMAT = 1
LIVE = (StatementStatus.ISSUED, StatementStatus.CONFIRMED)


class ComputeStatement(BaseModel):
    """Command: compute the statement of a year of the agreement's period."""

    model_config = ConfigDict(extra="forbid")

    year: Annotated[int, Field(ge=1990, le=2100)]
    run_id: Annotated[
        int | None,
        Field(ge=1, le=2**31 - 1, description="GEP basis: the year's run (default: its newest finished run)."),
    ] = None


def build_record(agreement_ref: Mapping[str, Any], year: int, sources: Mapping[str, Any]) -> dict[str, Any]:
    """Return a statement record from the agreement (id, code, terms, terms hash), the year and the two sources."""
    terms = AgreementTerms.model_validate(agreement_ref["terms"])
    value, value_formula, value_where = total_of(dict(sources["value"]))
    benchmark, benchmark_formula, benchmark_where = total_of(dict(sources["benchmark"]))
    settlement = settle(terms, value=value, benchmark=benchmark, unit=unit_of(dict(sources["value"])))
    unit = settlement.terms[0].unit
    first = [
        {"name": name, "source": where, "formula": formula, "inputs": {}, "result": str(total), "unit": unit}
        for name, total, formula, where in (
            ("value", value, value_formula, value_where),
            ("benchmark", benchmark, benchmark_formula, benchmark_where),
        )
    ]
    organisations = {p.region_code: p.organisation_id for p in terms.parties}
    return {
        "kind": RECORD_KIND,
        "format": RECORD_FORMAT,
        "hash_scheme": JCS_SCHEME,
        "agreement": {
            "id": agreement_ref["id"],
            "code": terms.code,
            "terms": terms.model_dump(mode="json"),
            "terms_sha256": agreement_ref["terms_sha256"],
        },
        "year": year,
        "sources": {"value": dict(sources["value"]), "benchmark": dict(sources["benchmark"])},
        "terms": first + [term.as_dict() for term in settlement.terms],
        "amount_fen": settlement.amount_fen,
        "currency": "CNY",
        "direction": settlement.direction,
        "benchmark_met": settlement.met,
        "obligations": [
            {
                "payer_region": o.payer_region,
                "payer_organisation_id": organisations[o.payer_region],
                "payee_region": o.payee_region,
                "payee_organisation_id": organisations[o.payee_region],
                "amount_fen": o.amount_fen,
            }
            for o in settlement.obligations
        ],
    }


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 bytes of a record (what ``record_sha256`` hashes)."""
    return jcs_json(dict(record))


def _reference(agreement: Agreement) -> dict[str, Any]:
    return {"id": agreement.id, "terms": json.loads(agreement.terms), "terms_sha256": agreement.terms_sha256}


def gather_sources(session: Session, terms: AgreementTerms, year: int, run_id: int | None) -> dict[str, Any]:
    """Return the value and benchmark sources of a year, read from the database."""
    basis = terms.basis
    if isinstance(basis, GepBasis):
        chosen = run_id if run_id is not None else _newest_run(session, basis, year)
        value = gep_source(session, basis, chosen, pointer="/run_id")
        if value["run_year"] != year:
            raise InvalidInput(
                f"GEP run {chosen} is of {value['run_year']}, not {year}",
                [{"pointer": "/run_id", "reason": "run-of-another-year"}],
            )
        benchmark = gep_source(session, basis, basis.benchmark_run_id, pointer="/basis/benchmark_run_id")
        return {"value": value, "benchmark": benchmark}
    assert isinstance(basis, MonitoredBasis)
    value = reading_source(session, basis, year)
    if basis.benchmark_value is not None:
        return {"value": value, "benchmark": standard_source(basis.benchmark_value)}
    return {"value": value, "benchmark": reading_source(session, basis, terms.benchmark_year)}


def _newest_run(session: Session, basis: GepBasis, year: int) -> int:
    from gep.models import GepRun, RunStatus

    runs = session.scalars(
        select(GepRun).where(GepRun.year == year, GepRun.status == RunStatus.SUCCEEDED).order_by(GepRun.id.desc())
    )
    for run in runs:
        if run.inputs.get("region_layer") == basis.region_layer:
            return run.id
    raise InvalidInput(
        f"no finished GEP run of {year} on region layer {basis.region_layer}",
        [{"pointer": "/year", "reason": "no-run-for-year", "year": year}],
    )


def _party_organisations(terms: AgreementTerms) -> set[int]:
    return {p.organisation_id for p in terms.parties}


def compute_statement(
    session: Session, agreement_id: int, cmd: ComputeStatement, *, actor: Principal, clock: Clock
) -> Statement:
    """Compute and store the statement of a year (issued), with its audit entry.

    Raises:
        NotFound: No such agreement or run.
        PermissionDenied: The caller's organisation is neither a party nor the agreement's author.
        InvalidInput: A year outside the period; missing runs or readings.
        Conflict: The year has a live (issued or confirmed) statement.
    """
    agreement = get_agreement(session, agreement_id)
    session.refresh(agreement, with_for_update=True)
    terms = terms_of(agreement)
    if actor.organisation_id not in _party_organisations(terms) | {agreement.created_by_organisation_id}:
        raise PermissionDenied("only a party's organisation or the agreement's author computes its statements")
    if not agreement.period_start_year <= cmd.year <= agreement.period_end_year:
        raise InvalidInput(
            f"{cmd.year} is outside the period {agreement.period_start_year}–{agreement.period_end_year}",
            [{"pointer": "/year", "reason": "outside-period"}],
        )
    live = session.scalars(
        select(Statement.id).where(
            Statement.agreement_id == agreement.id, Statement.year == cmd.year, Statement.status.in_(LIVE)
        )
    ).first()
    if live is not None:
        raise Conflict(f"{agreement.code} {cmd.year} has statement {live}; a new one needs it disputed first")
    record = build_record(_reference(agreement), cmd.year, gather_sources(session, terms, cmd.year, cmd.run_id))
    if record["amount_fen"] > MAX_FEN:
        raise InvalidInput(
            f"the amount {record['amount_fen']} fen is beyond {MAX_FEN} fen: check the rate and the cap",
            [{"pointer": "/year", "reason": "amount-out-of-range"}],
        )
    text = record_bytes(record)
    statement = Statement(
        agreement_id=agreement.id,
        year=cmd.year,
        status=StatementStatus.ISSUED,
        amount_fen=record["amount_fen"],
        direction=record["direction"],
        record=text.decode("utf-8"),
        record_sha256=sha256_hex(text),
        created_by=actor.actor,
        created_at=clock.now(),
    )
    session.add(statement)
    session.flush()
    audit.append(
        session,
        actor=actor.actor,
        action="eco_statement.issued",
        subject=f"eco_statement:{statement.id}",
        payload={
            "agreement": agreement.code,
            "year": cmd.year,
            "amount_fen": statement.amount_fen,
            "direction": statement.direction,
            "record_sha256": statement.record_sha256,
            "hash_scheme": JCS_SCHEME,
        },
        clock=clock,
    )
    session.commit()
    return statement


def get_statement(session: Session, statement_id: int) -> Statement:
    """Return a statement or raise :class:`NotFound`."""
    statement = session.get(Statement, statement_id)
    if statement is None:
        raise NotFound(f"statement {statement_id} does not exist")
    return statement


def list_statements(session: Session, agreement_id: int) -> list[Statement]:
    """Return an agreement's statements (which must exist) by year, then id."""
    get_agreement(session, agreement_id)
    return list(
        session.scalars(
            select(Statement).where(Statement.agreement_id == agreement_id).order_by(Statement.year, Statement.id)
        )
    )


class Respond(BaseModel):
    """Command: a party's confirmation or dispute of a statement; a dispute says why."""

    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, Field(max_length=2000)] = ""


def respond(
    session: Session, statement_id: int, decision: Decision, cmd: Respond, *, actor: Principal, clock: Clock
) -> Statement:
    """Record a party organisation's answer; close the statement when all confirmed or one disputed.

    Raises:
        NotFound: No such statement.
        PermissionDenied: The caller's organisation is not a party.
        InvalidInput: A dispute without a comment.
        Conflict: The statement is closed, or the organisation has answered.
    """
    statement = get_statement(session, statement_id)
    session.refresh(statement, with_for_update=True)
    terms = AgreementTerms.model_validate(json.loads(statement.record)["agreement"]["terms"])
    parties = _party_organisations(terms)
    if actor.organisation_id not in parties:
        raise PermissionDenied("only a party's organisation confirms or disputes a statement")
    if decision is Decision.DISPUTE and not cmd.comment.strip():
        raise InvalidInput("a dispute says why", [{"pointer": "/comment", "reason": "required-for-dispute"}])
    if statement.status is not StatementStatus.ISSUED:
        raise Conflict(f"statement {statement.id} is {statement.status.value}")
    if any(r.organisation_id == actor.organisation_id for r in statement.responses):
        raise Conflict(f"organisation {actor.organisation_id} has answered statement {statement.id}")
    now = clock.now()
    session.add(
        StatementResponse(
            statement_id=statement.id,
            organisation_id=actor.organisation_id,
            decision=decision,
            comment=cmd.comment,
            responded_by=actor.actor,
            responded_at=now,
        )
    )
    session.flush()
    session.refresh(statement)
    events = [
        audit.Event(
            actor.actor,
            f"eco_statement.{'confirmed_by' if decision is Decision.CONFIRM else 'disputed'}",
            f"eco_statement:{statement.id}",
            {"organisation_id": actor.organisation_id, "comment": cmd.comment},
        )
    ]
    confirmed = {r.organisation_id for r in statement.responses if r.decision is Decision.CONFIRM}
    if decision is Decision.DISPUTE:
        statement.status, statement.closed_at = StatementStatus.DISPUTED, now
    elif confirmed >= parties:
        statement.status, statement.closed_at = StatementStatus.CONFIRMED, now
        events += _obligations(session, statement, actor=actor, clock=clock)
    audit.append_many(session, events, clock=clock)
    session.commit()
    return statement


def _obligations(session: Session, statement: Statement, *, actor: Principal, clock: Clock) -> list[audit.Event]:
    record = json.loads(statement.record)
    events = [
        audit.Event(
            actor.actor,
            "eco_statement.confirmed",
            f"eco_statement:{statement.id}",
            {"amount_fen": statement.amount_fen, "record_sha256": statement.record_sha256},
        )
    ]
    for item in record["obligations"]:
        obligation = Obligation(
            statement_id=statement.id,
            payer_region=item["payer_region"],
            payer_organisation_id=item["payer_organisation_id"],
            payee_region=item["payee_region"],
            payee_organisation_id=item["payee_organisation_id"],
            amount_fen=item["amount_fen"],
            currency="CNY",
            status=ObligationStatus.DUE,
            created_at=clock.now(),
        )
        session.add(obligation)
        session.flush()
        events.append(
            audit.Event(
                actor.actor,
                "eco_obligation.created",
                f"eco_obligation:{obligation.id}",
                {**item, "statement_id": statement.id, "currency": "CNY"},
            )
        )
    return events


class SettleObligation(BaseModel):
    """Command: the payee records that the obligation was paid, with the payment's reference."""

    model_config = ConfigDict(extra="forbid")

    payment_reference: Annotated[str, Field(min_length=1, max_length=200)]


def settle_obligation(
    session: Session, obligation_id: int, cmd: SettleObligation, *, actor: Principal, clock: Clock
) -> Obligation:
    """Mark an obligation paid, by its payee's organisation, with its audit entry.

    Raises:
        NotFound: No such obligation.
        PermissionDenied: The caller's organisation is not the payee.
        Conflict: The obligation is paid.
    """
    obligation = session.get(Obligation, obligation_id)
    if obligation is None:
        raise NotFound(f"payment obligation {obligation_id} does not exist")
    session.refresh(obligation, with_for_update=True)
    if obligation.payee_organisation_id != actor.organisation_id:
        raise PermissionDenied("only the payee's organisation records that an obligation was paid")
    if obligation.status is not ObligationStatus.DUE:
        raise Conflict(f"payment obligation {obligation.id} is {obligation.status.value}")
    obligation.status, obligation.paid_at = ObligationStatus.PAID, clock.now()
    obligation.payment_reference = cmd.payment_reference
    audit.append(
        session,
        actor=actor.actor,
        action="eco_obligation.paid",
        subject=f"eco_obligation:{obligation.id}",
        payload={"amount_fen": obligation.amount_fen, "payment_reference": cmd.payment_reference},
        clock=clock,
    )
    session.commit()
    return obligation


def list_obligations(session: Session, *, region_code: str | None = None) -> list[Obligation]:
    """Return the payment obligations (of a payer or payee region when given), by id."""
    query = select(Obligation).order_by(Obligation.id)
    if region_code is not None:
        query = query.where((Obligation.payer_region == region_code) | (Obligation.payee_region == region_code))
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class Recomputation:
    """What recomputing a statement found."""

    statement_id: int | None
    record_sha256: str
    recomputed_sha256: str
    problem: str = ""

    @property
    def matches(self) -> bool:
        """Return whether the recomputed record is byte-identical to the stored one."""
        return not self.problem and self.recomputed_sha256 == self.record_sha256


def recompute(record: Mapping[str, Any] | str | bytes) -> str:
    """Rebuild a statement record from its own agreement, year and sources; return the new record's SHA-256.

    Raises:
        InvalidInput: Not a statement record.
    """
    loaded = json.loads(record) if isinstance(record, str | bytes) else record
    if not isinstance(loaded, Mapping) or loaded.get("kind") != RECORD_KIND:
        raise InvalidInput(f"not an {RECORD_KIND} record")
    try:
        rebuilt = build_record(loaded["agreement"], int(loaded["year"]), loaded["sources"])
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInput(f"the record cannot be rebuilt: {error}") from None
    return sha256_hex(record_bytes(rebuilt))


def rebuild(session: Session, statement: Statement) -> Recomputation:
    """Rebuild a stored statement from the database (its agreement's terms, the same run lines and readings)."""
    stored = json.loads(statement.record)
    problem = ""
    if sha256_hex(statement.record.encode("utf-8")) != statement.record_sha256:
        problem = "the stored record text does not hash to record_sha256"
    try:
        terms = terms_of(statement.agreement)
        sources = {key: _source_again(session, terms, source) for key, source in stored["sources"].items()}
        rebuilt = build_record(_reference(statement.agreement), statement.year, sources)
        digest = sha256_hex(record_bytes(rebuilt))
    except (InvalidInput, NotFound) as error:
        return Recomputation(statement.id, statement.record_sha256, "", f"cannot rebuild: {error.detail}")
    return Recomputation(statement.id, statement.record_sha256, digest, problem)


def _source_again(session: Session, terms: AgreementTerms, source: Mapping[str, Any]) -> dict[str, Any]:
    basis = terms.basis
    if source["kind"] == "gep_run" and isinstance(basis, GepBasis):
        return gep_source(session, basis, int(source["run_id"]), pointer="/run_id")
    if source["kind"] == "readings" and isinstance(basis, MonitoredBasis):
        ids = [int(r["id"]) for r in source["readings"]]
        return reading_source(session, basis, int(source["year"]), ids=ids)
    if source["kind"] == "standard" and isinstance(basis, MonitoredBasis) and basis.benchmark_value is not None:
        return standard_source(basis.benchmark_value)
    raise InvalidInput(f"a {source['kind']} source does not fit the agreement's basis")


def rebuild_all(session: Session) -> list[Recomputation]:
    """Rebuild every stored statement from the database, by id."""
    return [rebuild(session, s) for s in session.scalars(select(Statement).order_by(Statement.id))]


def describe(statement: Statement, *, with_record: bool = False) -> dict[str, Any]:
    """Return a statement as JSON-ready data (the record itself when asked)."""
    record = json.loads(statement.record)
    data: dict[str, Any] = {
        "id": statement.id,
        "agreement_id": statement.agreement_id,
        "agreement_code": record["agreement"]["code"],
        "year": statement.year,
        "status": statement.status.value,
        "amount_fen": statement.amount_fen,
        "direction": statement.direction,
        "benchmark_met": record["benchmark_met"],
        "terms": record["terms"],
        "obligations": record["obligations"],
        "record_sha256": statement.record_sha256,
        "hash_scheme": record["hash_scheme"],
        "responses": [
            {
                "organisation_id": r.organisation_id,
                "decision": r.decision.value,
                "comment": r.comment,
                "responded_at": r.responded_at.isoformat(),
            }
            for r in statement.responses
        ],
        "created_at": statement.created_at.isoformat(),
        "closed_at": statement.closed_at.isoformat() if statement.closed_at else None,
    }
    if with_record:
        data["record"] = record
    return data
