"""The double-counting guard over HTTP: overlaps with any active claim in an overlapping period are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry

Login = Callable[[str], dict[str, str]]
GEOD = Geod(ellps="GRS80")
M2_PER_MU = 10_000 / 15


def area_m2(geometry: BaseGeometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geometry)[0])


def project(client: TestClient, headers: dict[str, str], start: str = "2026-01-01", end: str = "2046-01-01") -> int:
    body = {
        "name": "Neighbouring forest",
        "scheme": "ccer_afforestation",
        "province_code": "64",
        "crediting_start": start,
        "crediting_end": end,
    }
    response = client.post("/api/v1/projects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def upload(client: TestClient, headers: dict[str, str], project_id: int, *geometries: BaseGeometry) -> Any:
    features = [
        {"type": "Feature", "properties": {"code": f"N-{i}"}, "geometry": mapping(g)} for i, g in enumerate(geometries)
    ]
    document = {"type": "FeatureCollection", "features": features}
    return client.post(f"/api/v1/projects/{project_id}/plots", json=document, headers=headers)


def haicang(client: TestClient, headers: dict[str, str]) -> BaseGeometry:
    features = client.get("/api/v1/projects/1/plots", headers=headers).json()["features"]
    [feature] = [f for f in features if f["properties"]["name"].startswith("Haicang")]
    return shape(feature["geometry"])


def overlapping_by(forest: BaseGeometry, target_m2: float) -> BaseGeometry:
    """A box entering the forest from the east until the geodesic overlap is ``target_m2``."""
    min_lon, min_lat, max_lon, max_lat = forest.bounds
    low, high = 0.0, max_lon - min_lon
    for _ in range(60):
        depth = (low + high) / 2
        candidate = box(max_lon - depth, min_lat, max_lon + 0.01, max_lat)
        if area_m2(candidate.intersection(forest)) < target_m2:
            low = depth
        else:
            high = depth
    return box(max_lon - high, min_lat, max_lon + 0.01, max_lat)


def test_ten_mu_overlap_with_haicang_is_refused_and_reported(client: TestClient, login: Login) -> None:
    owner = login("forest_owner")  # another organisation than the Haicang proponent
    forest = haicang(client, owner)
    intruder = overlapping_by(forest, 10 * M2_PER_MU)
    project_id = project(client, owner)
    response = upload(client, owner, project_id, intruder)
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["type"] == "urn:shanhai:problem:carbon/double-counting"
    [conflict] = body["conflicts"]
    assert conflict["overlap_mu"] == pytest.approx(10, rel=0.01)
    assert conflict["existing_plot_name"].startswith("Haicang")
    assert conflict["existing_project_code"] == "SH-64-000001"
    assert "Ningxia Forestry" in conflict["existing_owner"]
    assert conflict["overlap_percent_of_existing"] == pytest.approx(100 * 10 / 1500, rel=0.01)
    assert client.get(f"/api/v1/projects/{project_id}/plots", headers=owner).json()["totals"]["count"] == 0


def test_touching_along_an_edge_is_accepted(client: TestClient, login: Login) -> None:
    owner = login("forest_owner")
    forest = haicang(client, owner)
    ring = list(forest.geoms[0].exterior.coords)
    (x0, y0), (x1, y1) = ring[0], ring[1]
    cx, cy = forest.centroid.x, forest.centroid.y
    nx, ny = y1 - y0, -(x1 - x0)  # a normal to the edge; point it away from the centroid
    if (nx * (x0 - cx) + ny * (y0 - cy)) < 0:
        nx, ny = -nx, -ny
    neighbour = Polygon([(x0, y0), (x1, y1), (x1 + nx, y1 + ny), (x0 + nx, y0 + ny)])
    assert neighbour.touches(forest)
    response = upload(client, owner, project(client, owner), neighbour)
    assert response.status_code == 201, response.text


def test_a_sliver_within_tolerance_is_accepted(client: TestClient, login: Login) -> None:
    owner = login("forest_owner")
    forest = haicang(client, owner)
    response = upload(client, owner, project(client, owner), overlapping_by(forest, 0.5 * M2_PER_MU))
    assert response.status_code == 201, response.text


def test_non_overlapping_periods_do_not_conflict(client: TestClient, login: Login) -> None:
    owner = login("forest_owner")
    forest = haicang(client, owner)
    later = project(client, owner, start="2051-01-01", end="2071-01-01")
    assert upload(client, owner, later, overlapping_by(forest, 50 * M2_PER_MU)).status_code == 201


def test_features_of_one_upload_may_not_overlap_each_other(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    a = box(106.20, 35.60, 106.21, 35.61)  # Longde county, Ningxia
    b = box(106.205, 35.60, 106.215, 35.61)
    response = upload(client, bureau, project(client, bureau), a, b)
    assert response.status_code == 409
    [conflict] = response.json()["conflicts"]
    assert (conflict["feature_index"], conflict["existing_feature_index"]) == (1, 0)
    assert conflict["overlap_m2"] == pytest.approx(area_m2(a.intersection(b)), rel=1e-6)


def test_the_same_organisation_cannot_claim_twice_either(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    forest = haicang(client, bureau)
    response = upload(client, bureau, project(client, bureau), forest)
    assert response.status_code == 409
    assert response.json()["conflicts"][0]["overlap_percent_of_existing"] == pytest.approx(100)
