"""No input gives a 500 (issue 16.1): every class of input that used to reach the database or the decimal
context unbounded is now a 422 (or, for a balance at its column's limit, a 409) problem, and nothing is written.

Each class runs on SQLite and on PostgreSQL: ids of 2³¹ and NUL bytes failed only on PostgreSQL
(``integer out of range``, ``A string literal cannot contain NUL``), ids of 2⁶³ only on SQLite (``OverflowError``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from carbon.models import Project
from core.auth import OrgKind
from core.settings import Settings
from tests.conftest import settings_on
from tests.e2e.market_helpers import user_of
from tests.e2e.test_monitoring_reports import ticket_request
from trading.models import CashAccount

Login = Callable[[str], dict[str, str]]
INT32_MAX = 2**31 - 1  # PostgreSQL INTEGER
INT64_MAX = 2**63 - 1  # BIGINT
TOO_BIG = [INT32_MAX + 1, 2**63, 10**30]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, template_db: Path) -> Iterator[Settings]:
    """The app on a copy of the seeded SQLite template, or on a fresh, seeded PostgreSQL database."""
    with settings_on(request.param, template_db, tmp_path) as settings:
        yield settings


def refused(response: Response, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [error.get("pointer", "") for error in body.get("errors", [])]


def test_path_ids_beyond_the_column_are_422(client: TestClient, login: Login) -> None:
    for value in TOO_BIG:
        body = refused(client.get(f"/public/v1/auctions/{value}"))  # anonymous
        assert body["type"] == "urn:shanhai:problem:core/invalid-request"
        assert pointers(body) == ["/path/auction_id"]
        refused(client.get(f"/api/v1/projects/{value}", headers=login("auditor")))
        refused(client.get(f"/api/v1/orders/{value}", headers=login("enterprise")))
        refused(client.post(f"/api/v1/transfers/{value}/accept", json={}, headers=login("enterprise")))
        refused(client.get(f"/api/v1/gep/runs/1/compare/{value}.csv", headers=login("auditor")))
        # The largest storable id is a plain 404.
        assert client.get(f"/public/v1/auctions/{INT32_MAX}").status_code == 404


def test_offsets_limits_and_cursors_beyond_the_column_are_422(client: TestClient, login: Login) -> None:
    for value in TOO_BIG:
        assert pointers(refused(client.get("/public/v1/projects", params={"offset": value}))) == ["/query/offset"]
        refused(client.get("/public/v1/projects", params={"limit": value}))
        refused(client.get("/public/v1/retirements", params={"offset": value}))
        refused(client.get("/public/v1/market/instruments/X/trades", params={"before_id": value}))
    for value in TOO_BIG[1:]:  # audit sequence numbers are BIGINT
        refused(client.get("/api/v1/audit/entries", params={"after": value}, headers=login("auditor")))
        refused(client.get("/api/v1/audit/proofs/inclusion", params={"seq": value}))
        refused(client.get("/public/v1/market/instruments/X/stream", params={"after_seq": value}))
    assert client.get("/api/v1/audit/entries", params={"after": 2**40}, headers=login("auditor")).json()["items"] == []


def test_a_last_event_id_that_is_no_sequence_number_is_422(client: TestClient) -> None:
    for header in ["\u00b2", "9" * 20, "-1", "1.5"]:
        problem = refused(
            client.get("/public/v1/market/instruments/X/stream", headers={"Last-Event-ID": header.encode("latin-1")})
        )
        assert pointers(problem) == ["/header/Last-Event-ID"]


def test_integer_body_fields_beyond_their_column_are_422(client: TestClient, login: Login, session: Session) -> None:
    for value in TOO_BIG:
        body = {"to_organisation_id": value, "batch_id": 1, "quantity_t": 1}
        problem = refused(client.post("/api/v1/transfers", json=body, headers=login("forestry_bureau")))
        assert "/body/to_organisation_id" in pointers(problem)
        order = {"instrument_id": "X", "side": "buy", "price_cny": "1", "quantity_t": value * 1000}
        assert "/body/quantity_t" in pointers(
            refused(client.post("/api/v1/orders", json=order, headers=login("enterprise")))
        )
        organisation_id = user_of(session, OrgKind.ENTERPRISE).organisation_id
        session.rollback()
        deposit = {"organisation_id": organisation_id, "amount_fen": value * 10**10, "reference": "B-1"}
        refused(client.post("/api/v1/cash/deposits", json=deposit, headers=login("operator")))
        project = {"name": "P", "scheme": "ccer_afforestation", "province_code": "64", "crediting_start": "2021-01-01",
                   "crediting_end": "2030-01-01", "organisation_id": value}  # fmt: skip
        refused(client.post("/api/v1/projects", json=project, headers=login("forestry_bureau")))


def test_control_characters_in_text_are_422_and_nothing_is_written(
    client: TestClient, login: Login, session: Session
) -> None:
    for text in ["a\x00b", "\x00", "line\x1bescape"]:
        before = session.scalar(select(func.count()).select_from(Project))
        session.rollback()
        project = {"name": text, "scheme": "ccer_afforestation", "province_code": "64", "crediting_start": "2021-01-01",
                   "crediting_end": "2030-01-01", "description": text}  # fmt: skip
        problem = refused(client.post("/api/v1/projects", json=project, headers=login("forestry_bureau")))
        assert "/body/name" in pointers(problem)
        assert session.scalar(select(func.count()).select_from(Project)) == before
        session.rollback()
        # Query strings, path segments and free-form JSON (GeoJSON properties) alike.
        refused(client.get("/api/v1/audit/entries", params={"subject": text}, headers=login("auditor")))
        refused(client.get("/public/v1/retirements", params={"beneficiary": text}))
        refused(client.get(f"/public/v1/retirements/{quote(text)}"))
        feature = {"type": "Feature", "properties": {"plot_code": text, "note": text},
                   "geometry": {"type": "Point", "coordinates": [106.2, 36.0]}}  # fmt: skip
        document = {"type": "FeatureCollection", "features": [feature]}
        problem = refused(client.post("/api/v1/projects/1/plots", json=document, headers=login("forestry_bureau")))
        assert "/body/features/0/properties/plot_code" in pointers(problem)


def test_newlines_stay_legitimate_in_multiline_text(client: TestClient, login: Login) -> None:
    project = {"name": "Two lines", "scheme": "ccer_afforestation", "province_code": "64",
               "crediting_start": "2021-01-01", "crediting_end": "2030-01-01",
               "description": "first line\nsecond line\ttabbed"}  # fmt: skip
    response = client.post("/api/v1/projects", json=project, headers=login("forestry_bureau"))
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "first line\nsecond line\ttabbed"
    project["name"] = "a\nb"
    refused(client.post("/api/v1/projects", json=project, headers=login("forestry_bureau")))


def test_methodology_decimals_beyond_range_are_422(client: TestClient, login: Login) -> None:
    for value in ["1e400", "-1e400", "1E+1000", "NaN", "Infinity", "1e15"]:
        request = ticket_request()
        request["inputs"]["sub_compartments"][0]["end"]["stock_volume_m3_per_ha"] = value
        url = "/api/v1/projects/1/monitoring-reports/preview"
        problem = refused(client.post(url, json=request, headers=login("forestry_bureau")))
        assert "/inputs/sub_compartments/0/end/stock_volume_m3_per_ha" in pointers(problem)


def test_non_finite_json_numbers_are_422(client: TestClient, login: Login) -> None:
    raw = '{"type": "FeatureCollection", "features": [], "extra": 1e400}'
    headers = {**login("forestry_bureau"), "content-type": "application/json"}
    problem = refused(client.post("/api/v1/projects/1/plots", content=raw, headers=headers))
    assert pointers(problem) == ["/body/extra"]


def test_raster_paths_that_cannot_name_a_file_are_422(client: TestClient, login: Login) -> None:
    for path in ["a" * 300 + ".tif", "agb\x00.tif", "x/" * 600 + "a.tif", "é" * 200 + ".tif"]:
        body = {"name": "agb-long", "kind": "continuous", "units": "t/ha", "path": path}
        problem = refused(client.post("/api/v1/raster-layers", json=body, headers=login("registry")))
        assert "/body/path" in pointers(problem) or "/path" in pointers(problem)


def test_a_deposit_past_the_largest_balance_is_409_and_writes_nothing(
    client: TestClient, login: Login, session: Session
) -> None:
    organisation_id = user_of(session, OrgKind.ENTERPRISE).organisation_id
    session.rollback()
    deposit = {"organisation_id": organisation_id, "amount_fen": 10**16, "reference": "B-1"}
    assert client.post("/api/v1/cash/deposits", json=deposit, headers=login("operator")).status_code == 201
    near = INT64_MAX - 10**15
    session.execute(
        update(CashAccount).where(CashAccount.organisation_id == organisation_id).values(available_fen=near)
    )
    session.commit()
    problem = refused(client.post("/api/v1/cash/deposits", json=deposit, headers=login("operator")), 409)
    assert problem["type"] == "urn:shanhai:problem:trading/balance-limit"
    assert (
        session.scalar(select(CashAccount.available_fen).where(CashAccount.organisation_id == organisation_id)) == near
    )
    session.rollback()


def test_prices_beyond_the_column_are_422(client: TestClient, login: Login) -> None:
    for price in ["100000000000000000000000", "1" + "0" * 12, "9" * 30 + ".5"]:
        body = {"instrument_id": "FCT-BIG", "credit_class": "FCT", "vintage_year": 2025, "reference_price_cny": price}
        problem = refused(client.post("/api/v1/instruments", json=body, headers=login("operator")))
        assert pointers(problem) == ["/body/reference_price_cny"]
        order = {"instrument_id": "FCT-BIG", "side": "buy", "price_cny": price, "quantity_t": 1}
        refused(client.post("/api/v1/orders", json=order, headers=login("enterprise")))
