"""Declared areas over HTTP: the import's ``area_unit`` form field and the plot POST's ``area_unit`` query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box

from geodata.area import measure
from geodata.writers import geopackage_bytes

Login = Callable[[str], dict[str, str]]
PROJECT = {
    "scheme": "forestry_carbon_ticket",
    "province_code": "64",
    "crediting_start": "2026-01-01",
    "crediting_end": "2046-01-01",
}
PLOTS = [box(106.40 + 0.02 * i, 35.60, 106.41 + 0.02 * i, 35.61) for i in range(2)]


def new_project(client: TestClient, headers: dict[str, str], name: str) -> int:
    response = client.post("/api/v1/projects", json={"name": name, **PROJECT}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def upload(client: TestClient, headers: dict[str, str], columns: list[dict[str, Any]], **form: str) -> Any:
    project_id = new_project(client, headers, "Area units")
    data = geopackage_bytes([(c, g) for c, g in zip(columns, PLOTS, strict=True)])
    return client.post(
        f"/api/v1/projects/{project_id}/plot-imports",
        files={"file": ("plots.gpkg", data, "application/octet-stream")},
        data=form,
        headers=headers,
    )


def declared_mu(client: TestClient, headers: dict[str, str], job: dict[str, Any]) -> list[float]:
    assert job["status"] == "succeeded", job
    plots = [client.get(f"/api/v1/plots/{pid}", headers=headers).json() for pid in job["plot_ids"]]
    return [p["properties"]["attributes"]["declared_area_mu"] for p in plots]


def test_import_reads_mj_mu_and_mj_gq_columns(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    area_ha = [round(measure(g).area_ha, 2) for g in PLOTS]
    columns = [{"code": "U-1", "MJ_MU": area_ha[0] * 15}, {"code": "U-2", "MJ_GQ": area_ha[1]}]
    job = upload(client, bureau, columns).json()
    assert declared_mu(client, bureau, job) == pytest.approx([area_ha[0] * 15, area_ha[1] * 15])
    units = [(f["declared_area_unit"], f["declared_area_unit_from"]) for f in job["report"]["features"]]
    assert units == [("mu", "column"), ("ha", "column")]
    assert all(f["warnings"] == [] for f in job["report"]["features"])


def test_import_states_the_unit_of_an_xbmj_column(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    area_ha = [round(measure(g).area_ha, 2) for g in PLOTS]
    columns = [{"code": f"X-{i}", "XBMJ": a} for i, a in enumerate(area_ha)]
    job = upload(client, bureau, columns, area_unit="ha").json()
    assert job["area_unit"] == "ha"
    assert declared_mu(client, bureau, job) == pytest.approx([a * 15 for a in area_ha])
    assert job["report"]["declared_area_units"] == [{"unit": "ha", "unit_from": "stated", "features": 2}]


def test_import_without_a_unit_says_mu_was_assumed(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    columns = [{"code": f"A-{i}", "面积": 1500} for i in range(2)]
    job = upload(client, bureau, columns).json()
    assert job["report"]["declared_area_units"] == [{"unit": "mu", "unit_from": "assumed", "features": 2}]
    assert declared_mu(client, bureau, job) == [1500, 1500]


def test_an_unknown_unit_is_refused_before_anything_is_stored(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    response = upload(client, bureau, [{"code": "B-1"}, {"code": "B-2"}], area_unit="acre")
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")


def test_plot_post_takes_the_unit_of_its_declared_area(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau, "Single plot")
    area_ha = round(measure(PLOTS[0]).area_ha, 2)
    feature = {
        "type": "Feature",
        "properties": {"code": "S-1", "面积": area_ha},
        "geometry": PLOTS[0].__geo_interface__,
    }
    response = client.post(f"/api/v1/projects/{project_id}/plots?area_unit=ha", json=feature, headers=bureau)
    assert response.status_code == 201, response.text
    body = response.json()
    [plot] = body["features"]
    assert plot["properties"]["attributes"]["declared_area_mu"] == pytest.approx(area_ha * 15)
    [report] = body["report"]["features"]
    assert (report["declared_area_unit"], report["declared_area_unit_from"], report["warnings"]) == ("ha", "stated", [])


def test_import_takes_the_unit_as_a_query_parameter_too(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau, "Query unit")
    area_ha = [round(measure(g).area_ha, 2) for g in PLOTS]
    data = geopackage_bytes(
        [({"code": f"Q-{i}", "MJ": a}, g) for i, (a, g) in enumerate(zip(area_ha, PLOTS, strict=True))]
    )
    files = {"file": ("plots.gpkg", data, "application/octet-stream")}
    url = f"/api/v1/projects/{project_id}/plot-imports?area_unit=ha"
    clash = client.post(url, files=files, data={"area_unit": "mu"}, headers=bureau)
    assert clash.status_code == 422 and clash.json()["errors"][0]["pointer"] == "area_unit"
    job = client.post(url, files=files, headers=bureau).json()
    assert declared_mu(client, bureau, job) == pytest.approx([a * 15 for a in area_ha])
