"""Monitoring reports over HTTP: preview, filing, refusals, the trace, the calculation sheet, recomputation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.models import MonitoringReport, Plot
from carbon.monitoring_records import check_record, recompute, record_hash
from core.audit import AuditEntry
from core.errors import InvalidInput
from shanhai.cli import main
from tests.e2e.test_plots_api import assert_problem

Login = Callable[[str], dict[str, str]]
REPORTS = "/api/v1/projects/1/monitoring-reports"


def ticket_request(start: str = "2026-01-01", end: str = "2026-12-31", **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "methodology_id": "FJ-FORESTRY-CARBON-TICKET",
        "methodology_version": "1",
        "period_start": start,
        "period_end": end,
        "plot_ids": [1],
        "inputs": {
            "sub_compartments": [
                {
                    "sub_compartment_id": "NX-JY-HC-001",
                    "area_m2": "1000000",
                    "species": "pinus",
                    "start": {"stock_volume_m3_per_ha": "7.2"},
                    "end": {"stock_volume_m3_per_ha": "9.0"},
                }
            ],
            "relative_uncertainty": "0.08",
        },
    }
    request.update(changes)
    return request


def report_count(session: Session) -> int:
    try:
        return session.scalar(select(func.count()).select_from(MonitoringReport)) or 0
    finally:
        session.rollback()


def years(start: date, end: date) -> Decimal:
    return Decimal((end - start).days) / Decimal("365.25")


def test_demo_reports_are_filed_with_rates_inside_the_bands(client: TestClient, login: Login) -> None:
    haicang, yongning = (
        client.get(f"/api/v1/projects/{project}/monitoring-reports", headers=login("auditor")).json()["items"][0]
        for project in (1, 2)  # the Haicang forest, the Yongning restoration
    )
    reports = [haicang, yongning]
    assert [(r["methodology"]["id"], r["methodology"]["version"]) for r in reports] == [
        ("FJ-FORESTRY-CARBON-TICKET", "1"),
        ("NX-RESTORATION", "2"),
    ]
    assert haicang["warnings"] == [] and yongning["warnings"] == []
    assert haicang["provisional"] and yongning["provisional"]
    # Haicang: 1,500 mu = 100 ha of young pine and larch; the arid-plantation band is 0.5–10 t CO2e/ha/yr.
    rate = Decimal(haicang["net_removal_tco2e"]) / 100 / years(date(2021, 1, 1), date(2025, 12, 31))
    assert Decimal("0.5") <= rate <= 10
    # Yongning: 219.74 ha of shrubs on a quarry; shrubs stay under ~3 t CO2e/ha/yr, and so does the total.
    trace = client.get(f"/api/v1/monitoring-reports/{yongning['id']}/trace", headers=login("auditor")).json()
    shrub_tco2e = Decimal(trace["record"]["result"]["shrub_change_tco2e"])
    period = years(date(2022, 4, 1), date(2025, 12, 31))
    assert shrub_tco2e / Decimal("219.74") / period <= 3
    assert Decimal("0.5") <= Decimal(yongning["net_removal_tco2e"]) / Decimal("219.74") / period <= 3
    for report in reports:
        assert report["buffer_units_t"] + report["issuable_units_t"] + Decimal(report["remainder_tco2e"]) == Decimal(
            report["creditable_tco2e"]
        )


def test_preview_computes_without_storing(client: TestClient, login: Login, session: Session) -> None:
    before = report_count(session)
    response = client.post(f"{REPORTS}/preview", json=ticket_request(), headers=login("forestry_bureau"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provisional"] is True and body["record"]["methodology"]["id"] == "FJ-FORESTRY-CARBON-TICKET"
    assert body["record"]["hash_scheme"] == "rfc8785" and body["record_sha256"] == record_hash(body["record"])
    assert report_count(session) == before
    filed = client.post(REPORTS, json=ticket_request(), headers=login("forestry_bureau")).json()
    assert filed["record_sha256"] == body["record_sha256"]


def test_filing_stores_record_hash_quantities_and_audit_entry(
    client: TestClient, login: Login, session: Session
) -> None:
    response = client.post(REPORTS, json=ticket_request(), headers=login("forestry_bureau"))
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["status"] == "submitted" and report["plot_ids"] == [1] and report["hash_scheme"] == "rfc8785"
    # 1.8 m³/ha × 100 ha × 0.42 × 1.15 × 1.224 × 0.51 × 44/12 = 198.99523 t CO2e, floored to 198.995;
    # issuable floor(198.995 × 0.85) = 169; buffer min(ceil(198.995 × 0.15), floor(198.995 − 169)) = 29.
    assert report["net_removal_tco2e"] == "198.995"
    assert (report["buffer_units_t"], report["issuable_units_t"], report["remainder_tco2e"]) == (29, 169, "0.995")
    try:
        row = session.get(MonitoringReport, report["id"])
        assert row is not None
        assert row.net_removal_tco2e == Decimal("198.995") and isinstance(row.remainder_tco2e, Decimal)
        assert row.inputs["methodology_inputs"]["monitoring_start"] == "2026-01-01"
        assert record_hash(row.record) == row.record_sha256 == report["record_sha256"]
        assert row.hash_scheme == row.record["hash_scheme"] == "rfc8785"
        assert row.parameter_set_sha256 == row.record["parameter_set"]["sha256"]
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.action == "monitoring_report.filed"
        payload = json.loads(entry.payload)
        assert payload["record_sha256"] == report["record_sha256"] and payload["hash_scheme"] == "rfc8785"
    finally:
        session.rollback()
    assert client.get(f"/api/v1/monitoring-reports/{report['id']}", headers=login("verifier")).json() == report


def test_double_filing_for_an_overlapping_period_is_refused(client: TestClient, login: Login) -> None:
    headers = login("forestry_bureau")
    assert client.post(REPORTS, json=ticket_request(), headers=headers).status_code == 201
    body = assert_problem(
        client.post(REPORTS, json=ticket_request("2026-06-01", "2027-05-31"), headers=headers), 409, "core/conflict"
    )
    assert "double filing" in body["detail"]
    # Periods that only touch do not overlap: the 2026 report ends on 2026-12-31.
    assert client.post(REPORTS, json=ticket_request("2026-12-31", "2027-12-31"), headers=headers).status_code == 201


def test_only_the_projects_own_organisation_files(client: TestClient, login: Login, session: Session) -> None:
    before = report_count(session)
    assert_problem(
        client.post(REPORTS, json=ticket_request(), headers=login("forest_owner")), 403, "auth/permission-denied"
    )
    assert_problem(
        client.post(f"{REPORTS}/preview", json=ticket_request(), headers=login("forest_owner")),
        403,
        "auth/permission-denied",
    )
    assert_problem(
        client.post(REPORTS, json=ticket_request(), headers=login("verifier")), 403, "auth/permission-denied"
    )
    assert report_count(session) == before


@pytest.mark.parametrize(
    ("changes", "status", "slug", "pointer"),
    [
        ({"period_start": "2020-01-01", "period_end": "2020-12-31"}, 422, "core/invalid-input", "/period_start"),
        ({"plot_ids": [1, 999]}, 404, "core/not-found", None),
        ({"methodology_id": "NOPE"}, 404, "core/not-found", None),
        ({"parameter_set_version": "9"}, 404, "core/not-found", None),
        ({"methodology_id": "HY-T-0305-2021"}, 422, "core/invalid-input", "/methodology_id"),
        ({"inputs": {"sub_compartments": [{"sub_compartment_id": "NX-JY-HC-001"}]}}, 422, "core/invalid-input", None),
        # plot 2 is the Yongning restoration project's, not this project's
        ({"unit_plots": {"NX-JY-HC-001": 2}, "plot_ids": [1, 2]}, 422, "core/invalid-input", "/plot_ids/1"),
        ({"raster": {"layer": "agb-jingyuan"}}, 422, "core/invalid-input", "/raster"),
    ],
)
def test_bad_requests_are_problems_and_store_nothing(
    client: TestClient,
    login: Login,
    session: Session,
    changes: dict[str, Any],
    status: int,
    slug: str,
    pointer: str | None,
) -> None:
    before = report_count(session)
    body = assert_problem(
        client.post(REPORTS, json=ticket_request(**changes), headers=login("forestry_bureau")), status, slug
    )
    if pointer is not None:
        assert pointer in [e.get("pointer") for e in body["errors"]]
    assert report_count(session) == before


def test_a_listed_plot_no_unit_covers_is_refused(client: TestClient, login: Login, session: Session) -> None:
    headers = login("forestry_bureau")
    ring = [[106.40, 35.55], [106.404, 35.55], [106.404, 35.554], [106.40, 35.554], [106.40, 35.55]]
    feature = {
        "type": "Feature",
        "properties": {"code": "HC-002"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    second = client.post("/api/v1/projects/1/plots", json=feature, headers=headers)
    assert second.status_code == 201, second.text
    second_id = second.json()["features"][0]["id"]
    before = report_count(session)
    changes = {"unit_plots": {"NX-JY-HC-001": 1}, "plot_ids": [1, second_id]}
    body = assert_problem(client.post(REPORTS, json=ticket_request(**changes), headers=headers), 422,
                          "core/invalid-input")  # fmt: skip
    assert "/plot_ids" in [e.get("pointer") for e in body["errors"]]
    assert report_count(session) == before


def test_inputs_are_checked_against_the_plots(client: TestClient, login: Login) -> None:
    headers = login("forestry_bureau")
    request = ticket_request()
    request["inputs"]["sub_compartments"][0]["area_m2"] = "1200000"  # more than the plot's 1,000,000.8 m²
    body = assert_problem(client.post(REPORTS, json=request, headers=headers), 422, "core/invalid-input")
    assert "geodesic" in body["errors"][0]["reason"]
    request = ticket_request()
    request["inputs"]["monitoring_start"] = "2026-02-01"
    body = assert_problem(client.post(REPORTS, json=request, headers=headers), 422, "core/invalid-input")
    assert body["errors"][0]["pointer"] == "/inputs/monitoring_start"


def test_external_registrations_on_the_plot_refuse_double_issuance(
    client: TestClient, login: Login, session: Session
) -> None:
    plot = session.get(Plot, 1)
    assert plot is not None
    plot.external_registrations = [{"scheme": "VCS", "id": "VCS-9999"}]
    session.commit()
    body = assert_problem(
        client.post(REPORTS, json=ticket_request(), headers=login("forestry_bureau")), 422, "carbon/ineligible"
    )
    assert body["errors"][0]["rule"] == "forestry carbon ticket: no double issuance"
    assert "VCS-9999" in body["errors"][0]["reason"]
    plot = session.get(Plot, 1)
    assert plot is not None
    plot.external_registrations = [{"scheme": "GS", "id": "GS-1"}]
    session.commit()
    body = assert_problem(
        client.post(REPORTS, json=ticket_request(), headers=login("forestry_bureau")), 422, "carbon/ineligible"
    )
    assert "GS-1" in body["errors"][0]["reason"]


def test_calculation_sheet_shows_steps_citations_label_and_hash(client: TestClient, login: Login) -> None:
    response = client.get("/api/v1/monitoring-reports/1/sheet", headers=login("enterprise"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    trace = client.get("/api/v1/monitoring-reports/1/trace", headers=login("enterprise")).json()
    assert trace["record_sha256"] in page and "PROVISIONAL" in page
    for step in trace["record"]["trace"]:
        assert step["name"] in page and step["equation"].replace("&", "&amp;") in page and step["unit"] in page
    for parameter in trace["record"]["parameters"].values():
        assert parameter["citation"].replace("&", "&amp;").replace('"', "&quot;") in page
    assert "shanhai carbon compute" in page


def test_every_stored_report_recomputes_to_its_hash_byte_for_byte(
    client: TestClient, login: Login, session: Session
) -> None:
    assert client.post(REPORTS, json=ticket_request(), headers=login("forestry_bureau")).status_code == 201
    try:
        reports = list(session.scalars(select(MonitoringReport)))
        assert len(reports) >= 3
        for report in reports:
            assert recompute(report.record) == report.record_sha256
            assert recompute(json.dumps(report.record)) == report.record_sha256
            check = check_record(report.record)
            assert check.matches and check.parameter_set_sha256_matches
    finally:
        session.rollback()
    with pytest.raises(InvalidInput):
        recompute("[]")
    with pytest.raises(InvalidInput):
        recompute({"methodology": "x"})


def test_cli_compute_recomputes_an_exported_trace(
    client: TestClient, login: Login, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = client.get("/api/v1/monitoring-reports/2/trace", headers=login("auditor")).json()
    exported = tmp_path / "trace.json"
    exported.write_text(json.dumps(trace), encoding="utf-8")
    assert main(["carbon", "compute", str(exported)]) == 0
    out = capsys.readouterr().out
    assert trace["record_sha256"] in out and "matches" in out
    bare = tmp_path / "record.json"
    bare.write_text(json.dumps(trace["record"]), encoding="utf-8")
    assert main(["carbon", "compute", str(bare)]) == 0
    tampered = json.loads(json.dumps(trace))
    tampered["record"]["result"]["issuable_units_t"] = "99999"
    exported.write_text(json.dumps(tampered), encoding="utf-8")
    assert main(["carbon", "compute", str(exported)]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    tampered = json.loads(json.dumps(trace))
    tampered["record_sha256"] = "0" * 64
    exported.write_text(json.dumps(tampered), encoding="utf-8")
    assert main(["carbon", "compute", str(exported)]) == 1
    exported.write_text("[]", encoding="utf-8")
    assert main(["carbon", "compute", str(exported)]) == 2


def test_cli_lists_methodologies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["carbon", "methodologies"]) == 0
    out = capsys.readouterr().out
    assert "CCER-14-001 V01" in out and "ccer-14-001@1-provisional" in out and "PROVISIONAL" in out


def test_methodologies_with_cited_parameter_sets(client: TestClient, login: Login) -> None:
    listed = client.get("/api/v1/methodologies", headers=login("bank")).json()["items"]
    assert {(m["id"], m["version"]) for m in listed} >= {("CCER-14-001", "V01"), ("NX-RESTORATION", "1")}
    ccer = next(m for m in listed if m["id"] == "CCER-14-001")
    assert ccer["raster_route"] and ccer["parameter_sets"][0]["provisional"]
    detail = client.get("/api/v1/methodologies/CCER-14-001/V01", headers=login("bank")).json()
    parameters = detail["parameter_sets"][0]["parameters"]
    assert all(p["citation"] and p["unit"] for p in parameters.values())
    assert_problem(client.get("/api/v1/methodologies/CCER-14-001/V99", headers=login("bank")), 404, "core/not-found")
