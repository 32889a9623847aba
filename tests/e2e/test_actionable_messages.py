"""Messages a person can act on (issue 15 item 6), over HTTP on the demo data.

Each refusal names the organisation (name and id) rather than an account number, shows money in CNY with two
decimals (integer fen stay in extension members for clients), says the price band and its reference price,
reports swapped longitude/latitude once per feature, warns that a draft project's report cannot be issued
yet, and keeps draft projects off the public registry.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass
from core.auth import OrgKind
from core.clock import FixedClock

from .market_helpers import Login, deposit, issue, list_instrument, user_of
from .test_plots_api import SQUARE, assert_problem, feature, new_project

ORDERS = "/api/v1/orders"


def organisation(session: Session, kind: OrgKind) -> tuple[int, str]:
    user = user_of(session, kind)
    found = (user.organisation_id, user.organisation.name)
    session.rollback()
    return found


def order(client: TestClient, login: Login, who: str, side: str, price: str, quantity_t: int) -> Any:
    body = {"instrument_id": "FCT-2025", "side": side, "price_cny": price, "quantity_t": quantity_t}
    return client.post(ORDERS, json=body, headers=login(who))


def names(detail: str, organisation_id: int, name: str) -> bool:
    return name in detail and f"(organisation {organisation_id})" in detail


def test_out_of_band_says_the_band_its_reference_price_and_the_tick(
    client: TestClient, login: Login, session: Session
) -> None:
    list_instrument(client, login, "FCT-2025", "FCT", "60")  # listing band ±10 % around 60.00
    deposit(client, login, session, OrgKind.ENTERPRISE, 1_000_000)
    body = assert_problem(order(client, login, "fj-enterprise", "buy", "66.01", 1), 422, "trading/order-rejected")
    assert body["reason"] == "out_of_band"
    assert "[54.00, 66.00] CNY" in body["detail"] and "reference price 60.00 CNY" in body["detail"]
    assert "tick of 0.01 CNY" in body["detail"] and "66.01" in body["detail"]
    assert body["band_cny"] == ["54.00", "66.00"] and body["reference_price_cny"] == "60.00"
    assert body["tick_cny"] == "0.01" and body["band_ticks"] == [5400, 6600]


def test_insufficient_funds_names_the_organisation_in_cny(client: TestClient, login: Login, session: Session) -> None:
    list_instrument(client, login, "FCT-2025", "FCT", "60")
    deposit(client, login, session, OrgKind.ENTERPRISE, 100_050)  # 1,000.50 CNY
    organisation_id, name = organisation(session, OrgKind.ENTERPRISE)
    body = assert_problem(order(client, login, "fj-enterprise", "buy", "60.00", 100), 409, "trading/insufficient-funds")
    assert names(body["detail"], organisation_id, name), body["detail"]
    assert "6,000.00 CNY" in body["detail"] and "1,000.50 CNY" in body["detail"]
    assert not re.search(r"\bfen\b", body["detail"])
    assert body["organisation_id"] == organisation_id
    assert body["needed_fen"] == 600_000 and body["available_fen"] == 100_050


def test_withdrawal_beyond_the_balance_names_the_organisation_in_cny(
    client: TestClient, login: Login, session: Session
) -> None:
    deposit(client, login, session, OrgKind.ENTERPRISE, 5_000)
    organisation_id, name = organisation(session, OrgKind.ENTERPRISE)
    body = {"organisation_id": organisation_id, "amount_fen": 12_345, "reference": "BANK-OUT"}
    problem = assert_problem(client.post("/api/v1/cash/withdrawals", json=body, headers=login("operator")), 409,
                             "trading/insufficient-funds")  # fmt: skip
    assert names(problem["detail"], organisation_id, name), problem["detail"]
    assert "123.45 CNY" in problem["detail"] and "50.00 CNY" in problem["detail"]
    assert not re.search(r"\bfen\b", problem["detail"])


def test_a_short_transfer_names_the_organisation_not_account_n(
    client: TestClient, login: Login, session: Session
) -> None:
    organisation_id, name = organisation(session, OrgKind.FORESTRY_BUREAU)
    enterprise, _ = organisation(session, OrgKind.ENTERPRISE)
    body = {"to_organisation_id": enterprise, "quantity_t": 5}
    problem = assert_problem(client.post("/api/v1/transfers", json=body, headers=login("nx-bureau")), 409,
                             "carbon/insufficient-units")  # fmt: skip
    assert names(problem["detail"], organisation_id, name), problem["detail"]
    assert not problem["detail"].startswith("account ")
    assert problem["organisation_id"] == organisation_id
    assert problem["available_t"] == 0 and problem["needed_t"] == 5


def test_a_short_sale_names_the_organisation(
    client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    list_instrument(client, login, "FCT-2025", "FCT", "60")
    organisation_id, name = organisation(session, OrgKind.FORESTRY_BUREAU)
    problem = assert_problem(order(client, login, "nx-bureau", "sell", "60.00", 10), 409, "carbon/insufficient-units")
    assert names(problem["detail"], organisation_id, name), problem["detail"]
    assert problem["available_t"] == 0 and problem["needed_t"] == 10
    issue(session, clock, 1, "test:messages", CreditClass.FORESTRY_CARBON_TICKET, 10)
    assert order(client, login, "nx-bureau", "sell", "60.00", 10).status_code == 201  # with tonnes, it sells


def swapped(ring: list[list[float]]) -> list[list[float]]:
    return [[lat, lon] for lon, lat in ring]


def test_swapped_longitude_and_latitude_is_said_once_per_feature(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    shifted = [[lon + 0.05, lat] for lon, lat in SQUARE]
    document = {"type": "FeatureCollection", "features": [feature([swapped(SQUARE)], "S-1"),
                                                          feature([swapped(shifted)], "S-2")]}  # fmt: skip
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=document, headers=bureau)
    body = assert_problem(response, 422, "geodata/invalid-geometry")
    assert [(e["feature_index"], e["plot_code"]) for e in body["errors"]] == [(0, "S-1"), (1, "S-2")]
    for error, ring in zip(body["errors"], (SQUARE, shifted), strict=True):
        assert error["reason"].startswith("longitude and latitude look swapped")
        assert "outside [-90, 90]" not in error["reason"]
        assert error["location"] == [ring[0][1], ring[0][0]]  # the first position, as it was sent


def test_in_range_but_swapped_plots_are_said_to_look_swapped(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    # Kashgar, Xinjiang (about 76.0° E, 39.5° N) sent as [lat, lon]: both in range, but in the Arctic.
    kashgar = [[39.50, 76.00], [39.50, 76.01], [39.51, 76.01], [39.51, 76.00], [39.50, 76.00]]
    response = client.post(f"/api/v1/projects/{project_id}/plots", json=feature([kashgar]), headers=bureau)
    body = assert_problem(response, 422, "geodata/invalid-geometry")
    [error] = body["errors"]
    assert "longitude and latitude look swapped" in error["reason"]


def plot_of_new_project(client: TestClient, bureau: dict[str, str]) -> tuple[int, int, float]:
    project_id = new_project(client, bureau)
    upload = client.post(f"/api/v1/projects/{project_id}/plots", json=feature([SQUARE]), headers=bureau)
    assert upload.status_code == 201, upload.text
    [plot] = upload.json()["features"]
    return project_id, plot["id"], plot["properties"]["area_m2"]


def ticket(plot_id: int, area_m2: float) -> dict[str, Any]:
    return {
        "methodology_id": "FJ-FORESTRY-CARBON-TICKET",
        "methodology_version": "1",
        "period_start": "2026-01-01",
        "period_end": "2026-12-31",
        "plot_ids": [plot_id],
        "inputs": {
            "sub_compartments": [
                {"sub_compartment_id": "T-1", "area_m2": str(round(area_m2)), "species": "pinus",
                 "start": {"stock_volume_m3_per_ha": "7.2"}, "end": {"stock_volume_m3_per_ha": "9.0"}}
            ],
            "relative_uncertainty": "0.08",
        },
    }  # fmt: skip


def test_a_report_on_a_draft_project_is_filed_with_a_warning(client: TestClient, login: Login) -> None:
    bureau = login("forestry_bureau")
    project_id, plot_id, area_m2 = plot_of_new_project(client, bureau)
    reports = f"/api/v1/projects/{project_id}/monitoring-reports"
    preview = client.post(f"{reports}/preview", json=ticket(plot_id, area_m2), headers=bureau)
    assert preview.status_code == 200, preview.text
    response = client.post(reports, json=ticket(plot_id, area_m2), headers=bureau)
    assert response.status_code == 201, response.text
    for answer in (preview.json(), response.json()):
        [warning] = [w for w in answer["warnings"] if w["code"] == "project_not_registered"]
        assert "cannot be issued until the project is registered" in warning["message"]
        assert "draft" in warning["message"]
    # The demo project is registered: its reports carry no such warning.
    demo = client.get("/api/v1/projects/1/monitoring-reports", headers=login("auditor")).json()["items"]
    assert demo and all(w["code"] != "project_not_registered" for r in demo for w in r["warnings"])


@pytest.mark.parametrize("step", [None, "submit"])
def test_draft_projects_are_not_on_the_public_registry(client: TestClient, login: Login, step: str | None) -> None:
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    if step is not None:
        moved = client.post(f"/api/v1/projects/{project_id}/{step}", json={"comment": "ready"}, headers=bureau)
        assert moved.status_code == 200, moved.text
    code = client.get(f"/api/v1/projects/{project_id}", headers=bureau).json()["code"]
    listed = client.get("/public/v1/projects", params={"limit": 200}).json()["features"]
    codes = [f["properties"]["code"] for f in listed]
    assert "SH-64-000001" in codes  # the registered demo project
    assert (code in codes) is (step is not None)  # a draft is not listed; a submitted project is
    assert all(f["properties"]["status"] != "draft" for f in listed)
