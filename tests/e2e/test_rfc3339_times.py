"""Every instant in an API answer is RFC 3339 with an offset, on SQLite as on PostgreSQL.

SQLite stores ``DateTime(timezone=True)`` without its offset and gives back naive datetimes, so answers
built from them (``created_at`` of projects, plots, orders, …) used to read ``2026-11-25T09:30:00`` — not
an OpenAPI ``date-time``. The test drives the main flows (projects, plots, reports, issuance, transfer,
retirement, orders and a trade, the audit log) and walks every JSON answer: each value declared
``date-time`` in the OpenAPI document, and each string that looks like a timestamp, must carry an offset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass
from core.auth import OrgKind
from core.clock import FixedClock
from core.settings import Settings
from tests.conftest import settings_on

from .market_helpers import Login, deposit, issue, list_instrument, order

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, template_db: Path) -> Iterator[Settings]:
    """The app on a copy of the seeded SQLite template, or on a fresh, seeded PostgreSQL database."""
    with settings_on(request.param, template_db, tmp_path) as settings:
        yield settings


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}/{index}")
    elif isinstance(value, str):
        yield path, value


def date_time_fields(schema: Any, spec: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """Names of the properties an OpenAPI schema (following ``$ref``) declares as ``date-time``."""
    found: set[str] = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            target = spec
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            found |= date_time_fields(target, spec, seen | {ref})
        for name, prop in schema.get("properties", {}).items():
            if isinstance(prop, dict) and (
                prop.get("format") == "date-time"
                or any(p.get("format") == "date-time" for p in prop.get("anyOf", []) if isinstance(p, dict))
            ):
                found.add(name)
        for value in schema.values():
            if isinstance(value, dict | list):
                found |= date_time_fields(value, spec, seen)
    elif isinstance(schema, list):
        for item in schema:
            found |= date_time_fields(item, spec, seen)
    return found


def test_every_instant_in_the_main_answers_carries_an_offset(
    app: FastAPI, client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    bureau, verifier, registry, enterprise = (
        login(r) for r in ("forestry_bureau", "verifier", "registry", "enterprise")
    )
    auditor = login("auditor")
    spec = client.get("/openapi.json").json()
    answers: dict[str, Any] = {}

    def get(url: str, headers: dict[str, str] | None = None) -> Any:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        answers[f"GET {url}"] = response.json()
        return response.json()

    def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code in (200, 201), (url, response.text)
        answers[f"POST {url}"] = response.json()
        return response.json()

    project = {"name": "P", "scheme": "forestry_carbon_ticket", "province_code": "64",
               "crediting_start": "2026-01-01", "crediting_end": "2046-01-01"}  # fmt: skip
    created = post("/api/v1/projects", project, bureau)
    get(f"/api/v1/projects/{created['id']}", bureau)
    get("/api/v1/projects", bureau)
    plots = get("/api/v1/projects/1/plots", bureau)
    get(f"/api/v1/plots/{plots['features'][0]['id'] if 'features' in plots else plots[0]['id']}", bureau)
    reports = get("/api/v1/projects/1/monitoring-reports", bureau)["items"]
    report = next(r for r in reports if r["methodology"]["id"] == "FJ-FORESTRY-CARBON-TICKET")
    post(f"/api/v1/monitoring-reports/{report['id']}/verify", {"comment": "ok"}, verifier)
    post(f"/api/v1/monitoring-reports/{report['id']}/issue", {"comment": "ok"}, registry)
    get(f"/api/v1/monitoring-reports/{report['id']}", bureau)
    get(f"/api/v1/monitoring-reports/{report['id']}/workflow", bureau)
    get("/api/v1/holdings", bureau)
    retired = post("/api/v1/retirements", {"quantity_t": 1, "beneficiary": "B", "purpose": "P",
                                           "reporting_year": 2025}, bureau)  # fmt: skip
    get(f"/public/v1/retirements/{retired['verification_code']}")
    issue(session, clock, 1, "test:times", CreditClass.FORESTRY_CARBON_TICKET, 100)
    list_instrument(client, login, "FCT-2025", "FCT", "60")
    deposit(client, login, session, OrgKind.ENTERPRISE, 1_000_000)
    sell = order(client, login, "nx-bureau", "FCT-2025", "sell", "60.00", 5)
    order(client, login, "fj-enterprise", "FCT-2025", "buy", "60.00", 5)
    get(f"/api/v1/orders/{sell['order_id']}", login("nx-bureau"))
    get("/api/v1/orders", enterprise)
    get("/api/v1/fills", enterprise)
    get("/public/v1/market/instruments/FCT-2025/trades")
    get("/api/v1/audit/entries", auditor)
    get("/api/v1/audit/tree-head", auditor)
    session.rollback()

    declared = date_time_fields(spec.get("components", {}), spec)
    assert "created_at" in declared  # the OpenAPI document does declare instants as date-time
    checked = 0
    for where, answer in answers.items():
        for path, value in strings(answer):
            name = path.rsplit("/", 1)[-1]
            if name in declared or LOOKS_LIKE_TIME.match(value):
                if not LOOKS_LIKE_TIME.match(value):
                    continue  # a declared name holding something else (never the case for instants)
                assert RFC3339.match(value), f"{where} {path} = {value!r} is not RFC 3339 with an offset"
                checked += 1
    assert checked >= 20
