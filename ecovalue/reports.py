"""Reports of eco-compensation, per agreement and per region, as CSV (exact decimal text) and XLSX.

Per agreement: one row per statement and obligation (the statement's amount split among payers × payees), with
the value, the benchmark, whether it was met, the status and the record's hash. Per region: one row per statement
where the region is a party, with what it pays and receives and the net, and a total row over confirmed
statements. Amounts are CNY with two decimals, from integer fen; nothing is float in the CSV. In the workbook,
amounts are numeric cells (a double holds every amount in fen below 2⁵³ exactly).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.money import Fen
from ecovalue.agreements import get_agreement, terms_of
from ecovalue.models import Agreement, AgreementParty, Obligation, Statement, StatementStatus

MONEY_FORMAT = "#,##0.00"


def _cny(fen: int) -> str:
    return str(Fen(fen).cny)


def _term(record: Mapping[str, Any], name: str) -> str:
    return next((str(t["result"]) for t in record["terms"] if t["name"] == name), "")


def _paid(session: Session, statement: Statement) -> dict[tuple[str, str], str]:
    rows = session.scalars(select(Obligation).where(Obligation.statement_id == statement.id))
    return {(o.payer_region, o.payee_region): o.status.value for o in rows}


def agreement_rows(session: Session, agreement_id: int) -> list[dict[str, str]]:
    """Return the report rows of an agreement (which must exist), by year and statement."""
    agreement = get_agreement(session, agreement_id)
    statements = session.scalars(
        select(Statement).where(Statement.agreement_id == agreement.id).order_by(Statement.year, Statement.id)
    )
    rows: list[dict[str, str]] = []
    for statement in statements:
        record = json.loads(statement.record)
        base = {
            "agreement_code": agreement.code,
            "year": str(statement.year),
            "statement_id": str(statement.id),
            "status": statement.status.value,
            "value": _term(record, "value"),
            "benchmark": _term(record, "benchmark"),
            "unit": next(t["unit"] for t in record["terms"] if t["name"] == "value"),
            "improvement": _term(record, "improvement"),
            "benchmark_met": "yes" if record["benchmark_met"] else "no",
            "amount_cny": _cny(statement.amount_fen),
            "direction": statement.direction,
        }
        paid = _paid(session, statement)
        obligations = record["obligations"] or [None]
        for item in obligations:
            rows.append(
                base
                | {
                    "payer_region": item["payer_region"] if item else "",
                    "payee_region": item["payee_region"] if item else "",
                    "obligation_cny": _cny(item["amount_fen"]) if item else "0.00",
                    "obligation_status": paid.get((item["payer_region"], item["payee_region"]), "") if item else "",
                    "record_sha256": statement.record_sha256,
                }
            )
    return rows


def region_rows(session: Session, region_code: str) -> list[dict[str, str]]:
    """Return the report rows of a region: per statement of its agreements, payable, receivable and net."""
    agreements = session.scalars(
        select(Agreement)
        .where(Agreement.id.in_(select(AgreementParty.agreement_id).where(AgreementParty.region_code == region_code)))
        .order_by(Agreement.id)
    )
    rows: list[dict[str, str]] = []
    totals = [0, 0]
    for agreement in agreements:
        side = next(p.side.value for p in terms_of(agreement).parties if p.region_code == region_code)
        for statement in session.scalars(
            select(Statement).where(Statement.agreement_id == agreement.id).order_by(Statement.year, Statement.id)
        ):
            record = json.loads(statement.record)
            payable = sum(o["amount_fen"] for o in record["obligations"] if o["payer_region"] == region_code)
            receivable = sum(o["amount_fen"] for o in record["obligations"] if o["payee_region"] == region_code)
            if statement.status is StatementStatus.CONFIRMED:
                totals[0] += payable
                totals[1] += receivable
            rows.append(
                {
                    "region_code": region_code,
                    "agreement_code": agreement.code,
                    "side": side,
                    "year": str(statement.year),
                    "statement_id": str(statement.id),
                    "status": statement.status.value,
                    "payable_cny": _cny(payable),
                    "receivable_cny": _cny(receivable),
                    "net_cny": _cny(receivable - payable),
                    "record_sha256": statement.record_sha256,
                }
            )
    if rows:
        rows.append(
            dict.fromkeys(rows[0], "")
            | {
                "region_code": region_code,
                "agreement_code": "total (confirmed)",
                "payable_cny": _cny(totals[0]),
                "receivable_cny": _cny(totals[1]),
                "net_cny": _cny(totals[1] - totals[0]),
            }
        )
    return rows


def to_csv(rows: Sequence[Mapping[str, str]], empty_header: Sequence[str]) -> str:
    """Return rows as CSV text (a header alone when there are none)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else list(empty_header), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_xlsx(rows: Sequence[Mapping[str, str]], *, title: str, about: Mapping[str, str], header: Sequence[str]) -> bytes:
    """Return rows as an .xlsx workbook: an ``About`` sheet and one sheet of rows (amounts as numbers)."""
    from openpyxl import Workbook

    book = Workbook()
    info = book.active
    info.title = "About"
    info.append(["key", "value"])
    for key, value in about.items():
        info.append([key, value])
    info.column_dimensions["A"].width, info.column_dimensions["B"].width = 24, 90
    sheet = book.create_sheet(title[:31])
    columns = list(rows[0]) if rows else list(header)
    sheet.append(columns)
    for row in rows:
        sheet.append([_cell(column, row[column]) for column in columns])
    for index, column in enumerate(columns, start=1):
        if column.endswith("_cny"):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = MONEY_FORMAT
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(column: str, text: str) -> object:
    if column.endswith("_cny") and text:
        return float(Decimal(text))  # a spreadsheet number; the CSV keeps the exact text
    return text


AGREEMENT_HEADER = (
    "agreement_code", "year", "statement_id", "status", "value", "benchmark", "unit", "improvement", "benchmark_met",
    "amount_cny", "direction", "payer_region", "payee_region", "obligation_cny", "obligation_status", "record_sha256",
)  # fmt: skip
REGION_HEADER = (
    "region_code", "agreement_code", "side", "year", "statement_id", "status", "payable_cny", "receivable_cny",
    "net_cny", "record_sha256",
)  # fmt: skip
