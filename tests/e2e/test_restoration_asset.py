"""Restoration turned into a carbon asset, through the API only (issue 26 item 3).

A bureau registers a mine-restoration project and its plot, the verifier validates and the registry registers
it; the bureau attaches the land cover before and after and a field sheet and files an NX-RESTORATION v2 report
(bare-ground baseline, cover planted and sown, its growth); the verifier — another organisation and user —
verifies and attaches its report; the registry issues the batch with serials; the bureau retires tonnes and the
certificate verifies publicly. Beside the tonnes, the GEP of the regions the plot lies in and its change between
two runs' years (the join lives in ``api``, above ``carbon`` and ``gep``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader, PdfWriter

from api.seed import GEP_DEMO_RUN
from tests.conftest import SAMPLES

Login = Callable[[str], dict[str, str]]


def square(west: float, south: float, size_deg: float) -> dict[str, Any]:
    ring = [[west, south], [west + size_deg, south], [west + size_deg, south + size_deg], [west, south + size_deg],
            [west, south]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def register_restoration(client: TestClient, login: Login, county: str, geometry: dict[str, Any]) -> tuple[int, dict]:
    """Create, plot, submit, validate and register a restoration project; return its id and its plot."""
    bureau = login("forestry_bureau")
    project = ok(client.post("/api/v1/projects", headers=bureau, json={
        "name": f"Mine restoration {county}", "scheme": "ecological_restoration", "province_code": "64",
        "county_code": county, "crediting_start": "2022-04-01", "crediting_end": "2042-04-01"}), 201)  # fmt: skip
    feature = {"type": "Feature", "properties": {"code": f"KS-{county}", "name": "quarry"}, "geometry": geometry}
    plot = ok(client.post(f"/api/v1/projects/{project['id']}/plots", json=feature, headers=bureau), 201)["features"][0]
    for step, who in (("submit", "forestry_bureau"), ("validate", "verifier"), ("register", "registry")):
        ok(client.post(f"/api/v1/projects/{project['id']}/{step}", json={"comment": step}, headers=login(who)))
    return project["id"], plot


def report_request(plot: dict[str, Any]) -> dict[str, Any]:
    area_m2 = Decimal(str(plot["properties"]["area_m2"])).quantize(Decimal(1))
    return {
        "methodology_id": "NX-RESTORATION", "methodology_version": "2",
        "period_start": "2022-04-01", "period_end": "2025-12-31", "plot_ids": [plot["id"]],
        "inputs": {
            "restoration_start": "2022-04-01", "relative_uncertainty": "0.10",
            "polygons": [{
                "polygon_id": plot["properties"]["plot_code"], "area_m2": str(area_m2), "activity": "mine_site",
                "shrub_crown_cover_start": "0", "shrub_crown_cover_end": "0.25", "forest_biomass_t_per_ha": "40",
                "soil": {"method": "default_factors", "climate_soil": "temperate_dry.sandy",
                         "condition_before": "severely_degraded", "condition_after": "nominally_managed"},
                "baseline": {"surveyed_on": "2022-03-01", "shrub_crown_cover": "0",
                             "soil_condition": "severely_degraded", "source": "test survey"},
                "cover": [{"species": "Caragana korshinskii", "life_form": "shrub", "establishment": "planted",
                           "established_on": "2022-04-15", "area_share": "0.8"},
                          {"species": "Astragalus adsurgens", "life_form": "herbaceous", "establishment": "sown",
                           "established_on": "2022-05-01", "area_share": "1"}],
            }],
        },
    }  # fmt: skip


def attach(client: TestClient, headers: dict[str, str], target: str, kind: str, name: str, data: bytes) -> Any:
    response = client.post(target, headers=headers, files={"file": (name, data)}, data={"kind": kind})
    return ok(response, 201)


def pdf() -> bytes:
    writer, out = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=595, height=842)
    writer.write(out)
    return out.getvalue()


def test_restoration_from_registration_to_retirement_certificate(client: TestClient, login: Login) -> None:
    bureau, verifier, registry = login("forestry_bureau"), login("verifier"), login("registry")
    project_id, plot = register_restoration(client, login, "640121", square(106.10, 38.30, 0.01))  # Yongning
    evidence = f"/api/v1/projects/{project_id}/attachments"
    rasters = SAMPLES / "rasters"
    before = attach(client, bureau, evidence, "land_cover_before", "lc-2021.tif",
                    (rasters / "landcover_yongning_2021.tif").read_bytes())  # fmt: skip
    after = attach(client, bureau, evidence, "land_cover_after", "lc-2025.tif",
                   (rasters / "landcover_yongning_2025.tif").read_bytes())  # fmt: skip
    assert before["details"]["crs"] == "EPSG:4490" and after["media_type"] == "image/tiff"

    request = report_request(plot)
    preview = ok(client.post(f"/api/v1/projects/{project_id}/monitoring-reports/preview", json=request, headers=bureau))
    steps = {s["name"]: s for s in preview["record"]["trace"]}
    assert Decimal(steps[f"polygon[{plot['properties']['plot_code']}].baseline_removal_tco2e"]["value"]) == 0
    report = ok(client.post(f"/api/v1/projects/{project_id}/monitoring-reports", json=request, headers=bureau), 201)
    assert report["issuable_units_t"] > 0 and report["provisional"]
    sheet = attach(client, bureau, f"/api/v1/monitoring-reports/{report['id']}/attachments", "field_sheet",
                   "transects.csv", b"transect,cover_2025\nT1,0.26\nT2,0.24\n")  # fmt: skip

    cited = [
        {"name": a["filename"], "sha256": a["sha256"], "media_type": a["media_type"]} for a in (before, after, sheet)
    ]
    ok(
        client.post(
            f"/api/v1/monitoring-reports/{report['id']}/verify",
            json={"comment": "Transects re-walked; land cover checked.", "evidence": cited},
            headers=verifier,
        )
    )
    attach(client, verifier, f"/api/v1/monitoring-reports/{report['id']}/attachments", "verification_report",
           "核查报告.pdf", pdf())  # fmt: skip
    issued = ok(client.post(f"/api/v1/monitoring-reports/{report['id']}/issue", json={}, headers=registry))
    assert issued["status"] == "issued"

    code = ok(client.get(f"/api/v1/projects/{project_id}", headers=bureau))["code"]
    batches = [b for b in ok(client.get("/public/v1/batches"))["items"] if b["project_code"] == code]
    assert len(batches) == 1 and batches[0]["credit_class"] == "ERS" and batches[0]["vintage"] == 2025
    assert batches[0]["quantity_t"] == report["issuable_units_t"] + report["buffer_units_t"]
    public = {f["properties"]["code"]: f["properties"] for f in ok(client.get("/public/v1/projects"))["features"]}
    assert public[code]["issued_t"] == batches[0]["quantity_t"] and public[code]["scheme"] == "ecological_restoration"

    retired = ok(client.post("/api/v1/retirements", headers=bureau, json={
        "quantity_t": 100, "beneficiary": "宁夏永宁县 Yongning county", "purpose": "restoration offset 2025",
        "reporting_year": 2025}), 201)  # fmt: skip
    verdict = ok(client.get(f"/public/v1/retirements/{retired['verification_code']}"))
    assert verdict["quantity_t"] == 100
    certificate = client.get(f"/public/v1/retirements/{retired['verification_code']}/certificate.pdf")
    assert certificate.status_code == 200 and certificate.content.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(certificate.content)).pages)
    assert code in text
    holdings = ok(client.get("/api/v1/holdings", headers=bureau))["totals_t"]
    assert holdings["tradable"] == report["issuable_units_t"] - 100

    listed = ok(client.get(f"/api/v1/monitoring-reports/{report['id']}/attachments", headers=login("auditor")))
    assert [a["kind"] for a in listed["items"]] == ["field_sheet", "verification_report"]
    joined = ok(client.get(f"/api/v1/projects/{project_id}/gep", headers=login("ecology_bureau")))
    assert joined["tonnes"]["issued_t"] == batches[0]["quantity_t"]
    assert joined["gep_runs"] == [] and joined["gep_changes"] == []  # no GEP run covers Yongning


def test_gep_gain_beside_the_tonnes(client: TestClient, login: Login) -> None:
    """A restoration inside the synthetic Jingyuan GEP layer: the seeded 2025 run and a 2021 run give a change."""
    project_id, _plot = register_restoration(client, login, "640424", square(106.40, 35.55, 0.004))  # SYN-JY-02
    ecology = login("ecology_bureau")
    body = json.loads(GEP_DEMO_RUN.model_dump_json()) | {"name": "Jingyuan 2021 (before)", "year": 2021}
    body["inputs"] = {**body["inputs"], "practice_factor": 1.2}  # a worse practice factor: less soil retained
    run_2021 = ok(client.post("/api/v1/gep/runs", json=body, headers=ecology), 202)
    assert run_2021["status"] == "succeeded"

    joined = ok(client.get(f"/api/v1/projects/{project_id}/gep", headers=ecology))
    assert [(r["year"], [g["code"] for g in r["regions"]]) for r in joined["gep_runs"]] == [
        (2025, ["SYN-JY-02"]),
        (2021, ["SYN-JY-02"]),
    ]
    share = joined["gep_runs"][0]["regions"][0]
    assert share["share_of_plots"] == 1 and 0 < share["plot_share_of_region"] < 0.01
    [change] = joined["gep_changes"]
    assert (change["before_year"], change["after_year"]) == (2021, 2025)
    summaries = {
        run_id: {r["region_code"]: Decimal(r["gep_yuan"]) for r in ok(client.get(f"/api/v1/gep/runs/{run_id}",
                                                                              headers=ecology))["summary"]}
        for run_id in (1, run_2021["id"])
    }  # fmt: skip
    [region] = change["regions"]
    expected = summaries[1]["SYN-JY-02"].quantize(Decimal("0.01")) - summaries[run_2021["id"]]["SYN-JY-02"].quantize(
        Decimal("0.01")
    )
    assert Decimal(region["value_change_yuan"]) == expected != 0

    bureau_view = client.get(f"/api/v1/projects/{project_id}/gep", headers=login("forestry_bureau"))
    assert bureau_view.status_code == 200  # its own project
    assert client.get(f"/api/v1/projects/{project_id}/gep", headers=login("forest_owner")).status_code == 404
    assert client.get(f"/api/v1/projects/{project_id}/gep", headers=login("enterprise")).status_code == 403


def test_the_sample_land_cover_pair_shows_the_restoration(tmp_path: Path) -> None:
    """The demo's before/after rasters: the mine plot bare in 2021, shrubs and sown grass in 2025."""
    import numpy as np
    import rasterio
    from rasterio.features import rasterize
    from shapely.geometry import shape

    plots = json.loads((SAMPLES / "demo_plots.geojson").read_text(encoding="utf-8"))["features"]
    polygon = shape(next(f for f in plots if f["properties"]["code"] == "NX-YN-KS-001")["geometry"])
    found = {}
    for year in (2021, 2025):
        with rasterio.open(SAMPLES / "rasters" / f"landcover_yongning_{year}.tif") as dataset:
            band = dataset.read(1)
            inside = rasterize([polygon], out_shape=band.shape, transform=dataset.transform) == 1
            found[year] = dict(zip(*np.unique(band[inside], return_counts=True), strict=True))
    assert set(found[2021]) == {4}  # bare / mine land
    assert set(found[2025]) == {2, 3} and found[2025][2] > found[2025][3]  # shrubs, a grass fringe
