"""Plot files over HTTP: upload as a job, per-feature report, all-or-nothing, downloads and overlaps."""

from __future__ import annotations

import io
import logging
import math
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import api.routers.projects
import carbon.imports
from carbon.models import ImportStatus, Plot, PlotImport
from core.clock import FixedClock
from geodata.readers import read_plot_file

Login = Callable[[str], dict[str, str]]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PROJECT = {
    "scheme": "forestry_carbon_ticket",
    "province_code": "64",
    "crediting_start": "2026-01-01",
    "crediting_end": "2046-01-01",
}


def new_project(client: TestClient, headers: dict[str, str]) -> int:
    response = client.post("/api/v1/projects", json={"name": "Imported forest", **PROJECT}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def upload(client: TestClient, headers: dict[str, str], project_id: int, name: str, data: bytes, **form: Any) -> Any:
    return client.post(
        f"/api/v1/projects/{project_id}/plot-imports",
        files={"file": (name, data, "application/octet-stream")},
        data={k: str(v).lower() for k, v in form.items()},
        headers=headers,
    )


def plot_count(session: Session) -> int:
    try:
        return session.scalar(select(func.count()).select_from(Plot)) or 0
    finally:
        session.rollback()


@pytest.mark.parametrize("sample", ["plots_gk35_gbk.zip", "plots_yongning.gpkg"])
def test_sample_files_import(sample: str, client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    response = upload(client, bureau, project_id, sample, (SAMPLES / sample).read_bytes())
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"done": 3, "total": 3} and len(job["plot_ids"]) == 3
    assert job["report"]["counts"] == {"accepted": 3, "repaired": 0, "refused": 0}
    again = client.get(f"/api/v1/plot-imports/{job['id']}", headers=bureau).json()
    assert again["status"] == "succeeded" and "content" not in again
    plots = client.get(f"/api/v1/projects/{project_id}/plots", headers=bureau).json()["features"]
    reported = {f["plot_code"]: f["area_m2"] for f in job["report"]["features"]}
    for plot in plots:
        assert plot["properties"]["area_m2"] == pytest.approx(reported[plot["properties"]["plot_code"]], abs=0.01)


def test_a_refused_feature_refuses_the_file(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    csv_text = (
        'code,wkt\nOK-1,"POLYGON ((106.2 35.6, 106.21 35.6, 106.21 35.61, 106.2 35.61, 106.2 35.6))"\n'
        'BT-1,"POLYGON ((106.25 35.6, 106.26 35.61, 106.26 35.6, 106.25 35.61, 106.25 35.6))"\n'
    )
    before = plot_count(session)
    job = upload(client, bureau, project_id, "plots.csv", csv_text.encode()).json()
    assert job["status"] == "failed" and job["error"]["slug"] == "geodata/invalid-geometry"
    assert [f["status"] for f in job["report"]["features"]] == ["accepted", "refused"]
    assert plot_count(session) == before
    repaired = upload(client, bureau, project_id, "plots.csv", csv_text.encode(), repair=True).json()
    assert repaired["status"] == "succeeded"
    assert [f["status"] for f in repaired["report"]["features"]] == ["accepted", "repaired"]


def test_hostile_files_are_refused_before_queueing(client: TestClient, login: Login, session: Session) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    vrt = (
        b"<OGRVRTDataSource><OGRVRTLayer name='x'><SrcDataSource>/etc/passwd</SrcDataSource>"
        b"</OGRVRTLayer></OGRVRTDataSource>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.shp", b"x")
    before = plot_count(session)
    for name, data in (("x.gpkg", vrt), ("x.zip", b"PK\x03\x04 broken"), ("x.zip", buffer.getvalue()), ("x.doc", b"x")):
        response = upload(client, bureau, project_id, name, data)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["type"] == "urn:shanhai:problem:geodata/unreadable-file"
    assert plot_count(session) == before


def test_two_hundred_megabyte_file_is_refused(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    response = upload(client, bureau, project_id, "huge.gpkg", b"\0" * (200 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["type"] == "urn:shanhai:problem:core/payload-too-large"


def test_enterprise_cannot_import_and_others_cannot_read_the_job(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    data = (SAMPLES / "plots_yongning.gpkg").read_bytes()
    assert upload(client, login("enterprise"), project_id, "p.gpkg", data).status_code == 403
    assert upload(client, login("forest_owner"), project_id, "p.gpkg", data).status_code == 403
    job = upload(client, bureau, project_id, "p.gpkg", data).json()
    assert client.get(f"/api/v1/plot-imports/{job['id']}", headers=login("forest_owner")).status_code == 404
    assert client.get(f"/api/v1/plot-imports/{job['id']}", headers=login("auditor")).status_code == 200


def test_geopackage_download_round_trips(client: TestClient, login: Login) -> None:
    features = []
    for project_id in (1, 2):  # the demo's Haicang forest and Yongning restoration, one plot each
        response = client.get(f"/api/v1/projects/{project_id}/plots.gpkg", headers=login("auditor"))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/geopackage+sqlite3"
        layer = read_plot_file(response.content, "download.gpkg")
        assert len(layer.features) == 1
        features += layer.features
    names = sorted(str(p["name"]) for p, _g in features)
    assert names[0].startswith("Haicang") and names[1].startswith("Yongning")
    assert {round(float(p["area_mu"])) for p, _g in features} == {1500, 3296}


def test_overlaps_endpoint_lists_slivers(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    assert client.get("/api/v1/plots/1/overlaps", headers=bureau).json()["items"] == []
    owner = login("forest_owner")
    response = client.post("/api/v1/projects", json={"name": "Edge", **PROJECT}, headers=owner)
    project_id = response.json()["id"]
    haicang = client.get("/api/v1/plots/1", headers=owner).json()["geometry"]["coordinates"][0][0]
    (x0, y0) = haicang[0]
    west, south, east, north = x0 - 0.01, y0 - 0.01, x0 + 0.0001, y0 + 0.0001
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    sliver = {"type": "Feature", "properties": {"code": "S"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    stored = client.post(f"/api/v1/projects/{project_id}/plots", json=sliver, headers=owner)
    assert stored.status_code == 201, stored.text
    # The new plot's corner cuts ~100 m² into Haicang: under min(0.5 % of ~10 ha, 1 mu), so accepted,
    # and the overlaps endpoint still shows it, flagged as within tolerance.
    [overlap] = client.get("/api/v1/plots/1/overlaps", headers=bureau).json()["items"]
    assert overlap["within_tolerance"] and 0 < overlap["overlap_m2"] < 500


def test_zonal_statistics_of_the_demo_plots(client: TestClient, login: Login) -> None:
    auditor = login("auditor")
    layers = {layer["name"]: layer for layer in client.get("/api/v1/raster-layers", headers=auditor).json()["items"]}
    assert {"landcover-jingyuan", "agb-jingyuan", "landcover-yongning", "agb-yongning"} <= set(layers)
    plot = client.get("/api/v1/plots/1", headers=auditor).json()["properties"]
    cover = client.get("/api/v1/plots/1/zonal-statistics", params={"layer": "landcover-jingyuan"}, headers=auditor)
    assert cover.status_code == 200, cover.text
    classes = cover.json()["classes"]
    # the synthetic land cover has no nodata over the plot: the class areas add up to the plot's area
    assert sum(c["area_m2"] for c in classes.values()) == pytest.approx(plot["area_m2"], rel=2e-3)
    assert sum(c["share"] for c in classes.values()) == pytest.approx(1)
    biomass = client.get("/api/v1/plots/1/zonal-statistics", params={"layer": "agb-jingyuan"}, headers=auditor).json()
    assert 0 <= biomass["mean"] <= 52 and biomass["units"] == "t/ha"
    assert biomass["integral"] / 10_000 == pytest.approx(biomass["mean"] * plot["area_ha"], rel=5e-3)
    missing = client.get("/api/v1/plots/1/zonal-statistics", params={"layer": "nope"}, headers=auditor)
    assert missing.status_code == 404


def test_raster_layers_are_registered_by_name_from_the_raster_directory(client: TestClient, login: Login) -> None:
    registry = login("registry")
    body = {"name": "escape", "kind": "continuous", "units": "t/ha", "path": "../demo_plots.geojson"}
    refused = client.post("/api/v1/raster-layers", json=body, headers=registry)
    assert refused.status_code == 422 and "stay inside" in refused.json()["detail"]
    absolute = client.post("/api/v1/raster-layers", json={**body, "path": "/etc/passwd"}, headers=registry)
    assert absolute.status_code == 422
    again = {**body, "name": "agb-jingyuan", "path": "agb_jingyuan.tif"}
    assert client.post("/api/v1/raster-layers", json=again, headers=registry).status_code == 409
    fresh = client.post("/api/v1/raster-layers", json={**again, "name": "agb-copy"}, headers=registry)
    assert fresh.status_code == 201 and fresh.json()["crs"] == "EPSG:4490"
    assert (
        client.post("/api/v1/raster-layers", json={**again, "name": "x"}, headers=login("enterprise")).status_code
        == 403
    )


def circle_csv(vertices: int, x0: float = 106.45, y0: float = 35.75) -> bytes:
    """A CSV of one ~1 km plot: a circle of ``vertices`` vertices in Jingyuan county."""
    angles = [2 * math.pi * i / vertices for i in range(vertices)]
    ring = [f"{x0 + 0.005 * math.cos(a):.9f} {y0 + 0.005 * math.sin(a):.9f}" for a in angles]
    return f'code,wkt\nC-1,"POLYGON (({", ".join([*ring, ring[0]])}))"\n'.encode()


def test_every_import_job_ends(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    deep = upload(client, bureau, project_id, "deep.geojson", b"[" * 100_000 + b"]" * 100_000)
    assert deep.status_code == 202, deep.text
    job = client.get(f"/api/v1/plot-imports/{deep.json()['id']}", headers=bureau).json()
    assert job["status"] == "failed" and job["error"]["slug"] == "geodata/unreadable-file"
    assert "nests deeper than 64 levels" in job["error"]["detail"]
    data = circle_csv(5_000)
    assert len(data) > 131_072  # over the csv module's default field size
    long_field = upload(client, bureau, project_id, "circle.csv", data)
    assert long_field.status_code == 202 and long_field.json()["status"] == "succeeded", long_field.text


def test_an_unexpected_import_failure_is_an_internal_error_with_a_logged_reference(
    client: TestClient, login: Login, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ZeroDivisionError("injected fault")

    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    monkeypatch.setattr(carbon.imports, "intake_file", broken)
    with caplog.at_level(logging.ERROR):
        response = upload(client, bureau, project_id, "circle.csv", circle_csv(16))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "failed" and job["error"]["slug"] == "core/internal-error"
    assert job["error"]["reference"] in caplog.text and "ZeroDivisionError" in caplog.text
    assert "injected" not in response.text


def test_unexpected_errors_anywhere_answer_internal_error_with_a_logged_reference(
    client: TestClient, login: Login, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyError("injected fault")

    monkeypatch.setattr(api.routers.projects, "list_projects", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/projects", headers=login("auditor"))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:shanhai:problem:core/internal-error" and len(problem["reference"]) == 32
    assert problem["reference"] in caplog.text and "injected fault" in caplog.text
    assert "injected" not in response.text


@pytest.mark.parametrize("depth", [100_000, 400, 70])
def test_deep_nesting_in_a_plot_post_is_a_client_problem(client: TestClient, login: Login, depth: int) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    nested = b'{"a": ' * depth + b"1" + b"}" * depth
    square = "[[[106.5, 35.9], [106.51, 35.9], [106.51, 35.91], [106.5, 35.91], [106.5, 35.9]]]"
    body = (
        b'{"type": "Feature", "properties": {"code": "D", "deep": ' + nested + b"}, "
        b'"geometry": {"type": "Polygon", "coordinates": ' + square.encode() + b"}}"
    )
    headers = {**bureau, "content-type": "application/json"}
    response = client.post(f"/api/v1/projects/{project_id}/plots", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"] in (
        "urn:shanhai:problem:core/malformed-json",
        "urn:shanhai:problem:core/invalid-input",
    )
    assert "nests" in response.json()["detail"]
    assert client.get(f"/api/v1/projects/{project_id}/plots", headers=bureau).json()["features"] == []


@pytest.mark.parametrize("status", [ImportStatus.RUNNING, ImportStatus.QUEUED])
def test_a_job_whose_worker_died_is_ended_when_read(
    client: TestClient, login: Login, session: Session, clock: FixedClock, app: FastAPI, status: ImportStatus
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"import_stale_seconds": 120})
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    job = upload(client, bureau, project_id, "circle.csv", circle_csv(16, x0=106.2)).json()
    row = session.get(PlotImport, job["id"])
    assert row is not None
    # A worker claimed it and died (running), or its task was lost (queued): either way it is silent.
    row.status, row.finished_at = status, None
    row.heartbeat_at = clock.now() if status is ImportStatus.RUNNING else None
    session.commit()
    assert client.get(f"/api/v1/plot-imports/{job['id']}", headers=bureau).json()["status"] == status.value
    clock.advance(timedelta(seconds=121))
    ended = client.get(f"/api/v1/plot-imports/{job['id']}", headers=bureau).json()
    assert ended["status"] == "failed" and ended["error"]["slug"] == "core/internal-error"
    assert ended["error"]["reference"]


def test_non_object_properties_in_a_plot_post_are_a_client_problem(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    square = [[106.5, 35.9], [106.51, 35.9], [106.51, 35.91], [106.5, 35.91], [106.5, 35.9]]
    feature = {"type": "Feature", "properties": ["code", "P"], "geometry": {"type": "Polygon", "coordinates": [square]}}
    response = client.post(
        f"/api/v1/projects/{project_id}/plots",
        json={"type": "FeatureCollection", "features": [feature]},
        headers=bureau,
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/features/0/properties"
