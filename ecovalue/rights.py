"""Service: ecological-product rights — registered and valued by a GEP run, re-valued by a newer run.

A right's value is Σ of the net values of its run lines (its regions × indicators), floored to the fen: a
collateral value is never rounded up. Each valuation is a record (``eco-right-valuation``) naming the run, its
valuation hash and the lines, stored with its RFC 8785 hash. Re-valuing a right checks every active pledge on it
against its bank's ``alert_ltv`` (:mod:`ecovalue.pledges`).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.auth import Organisation, OrgKind, Principal
from core.canonical import JCS_SCHEME, jcs_json, sha256_hex
from core.clock import Clock
from core.errors import InvalidInput, NotFound
from core.regions import divisions
from ecovalue.formula import FEN, MAX_FEN, Measure
from ecovalue.models import Right, RightStatus, RightValuation
from ecovalue.pledges import check_alerts
from ecovalue.serials import PREFIX, RightSerial, format_serial
from ecovalue.sources import finished_run, run_lines
from gep.models import GepRun, Region, RegionLayer

#: Who may own (and so pledge) a right: the proponents' kinds and enterprises.
HOLDER_KINDS = frozenset({OrgKind.FOREST_OWNER, OrgKind.FORESTRY_BUREAU, OrgKind.ENTERPRISE})
VALUATION_KIND = "eco-right-valuation"

Code = Annotated[str, Field(min_length=1, max_length=60)]


class RegisterRight(BaseModel):
    """Command: register a right for regions of a run, valued by their indicators in that run."""

    model_config = ConfigDict(extra="forbid")

    owner_organisation_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    county_code: Annotated[str, Field(pattern=r"^\d{6}$", description="GB/T 2260 county of the right.")]
    run_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    region_codes: Annotated[list[Code], Field(min_length=1, max_length=200)]
    indicators: Annotated[list[Code], Field(min_length=1, max_length=50, description="Indicator codes, or 'gep'.")]
    valuation_date: date
    method: Annotated[str, Field(min_length=1, max_length=300)] = "GEP accounting run, market-value method (SEEA-EA)"


class Revalue(BaseModel):
    """Command: re-value a right with a newer run on the same region layer."""

    model_config = ConfigDict(extra="forbid")

    run_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    valuation_date: date


def valuation_record(run: GepRun, right: Right, valuation_date: date) -> dict[str, Any]:
    """Return the valuation record of a right by ``run``: the run's identity, the lines, the total and the fen."""
    lines = run_lines(run, right.region_codes, right.indicators, Measure.VALUE, pointer="/run_id")
    total = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    value = max(total, Decimal(0)).quantize(FEN, ROUND_FLOOR)
    if value * 100 > MAX_FEN:
        raise InvalidInput(f"a value of {value} CNY is beyond {MAX_FEN} fen", [{"pointer": "/run_id"}])
    return {
        "kind": VALUATION_KIND,
        "format": 1,
        "hash_scheme": JCS_SCHEME,
        "right": {"serial": right.serial, "county_code": right.county_code, "method": right.method},
        "run": {
            "id": run.id,
            "year": run.year,
            "name": run.name,
            "region_layer": run.inputs.get("region_layer"),
            "valuation_sha256": str(run.valuation.get("sha256", "")),
        },
        "valuation_date": valuation_date.isoformat(),
        "lines": lines,
        "total_yuan": str(total),
        "rounding": "ROUND_FLOOR",
        "value_fen": int(value * 100),
    }


def _problems(session: Session, cmd: RegisterRight) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    owner = session.get(Organisation, cmd.owner_organisation_id)
    if owner is None or owner.kind not in HOLDER_KINDS:
        problems.append({"pointer": "/owner_organisation_id", "reason": "not-a-holder"})
    county = divisions().get(cmd.county_code)
    if county is None or county.level != "county":
        problems.append({"pointer": "/county_code", "reason": "unknown-county"})
    if len(set(cmd.region_codes)) != len(cmd.region_codes) or len(set(cmd.indicators)) != len(cmd.indicators):
        problems.append({"pointer": "/region_codes", "reason": "repeated-code"})
    return problems


def _area_m2(session: Session, layer_name: str, region_codes: list[str]) -> Decimal:
    rows = session.scalars(
        select(Region.area_m2).join(RegionLayer).where(RegionLayer.name == layer_name, Region.code.in_(region_codes))
    )
    return sum((Decimal(repr(a)) for a in rows), Decimal(0)).quantize(FEN)


def _next_serial(session: Session, county_code: str, year: int) -> str:
    prefix = f"{PREFIX}-{county_code}-{year:04d}-"
    last = session.scalar(select(func.max(Right.serial)).where(Right.serial.like(f"{prefix}%")))
    sequence = int(last.rsplit("-", 1)[1]) + 1 if last else 1  # the fixed-width tail sorts as a number
    return format_serial(RightSerial(county_code, year, sequence))


def register_right(session: Session, cmd: RegisterRight, *, actor: Principal, clock: Clock) -> Right:
    """Register a right valued by a run, with its serial, valuation record and audit entry.

    Raises:
        NotFound: No such run.
        InvalidInput: Every problem: owner, county, repeated codes, regions or indicators the run lacks.
    """
    problems = _problems(session, cmd)
    run = finished_run(session, cmd.run_id, pointer="/run_id")
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) with the right", problems)
    layer = str(run.inputs.get("region_layer"))
    right = Right(
        serial=_next_serial(session, cmd.county_code, run.year),
        owner_organisation_id=cmd.owner_organisation_id,
        county_code=cmd.county_code,
        region_layer=layer,
        region_codes=list(cmd.region_codes),
        indicators=list(cmd.indicators),
        area_m2=_area_m2(session, layer, cmd.region_codes),
        method=cmd.method,
        status=RightStatus.REGISTERED,
        valuation_run_id=run.id,
        valuation_date=cmd.valuation_date,
        value_fen=0,
        registered_by_organisation_id=actor.organisation_id,
        registered_by=actor.actor,
        created_at=clock.now(),
    )
    record = valuation_record(run, right, cmd.valuation_date)
    right.value_fen = record["value_fen"]
    session.add(right)
    session.flush()
    valuation = _store_valuation(session, right, run, record, actor=actor, clock=clock)
    audit.append(
        session,
        actor=actor.actor,
        action="eco_right.registered",
        subject=f"eco_right:{right.id}",
        payload={
            "serial": right.serial,
            "owner_organisation_id": right.owner_organisation_id,
            "run_id": run.id,
            "value_fen": right.value_fen,
            "valuation_sha256": valuation.record_sha256,
        },
        clock=clock,
    )
    session.commit()
    return right


def _store_valuation(
    session: Session, right: Right, run: GepRun, record: dict[str, Any], *, actor: Principal, clock: Clock
) -> RightValuation:
    text = jcs_json(record)
    valuation = RightValuation(
        right_id=right.id,
        run_id=run.id,
        valuation_date=date.fromisoformat(record["valuation_date"]),
        value_fen=record["value_fen"],
        record=text.decode("utf-8"),
        record_sha256=sha256_hex(text),
        created_by=actor.actor,
        created_at=clock.now(),
    )
    session.add(valuation)
    session.flush()
    return valuation


def get_right(session: Session, right_id: int) -> Right:
    """Return a right or raise :class:`NotFound`."""
    right = session.get(Right, right_id)
    if right is None:
        raise NotFound(f"ecological-product right {right_id} does not exist")
    return right


def list_rights(session: Session, *, owner_organisation_id: int | None = None) -> list[Right]:
    """Return the rights (of one owner when given), by id."""
    query = select(Right).order_by(Right.id)
    if owner_organisation_id is not None:
        query = query.where(Right.owner_organisation_id == owner_organisation_id)
    return list(session.scalars(query))


def revalue_right(session: Session, right_id: int, cmd: Revalue, *, actor: Principal, clock: Clock) -> Right:
    """Re-value a right with a newer run; alert the banks of its active pledges below their threshold.

    Raises:
        NotFound: No such right or run.
        InvalidInput: The run is not newer (by year, then id), or on another region layer, or lacks a line.
    """
    right = get_right(session, right_id)
    session.refresh(right, with_for_update=True)
    run = finished_run(session, cmd.run_id, pointer="/run_id")
    current = session.get(GepRun, right.valuation_run_id)
    assert current is not None
    if (run.year, run.id) <= (current.year, current.id):
        raise InvalidInput(
            f"GEP run {run.id} ({run.year}) is not newer than run {current.id} ({current.year}) that valued the right",
            [{"pointer": "/run_id", "reason": "not-newer"}],
        )
    if run.inputs.get("region_layer") != right.region_layer:
        raise InvalidInput(
            f"GEP run {run.id} is not on region layer {right.region_layer}",
            [{"pointer": "/run_id", "reason": "other-region-layer"}],
        )
    record = valuation_record(run, right, cmd.valuation_date)
    before = right.value_fen
    valuation = _store_valuation(session, right, run, record, actor=actor, clock=clock)
    right.value_fen, right.valuation_run_id, right.valuation_date = record["value_fen"], run.id, cmd.valuation_date
    audit.append(
        session,
        actor=actor.actor,
        action="eco_right.revalued",
        subject=f"eco_right:{right.id}",
        payload={
            "run_id": run.id,
            "value_before_fen": before,
            "value_fen": right.value_fen,
            "valuation_sha256": valuation.record_sha256,
        },
        clock=clock,
    )
    check_alerts(session, right, actor=actor, clock=clock)
    session.commit()
    return right


def describe(right: Right) -> dict[str, Any]:
    """Return a right as JSON-ready data, with its valuations (newest last)."""
    return {
        "id": right.id,
        "serial": right.serial,
        "owner_organisation_id": right.owner_organisation_id,
        "county_code": right.county_code,
        "region_layer": right.region_layer,
        "region_codes": list(right.region_codes),
        "indicators": list(right.indicators),
        "area_m2": str(right.area_m2),
        "method": right.method,
        "status": right.status.value,
        "valuation_run_id": right.valuation_run_id,
        "valuation_date": right.valuation_date.isoformat(),
        "value_fen": right.value_fen,
        "valuations": [
            {
                "run_id": v.run_id,
                "valuation_date": v.valuation_date.isoformat(),
                "value_fen": v.value_fen,
                "record_sha256": v.record_sha256,
                "record": json.loads(v.record),
            }
            for v in right.valuations
        ],
        "created_at": right.created_at.isoformat(),
    }
