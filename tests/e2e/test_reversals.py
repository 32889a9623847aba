"""Reversals found from the land, over the API, on synthetic composites with a known scar (issue 27, ADR 038).

The Haicang plot's report (seeded, submitted) is verified and issued through the workflow first. Composites are
SYNTHETIC (``carbon.reversals.synthetic``): a smooth NDVI field that moves by at most ±0.03 between summers,
and a scar of whole pixels burnt into the later one, so the truth is the geodesic area of whole pixels.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import Account, AccountKind, HoldingBlock, ledger_violations
from carbon.reversals.synthetic import (
    SUMMER_2024,
    SUMMER_2025,
    WINTER_2025,
    SyntheticGrid,
    change_patch_document,
    write_pair,
)
from carbon.reversals.watch import issued_plot_ids
from core.audit import AuditEntry
from core.settings import Settings
from geodata.area import measure
from tests.conftest import SAMPLES, TEST_SECRET

Login = Callable[[str], dict[str, str]]
SCAR_PX = (30, 20)  # columns × rows of the scar


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    """The seeded database, with a raster directory of this test's own (the synthetic composites go there)."""
    shutil.copyfile(template_db, tmp_path / "shanhai.db")
    (tmp_path / "rasters").mkdir()
    return Settings(environment="test", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'shanhai.db'}",
                    raster_dir=tmp_path / "rasters", secret_key=TEST_SECRET)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def haicang() -> Any:
    document = json.loads((SAMPLES / "demo_plots.geojson").read_text(encoding="utf-8"))
    feature = next(f for f in document["features"] if f["properties"].get("code") == "NX-JY-HC-001")
    return shape(feature["geometry"])


def issue_haicang(client: TestClient, login: Login) -> dict[str, Any]:
    """Verify and issue the seeded Haicang report through the workflow; return the report."""
    reports = client.get("/api/v1/projects/1/monitoring-reports", headers=login("forestry_bureau")).json()["items"]
    report = next(r for r in reports if r["methodology"]["id"] == "FJ-FORESTRY-CARBON-TICKET")
    verified = client.post(f"/api/v1/monitoring-reports/{report['id']}/verify", json={"comment": "ok"},
                           headers=login("verifier"))  # fmt: skip
    assert verified.status_code == 200, verified.text
    issued = client.post(f"/api/v1/monitoring-reports/{report['id']}/issue", json={"comment": "issued"},
                         headers=login("registry"))  # fmt: skip
    assert issued.status_code == 200, issued.text
    return issued.json()


def register_pair(
    client: TestClient, login: Login, raster_dir: Path, grid: SyntheticGrid, scar: Any, *, stem: str,
    windows: tuple[tuple[Any, Any], tuple[Any, Any]] = (SUMMER_2024, SUMMER_2025), scar_ndvi: float = 0.12,
) -> tuple[str, str]:  # fmt: skip
    """Write a pair of composites, register their layers (registry) and composites; return the composites' names."""
    files = write_pair(raster_dir, grid, scar, stem=stem, scar_ndvi=scar_ndvi)
    names = []
    for file, (start, end) in zip(files, windows, strict=True):
        name = file.removesuffix(".tif").replace("_", "-")
        layer = {"name": name, "kind": "continuous", "units": "NDVI", "path": file, "description": "SYNTHETIC"}
        assert client.post("/api/v1/raster-layers", json=layer, headers=login("registry")).status_code == 201
        composite = {"name": name, "kind": "ndvi", "raster_layer": name, "region_code": "640424", "sensor": "synthetic",
                     "acquired_start": start.isoformat(), "acquired_end": end.isoformat()}  # fmt: skip
        created = client.post("/api/v1/composites", json=composite, headers=login("forestry_bureau"))
        assert created.status_code == 201, created.text
        names.append(name)
    return names[0], names[1]


def start_watch(client: TestClient, login: Login, before: str, after: str, **extra: Any) -> Any:
    return client.post("/api/v1/watch-runs", json={"before": before, "after": after, "tile_size": 128, **extra},
                       headers=login("registry"))  # fmt: skip


@pytest.fixture
def scene(haicang: Any) -> tuple[SyntheticGrid, Any]:
    """The grid around Haicang and a scar of whole pixels well inside the plot."""
    grid = SyntheticGrid.around(haicang.bounds)
    centre = haicang.representative_point()
    col, row = grid.pixel_of(centre.x, centre.y)
    scar = grid.pixel_box(col - SCAR_PX[0] // 2, row - SCAR_PX[1] // 2, *SCAR_PX)
    assert haicang.contains(scar)
    return grid, scar


def events(client: TestClient, login: Login, **params: Any) -> list[dict[str, Any]]:
    found = client.get("/api/v1/loss-events", params=params, headers=login("registry"))
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


def test_a_scar_becomes_a_confirmed_reversal(
    client: TestClient, login: Login, settings: Settings, session: Session, scene: Any, haicang: Any
) -> None:
    issued = issue_haicang(client, login)
    grid, scar = scene
    before, after = register_pair(client, login, settings.raster_dir, grid, scar, stem="hc")
    run = start_watch(client, login, before, after)
    assert run.status_code == 202, run.text
    assert run.json()["status"] == "succeeded" and run.json()["events_raised"] == 1, run.json()
    [event] = events(client, login)
    truth_m2 = measure(scar).area_m2
    pixel_m2 = truth_m2 / (SCAR_PX[0] * SCAR_PX[1])
    assert abs(event["lost_area_m2"] - truth_m2) <= pixel_m2  # within one pixel's rounding of the truth
    assert event["lost_area_mu"] == pytest.approx(event["lost_area_m2"] * 15 / 10_000, abs=1e-3)
    # tonnes at risk: the plot's share of the issued report (both sub-compartments are on the plot), read from
    # the trace, times the batch's tonnes, times the lost share of the plot, rounded up
    [line] = event["at_risk"]
    assert line["share_basis"] == "trace" and line["plot_share"] == "1.000000"
    assert sorted(line["units"]) == ["HC-001-larix", "HC-001-pinus"]
    quantity_t = issued["quantity_t"] if "quantity_t" in issued else line["issued_t"]
    expected_t = math.ceil(quantity_t * event["lost_area_m2"] / event["plot_area_m2"] - 1e-9)
    assert event["tonnes_at_risk_t"] == expected_t > 0
    assert event["evidence"]["composites"][0]["name"] == before
    assert any(f["properties"]["layer"] == "lost_pixels" for f in event["evidence"]["map"]["features"])
    picture = client.get(event["map_url"], headers=login("forestry_bureau"))
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    # the proponent and the registry were told
    inbox = client.get("/api/v1/inbox", headers=login("forestry_bureau")).json()["items"]
    assert inbox[0]["kind"] == "reversal.proposed" and inbox[0]["data"]["loss_event_id"] == event["id"]
    assert client.get("/api/v1/inbox", headers=login("registry")).json()["items"][0]["kind"] == "reversal.to_review"
    session.rollback()
    buffer_before = _buffer_t(session)
    session.rollback()
    confirmed = client.post(f"/api/v1/loss-events/{event['id']}/confirm", json={"reason": "fire confirmed on site"},
                            headers=login("registry"))  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "confirmed" and body["cancelled_t"] == expected_t
    assert body["cancellation"]["from_buffer_t"] == expected_t and body["cancellation"]["from_proponent_t"] == 0
    assert _buffer_t(session) == buffer_before - expected_t
    assert ledger_violations(session) == []
    actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.subject == f"loss_event:{event['id']}")))
    assert actions == {"loss_event.proposed", "loss_event.confirmed"}
    assert "units.reversed" in set(session.scalars(select(AuditEntry.action)))
    session.rollback()
    notices = client.get("/api/v1/inbox", params={"unread": True}, headers=login("forestry_bureau")).json()["items"]
    assert notices[0]["kind"] == "reversal.confirmed" and "fire confirmed on site" in notices[0]["body"]
    read = client.post(f"/api/v1/inbox/{notices[0]['id']}/read", headers=login("forestry_bureau"))
    assert read.status_code == 200 and read.json()["read_at"]
    assert client.post(f"/api/v1/inbox/{notices[0]['id']}/read", headers=login("registry")).status_code == 404
    again = client.post(f"/api/v1/loss-events/{event['id']}/confirm", json={"reason": "x"}, headers=login("registry"))
    assert again.status_code == 409
    assert client.get("/api/v1/audit/verify", headers=login("auditor")).json()["ok"] is True


def _buffer_t(session: Session) -> int:
    pool = session.scalars(select(Account).where(Account.kind == AccountKind.BUFFER)).one()
    blocks = session.scalars(
        select(HoldingBlock).where(HoldingBlock.account_id == pool.id, HoldingBlock.closed_at.is_(None),
                                   HoldingBlock.state == "tradable")
    )  # fmt: skip
    total = sum(b.serial_end - b.serial_start + 1 for b in blocks)
    session.rollback()
    return total


def test_an_unchanged_plot_raises_no_event(client: TestClient, login: Login, settings: Settings, scene: Any) -> None:
    issue_haicang(client, login)
    grid, _scar = scene
    before, after = register_pair(client, login, settings.raster_dir, grid, None, stem="calm")
    run = start_watch(client, login, before, after).json()
    assert run["status"] == "succeeded" and run["plots_watched"] == 1 and run["events_raised"] == 0
    assert events(client, login) == []


def test_a_winter_summer_pair_is_refused_and_nothing_recorded(
    client: TestClient, login: Login, settings: Settings, scene: Any
) -> None:
    issue_haicang(client, login)
    grid, scar = scene
    before, after = register_pair(client, login, settings.raster_dir, grid, scar, stem="ws",
                                  windows=(WINTER_2025, SUMMER_2025))  # fmt: skip
    refused = start_watch(client, login, before, after)
    assert refused.status_code == 422, refused.text
    reasons = {p["reason"] for p in refused.json()["errors"]}
    assert "different-seasons" in reasons
    assert client.get("/api/v1/watch-runs", headers=login("registry")).json()["items"] == []


def test_thresholds_are_honoured(client: TestClient, login: Login, settings: Settings, scene: Any) -> None:
    issue_haicang(client, login)
    grid, scar = scene
    # a mild scar: NDVI falls from about 0.7 to 0.45, a drop of about 0.25 (36 %)
    before, after = register_pair(client, login, settings.raster_dir, grid, scar, stem="mild", scar_ndvi=0.45)
    defaults = client.get("/api/v1/loss-thresholds", headers=login("verifier")).json()
    fct = next(c for c in defaults["classes"] if c["credit_class"] == "FCT")
    assert fct["ndvi_drop"] == 0.2 and fct["source"].startswith("default:")
    assert "Escuin" in defaults["defaults"]["classes"]["FCT"]["ndvi_drop"]["citation"]
    assert len(events(client, login)) == 0
    stricter = {"season_window_days": 45, "min_before_ndvi": "0.4", "ndvi_drop": "0.35", "relative_drop": "0.3",
                "min_area_mu": "1", "reason": "fewer false alarms in young plantations"}  # fmt: skip
    put = client.put("/api/v1/loss-thresholds/FCT", json=stricter, headers=login("registry"))
    assert put.status_code == 200 and put.json()["source"] == "registry", put.text
    assert client.put("/api/v1/loss-thresholds/FCT", json=stricter, headers=login("verifier")).status_code == 403
    run = start_watch(client, login, before, after).json()
    assert run["events_raised"] == 0 and run["thresholds"]["FCT"]["ndvi_drop"] == 0.35
    # the minimum area: one mu above the scar's keeps it out, one below lets it in
    scar_mu = measure(scar).area_m2 * 15 / 10_000  # m² × (15 mu / 10 000 m²)
    area_floor = {**stricter, "ndvi_drop": "0.2", "min_area_mu": str(math.ceil(scar_mu) + 1)}
    assert client.put("/api/v1/loss-thresholds/FCT", json=area_floor, headers=login("registry")).status_code == 200
    assert start_watch(client, login, before, after).json()["events_raised"] == 0
    area_floor["min_area_mu"] = str(math.floor(scar_mu) - 1)
    assert client.put("/api/v1/loss-thresholds/FCT", json=area_floor, headers=login("registry")).status_code == 200
    assert start_watch(client, login, before, after).json()["events_raised"] == 1


def test_a_change_patch_raises_an_event_and_a_rejection_keeps_its_reason(
    client: TestClient, login: Login, settings: Settings, session: Session, scene: Any, haicang: Any
) -> None:
    issue_haicang(client, login)
    grid, scar = scene
    before, after = register_pair(client, login, settings.raster_dir, grid, None, stem="patchonly")
    logged = grid.pixel_box(*grid.pixel_of(haicang.bounds[0], haicang.bounds[3]), 40, 40)  # crosses the plot's edge
    document = change_patch_document([
        (logged, {"图斑号": "JY-2025-001", "变化原因": "采伐", "变化类型": "林地变非林地", "变化日期": "2025-03-10"}),
        (scar, {"图斑号": "JY-2025-002", "变化原因": "人工造林", "变化日期": "2025-04-01"}),
    ])  # fmt: skip
    imported = client.post("/api/v1/change-patch-files", headers=login("forestry_bureau"),
                           data={"name": "jy-2025", "region_code": "640424", "survey_year": "2025"},
                           files={"file": ("jy.geojson", document, "application/geo+json")})  # fmt: skip
    assert imported.status_code == 201, imported.text
    assert imported.json()["mapping"]["columns"]["cause"] == "变化原因"
    patches = client.get(f"/api/v1/change-patch-files/{imported.json()['id']}/patches", headers=login("registry"))
    assert [p["loss_kind"] for p in patches.json()["items"]] == ["harvest", "gain"]
    run = start_watch(client, login, before, after, patch_files=["jy-2025"]).json()
    assert run["events_raised"] == 1, run
    [event] = events(client, login)
    truth_m2 = measure(haicang.intersection(logged)).area_m2
    assert event["ndvi_loss_m2"] == 0 and event["patch_loss_m2"] == pytest.approx(truth_m2, rel=1e-9)
    assert event["change_date"] == "2025-03-10" and event["evidence"]["patches"][0]["cause"] == "采伐"
    rejected = client.post(f"/api/v1/loss-events/{event['id']}/reject", headers=login("registry"),
                           json={"reason": "thinning under an approved harvest permit; stock stays"})  # fmt: skip
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["decision_reason"].startswith("thinning") and rejected.json()["cancelled_t"] is None
    assert client.get(f"/api/v1/loss-events/{event['id']}", headers=login("auditor")).json()["status"] == "rejected"
    notices = client.get("/api/v1/inbox", headers=login("forestry_bureau")).json()["items"]
    assert notices[0]["kind"] == "reversal.rejected"
    assert client.get(f"/api/v1/loss-events/{event['id']}", headers=login("forest_owner")).status_code == 404
    assert ledger_violations(session) == []


def test_a_patch_file_with_unknown_columns_is_mapped_or_refused(client: TestClient, login: Login, scene: Any) -> None:
    _grid, scar = scene
    document = change_patch_document([(scar, {"YY_NEW": "F1", "DAY": "20250810", "NO": "A-1"})])
    form = {"name": "mapped", "region_code": "640424", "survey_year": "2025"}
    refused = client.post("/api/v1/change-patch-files", headers=login("forestry_bureau"), data=form,
                          files={"file": ("p.geojson", document)})  # fmt: skip
    assert refused.status_code == 422
    assert {p["reason"] for p in refused.json()["errors"]} == {"no-cause-or-type-column", "no-date-column"}
    mapping = {"cause": "YY_NEW", "change_date": "DAY", "patch_code": "NO"}
    form |= {"mapping": json.dumps(mapping), "cause_kinds": json.dumps({"F1": "fire"})}
    mapped = client.post("/api/v1/change-patch-files", headers=login("forestry_bureau"), data=form,
                         files={"file": ("p.geojson", document)})  # fmt: skip
    assert mapped.status_code == 201, mapped.text
    patches = client.get(f"/api/v1/change-patch-files/{mapped.json()['id']}/patches", headers=login("registry"))
    [patch] = patches.json()["items"]
    assert (patch["loss_kind"], patch["change_date"], patch["patch_code"]) == ("fire", "2025-08-10", "A-1")


def test_only_issued_plots_are_watched(session: Session) -> None:
    assert issued_plot_ids(session) == set()  # the seeded reports are submitted, not issued
