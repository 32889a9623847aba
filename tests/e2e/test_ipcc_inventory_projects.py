"""IPCC inventory-unit projects through the API, registration to retirement certificate (issue 26).

A Jingyuan project of inventory units (``ipcc_inventory`` scheme) registers one 100-ha pine stratum, files the
stock difference between two inventories five years apart, and the removal is issued as credit class IFL.

Worked by hand (reference §8 T2; IPCC 2006 Vol.4 Tables 4.3–4.5, CF 0.47):

* t1, V = 30 m³/ha: BCEF_S 1.0 (class 21–40), AGB 30 t/ha, R 0.40, C1 = 100 × 30 × 1.0 × 1.40 × 0.47 = 1,974.0 t C;
* t2, V = 50 m³/ha: BCEF_S 0.75 (41–100), AGB 37.5 t/ha, R 0.40, C2 = 100 × 50 × 0.75 × 1.40 × 0.47 = 2,467.5 t C;
* ΔC = (2,467.5 − 1,974.0) / 5 = 98.7 t C/yr; over the 5 years 98.7 × 44/12 × 5 = 1,809.5 t CO2e;
* buffer 10 % (explicit, the IPCC sets none): issuable floor(1,809.5 × 0.9) = 1,628 t, buffer 181 t, remainder 0.5 t.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.monitoring_records import recompute
from core.auth import Organisation, OrgKind

Login = Callable[[str], dict[str, str]]
STRATUM = (106.40, 35.60, 106.411, 35.611)  # Jingyuan county, away from the demo plots


def inventory_request(plot_id: int, **calculation: Any) -> dict[str, Any]:
    return {
        "methodology_id": "ipcc-2006-2019-forest-land", "methodology_version": "1",
        "period_start": "2021-01-01", "period_end": "2025-12-31", "plot_ids": [plot_id],
        "inputs": {
            "calculation": {"method": "stock_difference", "interval_years": "5", "strata": [
                {"stratum_id": "JY-P-01", "area_m2": "1000000", "forest_type": "pines",
                 "growing_stock_start_m3_per_ha": "30", "growing_stock_end_m3_per_ha": "50"}], **calculation},
            "buffer": {"risk_rating": None, "share": "0.10", "reason": "registry rule for IFL: 10 % (no IPCC buffer)"},
        },
    }  # fmt: skip


@pytest.fixture
def inventory(client: TestClient, login: Login) -> dict[str, Any]:
    bureau = login("forestry_bureau")
    body = {"name": "泾源油松清单碳汇 (test)", "scheme": "ipcc_inventory", "province_code": "64",
            "county_code": "640424", "crediting_start": "2021-01-01", "crediting_end": "2051-01-01"}  # fmt: skip
    created = client.post("/api/v1/projects", json=body, headers=bureau)
    assert created.status_code == 201 and created.json()["kind"] == "inventory_units", created.text
    project = created.json()
    west, south, east, north = STRATUM
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    unit = {"type": "Feature", "properties": {"code": "JY-P-01", "name": "油松 stratum"},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip
    uploaded = client.post(f"/api/v1/projects/{project['id']}/plots", json=unit, headers=bureau)
    assert uploaded.status_code == 201, uploaded.text
    for step, who in (("submit", "forestry_bureau"), ("validate", "verifier"), ("register", "registry")):
        response = client.post(f"/api/v1/projects/{project['id']}/{step}", json={"comment": "ok"}, headers=login(who))
        assert response.status_code == 200, response.text
    return {"project": project, "plot_id": uploaded.json()["features"][0]["id"]}


def test_an_ipcc_project_from_registration_to_a_retirement_certificate(
    client: TestClient, login: Login, session: Session, inventory: dict[str, Any]
) -> None:
    bureau, project_id = login("forestry_bureau"), inventory["project"]["id"]
    url = f"/api/v1/projects/{project_id}/monitoring-reports"
    preview = client.post(f"{url}/preview", json=inventory_request(inventory["plot_id"]), headers=bureau)
    assert preview.status_code == 200, preview.text
    result = preview.json()["result"]
    assert result["stock_t1_tc"] == "1974.000" and result["stock_t2_tc"] == "2467.500"
    assert result["delta_c_tc_per_yr"] == "98.700" and result["removal_tco2e"] == "1809.500"
    assert (result["issuable_units_t"], result["buffer_units_t"], result["remainder_tco2e"]) == ("1628", "181", "0.500")
    filed = client.post(url, json=inventory_request(inventory["plot_id"]), headers=bureau)
    assert filed.status_code == 201, filed.text
    report = filed.json()
    trace = client.get(f"/api/v1/monitoring-reports/{report['id']}/trace", headers=bureau).json()
    assert recompute(trace["record"]) == trace["record_sha256"] == report["record_sha256"]  # offline, byte for byte
    for step, who in (("verify", "verifier"), ("issue", "registry")):
        response = client.post(f"/api/v1/monitoring-reports/{report['id']}/{step}", json={"comment": "ok"},
                               headers=login(who))  # fmt: skip
        assert response.status_code == 200, response.text
    blocks = [b for b in client.get("/api/v1/holdings", headers=bureau).json()["blocks"] if b["credit_class"] == "IFL"]
    assert [b["quantity_t"] for b in blocks] == [1628]
    assert blocks[0]["serial"].startswith(f"SH-IFL-64-{project_id:06d}-2025-")
    enterprise = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)).one()
    session.rollback()
    moved = client.post("/api/v1/transfers", json={"to_organisation_id": enterprise, "quantity_t": 200,
                                                   "batch_ids": [blocks[0]["batch_id"]]}, headers=bureau)  # fmt: skip
    assert moved.status_code == 201, moved.text
    retirement = {
        "quantity_t": 200,
        "beneficiary": "宁夏某企业 (test)",
        "purpose": "2025 offset",
        "reporting_year": 2025,
    }
    retired = client.post("/api/v1/retirements", headers=login("enterprise"), json=retirement)
    assert retired.status_code == 201, retired.text
    facts = retired.json()
    assert [c["code"] for c in facts["credit_classes"]] == ["IFL"]
    assert [p["id"] for p in facts["plots"]] == [inventory["plot_id"]]
    pdf = client.get(f"/public/v1/retirements/{facts['verification_code']}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_an_ipcc_report_credits_a_stock_difference_over_its_period_with_an_explicit_buffer(
    client: TestClient, login: Login, inventory: dict[str, Any]
) -> None:
    bureau = login("forestry_bureau")
    url = f"/api/v1/projects/{inventory['project']['id']}/monitoring-reports/preview"
    no_buffer = inventory_request(inventory["plot_id"])
    del no_buffer["inputs"]["buffer"]
    assert client.post(url, json=no_buffer, headers=bureau).status_code == 422
    rated = inventory_request(inventory["plot_id"])
    rated["inputs"]["buffer"] = {"risk_rating": "medium"}
    refused = client.post(url, json=rated, headers=bureau)
    assert refused.status_code == 422 and refused.json()["type"].endswith("carbon/ineligible"), refused.text
    wrong_interval = inventory_request(inventory["plot_id"], interval_years="3")
    refused = client.post(url, json=wrong_interval, headers=bureau)
    assert refused.status_code == 422 and "report period" in refused.json()["errors"][0]["reason"]
    for odd in ("NaN", "Infinity", "x", "1e999"):  # the model refuses them, never a 500
        assert client.post(url, json=inventory_request(inventory["plot_id"], interval_years=odd),
                           headers=bureau).status_code == 422, odd  # fmt: skip
    too_big = inventory_request(inventory["plot_id"])
    too_big["inputs"]["calculation"]["strata"][0]["area_m2"] = "5000000"  # five times the polygon
    assert client.post(url, json=too_big, headers=bureau).status_code == 422
    # a plot project cannot file an inventory report, nor an inventory project a plot methodology
    plots_project = client.post("/api/v1/projects/1/monitoring-reports/preview",
                                json=inventory_request(inventory["plot_id"]), headers=bureau)  # fmt: skip
    assert plots_project.status_code == 422 and "accounts inventory_units" in plots_project.json()["detail"]
