"""Cross-province flows: tonnes and CNY from the sellers of one province to the buyers of another.

Every settled trade in the ``trade`` table counts, whatever made it (continuous order book, block trade,
auction), so long as it records its parties and the serial blocks it delivered. A trade is split over the
serial blocks it moved: each block names its batch (project number and batch number, ``carbon.serials``),
so its tonnes are attributed to the batch's project, the project's county and the batch's credit class.

Rules:

- The seller's and the buyer's provinces are those of their organisations (GB/T 2260); the province of
  origin of the tonnes is the project's.
- The month is the Asia/Shanghai trading month of the trade.
- CNY is the trade's gross value (price × tonnes), fees excluded; a block's share is the trade's
  notional × block tonnes / trade tonnes, exact in fen because the notional is price × tonnes.
- Tonnes a trade does not cover by serial blocks (none today) are reported under project ``null`` rather
  than dropped, so the totals always equal Σ trade quantities.
- Money is ``Decimal`` CNY with two places (JSON: strings); never float.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from carbon.models import Batch, Project
from carbon.serials import parse_block
from core.auth import Organisation
from core.errors import InvalidInput
from core.money import Fen
from core.regions import divisions, province_name
from trading.market_data import trading_day
from trading.models import Trade

#: The columns of a flow row, in the order of the CSV and the Excel sheet.
COLUMNS = (
    "seller_province",
    "seller_province_name",
    "buyer_province",
    "buyer_province_name",
    "month",
    "project_id",
    "project_code",
    "county_code",
    "county_name",
    "credit_class",
    "tonnes",
    "cny",
)
#: The dimensions the report also totals by.
DIMENSIONS = {
    "pair": ("seller_province", "buyer_province"),
    "month": ("month",),
    "project": ("project_id", "project_code"),
    "county": ("county_code", "county_name"),
    "credit_class": ("credit_class",),
}


@dataclass(frozen=True)
class FlowQuery:
    """Which trades count: seller and buyer provinces (``None`` = any) and trading days ``[start, end]``."""

    seller_province: str | None = None
    buyer_province: str | None = None
    start: date | None = None
    end: date | None = None

    def check(self) -> None:
        """Raise :class:`InvalidInput` listing every defect."""
        problems = [
            f"{name}: unknown province code {code!r} (GB/T 2260, two digits)"
            for name, code in (("seller_province", self.seller_province), ("buyer_province", self.buyer_province))
            if code is not None and province_name(code) is None
        ]
        if self.start is not None and self.end is not None and self.start > self.end:
            problems.append("start must not be after end")
        if problems:
            raise InvalidInput("; ".join(problems), problems=[{"reason": p} for p in problems])


@dataclass
class _Cell:
    tonnes: int = 0
    fen: int = 0


def _county_name(code: str | None) -> str | None:
    division = divisions().get(code) if code else None
    return division.name_zh if division else None


def flow_rows(session: Session, query: FlowQuery) -> list[dict[str, Any]]:
    """Return the flows at the finest grain: seller province × buyer province × month × project × class."""
    query.check()
    seller, buyer = aliased(Organisation), aliased(Organisation)
    statement = (
        select(Trade, seller.province_code, buyer.province_code)
        .join(seller, seller.id == Trade.seller_organisation_id)
        .join(buyer, buyer.id == Trade.buyer_organisation_id)
        .order_by(Trade.id)
    )
    if query.seller_province is not None:
        statement = statement.where(seller.province_code == query.seller_province)
    if query.buyer_province is not None:
        statement = statement.where(buyer.province_code == query.buyer_province)
    batches: dict[tuple[int, int], Batch | None] = {}
    cells: dict[tuple[str, str, str, int | None, str | None], _Cell] = defaultdict(_Cell)
    for trade, seller_province, buyer_province in session.execute(statement):
        day = trading_day(trade.created_at)
        if (query.start is not None and day < query.start) or (query.end is not None and day > query.end):
            continue
        month = f"{day.year:04d}-{day.month:02d}"
        covered = 0
        for serial in trade.serials or []:
            block = parse_block(serial)
            key = (block.project_number, block.batch)
            if key not in batches:
                batches[key] = session.scalars(
                    select(Batch).where(Batch.project_id == key[0], Batch.batch_number == key[1])
                ).one_or_none()
            batch = batches[key]
            cell = cells[
                (
                    seller_province,
                    buyer_province,
                    month,
                    batch.project_id if batch else None,
                    batch.credit_class.value if batch else block.credit_class,
                )
            ]
            cell.tonnes += block.quantity
            cell.fen += trade.notional_fen * block.quantity // trade.quantity_t  # fen × t / t = fen
            covered += block.quantity
        if covered != trade.quantity_t:
            cell = cells[(seller_province, buyer_province, month, None, None)]
            rest = trade.quantity_t - covered
            cell.tonnes += rest
            cell.fen += trade.notional_fen * rest // trade.quantity_t
    projects = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_({k[3] for k in cells})))}
    rows = []
    for (seller_province, buyer_province, month, project_id, credit_class), cell in sorted(
        cells.items(), key=lambda item: (item[0][0], item[0][1], item[0][2], item[0][3] or 0, item[0][4] or "")
    ):
        project = projects.get(project_id) if project_id is not None else None
        county = project.county_code if project else None
        rows.append(
            {
                "seller_province": seller_province,
                "seller_province_name": province_name(seller_province),
                "buyer_province": buyer_province,
                "buyer_province_name": province_name(buyer_province),
                "month": month,
                "project_id": project_id,
                "project_code": project.code if project else None,
                "county_code": county,
                "county_name": _county_name(county),
                "credit_class": credit_class,
                "tonnes": cell.tonnes,
                "cny": Fen(cell.fen).cny,
            }
        )
    return rows


def totals_by(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return tonnes and CNY summed over ``rows`` grouped by ``columns`` (``()`` gives the grand total)."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        key = tuple(row[c] for c in columns)
        total = sums.setdefault(key, [0, Decimal("0.00")])
        total[0] += row["tonnes"]
        total[1] += row["cny"]
    ordered = sorted(sums.items(), key=lambda item: tuple("" if v is None else str(v) for v in item[0]))
    return [{**dict(zip(columns, key, strict=True)), "tonnes": t, "cny": cny} for key, (t, cny) in ordered]


def flow_report(session: Session, query: FlowQuery) -> dict[str, Any]:
    """Return the flows report: finest rows, totals by pair, month, project, county and class, grand total."""
    rows = flow_rows(session, query)
    grand = totals_by(rows, ())
    return {
        "query": {
            "seller_province": query.seller_province,
            "buyer_province": query.buyer_province,
            "start": query.start.isoformat() if query.start else None,
            "end": query.end.isoformat() if query.end else None,
        },
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "rows": rows,
        "totals": {name: totals_by(rows, columns) for name, columns in DIMENSIONS.items()},
        "total": grand[0] if grand else {"tonnes": 0, "cny": Decimal("0.00")},
    }


def as_json(value: Any) -> Any:
    """Return ``value`` with every ``Decimal`` as its string (money in JSON is never a float)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def flows_csv(report: dict[str, Any]) -> str:
    """Return the report's rows as CSV (UTF-8 text, one header line, money as decimal strings)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in report["rows"]:
        writer.writerow(["" if row[c] is None else str(row[c]) for c in COLUMNS])
    return buffer.getvalue()


def flows_xlsx(report: dict[str, Any]) -> bytes:
    """Return the report as an Excel workbook: the rows, then one sheet of totals per dimension.

    CNY cells are numbers with the ``#,##0.00`` format (so they sum in Excel), written from the exact
    ``Decimal``; tonnes are integers.
    """
    from openpyxl import Workbook  # imported here: only this export needs it

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "flows"
    _write(sheet, COLUMNS, report["rows"])
    for name, columns in DIMENSIONS.items():
        _write(workbook.create_sheet(f"by {name}"), (*columns, "tonnes", "cny"), report["totals"][name])
    _write(workbook.create_sheet("total"), ("tonnes", "cny"), [report["total"]])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _write(sheet: Any, columns: tuple[str, ...], rows: Iterable[dict[str, Any]]) -> None:
    sheet.append(list(columns))
    for row in rows:
        sheet.append([row[c] for c in columns])
        if "cny" in columns:
            sheet.cell(row=sheet.max_row, column=columns.index("cny") + 1).number_format = "#,##0.00"
