"""The SEEA-EA tables of a run as one Excel workbook (.xlsx), for statisticians.

One sheet per table of :data:`gep.tables.SEEA_TABLES` — summary, extent, physical and monetary supply
(region × indicator lines) and the supply tables by ecosystem type (indicator rows × ecosystem-type
columns, Σ types = total) — plus, when asked, a comparison with another run, and a ``run`` sheet with the
run's identity, tables' versions and hashes. The CSV files stay the canonical exact form (Decimal text);
in the workbook numbers are numeric cells (Excel holds IEEE doubles, exact to 15 significant digits)
with a number format per column kind (``0.00`` for 元, ``0.000`` for physical quantities), so a
statistician can sum them.

openpyxl writes the file (pure Python, no Excel needed); the table builders stay in :mod:`gep.tables`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

#: Sheet titles (Excel caps them at 31 characters).
SHEET_TITLES = {
    "summary": "GEP summary",
    "extent": "Extent account",
    "physical": "Physical supply",
    "monetary": "Monetary supply",
    "physical_by_type": "Physical supply by type",
    "monetary_by_type": "Monetary supply by type",
    "comparison": "Comparison",
}
MONEY_FORMAT = "#,##0.00"
QUANTITY_FORMAT = "#,##0.000"


def _cell(value: object) -> object:
    """Return a cell value: Decimal as a number, None as empty, anything else as is."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    return value


def _number_format(column: str, sheet: str) -> str | None:
    if column.endswith("_yuan") or sheet == "monetary_by_type":
        return MONEY_FORMAT
    if column.startswith("quantity") or sheet == "physical_by_type" or column.endswith("_km2"):
        return QUANTITY_FORMAT
    return None


def _write_sheet(book: Any, key: str, rows: Sequence[Mapping[str, object]]) -> None:
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(SHEET_TITLES[key])
    columns = list(rows[0]) if rows else ["(no rows)"]
    sheet.append(columns)
    for row in rows:
        sheet.append([_cell(row[column]) for column in columns])
    sheet.freeze_panes = "A2"
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(12, min(40, len(column) + 2))
        number_format = _number_format(column, key)
        if number_format is None:
            continue
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            if isinstance(cell.value, int | float):
                cell.number_format = number_format


def workbook_bytes(
    tables: Mapping[str, Sequence[Mapping[str, object]]],
    *,
    about: Mapping[str, object],
    comparison: Sequence[Mapping[str, object]] | None = None,
) -> bytes:
    """Return the .xlsx bytes: an ``run`` sheet (``about``: key, value), one sheet per table, the comparison."""
    from openpyxl import Workbook

    book = Workbook()
    info = book.active
    info.title = "Run"
    info.append(["key", "value"])
    for key, value in about.items():
        info.append([key, str(value)])
    info.column_dimensions["A"].width = 24
    info.column_dimensions["B"].width = 90
    for key, rows in tables.items():
        _write_sheet(book, key, rows)
    if comparison is not None:
        _write_sheet(book, "comparison", comparison)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
