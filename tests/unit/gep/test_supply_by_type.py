"""Supply tables by ecosystem type (Σ types = total, physical and monetary) and the Excel workbook."""

from __future__ import annotations

import hashlib
import io
import math
from decimal import Decimal
from pathlib import Path

import pytest
import shapely.geometry as sg
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from gep.engine import RegionShape, RunConfig, Source, class_types, plan_run, run_in_process
from gep.prices import load_table
from gep.synthetic import demo_tables, township_collection, write_stack
from gep.tables import (
    FEN,
    MILLI,
    TYPE_ORDER,
    AccountingInconsistency,
    SupplyLine,
    allocate,
    compare_runs,
    seea_tables,
    supply_by_type_rows,
)
from gep.valuation import ServiceClass
from gep.workbook import SHEET_TITLES, workbook_bytes

ROWS = COLS = 80
CELL = 0.001
INDICATORS = [
    "water_conservation",
    "soil_retention",
    "sand_fixation",
    "flood_regulation",
    "carbon_sequestration",
    "climate_regulation",
    "air_purification_dust",
    "water_purification_cod",
]


def line(region: str, code: str, quantity: str, gross: str) -> SupplyLine:
    return SupplyLine(
        region_code=region,
        indicator_code=code,
        service_class=ServiceClass.REGULATING,
        quantity=Decimal(quantity),
        unit="m3",
        gross_yuan=Decimal(gross),
    )


def test_allocation_closes_exactly_and_refuses_a_lost_part() -> None:
    parts = {"a": Decimal("1.005"), "b": Decimal("2.005"), "c": Decimal("3.0049")}
    allocated = allocate(Decimal("6.01"), parts, FEN)
    assert sum(allocated.values()) == Decimal("6.01")
    assert all(abs(allocated[k] - parts[k]) < FEN for k in parts)
    with pytest.raises(AccountingInconsistency):
        allocate(Decimal("7.01"), parts, FEN)  # one yuan missing from the parts: not rounding
    assert allocate(Decimal(0), {}, FEN) == {}


@given(
    st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=9),
    st.sampled_from([FEN, MILLI]),
)
def test_allocation_sums_to_the_rounded_total(values: list[float], quantum: Decimal) -> None:
    parts = {f"t{i}": Decimal(repr(v)) for i, v in enumerate(values)}
    target = sum(parts.values(), Decimal(0)).quantize(quantum)
    allocated = allocate(target, parts, quantum)
    assert sum(allocated.values(), Decimal(0)) == target
    assert all(abs(allocated[k] - parts[k]) < quantum for k in parts)


def test_supply_by_type_columns_and_sums() -> None:
    lines = [line("r1", "flood_regulation", "3.5", "24.71"), line("r2", "flood_regulation", "0", "0.00")]
    split = {"flood_regulation": {"r1": {"wetland": 3.0, "forest": 0.5}}}
    physical = supply_by_type_rows(lines, split, {"flood_regulation": Decimal("7.06")}, "physical")
    assert list(physical[0]) == ["region_code", "service_class", "indicator_code", "unit", "forest", "wetland", "total"]
    assert (physical[0]["forest"], physical[0]["wetland"], physical[0]["total"]) == (
        Decimal("0.500"),
        Decimal("3.000"),
        Decimal("3.500"),
    )
    assert physical[1]["total"] == 0 and physical[1]["forest"] == 0  # a region with no classified pixel
    monetary = supply_by_type_rows(lines, split, {"flood_regulation": Decimal("7.06")}, "monetary")
    assert monetary[0]["forest"] + monetary[0]["wetland"] == monetary[0]["total"] == Decimal("24.71")
    with pytest.raises(AccountingInconsistency):  # a type split that does not add up to the line
        supply_by_type_rows(lines, {"flood_regulation": {"r1": {"wetland": 3.0}}}, {}, "physical")
    unsplit = supply_by_type_rows(lines[:1], {}, {}, "physical")
    assert unsplit[0]["all"] == unsplit[0]["total"] == Decimal("3.500")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    folder = tmp_path_factory.mktemp("stack")
    names = write_stack(folder, ROWS, COLS, cell_deg=CELL)
    regions = [
        RegionShape(f["properties"]["code"], f["properties"]["name"], sg.shape(f["geometry"]))
        for f in township_collection(ROWS, COLS, cell_deg=CELL, n=2)["features"]
    ]
    sources = {
        role: Source(role, name, folder / name, hashlib.sha256((folder / name).read_bytes()).hexdigest())
        for role, name in names.items()
    }
    config = RunConfig.model_validate(
        {
            "name": "by type",
            "year": 2025,
            "indicators": INDICATORS,
            "inputs": {**names, "practice_factor": 1.0},
            "prices": "prices_guyuan_2025",
            "negative_balance": "clamp-to-zero",
            "land_cover_legend": "legend_synthetic_jingyuan",
            "cover_unit": "percent",
            "tile_size": 40,
            **demo_tables([r.code for r in regions]),
        }
    )
    plan = plan_run(config, sources, regions, load_table(config.prices), load_table(config.coefficients))
    merged, _ = run_in_process(plan)
    tables = seea_tables(
        merged.lines,
        by_type=merged.by_type,
        unit_values={code: value.yuan_per_unit for code, value in plan.unit_values.items()},
        extent_m2=merged.extent,
        class_types=class_types(plan, merged),
    )
    return plan, merged, tables


def test_a_run_splits_every_indicator_by_ecosystem_type(run: tuple[object, ...]) -> None:
    _plan, _merged, tables = run
    assert isinstance(tables, dict)
    by_type = tables["physical_by_type"]
    types = [c for c in by_type[0] if c not in ("region_code", "service_class", "indicator_code", "unit", "total")]
    assert types == sorted(types, key=TYPE_ORDER.index) and {"forest", "wetland", "cropland", "desert"} <= set(types)
    for row in by_type:
        assert sum(row[t] for t in types) == row["total"]
    flood = [row for row in by_type if row["indicator_code"] == "flood_regulation"]
    assert all(row["forest"] == 0 for row in flood) and any(row["wetland"] > 0 for row in flood)
    monetary = tables["monetary_by_type"]
    gross = {(r["region_code"], r["indicator_code"]): r["gross_yuan"] for r in tables["monetary"]}
    for row in monetary:
        assert sum(row[t] for t in types) == row["total"] == gross[(row["region_code"], row["indicator_code"])]
    assert {row["ecosystem_type"] for row in tables["extent"]} >= {"forest", "wetland", "desert"}


def test_workbook_reads_back_with_its_sums(run: tuple[object, ...], tmp_path: Path) -> None:
    _plan, merged, tables = run
    assert isinstance(tables, dict)
    lines = merged.lines  # type: ignore[attr-defined]
    comparison = compare_runs(lines, lines)
    content = workbook_bytes(tables, about={"run": "test"}, comparison=comparison)
    book = load_workbook(io.BytesIO(content), read_only=True)
    expected = ["Run", *(SHEET_TITLES[k] for k in tables), SHEET_TITLES["comparison"]]
    assert book.sheetnames == expected
    sheet = list(book[SHEET_TITLES["monetary_by_type"]].iter_rows(values_only=True))
    header, body = sheet[0], sheet[1:]
    assert len(body) == len(tables["monetary_by_type"]) > 0
    total_column = header.index("total")
    type_columns = range(header.index("unit") + 1, total_column)
    for row in body:
        assert math.isclose(math.fsum(row[i] for i in type_columns), row[total_column], rel_tol=1e-12, abs_tol=1e-6)
    summary = list(book[SHEET_TITLES["summary"]].iter_rows(values_only=True))
    gep = summary[0].index("gep_yuan")
    regions = [r for r in summary[1:] if r[0] != "total"]
    grand = next(r for r in summary[1:] if r[0] == "total")
    assert math.isclose(math.fsum(r[gep] for r in regions), grand[gep], rel_tol=1e-12)
    exact = next(r for r in tables["summary"] if r["region_code"] == "total")["gep_yuan"]
    assert Decimal(repr(grand[gep])).quantize(FEN) == exact
    changes = list(book[SHEET_TITLES["comparison"]].iter_rows(values_only=True))
    change = changes[0].index("value_change_yuan")
    assert all(r[change] == 0 for r in changes[1:])
