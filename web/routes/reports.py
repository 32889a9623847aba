"""The calculation sheet of a monitoring report as a page of the site, for a logged-in person, printable."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import HTMLResponse

from access.deps import SessionDep, authorize
from carbon.monitoring_records import get_report
from core.auth import Principal
from web.pages import render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal | None, Depends(authorize)]


@router.get("/reports/{report_id}/sheet", response_class=HTMLResponse)
def page_report_sheet(
    request: Request, session: SessionDep, person: Person, report_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> HTMLResponse:
    """Every value of the stored record: methodology, parameters with citations, steps, results, hash."""
    report = get_report(session, report_id)
    record = report.record
    context = {
        "report": report,
        "record": record,
        "inputs_json": json.dumps(record.get("inputs", {}), ensure_ascii=False, indent=2),
        "details": [
            (k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
            for k, v in record.get("details", {}).items()
        ],
    }
    return render(request, "sheet.html", context, principal=person)
