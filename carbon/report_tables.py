"""Sub-compartment (小班) tables as a monitoring report's inputs: one table layout per plot-based methodology.

A forestry bureau keeps its monitoring data as a table, one row per 小班 (sub-compartment, restored polygon…):
its code — the plot code the row's unit maps to —, its area in 亩 and its measurements. This module holds the
layout of that table for each methodology monitoring reports support in table form, reads a filled table (CSV in
UTF-8 or GB18030, or the first sheet of an XLSX workbook), writes the template (headers ``中文名(key)``, one row
per plot of the project with its code and measured area pre-filled), and turns rows into the methodology's
inputs, each problem naming its row and column. The period and the report-level values (uncertainty, restoration
start) come from the form beside the table. CCER-14-001 (parcels, strata and an inventory per stratum) has no
single-table layout and is filed through the API's JSON inputs.

Areas: ``area_mu`` × 10000/15 m²/亩, quantised to 0.01 m² (the methodologies take m²); ``area_ha`` × 10000.

>>> spec = TABLES["FJ-FORESTRY-CARBON-TICKET"]
>>> inputs = spec.inputs([{"sub_compartment_id": "A-1", "area_mu": "15", "species": "pinus",
...                        "start_stock_m3_per_ha": "7.2", "end_stock_m3_per_ha": "9"}], {})
>>> inputs["sub_compartments"][0]["area_m2"], inputs["sub_compartments"][0]["end"]
('10000.00', {'stock_volume_m3_per_ha': '9'})
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Final

from core.errors import InvalidInput

MAX_ROWS: Final = 10_000
M2_PER_MU: Final = Decimal(10_000) / Decimal(15)
CENTI: Final = Decimal("0.01")


@dataclass(frozen=True)
class Column:
    """One column of a table: its key, its Chinese and English headers, whether it must be filled, its kind."""

    key: str
    zh: str
    en: str
    required: bool = True
    kind: str = "text"  # text | decimal | choice
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """The table layout of one methodology and how a row becomes one of its units."""

    methodology_id: str
    methodology_version: str
    units_field: str
    columns: tuple[Column, ...]
    build: Callable[[Mapping[str, str]], dict[str, Any]]
    #: Report-level inputs asked beside the table (key → whether required), e.g. the restoration start.
    report_fields: tuple[str, ...] = ("relative_uncertainty",)

    def header(self) -> list[str]:
        """Return the template's header cells: ``中文名(key)``."""
        return [f"{c.zh}({c.key})" for c in self.columns]

    def inputs(self, rows: Sequence[Mapping[str, str]], report: Mapping[str, str]) -> dict[str, Any]:
        """Return the methodology's inputs (without the period, which the report request fills in).

        Raises:
            InvalidInput: A row misses a required value or holds a value of the wrong kind (each named by row
                and column), the table is empty, or a report-level value is missing.
        """
        problems: list[dict[str, Any]] = []
        units = []
        for number, row in enumerate(rows, start=2):  # row 1 is the header
            row_problems = [
                {"pointer": f"/rows/{number}/{c.key}", "row": number, "column": c.key, "reason": reason}
                for c in self.columns
                if (reason := _check(c, (row.get(c.key) or "").strip())) is not None
            ]
            problems += row_problems
            if not row_problems:
                units.append(self.build({k: (v or "").strip() for k, v in row.items()}))
        if not rows:
            problems.append({"pointer": "/rows", "reason": "the table has no row"})
        document: dict[str, Any] = {self.units_field: units}
        for key in self.report_fields:
            value = (report.get(key) or "").strip()
            if value:
                document[key] = value
            elif key != "relative_uncertainty":
                problems.append({"pointer": f"/{key}", "column": key, "reason": "required"})
        if problems:
            raise InvalidInput(f"{len(problems)} problem(s) in the table; nothing was computed", problems)
        return document


def _check(column: Column, value: str) -> str | None:
    if not value:
        return "required" if column.required else None
    if column.kind == "decimal":
        try:
            number = Decimal(value)
        except InvalidOperation:
            return f"{value!r} is not a number"
        if not number.is_finite() or number < 0:
            return f"{value!r} is not a number of zero or more"
    if column.kind == "choice" and value not in column.choices:
        return f"{value!r} is not one of {', '.join(column.choices)}"
    return None


def area_m2(row: Mapping[str, str]) -> str:
    """Return a row's area in m² (text, 0.01 m²) from ``area_mu``, else ``area_ha``, else ``area_m2``."""
    if row.get("area_mu"):
        return str((Decimal(row["area_mu"]) * M2_PER_MU).quantize(CENTI))  # 亩 × m²/亩
    if row.get("area_ha"):
        return str((Decimal(row["area_ha"]) * 10_000).quantize(CENTI))  # ha × m²/ha
    return str(Decimal(row["area_m2"]).quantize(CENTI))


def _optional(row: Mapping[str, str], key: str) -> dict[str, str]:
    return {key: row[key]} if row.get(key) else {}


def _ticket_unit(row: Mapping[str, str]) -> dict[str, Any]:
    return {
        "sub_compartment_id": row["sub_compartment_id"],
        "area_m2": area_m2(row),
        "species": row["species"],
        **_optional(row, "owner"),
        **_optional(row, "origin"),
        "start": {"stock_volume_m3_per_ha": row["start_stock_m3_per_ha"]},
        "end": {"stock_volume_m3_per_ha": row["end_stock_m3_per_ha"]},
        **(
            {"baseline_volume_increment_m3_per_ha": row["baseline_increment_m3_per_ha"]}
            if row.get("baseline_increment_m3_per_ha")
            else {}
        ),
    }


def _restoration_unit(row: Mapping[str, str]) -> dict[str, Any]:
    return {
        "polygon_id": row["polygon_id"],
        "area_m2": area_m2(row),
        "activity": row["activity"],
        **_optional(row, "land_class"),
        "shrub_crown_cover_start": row["shrub_crown_cover_start"],
        "shrub_crown_cover_end": row["shrub_crown_cover_end"],
        "forest_biomass_t_per_ha": row["forest_biomass_t_per_ha"],
        "soil": {"method": "default_factors", "climate_soil": row["climate_soil"],
                 "condition_before": row["soil_condition_before"], "condition_after": row["soil_condition_after"]},
    }  # fmt: skip


SOIL_CONDITIONS = ("severely_degraded", "nominally_managed", "improved")
TABLES: Final[dict[str, TableSpec]] = {
    "FJ-FORESTRY-CARBON-TICKET": TableSpec(
        "FJ-FORESTRY-CARBON-TICKET", "1", "sub_compartments",
        (
            Column("sub_compartment_id", "小班号", "Sub-compartment code"),
            Column("area_mu", "面积(亩)", "Area (mu)", kind="decimal"),
            Column("species", "树种代码", "Species code"),
            Column("origin", "起源", "Origin", required=False),
            Column("owner", "林权权利人", "Forest-right holder", required=False),
            Column("start_stock_m3_per_ha", "期初蓄积(立方米/公顷)", "Start stock (m³/ha)", kind="decimal"),
            Column("end_stock_m3_per_ha", "期末蓄积(立方米/公顷)", "End stock (m³/ha)", kind="decimal"),
            Column("baseline_increment_m3_per_ha", "基线蓄积年增量(立方米/公顷)", "Baseline increment (m³/ha/yr)",
                   required=False, kind="decimal"),
        ),
        _ticket_unit,
    ),
    "NX-RESTORATION": TableSpec(
        "NX-RESTORATION", "1", "polygons",
        (
            Column("polygon_id", "图斑号", "Polygon code"),
            Column("area_mu", "面积(亩)", "Area (mu)", kind="decimal"),
            Column("activity", "修复类型", "Activity", kind="choice",
                   choices=("mine_site", "shrub_grassland", "desertification_control")),
            Column("land_class", "地类", "Land class", required=False),
            Column("shrub_crown_cover_start", "期初灌木盖度", "Shrub cover at start (0–1)", kind="decimal"),
            Column("shrub_crown_cover_end", "期末灌木盖度", "Shrub cover at end (0–1)", kind="decimal"),
            Column("forest_biomass_t_per_ha", "森林生物量(吨/公顷)", "Forest biomass b_FOREST (t/ha)", kind="decimal"),
            Column("climate_soil", "气候土壤类型", "Climate and soil", kind="choice",
                   choices=("temperate_dry.sandy", "temperate_dry.low_activity_clay",
                            "temperate_dry.high_activity_clay")),
            Column("soil_condition_before", "修复前土壤状况", "Soil before", kind="choice", choices=SOIL_CONDITIONS),
            Column("soil_condition_after", "修复后土壤状况", "Soil after", kind="choice", choices=SOIL_CONDITIONS),
        ),
        _restoration_unit,
        report_fields=("relative_uncertainty", "restoration_start"),
    ),
}  # fmt: skip


def _key_of(spec: TableSpec, header: str) -> str | None:
    text = header.strip().replace("（", "(").replace("）", ")")
    for column in spec.columns:
        if text.casefold() in (column.key, column.zh.casefold(), column.en.casefold()) or text.endswith(
            f"({column.key})"
        ):
            return column.key
    return None


def _rows(spec: TableSpec, cells: Iterable[Sequence[Any]]) -> list[dict[str, str]]:
    iterator = iter(cells)
    header = next(iterator, None)
    if header is None:
        raise InvalidInput("the table is empty", [{"pointer": "/rows"}])
    keys = [_key_of(spec, str(h or "")) for h in header]
    missing = [c.key for c in spec.columns if c.required and c.key not in keys]
    if missing:
        raise InvalidInput(
            f"the table has no column {', '.join(missing)}: download the template of {spec.methodology_id}",
            [{"pointer": f"/columns/{key}", "column": key, "reason": "missing"} for key in missing],
        )
    rows: list[dict[str, str]] = []
    for line in iterator:
        values = ["" if v is None else _text(v) for v in line]
        if not any(v.strip() for v in values):
            continue
        if len(rows) == MAX_ROWS:
            raise InvalidInput(f"the table has more than {MAX_ROWS} rows")
        rows.append({k: v for k, v in zip(keys, values, strict=False) if k is not None})
    return rows


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_table(spec: TableSpec, stream: IO[bytes], filename: str) -> list[dict[str, str]]:
    """Read a filled table: ``.xlsx`` (first sheet) or ``.csv`` (UTF-8, with or without BOM, else GB18030).

    Raises:
        InvalidInput: Neither format, unreadable, a required column missing, or too many rows.
    """
    name = filename.casefold()
    if name.endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(stream, read_only=True, data_only=True)
        except Exception as error:  # zip or XML damage of any kind: the person gets the reason, never a 500
            raise InvalidInput(f"the workbook cannot be read: {error}", [{"pointer": "/file"}]) from error
        try:
            return _rows(spec, workbook.worksheets[0].iter_rows(values_only=True))
        finally:
            workbook.close()
    if name.endswith(".csv"):
        raw = stream.read(16 * 1024 * 1024 + 1)
        if len(raw) > 16 * 1024 * 1024:
            raise InvalidInput("the table exceeds 16 MiB", [{"pointer": "/file"}])
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:  # pragma: no cover - gb18030 decodes any byte string
            raise InvalidInput("the CSV is neither UTF-8 nor GB18030", [{"pointer": "/file"}])
        return _rows(spec, csv.reader(io.StringIO(text)))
    raise InvalidInput("the table must be a .csv or .xlsx file", [{"pointer": "/file"}])


def template_rows(spec: TableSpec, plots: Sequence[tuple[str, Decimal]]) -> list[list[str]]:
    """Return the template's rows: the header, then one row per plot with its code and measured area (亩)."""
    rows = [spec.header()]
    for code, area_mu in plots:
        row = [""] * len(spec.columns)
        row[0], row[1] = code, str(area_mu.quantize(CENTI))
        rows.append(row)
    return rows


def template_csv(rows: Sequence[Sequence[str]]) -> bytes:
    """Return the template as CSV in UTF-8 with a byte-order mark (spreadsheets then read 中文)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def template_xlsx(spec: TableSpec, rows: Sequence[Sequence[str]]) -> bytes:
    """Return the template as an XLSX workbook: the table sheet and a sheet explaining each column."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = spec.methodology_id[:31]
    for row in rows:
        sheet.append(list(row))
    help_sheet = workbook.create_sheet("说明 notes")
    help_sheet.append(["列 column", "中文", "English", "必填 required", "取值 values"])
    for column in spec.columns:
        help_sheet.append([column.key, column.zh, column.en, "是 yes" if column.required else "否 no",
                           " / ".join(column.choices)])  # fmt: skip
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
