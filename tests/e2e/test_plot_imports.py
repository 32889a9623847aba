"""Plot files over HTTP: upload as a job, per-feature report, all-or-nothing, downloads and overlaps."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.models import Plot
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
    response = client.get("/api/v1/projects/1/plots.gpkg", headers=login("auditor"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geopackage+sqlite3"
    layer = read_plot_file(response.content, "download.gpkg")
    assert len(layer.features) == 2
    names = sorted(str(p["name"]) for p, _g in layer.features)
    assert names[0].startswith("Haicang") and names[1].startswith("Yongning")
    assert {round(float(p["area_mu"])) for p, _g in layer.features} == {1500, 3296}


def test_overlaps_endpoint_lists_slivers(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    assert client.get("/api/v1/plots/1/overlaps", headers=bureau).json() == []
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
    [overlap] = client.get("/api/v1/plots/1/overlaps", headers=bureau).json()
    assert overlap["within_tolerance"] and 0 < overlap["overlap_m2"] < 500


def test_zonal_statistics_of_the_demo_plots(client: TestClient, login: Login) -> None:
    auditor = login("auditor")
    layers = {layer["name"]: layer for layer in client.get("/api/v1/raster-layers", headers=auditor).json()}
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
