"""The public registry's pages: the map and totals (``/``), projects, one project, retirements (and their CSV)."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access.deps import SessionDep, authorize
from carbon.ledger import CreditClass
from carbon.public_registry import (
    RetirementFilter,
    project_detail,
    published_projects,
    registry_totals,
    retirements_csv_rows,
    search_retirements,
)
from core.auth import Principal
from geodata.region_store import current_index
from web.pages import render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal | None, Depends(authorize)]
PAGE_SIZE = 20


def _map_data(request: Request, features: list[dict[str, Any]]) -> str:
    """Return the map island's data (JSON in a ``<script type="application/json">``: data, never run)."""
    settings = request.app.state.settings
    basemap = None
    if settings.basemap_url is not None:
        basemap = {"url": settings.basemap_url, "datum": settings.basemap_datum,
                   "attribution": settings.basemap_attribution}  # fmt: skip
    return json.dumps({"type": "FeatureCollection", "features": features, "basemap": basemap}, ensure_ascii=False)


def province_names(session: Session) -> dict[str, str]:
    """Return the Chinese name of each province by its two-digit code (GB/T 2260 ``640000`` → ``64``)."""
    return {b.code[:2]: b.name_zh for b in current_index(session).boundaries if b.level == "province"}


@router.get("/", response_class=HTMLResponse)
def page_home(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """The map of registered projects (generalised outlines) and the registry's totals."""
    projects = published_projects(session)
    totals = registry_totals(session)
    features = [
        {"type": "Feature", "geometry": p.outline,
         "properties": {"code": p.code, "name": p.name, "province_code": p.province_code,
                        "credit_class": ",".join(p.credit_classes) or "—", "issued_t": p.issued_t}}
        for p in projects if p.outline is not None
    ]  # fmt: skip
    names = province_names(session)
    chart = {
        "by_province": {f"{names.get(code, code)} {code}": v for code, v in totals.by_province.items()},
        "by_class": totals.by_class,
        "by_vintage": {str(year): v for year, v in totals.by_vintage.items()},
    }
    context = {"projects": projects, "totals": totals, "map_data": _map_data(request, features),
               "province_names": province_names(session),
               "chart_data": json.dumps(chart)}  # fmt: skip
    return render(request, "home.html", context, principal=person)


@router.get("/registry/projects", response_class=HTMLResponse)
def page_registry_projects(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """Every published project with its area, tonnes and classes."""
    context = {"projects": published_projects(session), "province_names": province_names(session)}
    return render(request, "projects.html", context, principal=person)


@router.get("/registry/projects/{code}", response_class=HTMLResponse)
def page_registry_project(
    request: Request, session: SessionDep, person: Person, code: Annotated[str, Path(max_length=40)]
) -> HTMLResponse:
    """One project: its plots' generalised outlines on a map, its batches and its retirements."""
    detail = project_detail(session, code)
    context = {
        "detail": detail,
        "map_data": _map_data(request, detail.plot_outlines),
        "province_names": province_names(session),
    }
    return render(request, "project.html", context, principal=person)


def _filter(beneficiary: str | None, year: str | None, credit_class: str | None,
            project: str | None) -> RetirementFilter:  # fmt: skip
    return RetirementFilter(beneficiary=beneficiary or None, year=int(year) if year else None,
                            credit_class=CreditClass(credit_class) if credit_class else None,
                            project=project or None)  # fmt: skip


# A search form sends its empty fields as empty strings: they mean "any", never a 422.
BeneficiaryQuery = Annotated[str | None, Query(max_length=300)]
YearQuery = Annotated[str | None, Query(max_length=4, pattern=r"^(|20\d\d|2100)$")]
ClassQuery = Annotated[str | None, Query(alias="class", max_length=3, pattern=r"^(|FCT|CCA|ERS|OFS|IFL)$")]
ProjectQuery = Annotated[str | None, Query(max_length=40)]


@router.get("/registry/retirements", response_class=HTMLResponse)
def page_registry_retirements(
    request: Request,
    session: SessionDep,
    person: Person,
    beneficiary: BeneficiaryQuery = None,
    year: YearQuery = None,
    credit_class: ClassQuery = None,
    project: ProjectQuery = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """Retirements, newest first, searchable by beneficiary, reporting year, class and project."""
    terms = _filter(beneficiary, year, credit_class, project)
    total, rows = search_retirements(session, terms, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    search = {
        k: v
        for k, v in (
            ("beneficiary", beneficiary),
            ("year", year),
            ("class", credit_class),
            ("project", project),
        )
        if v
    }
    context = {"terms": terms, "total": total, "rows": rows, "page": page, "pages": pages, "classes": list(CreditClass),
               "csv_url": "/registry/retirements.csv" + (f"?{urlencode(search)}" if search else ""),
               "prev_url": f"?{urlencode({**search, 'page': page - 1})}" if page > 1 else None,
               "next_url": f"?{urlencode({**search, 'page': page + 1})}" if page < pages else None}  # fmt: skip
    template = "retirements_table.html" if request.headers.get("HX-Request") == "true" else "retirements.html"
    return render(request, template, context, principal=person)


@router.get("/registry/retirements.csv")
def page_registry_retirements_csv(
    session: SessionDep,
    beneficiary: BeneficiaryQuery = None,
    year: YearQuery = None,
    credit_class: ClassQuery = None,
    project: ProjectQuery = None,
) -> Response:
    """Every retirement matching the search, as CSV (UTF-8 with a byte-order mark, so spreadsheets read 中文)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(
        retirements_csv_rows(session, _filter(beneficiary, year, credit_class, project))
    )
    headers = {"Content-Disposition": 'attachment; filename="retirements.csv"'}
    return Response("\ufeff" + buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
