"""SEEA-EA style accounts from per-region indicator totals: extent, supply, GEP summary, comparison.

Pure: rows in, rows and CSV text out; a run writes the files. Money is :class:`~decimal.Decimal`
here and only here — a line's value is its exact physical total (``math.fsum`` over the pixels, see
:func:`gep.arrays.exact_sum`) times the Decimal unit value of :mod:`gep.valuation`, quantised to the
fen (0.01 元, half-even). Physical totals enter as the shortest decimal that round-trips the float.

Invariants, checked every time a summary is built (:func:`gep_summary`):

- per region, provisioning + regulating + cultural − out-of-region = GEP, and GEP = Σ of its lines'
  net values (Σ indicators = GEP);
- the total row equals the Σ over regions of every column (Σ regions = total);
- in the supply tables by ecosystem type (:func:`supply_by_type_rows`), Σ types = the line's total, in
  both the physical and the monetary table (see :func:`allocate`).

Both sums are exact Decimal arithmetic, so a failure means a bug, not rounding; it raises
:class:`AccountingInconsistency`.

>>> from decimal import Decimal as D
>>> lines = [SupplyLine(region_code="640402", indicator_code="water_conservation",
...     service_class=ServiceClass.REGULATING, quantity=D(50000), unit="m3", gross_yuan=D("353000.00"))]
>>> [(row.region_code, row.gep_yuan) for row in gep_summary(lines)]
[('640402', Decimal('353000.00')), ('total', Decimal('353000.00'))]
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidInput, ShanhaiError
from gep.spec import IndicatorSpec
from gep.valuation import ServiceClass, UnitValue

#: Money in tables is quantised to the fen (0.01 元).
FEN = Decimal("0.01")
#: The region code of the total row.
TOTAL = "total"
#: The ecosystem type of a line not split by ecosystem type.
ALL_TYPES = "all"
#: Physical quantities in the supply tables by ecosystem type are quantised to 0.001 of their unit.
MILLI = Decimal("0.001")
#: Column order of ecosystem types (the legend's types; anything else sorts after, alphabetically).
TYPE_ORDER = ("forest", "shrubland", "grassland", "wetland", "cropland", "urban", "desert", "other")


class AccountingInconsistency(ShanhaiError):
    """A table's sums do not close (Σ indicators ≠ GEP or Σ regions ≠ total): a bug, never rounding."""

    slug = "gep/accounting-inconsistency"
    title = "Accounting tables do not add up"


class SupplyLine(BaseModel):
    """One region × indicator (× ecosystem type) line: physical quantity and value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region_code: str = Field(min_length=1)
    indicator_code: str = Field(min_length=1)
    service_class: ServiceClass
    ecosystem_type: str = ALL_TYPES
    quantity: Decimal
    unit: str = Field(min_length=1)
    gross_yuan: Decimal
    out_of_region_yuan: Decimal = Decimal(0)

    @property
    def net_yuan(self) -> Decimal:
        """Return the value net of out-of-region products."""
        return self.gross_yuan - self.out_of_region_yuan


def decimal_from_total(name: str, total: float) -> Decimal:
    """Return the shortest decimal that round-trips a float total; NaN and infinities are refused.

    >>> decimal_from_total("q", 0.1 + 0.2)
    Decimal('0.30000000000000004')
    """
    if not math.isfinite(total):
        raise InvalidInput(f"{name} is not a finite number: {total!r}", [{"input": name, "reason": "not-finite"}])
    return Decimal(repr(float(total)))


def line_from_total(
    *,
    region_code: str,
    indicator: IndicatorSpec,
    quantity: float,
    unit_value: UnitValue,
    ecosystem_type: str = ALL_TYPES,
) -> SupplyLine:
    """Return the line of a raster indicator: exact physical total × Decimal unit value."""
    amount = decimal_from_total(f"{indicator.code} total", quantity)
    return SupplyLine(
        region_code=region_code,
        indicator_code=indicator.code,
        service_class=indicator.service_class,
        ecosystem_type=ecosystem_type,
        quantity=amount,
        unit=indicator.physical_unit,
        gross_yuan=(amount * unit_value.yuan_per_unit).quantize(FEN, ROUND_HALF_EVEN),
    )


class SummaryRow(BaseModel):
    """The GEP headline of one region (or of the total)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region_code: str
    provisioning_yuan: Decimal
    regulating_yuan: Decimal
    cultural_yuan: Decimal
    out_of_region_yuan: Decimal
    gep_yuan: Decimal

    def share(self, service_class: ServiceClass) -> Decimal:
        """Return a class's share of gross GEP (0–1); zero when the gross is zero."""
        gross = self.provisioning_yuan + self.regulating_yuan + self.cultural_yuan
        part = {
            ServiceClass.PROVISIONING: self.provisioning_yuan,
            ServiceClass.REGULATING: self.regulating_yuan,
            ServiceClass.CULTURAL: self.cultural_yuan,
        }[service_class]
        return part / gross if gross else Decimal(0)


def check_unique(lines: Sequence[SupplyLine]) -> None:
    """Refuse two lines for the same region, indicator and ecosystem type (a double count)."""
    seen: set[tuple[str, str, str]] = set()
    duplicates = []
    for line in lines:
        key = (line.region_code, line.indicator_code, line.ecosystem_type)
        if key in seen:
            duplicates.append({"region": key[0], "indicator": key[1], "ecosystem_type": key[2], "reason": "duplicate"})
        seen.add(key)
    if duplicates:
        raise InvalidInput(f"{len(duplicates)} duplicate lines (would double count)", duplicates)


def _summarise(region_code: str, lines: Iterable[SupplyLine]) -> SummaryRow:
    by_class = {service_class: Decimal(0) for service_class in ServiceClass}
    out_of_region, net = Decimal(0), Decimal(0)
    for line in lines:
        by_class[line.service_class] += line.gross_yuan
        out_of_region += line.out_of_region_yuan
        net += line.net_yuan
    gep = sum(by_class.values(), Decimal(0)) - out_of_region
    if gep != net:
        raise AccountingInconsistency(f"{region_code}: Σ indicators {net} ≠ GEP {gep}")
    return SummaryRow(
        region_code=region_code,
        provisioning_yuan=by_class[ServiceClass.PROVISIONING],
        regulating_yuan=by_class[ServiceClass.REGULATING],
        cultural_yuan=by_class[ServiceClass.CULTURAL],
        out_of_region_yuan=out_of_region,
        gep_yuan=gep,
    )


def gep_summary(lines: Sequence[SupplyLine]) -> list[SummaryRow]:
    """Return one summary row per region (sorted by code) and a final ``total`` row; sums are asserted.

    Raises:
        InvalidInput: Duplicate lines.
        AccountingInconsistency: Σ indicators ≠ GEP, or Σ regions ≠ total.
    """
    check_unique(lines)
    regions = sorted({line.region_code for line in lines})
    rows = [_summarise(code, (line for line in lines if line.region_code == code)) for code in regions]
    total = _summarise(TOTAL, lines)
    for column in ("provisioning_yuan", "regulating_yuan", "cultural_yuan", "out_of_region_yuan", "gep_yuan"):
        regional = sum((getattr(row, column) for row in rows), Decimal(0))
        if regional != getattr(total, column):
            raise AccountingInconsistency(f"Σ regions {column} {regional} ≠ total {getattr(total, column)}")
    return [*rows, total]


def physical_supply_rows(lines: Sequence[SupplyLine]) -> list[dict[str, object]]:
    """Return the physical supply table: region × indicator × ecosystem type, quantity and unit."""
    check_unique(lines)
    return [
        {
            "region_code": line.region_code,
            "service_class": line.service_class.value,
            "indicator_code": line.indicator_code,
            "ecosystem_type": line.ecosystem_type,
            "quantity": line.quantity,
            "unit": line.unit,
        }
        for line in sorted(lines, key=_line_key)
    ]


def monetary_supply_rows(lines: Sequence[SupplyLine]) -> list[dict[str, object]]:
    """Return the monetary supply table in 元: gross, out-of-region and net per line."""
    check_unique(lines)
    return [
        {
            "region_code": line.region_code,
            "service_class": line.service_class.value,
            "indicator_code": line.indicator_code,
            "ecosystem_type": line.ecosystem_type,
            "gross_yuan": line.gross_yuan,
            "out_of_region_yuan": line.out_of_region_yuan,
            "net_yuan": line.net_yuan,
        }
        for line in sorted(lines, key=_line_key)
    ]


def _line_key(line: SupplyLine) -> tuple[str, str, str, str]:
    return (line.region_code, line.service_class.value, line.indicator_code, line.ecosystem_type)


def extent_rows(opening_m2: Mapping[str, float], closing_m2: Mapping[str, float]) -> list[dict[str, object]]:
    """Return the ecosystem extent account: opening, closing and net change per type (km², 6 decimals).

    >>> extent_rows({"forest": 2e6}, {"forest": 3e6, "water": 5e5})[0]["net_change_km2"]
    Decimal('1.000000')
    """
    micro = Decimal("0.000001")

    def km2(areas: Mapping[str, float], kind: str) -> Decimal:
        area = decimal_from_total(f"{kind} area of {kind}", areas.get(kind, 0.0))
        return (area / Decimal(1_000_000)).quantize(micro, ROUND_HALF_EVEN)

    rows: list[dict[str, object]] = []
    for kind in sorted(set(opening_m2) | set(closing_m2)):
        opening, closing = km2(opening_m2, kind), km2(closing_m2, kind)
        rows.append(
            {
                "ecosystem_type": kind,
                "opening_km2": opening,
                "closing_km2": closing,
                "net_change_km2": closing - opening,
            }
        )
    return rows


def compare_runs(before: Sequence[SupplyLine], after: Sequence[SupplyLine]) -> list[dict[str, object]]:
    """Return the change by region and indicator between two runs (a line missing from one run is 0).

    Raises:
        InvalidInput: The same line has different units in the two runs.
    """
    check_unique(before)
    check_unique(after)
    old = {_line_key(line): line for line in before}
    new = {_line_key(line): line for line in after}
    mismatched = [
        {
            "indicator": key[2],
            "region": key[0],
            "reason": "unit-mismatch",
            "before": old[key].unit,
            "after": new[key].unit,
        }
        for key in old.keys() & new.keys()
        if old[key].unit != new[key].unit
    ]
    if mismatched:
        raise InvalidInput("runs measure the same indicator in different units", mismatched)
    return [_change_row(key, old.get(key), new.get(key)) for key in sorted(old.keys() | new.keys())]


def _change_row(key: tuple[str, str, str, str], old: SupplyLine | None, new: SupplyLine | None) -> dict[str, object]:
    zero = Decimal(0)
    quantity_before, quantity_after = (old.quantity if old else zero), (new.quantity if new else zero)
    value_before, value_after = (old.net_yuan if old else zero), (new.net_yuan if new else zero)
    present = new if new is not None else old
    unit = present.unit if present is not None else ""
    change = value_after - value_before
    percent = (change / value_before * 100).quantize(FEN, ROUND_HALF_EVEN) if value_before else None
    return {
        "region_code": key[0],
        "service_class": key[1],
        "indicator_code": key[2],
        "ecosystem_type": key[3],
        "unit": unit,
        "quantity_before": quantity_before,
        "quantity_after": quantity_after,
        "quantity_change": quantity_after - quantity_before,
        "value_before_yuan": value_before,
        "value_after_yuan": value_after,
        "value_change_yuan": change,
        "value_change_percent": percent,
        "status": "added" if old is None else "removed" if new is None else "both",
    }


def to_csv(rows: Sequence[Mapping[str, object]]) -> str:
    """Return rows as CSV text (header from the first row; Decimal written exactly, None empty).

    >>> to_csv([{"a": Decimal("1.50"), "b": None}]).splitlines()
    ['a,b', '1.50,']
    """
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows({key: "" if value is None else str(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def allocate(target: Decimal, parts: Mapping[str, Decimal], quantum: Decimal) -> dict[str, Decimal]:
    """Return ``parts`` quantised to ``quantum`` so that they sum to ``target`` exactly (largest remainder).

    Each part is floored to the quantum, then the quanta still missing go to the parts with the largest
    remainders (ties by key). The raw parts must already sum to the target within one quantum per part —
    a larger gap means the split lost or invented something (a pixel without a type, a class counted
    twice), which raises rather than being hidden by rounding.

    Raises:
        AccountingInconsistency: Σ parts differs from the target by more than rounding.

    >>> allocate(Decimal("1.00"), {"a": Decimal("0.333"), "b": Decimal("0.333"), "c": Decimal("0.334")}, FEN)
    {'a': Decimal('0.33'), 'b': Decimal('0.33'), 'c': Decimal('0.34')}
    """
    floors = {key: (value / quantum).to_integral_value(ROUND_FLOOR) for key, value in parts.items()}
    missing = (target / quantum) - sum(floors.values(), Decimal(0))
    if missing != missing.to_integral_value() or not 0 <= missing <= len(parts):
        raise AccountingInconsistency(
            f"Σ ecosystem types {sum(parts.values(), Decimal(0))} ≠ total {target} (beyond rounding)"
        )
    order = sorted(parts, key=lambda key: (-(parts[key] / quantum - floors[key]), key))
    for key in order[: int(missing)]:
        floors[key] += 1
    allocated = {key: (floors[key] * quantum).quantize(quantum) for key in parts}
    if sum(allocated.values(), Decimal(0)) != target:  # pragma: no cover - guaranteed by construction
        raise AccountingInconsistency(f"Σ ecosystem types ≠ total {target}")
    return allocated


def _type_key(kind: str) -> tuple[int, str]:
    return (TYPE_ORDER.index(kind) if kind in TYPE_ORDER else len(TYPE_ORDER), kind)


def supply_by_type_rows(
    lines: Sequence[SupplyLine],
    by_type: Mapping[str, Mapping[str, Mapping[str, float]]],
    unit_values: Mapping[str, Decimal],
    measure: Literal["physical", "monetary"],
) -> list[dict[str, object]]:
    """Return the SEEA-EA supply table by ecosystem type: one row per region × indicator, one column per type.

    ``by_type`` is indicator → region → ecosystem type → physical total (float, exact per type); a line
    with no split (no land cover) has the single column ``all``. Physical cells are quantised to 0.001 of
    the unit and the ``total`` column is the line's quantity so quantised; monetary cells are in 元 (fen)
    and the total is the line's gross value. Σ types = total is asserted row by row (:func:`allocate`).

    >>> line = SupplyLine(region_code="r", indicator_code="flood_regulation",
    ...     service_class=ServiceClass.REGULATING, quantity=Decimal(3), unit="m3", gross_yuan=Decimal("21.18"))
    >>> rows = supply_by_type_rows([line], {"flood_regulation": {"r": {"wetland": 2.0, "forest": 1.0}}},
    ...     {"flood_regulation": Decimal("7.06")}, "monetary")
    >>> rows[0]["forest"], rows[0]["wetland"], rows[0]["total"]
    (Decimal('7.06'), Decimal('14.12'), Decimal('21.18'))
    """
    check_unique(lines)
    types = sorted({t for regions in by_type.values() for split in regions.values() for t in split}, key=_type_key)
    columns = types or [ALL_TYPES]
    rows: list[dict[str, object]] = []
    for line in sorted(lines, key=_line_key):
        split = by_type.get(line.indicator_code, {}).get(line.region_code, {})
        raw = {t: decimal_from_total(t, v) for t, v in split.items()} if types else {ALL_TYPES: line.quantity}
        if measure == "physical":
            target, quantum = line.quantity.quantize(MILLI, ROUND_HALF_EVEN), MILLI
        else:
            price = unit_values[line.indicator_code]
            target, quantum = line.gross_yuan, FEN
            raw = {t: q * price for t, q in raw.items()}
        cells = allocate(target, raw, quantum)  # a region with no classified pixel has no part: total 0
        row: dict[str, object] = {
            "region_code": line.region_code,
            "service_class": line.service_class.value,
            "indicator_code": line.indicator_code,
            "unit": line.unit if measure == "physical" else "yuan",
        }
        row |= {t: cells.get(t, Decimal(0).quantize(quantum)) for t in columns}
        row["total"] = target
        if sum((cells.get(t, Decimal(0)) for t in columns), Decimal(0)) != target:
            raise AccountingInconsistency(f"{line.region_code} {line.indicator_code}: Σ types ≠ total {target}")
        rows.append(row)
    return rows


def extent_by_class_rows(
    extent_m2: Mapping[str, Mapping[str, float]], type_of: Mapping[str, str] | None = None
) -> list[dict[str, object]]:
    """Return the extent account per region × land-cover class (km², 6 decimals), with its ecosystem type.

    >>> extent_by_class_rows({"r": {"1": 2.5e6}}, {"1": "forest"})
    [{'region_code': 'r', 'land_cover_class': '1', 'ecosystem_type': 'forest', 'area_km2': Decimal('2.500000')}]
    """
    micro = Decimal("0.000001")
    rows: list[dict[str, object]] = []
    for region, by_class in sorted(extent_m2.items()):
        for klass, area in by_class.items():
            km2 = decimal_from_total("area", float(area)) / Decimal(1_000_000)
            row: dict[str, object] = {"region_code": region, "land_cover_class": klass}
            if type_of is not None:
                row["ecosystem_type"] = type_of.get(klass, "other")
            row["area_km2"] = km2.quantize(micro, ROUND_HALF_EVEN)
            rows.append(row)
    return rows


#: The SEEA-EA tables of a run, in the order of the workbook's sheets.
SEEA_TABLES = ("summary", "extent", "physical", "monetary", "physical_by_type", "monetary_by_type")


def seea_tables(
    lines: Sequence[SupplyLine],
    *,
    by_type: Mapping[str, Mapping[str, Mapping[str, float]]],
    unit_values: Mapping[str, Decimal],
    extent_m2: Mapping[str, Mapping[str, float]],
    class_types: Mapping[str, str] | None,
) -> dict[str, list[dict[str, object]]]:
    """Return every SEEA-EA table of a run (:data:`SEEA_TABLES`), each as rows; all sums are asserted."""
    return {
        "summary": [row.model_dump() for row in gep_summary(lines)],
        "extent": extent_by_class_rows(extent_m2, class_types),
        "physical": physical_supply_rows(lines),
        "monetary": monetary_supply_rows(lines),
        "physical_by_type": supply_by_type_rows(lines, by_type, unit_values, "physical"),
        "monetary_by_type": supply_by_type_rows(lines, by_type, unit_values, "monetary"),
    }
