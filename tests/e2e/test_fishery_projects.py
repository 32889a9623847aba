"""Ocean (fishery) carbon-sink projects through the API, registration to retirement certificate (issue 26).

A Lianjiang fishery cooperative registers a sea-area project, uploads two licensed sea areas off the Lianjiang coast,
has the project validated and registered, previews and files its 2025 harvest (oysters on rafts, kelp on
longlines), which a verifier verifies and the registry issues as credit class OFS. The cooperative sells on the
exchange, the enterprise buys and retires, and the certificate names the class and the serials.

The worked example is computed here by hand from the coefficients of 孙康 et al. 2020 Table 2 (reference §5.2,
parameter set ``hyt-0305-2021-mariculture@1-provisional``):

* oyster 1,000 t fresh: soft tissue 1000 × 0.6510 × 0.0614 × 0.4598 = 18.37884972 t C;
  shell 1000 × 0.6510 × 0.9386 × 0.1268 = 77.47842648 t C; together 95.8572762 t C (reference T8);
* kelp 1,000 t fresh: 1000 × 0.20 × 0.3120 = 62.4 t C (reference T9);
* total 158.2572762 t C × 44/12 = 580.2766794 t CO2e, floored to 580.276;
* buffer (medium risk, 15 %): issuable floor(580.276 × 0.85) = floor(493.2346) = 493 t; buffer
  min(ceil(580.276 × 0.15), floor(580.276 − 493)) = min(ceil(87.0414), 87) = 87 t; remainder 0.276 t.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.seed import DemoOrg
from api.seed_fishery import ensure_cooperative
from carbon.models import ClaimStatus, Plot
from carbon.monitoring_records import recompute
from core.auth import Organisation, OrgKind
from core.clock import FixedClock

Login = Callable[[str], dict[str, str]]
# Open water off the Lianjiang coast, away from the demo's Huangqi bay sea areas (``api.seed_fishery``), with
# licence numbers of their own, so these tests hold whether or not the fishery demo is seeded.
OYSTER_AREA = (119.700, 26.200, 119.708, 26.207)
KELP_AREA = (119.710, 26.200, 119.718, 26.207)
ELSEWHERE = (119.700, 26.190, 119.708, 26.197)
ELSEWHERE_EAST = (119.710, 26.190, 119.718, 26.197)
OYSTER_LICENCE = "闽连江县府(海)养证[2024]第01207号"
KELP_LICENCE = "国海证2024350122000913号"


def feature(code: str, box: tuple[float, float, float, float], **properties: Any) -> dict[str, Any]:
    west, south, east, north = box
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Feature", "properties": {"code": code, **properties},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip


def sea_areas(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


#: A cooperative of the tests' own (not the demo's, which may hold demo tonnes).
COOPERATIVE = DemoOrg(OrgKind.FOREST_OWNER, "连江县测试渔业合作社 (test fishery cooperative)", "35", "350122",
                      "lj-fishery-test")  # fmt: skip


@pytest.fixture
def cooperative(client: TestClient, session: Session, clock: FixedClock) -> dict[str, str]:
    """A Lianjiang fishery cooperative's auth headers (created here)."""
    ensure_cooperative(session, clock=clock, demo=COOPERATIVE)
    session.rollback()
    response = client.post("/api/v1/auth/token",
                           data={"username": COOPERATIVE.username, "password": COOPERATIVE.password})  # fmt: skip
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def create_fishery_project(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {"name": "黄岐湾贝藻养殖碳汇 (test)", "scheme": "ocean_fishery", "province_code": "35",
            "county_code": "350122", "crediting_start": "2024-01-01", "crediting_end": "2044-01-01",
            **overrides}  # fmt: skip
    response = client.post("/api/v1/projects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


def register_project(client: TestClient, login: Login, project_id: int, proponent: dict[str, str]) -> None:
    for step, headers in (("submit", proponent), ("validate", login("verifier")), ("register", login("registry"))):
        response = client.post(f"/api/v1/projects/{project_id}/{step}", json={"comment": "ok"}, headers=headers)
        assert response.status_code == 200, response.text


def harvest_request(codes: dict[str, int], **overrides: Any) -> dict[str, Any]:
    body = {
        "methodology_id": "HY-T-0305-2021", "methodology_version": "1",
        "period_start": "2025-01-01", "period_end": "2025-12-31",
        "plot_ids": sorted(codes.values()),
        "inputs": {"harvests": [
            {"sea_area_id": "SA-OYSTER", "species": "oyster", "culture": "non_fed", "culture_mode": "raft",
             "harvest_fresh_t": "1000", "source": "2025 landings ledger"},
            {"sea_area_id": "SA-KELP", "species": "kelp", "culture": "non_fed", "culture_mode": "longline",
             "harvest_fresh_t": "1000", "source": "2025 kelp harvest, weighed fresh"},
        ]},
    }  # fmt: skip
    body.update(overrides)
    return body


@pytest.fixture
def fishery(client: TestClient, login: Login, cooperative: dict[str, str]) -> dict[str, Any]:
    """A registered fishery project with its two sea areas; returns the project and sea-area ids by code."""
    project = create_fishery_project(client, cooperative)
    assert project["kind"] == "sea_areas"
    upload = sea_areas(
        feature("SA-OYSTER", OYSTER_AREA, licence_kind="aquaculture", licence_number=OYSTER_LICENCE),
        feature("SA-KELP", KELP_AREA, 海域使用权证号=KELP_LICENCE),
    )
    response = client.post(f"/api/v1/projects/{project['id']}/plots", json=upload, headers=cooperative)
    assert response.status_code == 201, response.text
    codes = {f["properties"]["plot_code"]: f["id"] for f in response.json()["features"]}
    licences = {f["properties"]["plot_code"]: f["properties"]["licence"] for f in response.json()["features"]}
    assert licences == {
        "SA-OYSTER": {"number": OYSTER_LICENCE, "kind": "aquaculture"},
        "SA-KELP": {"number": KELP_LICENCE, "kind": "sea_use_right"},
    }
    register_project(client, login, project["id"], cooperative)
    return {"project": project, "codes": codes}


def step(client: TestClient, report_id: int, name: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(f"/api/v1/monitoring-reports/{report_id}/{name}", json={"comment": "ok"}, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_worked_example_by_hand(client: TestClient, cooperative: dict[str, str], fishery: dict[str, Any]) -> None:
    project_id = fishery["project"]["id"]
    response = client.post(f"/api/v1/projects/{project_id}/monitoring-reports/preview",
                           json=harvest_request(fishery["codes"]), headers=cooperative)  # fmt: skip
    assert response.status_code == 200, response.text
    preview = response.json()
    steps = {s["name"]: s for s in preview["record"]["trace"]}
    oyster_soft = Decimal(1000) * Decimal("0.6510") * Decimal("0.0614") * Decimal("0.4598")
    oyster_shell = Decimal(1000) * Decimal("0.6510") * Decimal("0.9386") * Decimal("0.1268")
    assert oyster_soft == Decimal("18.37884972") and oyster_shell == Decimal("77.47842648")
    assert Decimal(steps["harvest[0:oyster].soft_tissue_carbon_tc"]["value"]) == oyster_soft
    assert Decimal(steps["harvest[0:oyster].shell_carbon_tc"]["value"]) == oyster_shell
    assert Decimal(steps["harvest[0:oyster].carbon_tc"]["value"]) == Decimal("95.8572762")
    assert Decimal(steps["harvest[1:kelp].carbon_tc"]["value"]) == Decimal("62.4")
    assert steps["harvest[1:kelp].carbon_tc"]["terms"] == {
        "P_wet_t": "1000", "R_dw": "0.20", "CF_algae": "0.3120", "sea_area_id": "SA-KELP", "culture_mode": "longline"
    }  # fmt: skip
    assert Decimal(steps["carbon_tc"]["value"]) == Decimal("158.2572762")
    # 158.2572762 × 44 / 12 = 580.27667940 (the trace keeps the unrounded value)
    assert Decimal(steps["removal_tco2e"]["value"]).quantize(Decimal("0.0000001")) == Decimal("580.2766794")
    assert preview["result"] == {
        "carbon_tc": "158.257", "removal_tco2e": "580.276", "creditable_tco2e": "580.276",
        "buffer_units_t": "87", "issuable_units_t": "493", "remainder_tco2e": "0.276",
    }  # fmt: skip
    assert preview["provisional"] is True  # the coefficient set is provisional (HY/T 0305 equations not read)
    cited = preview["record"]["parameters"]["species.oyster.shell_carbon_fraction"]
    assert cited["value"] == "0.1268" and "孙康" in cited["citation"]


def test_a_fishery_project_from_registration_to_a_retirement_certificate(
    client: TestClient, login: Login, session: Session, cooperative: dict[str, str], fishery: dict[str, Any]
) -> None:
    project_id = fishery["project"]["id"]
    filed = client.post(f"/api/v1/projects/{project_id}/monitoring-reports", json=harvest_request(fishery["codes"]),
                        headers=cooperative)  # fmt: skip
    assert filed.status_code == 201, filed.text
    report = filed.json()
    assert report["issuable_units_t"] == 493 and report["buffer_units_t"] == 87
    trace = client.get(f"/api/v1/monitoring-reports/{report['id']}/trace", headers=cooperative).json()
    assert recompute(trace["record"]) == trace["record_sha256"] == report["record_sha256"]  # offline, byte for byte
    step(client, report["id"], "verify", login("verifier"))
    issued = step(client, report["id"], "issue", login("registry"))
    assert issued["status"] == "issued" and issued["batch_id"] is not None
    issued_batch = issued["batch_id"]
    holdings = client.get("/api/v1/holdings", headers=cooperative).json()
    [block] = [b for b in holdings["blocks"] if b["batch_id"] == issued_batch]  # beside any demo tonnes
    assert block["credit_class"] == "OFS" and block["quantity_t"] == 493 and block["state"] == "tradable"
    assert block["serial"].startswith(f"SH-OFS-35-{project_id:06d}-2025-")
    # trade: the cooperative sells 100 t on the OFS-2025 instrument, the enterprise buys
    instrument = {"instrument_id": "OFS-2025", "credit_class": "OFS", "vintage_year": 2025,
                  "reference_price_cny": "8", "always_open": True}  # fmt: skip
    assert client.post("/api/v1/instruments", json=instrument, headers=login("operator")).status_code == 201
    enterprise = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)).one()
    session.rollback()
    deposit = {"organisation_id": enterprise, "amount_fen": 1_000_000, "reference": "BANK-OFS"}
    assert client.post("/api/v1/cash/deposits", json=deposit, headers=login("operator")).status_code == 201
    sell = {"instrument_id": "OFS-2025", "side": "sell", "price_cny": "8.00", "quantity_t": 100}
    assert client.post("/api/v1/orders", json=sell, headers=cooperative).status_code == 201
    bought = client.post("/api/v1/orders", json={**sell, "side": "buy"}, headers=login("enterprise"))
    assert bought.status_code == 201 and bought.json()["filled_t"] == 100, bought.text
    retired = client.post("/api/v1/retirements", headers=login("enterprise"), json={
        "quantity_t": 60, "beneficiary": "厦门海沧港务 Xiamen Haicang port", "purpose": "2025 offset (ocean sink)",
        "reporting_year": 2025})  # fmt: skip
    assert retired.status_code == 201, retired.text
    facts = retired.json()
    assert [c["code"] for c in facts["credit_classes"]] == ["OFS"] and facts["credit_classes"][0]["provisional"]
    assert {p["id"] for p in facts["plots"]} == set(fishery["codes"].values())
    pdf = client.get(f"/public/v1/retirements/{facts['verification_code']}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    public = client.get("/public/v1/retirements", params={"class": "OFS"}).json()["items"]
    assert [r["verification_code"] for r in public] == [facts["verification_code"]]


def test_a_second_claim_on_the_same_harvest_is_refused(
    client: TestClient, login: Login, cooperative: dict[str, str], fishery: dict[str, Any]
) -> None:
    project_id, codes = fishery["project"]["id"], fishery["codes"]
    url = f"/api/v1/projects/{project_id}/monitoring-reports"
    assert client.post(url, json=harvest_request(codes), headers=cooperative).status_code == 201
    # the same season again, even on one sea area only and for part of the year: refused
    again = harvest_request({"SA-KELP": codes["SA-KELP"]}, period_start="2025-04-01", period_end="2025-06-30")
    again["inputs"]["harvests"] = again["inputs"]["harvests"][1:]
    refused = client.post(url, json=again, headers=cooperative)
    assert refused.status_code == 409, refused.text
    # the next season is a new harvest
    following = harvest_request(codes, period_start="2026-01-01", period_end="2026-12-31")
    assert client.post(url, json=following, headers=cooperative).status_code == 201


def test_the_same_harvest_claimed_again_by_another_project_is_refused(
    client: TestClient, login: Login, session: Session, cooperative: dict[str, str], fishery: dict[str, Any]
) -> None:
    codes = fishery["codes"]
    first = client.post(f"/api/v1/projects/{fishery['project']['id']}/monitoring-reports",
                        json=harvest_request(codes), headers=cooperative)  # fmt: skip
    assert first.status_code == 201, first.text
    # The first project's claims are withdrawn (e.g. the farm changed hands); another project registers the
    # same water under the same licence and claims the 2025 harvest again.
    session.execute(update(Plot).where(Plot.id.in_(codes.values())).values(claim_status=ClaimStatus.WITHDRAWN))
    session.commit()
    other = login("forest_owner")
    project = create_fishery_project(client, other, name="Resold farm (test)")
    upload = sea_areas(
        feature("SA-OYSTER", OYSTER_AREA, licence_kind="aquaculture", licence_number=OYSTER_LICENCE),
        feature("SA-KELP", KELP_AREA, 海域使用权证号=KELP_LICENCE),
    )
    uploaded = client.post(f"/api/v1/projects/{project['id']}/plots", json=upload, headers=other)
    assert uploaded.status_code == 201, uploaded.text
    register_project(client, login, project["id"], other)
    new_codes = {f["properties"]["plot_code"]: f["id"] for f in uploaded.json()["features"]}
    url = f"/api/v1/projects/{project['id']}/monitoring-reports"
    for path in (f"{url}/preview", url):
        refused = client.post(path, json=harvest_request(new_codes), headers=other)
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert body["type"].endswith("carbon/double-counting")
        assert {c["existing_report_id"] for c in body["conflicts"]} == {first.json()["id"]}
        assert {c["sea_area_code"] for c in body["conflicts"]} == {"SA-OYSTER", "SA-KELP"}
    # a rejected report frees its harvest claim
    reject = client.post(f"/api/v1/monitoring-reports/{first.json()['id']}/reject",
                         json={"comment": "landing records missing"}, headers=login("verifier"))  # fmt: skip
    assert reject.status_code == 200, reject.text
    assert client.post(url, json=harvest_request(new_codes), headers=other).status_code == 201


def test_overlapping_sea_areas_and_repeated_licences_in_the_same_period_are_refused(
    client: TestClient, login: Login, cooperative: dict[str, str], fishery: dict[str, Any]
) -> None:
    other = login("forest_owner")
    project = create_fishery_project(client, other, name="Neighbouring farm (test)")
    url = f"/api/v1/projects/{project['id']}/plots"
    west, south, east, north = OYSTER_AREA
    shifted = (west + 0.002, south + 0.002, east + 0.002, north + 0.002)  # overlaps most of the oyster area
    neighbour = feature("N-1", shifted, 养殖证号="闽连江县府(海)养证[2024]第09001号")
    overlapping = client.post(url, json=sea_areas(neighbour), headers=other)
    assert overlapping.status_code == 409 and overlapping.json()["type"].endswith("carbon/double-counting")
    elsewhere = ELSEWHERE  # open water, no overlap, but the oyster area's licence
    full_width = feature("N-2", elsewhere, 养殖证号=" 闽连江县府（海）养证［2024］第01207号")  # same number, NFKC
    same_licence = client.post(url, json=sea_areas(full_width), headers=other)
    assert same_licence.status_code == 409, same_licence.text
    assert same_licence.json()["conflicts"][0]["licence_number"] == OYSTER_LICENCE
    twice = sea_areas(feature("N-3", elsewhere, 养殖证号="L-0001"),
                      feature("N-4", ELSEWHERE_EAST, 养殖证号="l-0001"))  # fmt: skip
    assert client.post(url, json=twice, headers=other).status_code == 409
    # a later crediting period does not overlap: the same water and licence may be claimed then
    later = create_fishery_project(client, other, name="Later farm (test)", crediting_start="2044-01-01",
                                   crediting_end="2054-01-01")  # fmt: skip
    again = sea_areas(feature("L-1", OYSTER_AREA, licence_kind="aquaculture", licence_number=OYSTER_LICENCE))
    assert client.post(f"/api/v1/projects/{later['id']}/plots", json=again, headers=other).status_code == 201


def test_sea_areas_must_lie_at_sea_near_their_county_with_a_licence(
    client: TestClient, cooperative: dict[str, str]
) -> None:
    project = create_fishery_project(client, cooperative)
    url = f"/api/v1/projects/{project['id']}/plots"
    on_land = (119.30, 26.30, 119.31, 26.31)  # hills of Lianjiang, 100 % land
    far_out = (119.45, 25.35, 119.46, 25.36)  # Xinghua bay (Putian), 85 km from Lianjiang
    cases = {
        "lies on land": feature("X-1", on_land, 养殖证号="L-1001"),
        "km from county 350122": feature("X-2", far_out, 养殖证号="L-1002"),
        "states its 海域使用权证 or 养殖证": feature("X-3", OYSTER_AREA),
        "licence_kind": feature("X-4", OYSTER_AREA, licence_number="L-1004"),
    }
    for expected, case in cases.items():
        response = client.post(url, json=sea_areas(case), headers=cooperative)
        assert response.status_code == 422, (expected, response.text)
        assert expected in response.json()["errors"][0]["reason"], (expected, response.json())
    assert client.get(url, headers=cooperative).json()["features"] == []  # nothing stored


def test_project_kinds_follow_the_scheme_and_methodologies_fit_the_kind(
    client: TestClient, login: Login, cooperative: dict[str, str], fishery: dict[str, Any]
) -> None:
    wrong = {"name": "x", "scheme": "ocean_fishery", "kind": "plots", "province_code": "35", "county_code": "350122",
             "crediting_start": "2024-01-01", "crediting_end": "2044-01-01"}  # fmt: skip
    assert client.post("/api/v1/projects", json=wrong, headers=cooperative).status_code == 422
    no_county = {**wrong, "kind": "sea_areas", "county_code": None}
    assert client.post("/api/v1/projects", json=no_county, headers=cooperative).status_code == 422
    forest = copy.deepcopy(harvest_request(fishery["codes"]))
    forest["methodology_id"] = "FJ-FORESTRY-CARBON-TICKET"
    response = client.post(f"/api/v1/projects/{fishery['project']['id']}/monitoring-reports/preview", json=forest,
                           headers=cooperative)  # fmt: skip
    assert response.status_code == 422 and "accounts plots" in response.json()["detail"]
    unstated = harvest_request(fishery["codes"])
    del unstated["inputs"]["harvests"][0]["culture_mode"]
    response = client.post(f"/api/v1/projects/{fishery['project']['id']}/monitoring-reports/preview", json=unstated,
                           headers=cooperative)  # fmt: skip
    assert response.status_code == 422 and response.json()["errors"][0]["pointer"].endswith("/culture_mode")
    listed = client.get("/api/v1/methodologies", headers=cooperative).json()["items"]
    assert all(m["monitoring_reports"] for m in listed), [m["id"] for m in listed if not m["monitoring_reports"]]
