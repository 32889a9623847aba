"""Plot files whose ``.prj`` names another zone than the coordinates': a crs-mismatch problem naming the zone."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pyproj import Transformer
from shapely.geometry import box

from geodata.writers import geopackage_bytes, write_layer

Login = Callable[[str], dict[str, str]]
PROJECT = {
    "name": "Jingyuan forest",
    "scheme": "forestry_carbon_ticket",
    "province_code": "64",
    "crediting_start": "2026-01-01",
    "crediting_end": "2046-01-01",
}


def squares_in(code: int, lon: float, lat: float) -> list[tuple[dict[str, Any], Any]]:
    x, y = Transformer.from_crs("EPSG:4490", f"EPSG:{code}", always_xy=True).transform(lon, lat)
    return [({"code": f"Z-{i}"}, box(x + 1000 * i, y, x + 1000 * i + 300, y + 300)) for i in range(2)]


def shapefile_zip(tmp_path: Path, features: list[tuple[dict[str, Any], Any]], crs: str) -> bytes:
    write_layer(tmp_path / "plots.shp", features, crs=crs, driver="ESRI Shapefile", encoding="UTF-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in tmp_path.iterdir():
            if part.suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                archive.writestr(part.name, part.read_bytes())
    return buffer.getvalue()


def import_file(client: TestClient, headers: dict[str, str], name: str, data: bytes) -> dict[str, Any]:
    project = client.post("/api/v1/projects", json=PROJECT, headers=headers)
    assert project.status_code == 201, project.text
    response = client.post(
        f"/api/v1/projects/{project.json()['id']}/plot-imports",
        files={"file": (name, data, "application/octet-stream")},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def test_shapefile_prj_of_zone_36_on_zone_35_coordinates(tmp_path: Path, client: TestClient, login: Login) -> None:
    features = squares_in(4523, 106.3, 35.5)  # 3° GK zone 35 with the zone prefix (35 6xx xxx m)
    prj_says_zone_36 = shapefile_zip(tmp_path, features, "EPSG:4524")
    job = import_file(client, login("forestry_bureau"), "plots.zip", prj_says_zone_36)
    assert job["status"] == "failed" and job["plot_ids"] is None
    assert job["error"]["slug"] == "geodata/crs-mismatch"
    [problem] = job["error"]["errors"]
    assert problem["declared_crs"].startswith("EPSG:4524 ")
    assert problem["candidate_crs"] == ["EPSG:4523 (CGCS2000 / 3-degree Gauss-Kruger zone 35)"]
    assert "EPSG:4523" in job["error"]["detail"]


def test_geopackage_of_6_degree_zone_19_on_zone_18_coordinates(client: TestClient, login: Login) -> None:
    data = geopackage_bytes(squares_in(4496, 106.3, 35.5), crs="EPSG:4497")
    job = import_file(client, login("forestry_bureau"), "plots.gpkg", data)
    assert job["error"]["slug"] == "geodata/crs-mismatch"
    assert [c.split()[0] for c in job["error"]["errors"][0]["candidate_crs"]] == ["EPSG:4496"]


def test_prefix_free_zone_that_drops_the_plots_in_the_sea(tmp_path: Path, client: TestClient, login: Login) -> None:
    features = squares_in(4544, 106.3, 35.5)  # 3° CM 105°E, no prefix; CM 120°E puts them in the Yellow Sea
    job = import_file(client, login("forestry_bureau"), "plots.zip", shapefile_zip(tmp_path, features, "EPSG:4549"))
    assert job["error"]["slug"] == "geodata/crs-mismatch"
    candidates = [c.split()[0] for c in job["error"]["errors"][0]["candidate_crs"]]
    assert "EPSG:4544" in candidates and "EPSG:4549" not in candidates
