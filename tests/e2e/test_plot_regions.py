"""A plot must lie in its project's region (issue 14): refusals, county warnings, file imports, public layer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from shapely.geometry import LineString, box, mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.models import Plot
from core.clock import FixedClock
from core.settings import Settings
from geodata.regions import shipped_index
from shanhai.app import create_app

Login = Callable[[str], dict[str, str]]
XIAMEN = box(118.10, 24.60, 118.11, 24.61)  # Jimei district, Xiamen, Fujian
YONGNING = box(106.10, 38.30, 106.11, 38.31)  # Yongning county, Ningxia


def new_project(client: TestClient, headers: dict[str, str], county_code: str | None = "640424") -> int:
    body = {
        "name": "Jingyuan forest",
        "scheme": "forestry_carbon_ticket",
        "province_code": "64",
        "county_code": county_code,
        "crediting_start": "2026-01-01",
        "crediting_end": "2046-01-01",
    }
    response = client.post("/api/v1/projects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def document(*geometries: BaseGeometry, prefix: str = "R") -> dict[str, Any]:
    features = [
        {"type": "Feature", "properties": {"code": f"{prefix}-{i}"}, "geometry": mapping(g)}
        for i, g in enumerate(geometries)
    ]
    return {"type": "FeatureCollection", "features": features}


def plot_count(session: Session) -> int:
    try:
        return session.scalar(select(func.count()).select_from(Plot)) or 0
    finally:
        session.rollback()


def test_a_fujian_plot_is_refused_from_a_ningxia_county_project(
    client: TestClient, login: Login, session: Session
) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    before = plot_count(session)
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=document(XIAMEN), headers=bureau)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"] == "urn:shanhai:problem:geodata/outside-region"
    assert "福建省 集美区 (Fujian, Jimei, 350211)" in body["detail"] and "宁夏回族自治区 (Ningxia)" in body["detail"]
    [problem] = body["errors"]
    assert problem["lies_in_province_code"] == "35" and problem["lies_in"].startswith("福建省")
    assert problem["share_in_province_percent"] == 0.0
    assert plot_count(session) == before


def test_a_plot_outside_china_is_named_so(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    # Xiamen's sea, 30 km off the coast: inside the coarse national outline, outside every province
    sea = box(118.40, 24.10, 118.41, 24.11)
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=document(sea), headers=bureau)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["lies_in"] == "outside China"


def test_another_county_of_the_province_is_accepted_with_a_warning(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau, county_code="640424")
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=document(YONGNING), headers=bureau)
    assert response.status_code == 201, response.text
    plots = client.get(f"/api/v1/projects/{project_id}/plots", headers=bureau).json()["features"]
    [warning] = plots[0]["properties"]["warnings"]
    assert warning["code"] == "geodata/outside-county" and warning["lies_in_county_code"] == "640121"
    assert "永宁县" in warning["message"]
    plot_id = plots[0]["properties"]["plot_id"]
    verifier_view = client.get(f"/api/v1/plots/{plot_id}", headers=login("verifier")).json()
    assert verifier_view["properties"]["warnings"] == [warning]
    jingyuan = box(106.30, 35.45, 106.31, 35.46)
    inside = client.post(f"/api/v1/projects/{project_id}/plots", json=document(jingyuan, prefix="J"), headers=bureau)
    assert inside.status_code == 201, inside.text
    plots = client.get(f"/api/v1/projects/{project_id}/plots", headers=bureau).json()["features"]
    assert [p["properties"]["warnings"] for p in plots] == [[warning], []]


def _border_crossing() -> float:
    """The longitude where 37°N leaves Ningxia westwards (into Gansu), from the shipped boundaries."""
    ningxia = shipped_index().province("64")
    assert ningxia is not None
    crossing = ningxia.geometry.intersection(LineString([(104.0, 37.0), (106.0, 37.0)]))
    return float(crossing.bounds[0])


def test_a_straddling_plot_follows_the_half_rule(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau, county_code=None)
    x = _border_crossing()
    width = 0.05  # about 4.4 km, far wider than the 250 m tolerance
    mostly_gansu = box(x - 0.75 * width, 36.998, x + 0.25 * width, 37.002)
    mostly_ningxia = box(x - 0.25 * width, 36.998, x + 0.75 * width, 37.002)
    refused = client.post(f"/api/v1/projects/{project_id}/plots", json=document(mostly_gansu), headers=bureau)
    assert refused.status_code == 422, refused.text
    problem = refused.json()["errors"][0]
    assert problem["lies_in"].startswith("甘肃省") and 15 < problem["share_in_province_percent"] < 50
    accepted = client.post(f"/api/v1/projects/{project_id}/plots", json=document(mostly_ningxia), headers=bureau)
    assert accepted.status_code == 201, accepted.text


def test_a_plot_file_with_a_fujian_plot_fails_the_import(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    before = plot_count(session)
    data = json.dumps(document(box(106.30, 35.45, 106.31, 35.46), XIAMEN)).encode()
    response = client.post(
        f"/api/v1/projects/{project_id}/plot-imports",
        files={"file": ("plots.geojson", data, "application/octet-stream")},
        headers=bureau,
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "failed", job
    assert "geodata/outside-region" in json.dumps(job) and "福建省" in json.dumps(job, ensure_ascii=False)
    assert plot_count(session) == before


def test_public_regions_name_the_dataset_and_the_review_number(client: TestClient) -> None:
    meta = client.get("/public/v1/regions").json()
    assert meta["map_review_number"] is None and meta["standard_map"] is False
    assert meta["dataset"]["datum"].startswith("CGCS2000") and meta["dataset"]["tolerance_m"] == 250.0
    assert meta["counts"] == {"province": 34, "county": 106}
    layer = client.get("/public/v1/regions/boundaries", params={"level": "county"}).json()
    assert layer["type"] == "FeatureCollection" and len(layer["features"]) == 106
    assert {f["properties"]["code"][:2] for f in layer["features"]} == {"64", "35"}


def test_the_configured_map_review_number_is_published(settings: Settings, clock: FixedClock) -> None:
    configured = settings.model_copy(update={"map_review_number": "GS(2024)0650号"})
    with TestClient(create_app(configured, clock=clock)) as public:
        meta = public.get("/public/v1/regions").json()
        layer = public.get("/public/v1/regions/boundaries").json()
    assert meta["map_review_number"] == "GS(2024)0650号" and meta["standard_map"] is True
    assert layer["metadata"]["map_review_number"] == "GS(2024)0650号" and len(layer["features"]) == 34


def test_an_imported_plot_in_another_county_carries_the_warning_in_the_job_report(
    client: TestClient, login: Login
) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau, county_code="640424")
    data = json.dumps(document(YONGNING, prefix="F")).encode()
    response = client.post(
        f"/api/v1/projects/{project_id}/plot-imports",
        files={"file": ("plots.geojson", data, "application/octet-stream")},
        headers=bureau,
    )
    job = response.json()
    assert job["status"] == "succeeded", job
    [report] = job["report"]["features"]
    assert any("永宁县" in warning and "640424" in warning for warning in report["warnings"])
    [plot_id] = job["plot_ids"]
    plot = client.get(f"/api/v1/plots/{plot_id}", headers=bureau).json()
    assert plot["properties"]["warnings"][0]["code"] == "geodata/outside-county"
