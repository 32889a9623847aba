"""The public registry as read by anyone: published projects, their generalised outlines, totals, retirements.

Read-only queries returning plain frozen values (no ORM rows leave), shared by the web pages and meant for the
``/public/v1`` handlers too. Exact plot boundaries of holders' land need a login; the public sees each plot's
bounding box grown by about 1 km and snapped to a 0.01° grid (:data:`PUBLIC_GEOMETRY_DEG`), as the public
JSON API does. Draft projects are a proponent's work in progress, not registry records: they are not listed.

Quantities are whole tonnes (``int``); areas are the plots' geodesic m² as ``Decimal`` (shown in 亩/公顷).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import Batch, BlockState, CreditClass, HoldingBlock, Retirement, serial_of
from carbon.models import Plot, Project, ProjectStatus
from core.errors import NotFound

#: Public outlines: each plot's bounding box grown by ~1 km (0.01° of latitude ≈ 1.1 km), snapped to 0.01°.
PUBLIC_GEOMETRY_DEG = 0.01
#: Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ProjectSummary:
    """A published project with its generalised outline and its tonnes."""

    code: str
    name: str
    status: str
    scheme: str
    province_code: str
    county_code: str | None
    proponent: str
    plots: int
    area_m2: Decimal
    issued_t: int
    retired_t: int
    credit_classes: tuple[str, ...]
    outline: dict[str, Any] | None  # GeoJSON geometry, generalised


@dataclass(frozen=True)
class BatchSummary:
    """An issuance batch and its supply by state (tradable + escrowed + … + buffer share = issued)."""

    id: int
    project_code: str
    credit_class: str
    vintage: int
    province_code: str
    quantity_t: int
    buffer_t: int
    issued_at: datetime
    supply_t: dict[str, int]


@dataclass(frozen=True)
class RetirementRow:
    """One retirement as the public registry lists it."""

    verification_code: str
    retired_at: datetime
    quantity_t: int
    beneficiary: str
    purpose: str
    reporting_year: int
    use: str
    projects: tuple[str, ...]
    credit_classes: tuple[str, ...]
    vintages: tuple[int, ...]
    serials: tuple[str, ...]


@dataclass(frozen=True)
class RetirementFilter:
    """Search terms of the public retirement list (all optional)."""

    beneficiary: str | None = None
    year: int | None = None
    credit_class: CreditClass | None = None
    project: str | None = None


@dataclass(frozen=True)
class Totals:
    """The registry's totals: issued, retired and buffer tonnes, in all and by province, class and vintage."""

    issued_t: int
    retired_t: int
    buffer_t: int
    by_province: dict[str, dict[str, int]] = field(default_factory=dict)
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    by_vintage: dict[int, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectDetail:
    """One published project: summary, generalised plot outlines, batches and retirements."""

    project: ProjectSummary
    plot_outlines: list[dict[str, Any]]  # GeoJSON features: plot code, name, area, generalised geometry
    batches: list[BatchSummary]
    retirements: list[RetirementRow]


def generalise(geometries: Sequence[BaseGeometry]) -> BaseGeometry | None:
    """Return the union of the geometries' bounding boxes grown by ~1 km, snapped to the public grid."""
    boxes = [g.envelope.buffer(PUBLIC_GEOMETRY_DEG) for g in geometries]
    if not boxes:
        return None
    return shapely.set_precision(shapely.unary_union(boxes), PUBLIC_GEOMETRY_DEG)


def _published() -> Any:
    return select(Project).where(Project.status != ProjectStatus.DRAFT)


def _retired_by_project(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Batch.project_id, func.sum(HoldingBlock.serial_end - HoldingBlock.serial_start + 1))
        .join(Batch, HoldingBlock.batch_id == Batch.id)
        .where(HoldingBlock.closed_at.is_(None), HoldingBlock.state == BlockState.RETIRED)
        .group_by(Batch.project_id)
    ).all()
    return {project_id: int(quantity) for project_id, quantity in rows}


def _summary(session: Session, project: Project, plots: list[Plot], retired_t: int) -> ProjectSummary:
    batches = list(session.scalars(select(Batch).where(Batch.project_id == project.id)))
    outline = generalise([p.geometry for p in plots])
    return ProjectSummary(
        code=project.code, name=project.name, status=project.status.value, scheme=project.scheme.value,
        province_code=project.province_code, county_code=project.county_code, proponent=project.organisation.name,
        plots=len(plots), area_m2=sum((Decimal(str(p.area_m2)) for p in plots), Decimal(0)),
        issued_t=sum(b.quantity_t for b in batches), retired_t=retired_t,
        credit_classes=tuple(sorted({b.credit_class.value for b in batches})),
        outline=outline.__geo_interface__ if outline is not None else None,
    )  # fmt: skip


def published_projects(session: Session, *, limit: int | None = None, offset: int = 0) -> list[ProjectSummary]:
    """Return published projects (not draft), oldest first, with their generalised outlines and tonnes.

    ``limit``/``offset`` page them (all when ``limit`` is None).
    """
    projects = list(session.scalars(_published().order_by(Project.id).limit(limit).offset(offset)))
    plots: dict[int, list[Plot]] = defaultdict(list)
    for plot in session.scalars(select(Plot).where(Plot.project_id.in_([p.id for p in projects])).order_by(Plot.id)):
        plots[plot.project_id].append(plot)
    retired = _retired_by_project(session)
    return [_summary(session, p, plots[p.id], retired.get(p.id, 0)) for p in projects]


def batch_summaries(
    session: Session, *, project_id: int | None = None, limit: int | None = None, offset: int = 0
) -> list[BatchSummary]:
    """Return issuance batches (of one project, or all; paged by ``limit``/``offset``) with their open supply."""
    query = select(Batch).order_by(Batch.id).limit(limit).offset(offset)
    if project_id is not None:
        query = query.where(Batch.project_id == project_id)
    batches = list(session.scalars(query))
    supply: dict[int, dict[str, int]] = defaultdict(dict)
    if batches:
        for batch_id, state, quantity in session.execute(
            select(HoldingBlock.batch_id, HoldingBlock.state,
                   func.sum(HoldingBlock.serial_end - HoldingBlock.serial_start + 1))
            .where(HoldingBlock.closed_at.is_(None), HoldingBlock.batch_id.in_([b.id for b in batches]))
            .group_by(HoldingBlock.batch_id, HoldingBlock.state)
        ):  # fmt: skip
            supply[batch_id][BlockState(state).value] = int(quantity)
    return [
        BatchSummary(id=b.id, project_code=b.project.code, credit_class=b.credit_class.value, vintage=b.vintage_year,
                     province_code=b.province_code, quantity_t=b.quantity_t, buffer_t=b.buffer_t,
                     issued_at=b.issued_at, supply_t=supply[b.id])
        for b in batches
    ]  # fmt: skip


def registry_totals(session: Session) -> Totals:
    """Return issued, retired and buffer tonnes in all and by province, credit class and vintage."""
    by_province: dict[str, dict[str, int]] = defaultdict(lambda: {"issued_t": 0, "retired_t": 0, "buffer_t": 0})
    by_class: dict[str, dict[str, int]] = defaultdict(lambda: {"issued_t": 0, "retired_t": 0, "buffer_t": 0})
    by_vintage: dict[int, dict[str, int]] = defaultdict(lambda: {"issued_t": 0, "retired_t": 0, "buffer_t": 0})
    for batch in batch_summaries(session):
        retired = batch.supply_t.get(BlockState.RETIRED.value, 0)
        for bucket in (by_province[batch.province_code], by_class[batch.credit_class], by_vintage[batch.vintage]):
            bucket["issued_t"] += batch.quantity_t
            bucket["retired_t"] += retired
            bucket["buffer_t"] += batch.buffer_t
    return Totals(
        issued_t=sum(v["issued_t"] for v in by_class.values()),
        retired_t=sum(v["retired_t"] for v in by_class.values()),
        buffer_t=sum(v["buffer_t"] for v in by_class.values()),
        by_province=dict(sorted(by_province.items())),
        by_class=dict(sorted(by_class.items())),
        by_vintage=dict(sorted(by_vintage.items())),
    )


def project_detail(session: Session, code: str) -> ProjectDetail:
    """Return a published project by its code.

    Raises:
        NotFound: No published project has this code (drafts are not public).
    """
    project = session.scalars(_published().where(Project.code == code.upper())).first()
    if project is None:
        raise NotFound(f"no published project has the code {code!r}")
    plots = list(session.scalars(select(Plot).where(Plot.project_id == project.id).order_by(Plot.id)))
    outlines = []
    for plot in plots:
        outline = generalise([plot.geometry])
        outlines.append({
            "type": "Feature", "geometry": outline.__geo_interface__ if outline is not None else None,
            "properties": {"code": plot.plot_code or "", "name": plot.name or "", "area_m2": round(plot.area_m2)},
        })  # fmt: skip
    summary = _summary(session, project, plots, _retired_by_project(session).get(project.id, 0))
    _total, retired = search_retirements(session, RetirementFilter(project=project.code), limit=100, offset=0)
    return ProjectDetail(summary, outlines, batch_summaries(session, project_id=project.id), retired)


def _retirement_query(terms: RetirementFilter) -> Any:
    query = select(Retirement)
    if terms.beneficiary:
        query = query.where(func.lower(Retirement.beneficiary).contains(terms.beneficiary.lower(), autoescape=True))
    if terms.year is not None:
        query = query.where(Retirement.reporting_year == terms.year)
    if terms.credit_class is not None or terms.project:
        retired = (
            select(HoldingBlock.retirement_id)
            .join(Batch, HoldingBlock.batch_id == Batch.id)
            .join(Project, Batch.project_id == Project.id)
            .where(HoldingBlock.retirement_id.is_not(None))
        )
        if terms.credit_class is not None:
            retired = retired.where(Batch.credit_class == terms.credit_class)
        if terms.project:
            retired = retired.where(Project.code == terms.project.upper())
        query = query.where(Retirement.id.in_(retired))
    return query


def _rows(session: Session, retirements: Sequence[Retirement]) -> list[RetirementRow]:
    blocks: dict[int, list[HoldingBlock]] = defaultdict(list)
    if retirements:
        for block in session.scalars(
            select(HoldingBlock)
            .where(HoldingBlock.retirement_id.in_([r.id for r in retirements]), HoldingBlock.closed_at.is_(None))
            .order_by(HoldingBlock.batch_id, HoldingBlock.serial_start)
        ):
            blocks[block.retirement_id or 0].append(block)
    return [
        RetirementRow(
            verification_code=r.verification_code, retired_at=r.created_at, quantity_t=r.quantity_t,
            beneficiary=r.beneficiary, purpose=r.purpose, reporting_year=r.reporting_year, use=r.use,
            projects=tuple(sorted({b.batch.project.code for b in blocks[r.id]})),
            credit_classes=tuple(sorted({b.batch.credit_class.value for b in blocks[r.id]})),
            vintages=tuple(sorted({b.batch.vintage_year for b in blocks[r.id]})),
            serials=tuple(serial_of(b).format() for b in blocks[r.id]),
        )
        for r in retirements
    ]  # fmt: skip


def retirements(session: Session, terms: RetirementFilter, *, limit: int, offset: int) -> list[RetirementRow]:
    """Return one page of the retirements matching ``terms``, newest first."""
    page = session.scalars(_retirement_query(terms).order_by(Retirement.id.desc()).limit(limit).offset(offset)).all()
    return _rows(session, page)


def search_retirements(
    session: Session, terms: RetirementFilter, *, limit: int, offset: int
) -> tuple[int, list[RetirementRow]]:
    """Return the number of retirements matching ``terms`` and one page of them, newest first."""
    total = session.scalar(select(func.count()).select_from(_retirement_query(terms).subquery())) or 0
    return int(total), retirements(session, terms, limit=limit, offset=offset)


def retirements_csv_rows(session: Session, terms: RetirementFilter) -> list[list[Any]]:
    """Return every matching retirement as CSV cells (header first; formula-like text is quoted with ``'``)."""
    columns = ["verification_code", "retired_at", "quantity_t", "beneficiary", "purpose", "reporting_year", "use",
               "projects", "credit_classes", "vintages", "serials"]  # fmt: skip
    rows: list[list[Any]] = [columns]
    query = _retirement_query(terms).order_by(Retirement.id.desc())
    offset, page_size = 0, 500
    while True:
        page = list(session.scalars(query.limit(page_size).offset(offset)))
        for row in _rows(session, page):
            values = [getattr(row, name) for name in columns]
            rows.append([_cell(";".join(map(str, v)) if isinstance(v, tuple) else v) for v in values])
        if len(page) < page_size:
            return rows
        offset += page_size


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value
