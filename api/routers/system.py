"""Health of the service and its database, and its Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import Field
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep
from api.fields import Answer
from core.metrics import render

router = APIRouter(tags=["system"])


class Health(Answer):
    """The service is up and its database answers."""

    status: Literal["ok"]
    database: str = Field(description="The database's dialect: sqlite or postgresql.")
    tasks: Literal["broker", "in-process"]


@router.get("/health")
def health(session: SessionDep, settings: SettingsDep) -> Health:
    """Report liveness and whether the database answers."""
    session.execute(text("SELECT 1"))
    return Health(
        status="ok",
        database=session.get_bind().dialect.name,
        tasks="broker" if settings.broker_url else "in-process",
    )


@router.get(
    "/metrics",
    name="read_metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text exposition"}},
)
def read_metrics() -> Response:
    """Return the Prometheus text exposition (every process's values in multiprocess mode, ADR 029).

    Public only when ``SHANHAI_METRICS_PUBLIC`` (default: in development); otherwise the operator or an auditor.
    """
    return Response(render(), media_type=CONTENT_TYPE_LATEST)
