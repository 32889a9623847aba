"""The first slice over HTTP: a bureau creates a project, uploads plots, and reads them back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.models import Plot, Project
from core.audit import AuditEntry

Login = Callable[[str], dict[str, str]]

PROJECT = {
    "scheme": "forestry_carbon_ticket",
    "province_code": "64",
    "crediting_start": "2026-01-01",
    "crediting_end": "2046-01-01",
}
SQUARE = [[106.30, 35.50], [106.31, 35.50], [106.31, 35.51], [106.30, 35.51], [106.30, 35.50]]


def feature(coordinates: Any, code: str = "T-1", kind: str = "Polygon") -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": f"plot {code}"},
        "geometry": {"type": kind, "coordinates": coordinates},
    }


def new_project(client: TestClient, headers: dict[str, str]) -> int:
    response = client.post(
        "/api/v1/projects",
        json={"name": "Test forest", "county_code": "640424", **PROJECT},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def counts(session: Session) -> tuple[int, int, int]:
    try:
        return (
            session.scalar(select(func.count()).select_from(Plot)) or 0,
            session.scalar(select(func.count()).select_from(Project)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )
    finally:
        session.rollback()  # end the read transaction: SQLite writers would wait on it


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:shanhai:problem:{slug}"
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_demo_plots_have_the_published_areas(client: TestClient, login: Login) -> None:
    headers = login("auditor")
    projects = [
        p for p in client.get("/api/v1/projects", headers=headers).json()["items"] if p["province_code"] == "64"
    ]
    assert len(projects) == 2  # the Haicang forest and the Yongning restoration, one plot each
    collections = [client.get(f"/api/v1/projects/{p['id']}/plots", headers=headers).json() for p in projects]
    by_name = {f["properties"]["name"]: f["properties"] for c in collections for f in c["features"]}
    haicang = next(v for k, v in by_name.items() if k.startswith("Haicang"))
    yongning = next(v for k, v in by_name.items() if k.startswith("Yongning"))
    assert haicang["area_mu"] == pytest.approx(1500, rel=1e-3)
    assert yongning["area_ha"] == pytest.approx(219.74, rel=1e-3)
    assert haicang["area_m2"] == pytest.approx(haicang["area_mu"] * 10000 / 15, rel=1e-6)
    assert [c["totals"]["count"] for c in collections] == [1, 1]


def test_bureau_creates_project_uploads_and_reads_back(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    upload = client.post(f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]), headers=bureau)
    assert upload.status_code == 201, upload.text
    [created] = upload.json()["features"]
    plot = client.get(f"/api/v1/plots/{created['id']}", headers=login("enterprise")).json()
    assert plot["type"] == "Feature"
    assert plot["geometry"]["type"] == "MultiPolygon"
    properties = plot["properties"]
    # 0.01° × 0.01° at 35.505°N on GRS80, by hand: meridian arc M·Δφ = 6356970 m × 1.7453e-4 = 1109.5 m,
    # parallel arc N·cosφ·Δλ = 5198004 m × 1.7453e-4 = 907.2 m; 1109.5 m × 907.2 m ≈ 100.66 ha.
    assert properties["area_ha"] == pytest.approx(100.66, rel=1e-3)
    assert properties["area_mu"] == pytest.approx(properties["area_ha"] * 15, rel=1e-6)
    assert properties["plot_code"] == "T-1" and properties["attributes"]["name"] == "plot T-1"
    assert properties["crs"] == "EPSG:4490"


def test_feature_collection_upload_is_one_transaction(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    shifted = [[x + 0.05, y] for x, y in SQUARE]
    bow_tie = [[106.4, 35.5], [106.41, 35.51], [106.41, 35.5], [106.4, 35.51], [106.4, 35.5]]
    before = counts(session)
    document = {
        "type": "FeatureCollection",
        "features": [feature([SQUARE], "A"), feature([shifted], "B"), feature([bow_tie], "C")],
    }
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=document, headers=bureau)
    body = assert_problem(response, 422, "geodata/invalid-geometry")
    assert [(e["feature_index"], e["plot_code"]) for e in body["errors"]] == [(2, "C")]
    assert counts(session) == before


def test_duplicate_plot_code_is_a_conflict(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    assert (
        client.post(f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]), headers=bureau).status_code == 201
    )
    before = counts(session)
    again = client.post(f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]), headers=bureau)
    assert_problem(again, 409, "core/conflict")
    assert counts(session) == before


INVALID_SAMPLES = {
    "bow-tie": (
        feature([[[106.3, 35.5], [106.31, 35.51], [106.31, 35.5], [106.3, 35.51], [106.3, 35.5]]]),
        "Self-intersection",
    ),
    "2-point ring": (feature([[[106.3, 35.5], [106.31, 35.51]]]), "at least 4 positions"),
    "unclosed ring": (feature([[[106.3, 35.5], [106.31, 35.5], [106.31, 35.51], [106.3, 35.51]]]), "not closed"),
    "latitude 95": (feature([[[106.3, 95.0], [106.31, 35.5], [106.31, 35.51], [106.3, 95.0]]]), "latitude 95.0"),
    "point geometry": (
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [106.3, 35.5]}},
        "Polygon or MultiPolygon",
    ),
    "not GeoJSON": ({"hello": "world"}, "Feature or FeatureCollection"),
}


@pytest.mark.parametrize("name", sorted(INVALID_SAMPLES))
def test_invalid_geometry_is_refused_and_nothing_is_stored(
    name: str, client: TestClient, login: Login, session: Session
) -> None:
    document, reason = INVALID_SAMPLES[name]
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    before = counts(session)
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=document, headers=bureau)
    body = assert_problem(response, 422, "geodata/invalid-geometry")
    assert any(reason in error["reason"] for error in body["errors"]), body["errors"]
    assert counts(session) == before


def test_bow_tie_problem_names_its_location(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    document, _ = INVALID_SAMPLES["bow-tie"]
    [error] = client.post(f"/api/v1/projects/{project_id}/plots", json=document, headers=bureau).json()["errors"]
    assert error["location"] == pytest.approx([106.305, 35.505])
    assert error["feature_index"] == 0 and error["plot_code"] == "T-1"


def test_non_json_body_is_a_problem(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    before = counts(session)
    response = client.post(
        f"/api/v1/projects/{project_id}/plots",
        content=b"{not json",
        headers={**bureau, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "core/malformed-json")
    assert counts(session) == before


def test_fifty_megabyte_body_is_refused(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    before = counts(session)
    ring = [[106.3 + i * 1e-7, 35.5] for i in range(10)]
    padding = {"padding": "x" * (50 * 1024 * 1024)}
    body = json.dumps(
        {"type": "Feature", "properties": padding, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    )
    response = client.post(
        f"/api/v1/projects/{project_id}/plots",
        content=body.encode(),
        headers={**bureau, "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "core/payload-too-large")
    assert counts(session) == before


def test_chunked_body_over_the_limit_is_refused(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    before = counts(session)

    def chunks() -> Any:
        yield b'{"type": "Feature", "properties": {"p": "'
        for _ in range(12):
            yield b"x" * (1024 * 1024)
        yield b'"}, "geometry": null}'

    response = client.post(
        f"/api/v1/projects/{project_id}/plots", content=chunks(), headers={**bureau, "Content-Type": "application/json"}
    )
    assert_problem(response, 413, "core/payload-too-large")
    assert counts(session) == before


def test_bureau_cannot_create_a_project_for_another_organisation(client: TestClient, login: Login) -> None:
    response = client.post(
        "/api/v1/projects",
        json={"name": "Not mine", "organisation_id": 2, **PROJECT},
        headers=login("forestry_bureau"),
    )
    assert_problem(response, 403, "auth/permission-denied")


def test_bureau_cannot_upload_to_another_organisations_project(client: TestClient, login: Login) -> None:
    project_id = new_project(client, login("forest_owner"))
    response = client.post(
        f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]), headers=login("forestry_bureau")
    )
    assert_problem(response, 403, "auth/permission-denied")


def test_enterprise_cannot_upload_plots(client: TestClient, login: Login) -> None:
    project_id = new_project(client, login("forestry_bureau"))
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]), headers=login("enterprise"))
    assert_problem(response, 403, "auth/permission-denied")


def test_unauthenticated_upload_is_401(client: TestClient, login: Login) -> None:
    project_id = new_project(client, login("forestry_bureau"))
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]))
    body = assert_problem(response, 401, "auth/authentication-failed")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in body["detail"]


def test_unknown_county_is_invalid_input(client: TestClient, login: Login) -> None:
    response = client.post(
        "/api/v1/projects",
        json={**PROJECT, "name": "x", "province_code": "35", "county_code": "640424"},
        headers=login("forestry_bureau"),
    )
    body = assert_problem(response, 422, "core/invalid-input")
    assert "not in province 35" in body["errors"][0]["reason"]


def test_missing_plot_is_404(client: TestClient, login: Login) -> None:
    assert_problem(client.get("/api/v1/plots/999999", headers=login("auditor")), 404, "core/not-found")


def test_remeasure_runs_in_process_without_a_broker(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    [created] = client.post(f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]), headers=bureau).json()[
        "features"
    ]
    response = client.post(f"/api/v1/plots/{created['id']}/remeasure", headers=bureau)
    assert response.status_code == 202, response.text
    task = response.json()
    assert task["state"] == "SUCCESS"
    assert task["result"]["changed"] is False
    assert task["result"]["area_m2"] == pytest.approx(created["properties"]["area_m2"], abs=0.01)
