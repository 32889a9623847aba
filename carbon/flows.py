"""Cross-province flows: where tonnes go — by trade, registry transfer and retirement — and what trades paid.

One report, three kinds of movement, each row saying where the tonnes come from and where they go:

- ``transfer``: a registry transfer between two organisations (:func:`carbon.ledger.transfer`, counted
  when it takes effect: at once, or when the receiver accepts a pending transfer). Deliveries of exchange
  trades move tonnes too, out of escrow; they are reported as ``trade`` by ``trading.flows`` and not
  counted again here. A pledge enforced by its bank and a reversal's cancellation are not transfers.
- ``retirement``: tonnes retired for good, by their holder or on an exchange fill (retire on fill).
- ``trade``: a settled exchange trade (``trading.flows``, which adds its rows to the same :class:`FlowTally`;
  this module never reads the exchange's tables, ``trading`` imports ``carbon``, not the reverse).

Rules:

- The *origin* is where the tonnes come from: the province and county of their project.
- The *destination* is the receiving organisation's province and county: the transfer's receiver, the
  trade's buyer, the retiring holder.
- The month is the Asia/Shanghai month of the movement (of the trading day, for a trade).
- Tonnes are whole serialised tonnes; CNY is a trade's gross value (price × tonnes, fees excluded), and
  ``None`` for transfers and retirements, which carry no price. Money is ``Decimal`` (JSON: strings).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from carbon.ledger import Account, Batch, BlockState, Movement
from carbon.models import Project
from core.auth import Organisation
from core.errors import InvalidInput
from core.money import Fen
from core.regions import divisions, province_name

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The kinds of flow, in report order.
KINDS = ("trade", "transfer", "retirement")
#: The columns of a flow row, in the order of the CSV and the Excel sheet.
COLUMNS = (
    "kind",
    "month",
    "origin_province",
    "origin_province_name",
    "origin_county",
    "origin_county_name",
    "destination_province",
    "destination_province_name",
    "destination_county",
    "destination_county_name",
    "project_id",
    "project_code",
    "credit_class",
    "tonnes",
    "cny",
)
#: The dimensions the report also totals by.
DIMENSIONS = {
    "kind": ("kind",),
    "pair": ("origin_province", "destination_province"),
    "county_pair": ("origin_county", "destination_county"),
    "kind_pair": ("kind", "origin_province", "destination_province"),
    "month": ("month",),
    "project": ("project_id", "project_code"),
    "credit_class": ("credit_class",),
}


@dataclass(frozen=True)
class FlowQuery:
    """Which flows count: origin/destination provinces and kind (``None`` = any), days ``[start, end]``."""

    origin_province: str | None = None
    destination_province: str | None = None
    start: date | None = None
    end: date | None = None
    kind: str | None = None

    def check(self) -> None:
        """Raise :class:`InvalidInput` listing every defect."""
        problems = [
            f"{name}: unknown province code {code!r} (GB/T 2260, two digits)"
            for name, code in (
                ("origin_province", self.origin_province),
                ("destination_province", self.destination_province),
            )
            if code is not None and province_name(code) is None
        ]
        if self.start is not None and self.end is not None and self.start > self.end:
            problems.append("start must not be after end")
        if self.kind is not None and self.kind not in KINDS:
            problems.append(f"kind: unknown kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if problems:
            raise InvalidInput("; ".join(problems), problems=[{"reason": p} for p in problems])

    def admits(self, kind: str, day: date, origin_province: str | None, destination_province: str | None) -> bool:
        """Return whether a movement of ``kind`` on ``day`` between these provinces belongs to the report."""
        return (
            (self.kind is None or kind == self.kind)
            and (self.start is None or day >= self.start)
            and (self.end is None or day <= self.end)
            and (self.origin_province is None or origin_province == self.origin_province)
            and (self.destination_province is None or destination_province == self.destination_province)
        )


@dataclass(frozen=True, order=True)
class FlowKey:
    """The finest grain of the report: kind × month × origin × destination × project × class."""

    kind: str
    month: str
    origin_province: str | None
    origin_county: str | None
    destination_province: str | None
    destination_county: str | None
    project_id: int | None
    credit_class: str | None


@dataclass
class FlowTally:
    """Tonnes (and, for trades, fen) summed per :class:`FlowKey`; each source of flows adds to one tally."""

    tonnes: dict[FlowKey, int] = field(default_factory=lambda: defaultdict(int))
    fen: dict[FlowKey, int] = field(default_factory=dict)

    def add(self, key: FlowKey, tonnes: int, fen: int | None = None) -> None:
        """Count ``tonnes`` (and ``fen`` of value, for a trade) under ``key``."""
        self.tonnes[key] += tonnes
        if fen is not None:
            self.fen[key] = self.fen.get(key, 0) + fen


def shanghai_day(at: datetime) -> date:
    """Return the Asia/Shanghai date of an instant (a naive instant is UTC, as SQLite returns it).

    >>> shanghai_day(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    datetime.date(2026, 12, 1)
    """
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(SHANGHAI).date()


def month_of(day: date) -> str:
    """Return the ``YYYY-MM`` month of a day.

    >>> month_of(date(2026, 12, 1))
    '2026-12'
    """
    return f"{day.year:04d}-{day.month:02d}"


@dataclass(frozen=True)
class BatchOrigin:
    """Where a batch's tonnes come from: its project, the project's province and county, the credit class."""

    project_id: int
    province_code: str
    county_code: str | None
    credit_class: str


def batch_origins(session: Session, numbers: Iterable[tuple[int, int]]) -> dict[tuple[int, int], BatchOrigin]:
    """Return the origin of each batch named by ``(project number, batch number)`` (as serials name them).

    This is the registry's public face for callers that hold serials but must not read its tables (the
    exchange's part of the report); batches that do not exist are absent from the answer.
    """
    wanted = set(numbers)
    if not wanted:
        return {}
    rows = session.execute(
        select(Batch.project_id, Batch.batch_number, Batch.province_code, Batch.credit_class, Project.county_code)
        .join(Project, Project.id == Batch.project_id)
        .where(Batch.project_id.in_({project for project, _ in wanted}))
    )
    return {
        (row.project_id, row.batch_number): BatchOrigin(
            row.project_id, row.province_code, row.county_code, row.credit_class.value
        )
        for row in rows
        if (row.project_id, row.batch_number) in wanted
    }


#: Registry movements that are flows: transfers between organisations that are not exchange deliveries
#: (those leave escrow and are counted as trades) and every retirement.
_FLOW_MOVEMENTS = or_(
    and_(Movement.kind == "transfer", Movement.from_state != BlockState.ESCROWED.value),
    Movement.kind == "retire",
)


def add_registry_flows(session: Session, query: FlowQuery, tally: FlowTally) -> None:
    """Add the registry's transfers and retirements that ``query`` admits to ``tally``."""
    query.check()
    receiver = aliased(Organisation)
    statement = (
        select(
            Movement.kind,
            Movement.created_at,
            Movement.serial_start,
            Movement.serial_end,
            Batch.project_id,
            Batch.province_code,
            Batch.credit_class,
            Project.county_code,
            receiver.province_code.label("destination_province"),
            receiver.county_code.label("destination_county"),
        )
        .join(Batch, Batch.id == Movement.batch_id)
        .join(Project, Project.id == Batch.project_id)
        .join(Account, Account.id == Movement.to_account_id)
        .join(receiver, receiver.id == Account.organisation_id)
        .where(_FLOW_MOVEMENTS)
        .order_by(Movement.id)
    )
    if query.origin_province is not None:
        statement = statement.where(Batch.province_code == query.origin_province)
    if query.destination_province is not None:
        statement = statement.where(receiver.province_code == query.destination_province)
    for row in session.execute(statement):
        kind = "retirement" if row.kind == "retire" else "transfer"
        day = shanghai_day(row.created_at)
        if not query.admits(kind, day, row.province_code, row.destination_province):
            continue
        key = FlowKey(kind, month_of(day), row.province_code, row.county_code, row.destination_province,
                      row.destination_county, row.project_id, row.credit_class.value)  # fmt: skip
        tally.add(key, row.serial_end - row.serial_start + 1)


def _county_name(code: str | None) -> str | None:
    division = divisions().get(code) if code else None
    return division.name_zh if division else None


def flow_rows(session: Session, tally: FlowTally) -> list[dict[str, Any]]:
    """Return the tally as report rows (names resolved), ordered by kind, month, origin, destination, project."""
    project_ids = {key.project_id for key in tally.tonnes if key.project_id is not None}
    found = session.execute(select(Project.id, Project.code).where(Project.id.in_(project_ids)))
    codes: dict[int, str] = {project_id: code for project_id, code in found}  # noqa: C416 (rows, not pairs)
    order = {kind: n for n, kind in enumerate(KINDS)}

    def sort_key(key: FlowKey) -> tuple[Any, ...]:
        return (order[key.kind], key.month, *("" if v is None else str(v) for v in (
            key.origin_province, key.origin_county, key.destination_province, key.destination_county)),
            key.project_id or 0, key.credit_class or "")  # fmt: skip

    rows = []
    for key in sorted(tally.tonnes, key=sort_key):
        fen = tally.fen.get(key)
        rows.append(
            {
                "kind": key.kind,
                "month": key.month,
                "origin_province": key.origin_province,
                "origin_province_name": province_name(key.origin_province) if key.origin_province else None,
                "origin_county": key.origin_county,
                "origin_county_name": _county_name(key.origin_county),
                "destination_province": key.destination_province,
                "destination_province_name": (
                    province_name(key.destination_province) if key.destination_province else None
                ),
                "destination_county": key.destination_county,
                "destination_county_name": _county_name(key.destination_county),
                "project_id": key.project_id,
                "project_code": codes.get(key.project_id) if key.project_id is not None else None,
                "credit_class": key.credit_class,
                "tonnes": tally.tonnes[key],
                "cny": None if fen is None else Fen(fen).cny,
            }
        )
    return rows


def totals_by(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return tonnes and CNY summed over ``rows`` grouped by ``columns`` (``()`` gives the grand total).

    CNY sums the trades' values only; a group without a trade has ``None``.
    """
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        key = tuple(row[c] for c in columns)
        total = sums.setdefault(key, [0, None])
        total[0] += row["tonnes"]
        if row["cny"] is not None:
            total[1] = (total[1] or Decimal("0.00")) + row["cny"]
    ordered = sorted(sums.items(), key=lambda item: tuple("" if v is None else str(v) for v in item[0]))
    return [{**dict(zip(columns, key, strict=True)), "tonnes": t, "cny": cny} for key, (t, cny) in ordered]


def flow_report(session: Session, query: FlowQuery, tally: FlowTally) -> dict[str, Any]:
    """Return the flows report: finest rows, totals by each of :data:`DIMENSIONS`, and the grand total."""
    rows = flow_rows(session, tally)
    grand = totals_by(rows, ())
    return {
        "query": {
            "origin_province": query.origin_province,
            "destination_province": query.destination_province,
            "kind": query.kind,
            "start": query.start.isoformat() if query.start else None,
            "end": query.end.isoformat() if query.end else None,
        },
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "rows": rows,
        "totals": {name: totals_by(rows, columns) for name, columns in DIMENSIONS.items()},
        "total": grand[0] if grand else {"tonnes": 0, "cny": None},
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
