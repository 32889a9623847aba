"""Where a statement's and a right's numbers come from: a GEP run's stored lines, or stored readings.

A *source* is JSON-ready data that names its rows (run id and line index, reading ids) and carries their values
as decimal text, so a record holding it can be recomputed from itself (:func:`total_of`) and checked against the
database again (:func:`gep_source`, :func:`reading_source` with the same ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from ecovalue.formula import WHOLE_GEP, GepBasis, Measure, MonitoredBasis, annual_mean
from ecovalue.models import Reading
from gep.models import GepRun, RunStatus
from gep.tables import ALL_TYPES


def finished_run(session: Session, run_id: int, *, pointer: str) -> GepRun:
    """Return a succeeded run, or refuse it (:class:`NotFound`, or :class:`InvalidInput` naming ``pointer``)."""
    run = session.get(GepRun, run_id)
    if run is None:
        raise NotFound(f"GEP run {run_id} does not exist")
    if run.status is not RunStatus.SUCCEEDED or run.result is None:
        raise InvalidInput(
            f"GEP run {run_id} has no results (status {run.status.value})",
            [{"pointer": pointer, "reason": "run-not-finished"}],
        )
    return run


def _line_amount(line: dict[str, Any], measure: Measure) -> Decimal:
    if measure is Measure.QUANTITY:
        return Decimal(str(line["quantity"]))
    return Decimal(str(line["gross_yuan"])) - Decimal(str(line.get("out_of_region_yuan", "0")))


def run_lines(
    run: GepRun, region_codes: Sequence[str], indicators: Sequence[str], measure: Measure, *, pointer: str
) -> list[dict[str, str]]:
    """Return the run's lines of ``region_codes`` × ``indicators`` (``gep``: every indicator) as source rows.

    Raises:
        InvalidInput: A region or an indicator the run has no line for (every one listed).
    """
    assert run.result is not None
    wanted_all = WHOLE_GEP in indicators
    rows: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for index, line in enumerate(run.result["lines"]):
        if line.get("ecosystem_type", ALL_TYPES) != ALL_TYPES or line["region_code"] not in region_codes:
            continue
        if not wanted_all and line["indicator_code"] not in indicators:
            continue
        seen.add((line["region_code"], line["indicator_code"]))
        rows.append(
            {
                "line": str(index),
                "region_code": str(line["region_code"]),
                "indicator_code": str(line["indicator_code"]),
                "unit": "CNY" if measure is Measure.VALUE else str(line["unit"]),
                "amount": str(_line_amount(line, measure)),
            }
        )
    problems = [
        {"pointer": pointer, "reason": "no-line", "region_code": region, "indicator": indicator}
        for region in region_codes
        for indicator in ([] if wanted_all else indicators)
        if (region, indicator) not in seen
    ]
    problems += [
        {"pointer": pointer, "reason": "no-line", "region_code": region, "indicator": WHOLE_GEP}
        for region in region_codes
        if wanted_all and not any(r == region for r, _ in seen)
    ]
    if problems:
        raise InvalidInput(f"GEP run {run.id} has no line for {len(problems)} region × indicator pair(s)", problems)
    units = {row["unit"] for row in rows}
    if len(units) > 1:
        raise InvalidInput(
            f"the lines of GEP run {run.id} are in several units ({', '.join(sorted(units))}): compare by value",
            [{"pointer": pointer, "reason": "mixed-units"}],
        )
    return rows


def gep_source(session: Session, basis: GepBasis, run_id: int, *, pointer: str) -> dict[str, Any]:
    """Return the source of a GEP basis in run ``run_id``: the run's identity and its lines."""
    run = finished_run(session, run_id, pointer=pointer)
    layer = run.inputs.get("region_layer")
    if layer != basis.region_layer:
        raise InvalidInput(
            f"GEP run {run_id} is on region layer {layer!r}, not {basis.region_layer!r}",
            [{"pointer": pointer, "reason": "other-region-layer"}],
        )
    rows = run_lines(run, basis.region_codes, [basis.indicator], basis.measure, pointer=pointer)
    return {
        "kind": "gep_run",
        "run_id": run.id,
        "run_year": run.year,
        "valuation_sha256": str(run.valuation.get("sha256", "")),
        "measure": basis.measure.value,
        "lines": rows,
    }


def reading_source(
    session: Session, basis: MonitoredBasis, year: int, *, ids: Sequence[int] | None = None
) -> dict[str, Any]:
    """Return the source of a monitored basis for ``year``: its readings (those of ``ids`` when given).

    Raises:
        InvalidInput: No reading for the section, indicator and year; a reading in another unit.
    """
    query = select(Reading).where(
        Reading.section_code == basis.section_code,
        Reading.indicator == basis.indicator,
        Reading.sampled_on >= date(year, 1, 1),
        Reading.sampled_on <= date(year, 12, 31),
    )
    if ids is not None:
        query = select(Reading).where(Reading.id.in_(list(ids)))
    readings = list(session.scalars(query.order_by(Reading.sampled_on, Reading.id)))
    if not readings:
        raise InvalidInput(
            f"no {basis.indicator} reading at section {basis.section_code} in {year}",
            [{"pointer": "/year", "reason": "no-readings", "year": year}],
        )
    wrong = [r.id for r in readings if r.unit != basis.unit]
    if wrong:
        raise InvalidInput(
            f"readings {wrong} are not in {basis.unit}", [{"pointer": "/year", "reason": "reading-unit", "ids": wrong}]
        )
    return {
        "kind": "readings",
        "unit": basis.unit,
        "section_code": basis.section_code,
        "indicator": basis.indicator,
        "year": year,
        "decimals": basis.decimals,
        "readings": [{"id": r.id, "sampled_on": r.sampled_on.isoformat(), "value": str(r.value)} for r in readings],
    }


def standard_source(value: Decimal) -> dict[str, Any]:
    """Return the source of a fixed standard named in the terms."""
    return {"kind": "standard", "value": str(value)}


def unit_of(source: dict[str, Any]) -> str:
    """Return the unit of a source's total ("" when the source does not say)."""
    if source["kind"] == "gep_run" and source["lines"]:
        return str(source["lines"][0]["unit"])
    return str(source.get("unit", ""))


def total_of(source: dict[str, Any]) -> tuple[Decimal, str, str]:
    """Return a source's total, the formula that gave it and a description of where it comes from."""
    kind = source["kind"]
    if kind == "gep_run":
        amounts = [Decimal(line["amount"]) for line in source["lines"]]
        formula = f"Σ {source['measure']} of {len(amounts)} run line(s)"
        return sum(amounts, Decimal(0)), formula, f"gep_run:{source['run_id']} ({source['run_year']})"
    if kind == "readings":
        values = [Decimal(r["value"]) for r in source["readings"]]
        formula = f"mean of {len(values)} reading(s), {source['decimals']} decimals, ROUND_HALF_EVEN"
        where = f"section {source['section_code']} {source['indicator']} {source['year']}"
        return annual_mean(values, int(source["decimals"])), formula, where
    if kind == "standard":
        return Decimal(source["value"]), "fixed standard", "terms: benchmark_value"
    raise InvalidInput(f"unknown source kind {kind!r}")
