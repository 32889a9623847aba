"""Cross-province flows as the cooperation reports them: Ningxia → Fujian by month, county pair and kind (issue 25).

The same report the API serves (``trading.flows.flow_report``: the registry's transfers and retirements with
the exchange's trades, ADR 024), for a logged-in person: a Sankey chart (ECharts, vendored) from origin county
to destination county, and tables by kind and province pair, by month, by county pair — every number of the
chart is in them. The rows download as CSV or XLSX (``carbon.flows.flows_csv``/``flows_xlsx``), filtered alike.
Defaults: from Ningxia (64) to Fujian (35); "any" on either side widens it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access.deps import SessionDep, authorize
from carbon import flows as carbon_flows
from core.auth import Principal
from trading import flows as trading_flows
from web.i18n import N_
from web.pages import query_date, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
#: Ningxia and Fujian, the cooperation's two provinces (GB/T 2260).
NINGXIA, FUJIAN = "64", "35"
ProvinceField = Annotated[str, Query(max_length=2, pattern=r"^(\d{2})?$")]
DayField = Annotated[str, Query(max_length=10)]
KIND_LABELS = {"trade": N_("Trades"), "transfer": N_("Transfers"), "retirement": N_("Retirements")}
KindField = Annotated[Literal["", "trade", "transfer", "retirement"], Query()]


def _report(session: Session, origin: str, destination: str, kind: str, start: str, end: str) -> dict[str, Any]:
    since, until = query_date(start, "start"), query_date(end, "end")
    query = carbon_flows.FlowQuery(origin or None, destination or None, since, until, kind or None)
    return trading_flows.flow_report(session, query)


def sankey(report: dict[str, Any]) -> dict[str, Any]:
    """Nodes and links of the chart: origin county (or province) → destination county (or province), tonnes.

    A name can be both an origin and a destination (a transfer within a county): the two sides are kept apart
    by a side marker, as ECharts' Sankey refuses cycles.
    """
    links: dict[tuple[str, str], int] = {}
    for row in report["rows"]:
        source = row["origin_county_name"] or row["origin_province_name"] or "?"
        target = row["destination_county_name"] or row["destination_province_name"] or "?"
        links[(source, target)] = links.get((source, target), 0) + row["tonnes"]
    nodes = sorted({f"{s} ▸" for s, _ in links} | {f"▸ {t}" for _, t in links})
    return {"nodes": [{"name": n} for n in nodes],
            "links": [{"source": f"{s} ▸", "target": f"▸ {t}", "value": v} for (s, t), v in links.items()]}  # fmt: skip


@router.get("/reports/flows", response_class=HTMLResponse)
def page_flows(
    request: Request, session: SessionDep, person: Person, origin: ProvinceField = NINGXIA,
    destination: ProvinceField = FUJIAN, kind: KindField = "", start: DayField = "", end: DayField = "",
) -> HTMLResponse:  # fmt: skip
    """The flows chart and tables, filtered by provinces, kind and days."""
    report = _report(session, origin, destination, kind, start, end)
    filters = {"origin": origin, "destination": destination, "kind": kind, "start": start, "end": end}
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    rows = report["rows"]
    tables = {
        "kind_pair": carbon_flows.totals_by(rows, ("kind", "origin_province_name", "destination_province_name")),
        "month": carbon_flows.totals_by(rows, ("month", "kind")),
        "county_pair": carbon_flows.totals_by(rows, ("origin_county", "origin_county_name", "destination_county",
                                                     "destination_county_name")),
    }  # fmt: skip
    context = {"report": report, "filters": filters, "query": query, "tables": tables, "kinds": KIND_LABELS,
               "chart": json.dumps(sankey(report), ensure_ascii=False)}  # fmt: skip
    return render(request, "flows.html", context, principal=person)


@router.get("/reports/flows.csv")
def page_flows_csv(
    session: SessionDep, _person: Person, origin: ProvinceField = NINGXIA, destination: ProvinceField = FUJIAN,
    kind: KindField = "", start: DayField = "", end: DayField = "",
) -> Response:  # fmt: skip
    """The report's rows as CSV (UTF-8 with a BOM, so Excel reads the Chinese names)."""
    text = carbon_flows.flows_csv(_report(session, origin, destination, kind, start, end))
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="flows.csv"'})  # fmt: skip


@router.get("/reports/flows.xlsx")
def page_flows_xlsx(
    session: SessionDep, _person: Person, origin: ProvinceField = NINGXIA, destination: ProvinceField = FUJIAN,
    kind: KindField = "", start: DayField = "", end: DayField = "",
) -> Response:  # fmt: skip
    """The report as an Excel workbook: the rows, then totals per dimension."""
    body = carbon_flows.flows_xlsx(_report(session, origin, destination, kind, start, end))
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={"Content-Disposition": 'attachment; filename="flows.xlsx"'})
