"""Health of the service and its database."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep

router = APIRouter(tags=["system"])


@router.get("/health")
def health(session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Report liveness and whether the database answers."""
    session.execute(text("SELECT 1"))
    return {
        "status": "ok",
        "database": session.get_bind().dialect.name,
        "tasks": "broker" if settings.broker_url else "in-process",
    }
