"""GEP runs over HTTP: region layers, a run created and finished (eager), tables, rasters, comparison, refusals."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.downloads import XLSX
from api.seed import GEP_DEMO_RUN, GEP_REGION_LAYER
from core.audit import AuditEntry, verify_chain
from gep.models import GepRun
from gep.runs import TABLES
from shanhai.cli import main
from tests.conftest import SAMPLES

Login = Callable[[str], dict[str, str]]


def run_body(**changes: Any) -> dict[str, Any]:
    return json.loads(GEP_DEMO_RUN.model_dump_json()) | {"name": "API run", "tile_size": 50} | changes


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_seeded_run_is_readable_by_auditors(client: TestClient, login: Login) -> None:
    body = client.get("/api/v1/gep/runs/1", headers=login("auditor")).json()
    assert body["status"] == "succeeded"
    assert body["progress"] == {"done": 4, "total": 4}
    assert body["valuation"]["prices"]["id"] == "prices_guyuan_2025"
    assert body["inputs"]["legend"]["id"] == "legend_synthetic_jingyuan"
    assert set(body["rasters"]) == set(body["config"]["indicators"]) and len(body["rasters"]) == 12
    assert len(body["valuation"]["prices"]["sha256"]) == 64
    summary = rows(client.get("/api/v1/gep/runs/1/tables/summary.csv", headers=login("registry")).text)
    assert summary[-1]["region_code"] == "total"
    regional = sum(Decimal(row["gep_yuan"]) for row in summary[:-1])
    assert regional == Decimal(summary[-1]["gep_yuan"]) > 0
    layers = client.get("/api/v1/gep/region-layers", headers=login("ecology_bureau")).json()["items"]
    assert [layer["name"] for layer in layers] == [GEP_REGION_LAYER]


def test_create_run_tables_rasters_and_comparison(
    client: TestClient, login: Login, session: Session, tmp_path: Path
) -> None:
    headers = login("ecology_bureau")
    created = client.post("/api/v1/gep/runs", json=run_body(), headers=headers)
    assert created.status_code == 202, created.text
    run = created.json()
    assert run["status"] == "succeeded" and run["progress"] == {"done": 16, "total": 16}
    run_id = run["id"]
    for table in TABLES:
        response = client.get(f"/api/v1/gep/runs/{run_id}/tables/{table}.csv", headers=headers)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    monetary = rows(client.get(f"/api/v1/gep/runs/{run_id}/tables/monetary.csv", headers=headers).text)
    summary = rows(client.get(f"/api/v1/gep/runs/{run_id}/tables/summary.csv", headers=headers).text)
    assert sum(Decimal(r["net_yuan"]) for r in monetary) == Decimal(summary[-1]["gep_yuan"])
    raster = client.get(f"/api/v1/gep/runs/{run_id}/rasters/water_conservation.tif", headers=headers)
    assert raster.status_code == 200 and raster.content[:2] in (b"II", b"MM")
    (tmp_path / "v.tif").write_bytes(raster.content)
    import rasterio

    with rasterio.open(tmp_path / "v.tif") as dataset:
        assert dataset.dtypes[0] == "float64" and dataset.crs.to_epsg() == 4490
    # The seeded run used 4 tiles, this one 16: the same lines to the fen.
    compared = rows(client.get(f"/api/v1/gep/runs/1/compare/{run_id}.csv", headers=headers).text)
    assert compared and all(Decimal(r["value_change_yuan"]) == 0 for r in compared)
    by_type = rows(client.get(f"/api/v1/gep/runs/{run_id}/tables/monetary_by_type.csv", headers=headers).text)
    types = [c for c in by_type[0] if c not in ("region_code", "service_class", "indicator_code", "unit", "total")]
    assert "wetland" in types and len(by_type) == len(monetary)
    for row in by_type:
        assert sum(Decimal(row[t]) for t in types) == Decimal(row["total"])
    # The workbook: every table, the comparison with the seeded run; sums hold when read back.
    book_response = client.get(f"/api/v1/gep/runs/1/tables.xlsx?compare_to={run_id}", headers=login("auditor"))
    assert book_response.status_code == 200
    assert book_response.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(book_response.content), read_only=True)
    assert book.sheetnames[-1] == "Comparison" and "Monetary supply by type" in book.sheetnames
    sheet = list(book["Monetary supply"].iter_rows(values_only=True))
    net = sheet[0].index("net_yuan")
    gep = next(r for r in summary if r["region_code"] == "total")["gep_yuan"]
    assert Decimal(repr(math.fsum(r[net] for r in sheet[1:]))).quantize(Decimal("0.01")) == Decimal(gep)
    assert client.get(f"/api/v1/gep/runs/{run_id}/tables.xlsx?compare_to=999", headers=headers).status_code == 404
    assert client.get(f"/api/v1/gep/runs/{run_id}/tables/nope.csv", headers=headers).status_code == 404
    assert client.get(f"/api/v1/gep/runs/{run_id}/rasters/nope.tif", headers=headers).status_code == 404
    actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.subject == f"gep_run:{run_id}")))
    assert actions == ["gep_run.created", "gep_run.succeeded"]
    assert verify_chain(session).ok


def test_bad_inputs_are_refused_and_nothing_is_recorded(client: TestClient, login: Login, session: Session) -> None:
    headers = login("ecology_bureau")
    before = session.scalar(select(func.count()).select_from(GepRun))
    session.rollback()  # SQLite: do not hold the write lock while the API works
    missing_price = client.post(
        "/api/v1/gep/runs",
        json=run_body(indicators=["carbon_sequestration"], prices="prices_ganzi_2010"),
        headers=headers,
    )
    assert missing_price.status_code == 422, missing_price.text
    assert missing_price.json()["errors"][0]["reason"] == "missing-entry"
    no_layer = client.post(
        "/api/v1/gep/runs", json=run_body(inputs={**run_body()["inputs"], "dem": "nope"}), headers=headers
    )
    assert no_layer.status_code == 422
    assert no_layer.json()["errors"][0]["reason"] == "no-such-raster-layer"
    no_policy = client.post("/api/v1/gep/runs", json=run_body(negative_balance=None), headers=headers)
    assert no_policy.status_code == 422
    wrong_kind = client.post(
        "/api/v1/gep/runs", json=run_body(inputs={**run_body()["inputs"], "land_cover": "gep-jy-dem"}), headers=headers
    )
    assert wrong_kind.status_code == 422
    lacking = {role: layer for role, layer in run_body()["inputs"].items() if role != "wind_weather_factor"}
    no_wind = client.post("/api/v1/gep/runs", json=run_body(inputs=lacking), headers=headers)
    assert no_wind.status_code == 422
    assert {"indicator": "sand_fixation", "role": "wind_weather_factor", "reason": "missing-input"} in (
        no_wind.json()["errors"]
    )
    assert session.scalar(select(func.count()).select_from(GepRun)) == before


def test_a_failing_tile_fails_the_run_and_keeps_nothing(
    client: TestClient, login: Login, session: Session, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gep.runs

    calls = {"n": 0}
    real = gep.runs.compute_tile

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk read error")
        return real(*args, **kwargs)

    monkeypatch.setattr(gep.runs, "compute_tile", flaky)
    response = client.post("/api/v1/gep/runs", json=run_body(), headers=login("ecology_bureau"))
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] == "failed" and run["summary"] is None
    assert "disk read error" in run["error"]["detail"]
    assert not (settings.data_dir / "gep" / "runs" / str(run["id"])).exists()
    headers = login("auditor")
    assert client.get(f"/api/v1/gep/runs/{run['id']}/tables/summary.csv", headers=headers).status_code == 404
    actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.subject == f"gep_run:{run['id']}")))
    assert actions == ["gep_run.created", "gep_run.failed"]


def test_region_layer_upload(client: TestClient, login: Login) -> None:
    headers = login("ecology_bureau")
    data = (SAMPLES / "gep_townships_jingyuan.geojson").read_bytes()
    form = {"name": "copy-of-townships", "level": "township"}
    files = {"file": ("townships.geojson", data, "application/geo+json")}
    created = client.post("/api/v1/gep/region-layers", data=form, files=files, headers=headers)
    assert created.status_code == 201, created.text
    assert [r["code"] for r in created.json()["regions"]] == ["SYN-JY-01", "SYN-JY-02", "SYN-JY-03", "SYN-JY-04"]
    again = client.post("/api/v1/gep/region-layers", data=form, files=files, headers=headers)
    assert again.status_code == 409
    document = json.loads(data)
    document["features"][1]["properties"]["code"] = "SYN-JY-01"
    duplicate = client.post(
        "/api/v1/gep/region-layers",
        data={"name": "duplicates", "level": "township"},
        files={"file": ("d.geojson", json.dumps(document).encode(), "application/geo+json")},
        headers=headers,
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["reason"] == "duplicate-region-code"


def test_offline_cli_run(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "out"
    assert main(["gep", "run", str(SAMPLES / "gep_run_jingyuan.yaml"), "--out", str(out), "--xlsx"]) == 0
    assert "total" in capsys.readouterr().out
    written = sorted(p.name for p in out.iterdir())
    assert "summary.csv" in written and "run.json" in written and "value_soil_retention.tif" in written
    assert {f"{table}.csv" for table in TABLES} <= set(written) and "value_flood_regulation.tif" in written
    book = load_workbook(out / "tables.xlsx", read_only=True)
    physical = list(book["Physical supply by type"].iter_rows(values_only=True))
    csv_rows = rows((out / "physical_by_type.csv").read_text(encoding="utf-8"))
    assert len(physical) - 1 == len(csv_rows) == 48  # 4 townships × 12 indicators
    total = physical[0].index("total")
    for cells, exact in zip(physical[1:], csv_rows, strict=True):
        assert math.isclose(math.fsum(c for c in cells[4:total]), cells[total], rel_tol=1e-12, abs_tol=1e-6)
        assert Decimal(repr(cells[total])).quantize(Decimal("0.001")) == Decimal(exact["total"])
    record = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert record["valuation"]["coefficients"]["id"] == "coefficients_default"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (SAMPLES / "gep_run_jingyuan.yaml").read_text(encoding="utf-8").replace("negative_balance: clamp-to-zero", ""),
        encoding="utf-8",
    )
    (tmp_path / "gep_townships_jingyuan.geojson").write_bytes((SAMPLES / "gep_townships_jingyuan.geojson").read_bytes())
    assert main(["gep", "run", str(bad), "--out", str(tmp_path / "bad")]) == 2
