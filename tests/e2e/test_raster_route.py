"""The raster route against a hand-checked figure: a constant 100 t/ha biomass raster over a plot of known area.

The raster is written here: EPSG:4490, 0.001° cells, 30 × 30 cells around a 0.01° × 0.01° plot near
105.5° E, 37.0° N, every cell 100 t d.m./ha. Whatever the cell geometry, an area-weighted mean of a
constant is the constant, so the stratum's external density must be exactly 100.000 t/ha and its
above-ground biomass 100 t/ha × the plot's geodesic area (the zonal integral / 10⁴ in tonnes).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.conftest import TEST_SECRET
from tests.e2e.test_plots_api import assert_problem

Login = Callable[[str], dict[str, str]]
WEST, SOUTH, SIZE = 105.50, 37.00, 0.01


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    """Settings on a copy of the template database, with a raster directory of this test's own."""
    db = tmp_path / "shanhai.db"
    shutil.copyfile(template_db, db)
    rasters = tmp_path / "rasters"
    rasters.mkdir()
    write_constant(rasters / "agb_constant.tif", 100.0)
    write_constant(rasters / "landcover.tif", 1.0)
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{db}",
        raster_dir=rasters,
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
    )


def write_constant(path: Path, value: float) -> None:
    profile = {
        "driver": "GTiff",
        "width": 30,
        "height": 30,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4490",
        "transform": Affine(0.001, 0.0, WEST - 0.01, 0.0, -0.001, SOUTH + SIZE + 0.01),
        "nodata": -9999.0,
    }
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.full((30, 30), value, dtype="float32"), 1)


def square() -> list[list[float]]:
    return [[WEST, SOUTH], [WEST + SIZE, SOUTH], [WEST + SIZE, SOUTH + SIZE], [WEST, SOUTH + SIZE], [WEST, SOUTH]]


def setup_plot(client: TestClient, login: Login) -> tuple[int, int, float]:
    owner = login("forest_owner")
    project = client.post(
        "/api/v1/projects",
        json={
            "name": "Raster route test",
            "scheme": "ccer_afforestation",
            "province_code": "64",
            "crediting_start": "2026-01-01",
            "crediting_end": "2056-01-01",
        },
        headers=owner,
    ).json()
    feature = {
        "type": "Feature",
        "properties": {"code": "RR-1"},
        "geometry": {"type": "Polygon", "coordinates": [square()]},
    }
    plots = client.post(f"/api/v1/projects/{project['id']}/plots", json=feature, headers=owner)
    assert plots.status_code == 201, plots.text
    plot = plots.json()["features"][0]
    operator = login("operator")
    for name, kind, units, path in (
        ("agb-constant", "continuous", "t/ha", "agb_constant.tif"),
        ("landcover-constant", "categorical", "class", "landcover.tif"),
    ):
        layer = {"name": name, "kind": kind, "units": units, "path": path}
        assert client.post("/api/v1/raster-layers", json=layer, headers=operator).status_code == 201
    return int(project["id"]), int(plot["id"]), float(plot["properties"]["area_m2"])


def ccer_request(plot_id: int, area_m2: float, layer: str = "agb-constant") -> dict[str, Any]:
    area = str(int(area_m2))
    return {
        "methodology_id": "CCER-14-001",
        "methodology_version": "V01",
        "period_start": "2026-01-01",
        "period_end": "2031-01-01",
        "plot_ids": [plot_id],
        "raster": {"layer": layer, "when": "end"},
        "inputs": {
            "project_start": "2026-01-01",
            "crediting_period_years": 30,
            "forest_category": "protection",
            "mean_annual_precipitation_mm": "280",
            "arid_site": True,
            "parcels": [
                {
                    "parcel_id": "P1",
                    "area_m2": area,
                    "land_class": "planned_afforestation_land",
                    "years_non_forest_before_start": "5",
                }
            ],
            "strata": [
                {
                    "stratum_id": "RR-1",
                    "area_m2": area,
                    "species": "populus",
                    "start": {"stand_volume_m3_per_ha": "0"},
                }
            ],
            "relative_uncertainty": "0.08",
        },
    }


def test_constant_raster_gives_exactly_its_density_over_the_plot(client: TestClient, login: Login) -> None:
    project_id, plot_id, area_m2 = setup_plot(client, login)
    zonal = client.get(
        f"/api/v1/plots/{plot_id}/zonal-statistics", params={"layer": "agb-constant"}, headers=login("auditor")
    ).json()
    # 100 t/ha over the plot: integral / 10⁴ = 100 t/ha × area_ha tonnes, the geodesic area within 0.01 %.
    assert zonal["area_m2"] == pytest.approx(area_m2, rel=1e-4)
    assert zonal["integral"] / 1e4 == pytest.approx(100 * area_m2 / 1e4, rel=1e-4)

    response = client.post(
        f"/api/v1/projects/{project_id}/monitoring-reports",
        json=ccer_request(plot_id, area_m2),
        headers=login("forest_owner"),
    )
    assert response.status_code == 201, response.text
    report = response.json()
    trace = client.get(f"/api/v1/monitoring-reports/{report['id']}/trace", headers=login("verifier")).json()
    raster = trace["inputs"]["raster"]
    assert raster["layer"] == "agb-constant" and len(raster["layer_sha256"]) == 64
    assert raster["strata"]["RR-1"]["density_t_per_ha"] == "100.000"
    steps = {s["name"]: s for s in trace["record"]["trace"]}
    biomass = steps["stratum[RR-1].end.b_tree_t_per_ha"]
    assert biomass["value"] == "100.000" and raster["layer_sha256"] in biomass["terms"]["source"]
    # C_TREE(t2) = 44/12 × CF × (1 + R) × A × 100 t/ha, with the populus factors the record cites.
    parameters = trace["record"]["parameters"]
    cf = Decimal(parameters["species.populus.carbon_fraction"]["value"])
    r = Decimal(parameters["species.populus.root_shoot"]["value"])
    area_ha = Decimal(str(int(area_m2))) / 10_000
    expected = Decimal(44) * cf * (1 + r) * area_ha * 100 / 12
    assert Decimal(steps["stratum[RR-1].end.tree_stock_tco2e"]["value"]) == pytest.approx(
        expected, rel=Decimal("1e-20")
    )
    # About 230 t CO2e/ha in five years on an arid site: far above the band, reported and not clipped.
    # (the test's project is a draft, so the report also warns it cannot be issued until it is registered)
    assert [w["code"] for w in report["warnings"]] == ["band.arid_tree", "project_not_registered"]
    assert Decimal(report["gross_removal_tco2e"]) == Decimal(steps["delta_c_p_tco2e"]["value"]).quantize(
        Decimal("0.001"), rounding="ROUND_FLOOR"
    )
    sheet = client.get(f"/api/v1/monitoring-reports/{report['id']}/sheet", headers=login("verifier")).text
    assert "Raster route" in sheet and raster["layer_sha256"] in sheet


def test_raster_route_refusals(client: TestClient, login: Login, settings: Settings) -> None:
    project_id, plot_id, area_m2 = setup_plot(client, login)
    url = f"/api/v1/projects/{project_id}/monitoring-reports/preview"
    owner = login("forest_owner")
    body = assert_problem(
        client.post(url, json=ccer_request(plot_id, area_m2, "landcover-constant"), headers=owner),
        422,
        "core/invalid-input",
    )
    assert body["errors"][0]["pointer"] == "/raster/layer"
    assert_problem(client.post(url, json=ccer_request(plot_id, area_m2, "nope"), headers=owner), 404, "core/not-found")
    request = ccer_request(plot_id, area_m2)
    request["inputs"]["strata"][0]["end"] = {"stand_volume_m3_per_ha": "5"}
    assert_problem(client.post(url, json=request, headers=owner), 422, "core/invalid-input")
    assert client.post(url, json=ccer_request(plot_id, area_m2), headers=owner).status_code == 200
    # A changed file no longer matches the registered SHA-256: refused, so every record names its raster.
    write_constant(settings.raster_dir / "agb_constant.tif", 90.0)
    assert_problem(client.post(url, json=ccer_request(plot_id, area_m2), headers=owner), 409, "core/conflict")


def test_raster_that_misses_the_plot_is_refused(client: TestClient, login: Login, settings: Settings) -> None:
    project_id, plot_id, area_m2 = setup_plot(client, login)
    profile = {"driver": "GTiff", "width": 10, "height": 1, "count": 1, "dtype": "float32", "crs": "EPSG:4490",
               "transform": Affine(0.001, 0.0, WEST, 0.0, -0.001, SOUTH + SIZE), "nodata": -9999.0}  # fmt: skip
    with rasterio.open(settings.raster_dir / "partial.tif", "w", **profile) as out:
        out.write(np.full((1, 10), 50.0, dtype="float32"), 1)  # the plot's top row of cells: 10 % of it
    layer = {"name": "agb-partial", "kind": "continuous", "units": "t/ha", "path": "partial.tif"}
    assert client.post("/api/v1/raster-layers", json=layer, headers=login("operator")).status_code == 201
    body = assert_problem(
        client.post(
            f"/api/v1/projects/{project_id}/monitoring-reports/preview",
            json=ccer_request(plot_id, area_m2, "agb-partial"),
            headers=login("forest_owner"),
        ),
        422,
        "core/invalid-input",
    )
    assert "covers" in body["errors"][0]["reason"]
