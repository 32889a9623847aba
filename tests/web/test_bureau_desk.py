"""The proponent's desk through TestClient: own projects, tiles and cards, the upload with its column mapping and
its report (refused at the location, conflicts against the claimed plot), templates and reports from a table.

Shared with the browser journey: :func:`make_project`, :func:`bowtie_geojson`, :func:`overlapping_geojson`,
:func:`ticket_xlsx`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook

from tests.conftest import SAMPLES
from tests.web.helpers import csrf_of, log_in

Login = Callable[[str], dict[str, str]]
GBK_ZIP = SAMPLES / "plots_gk35_gbk.zip"
TICKET_HEADER = [
    "小班号(sub_compartment_id)", "面积(亩)(area_mu)", "树种代码(species)",
    "期初蓄积(立方米/公顷)(start_stock_m3_per_ha)", "期末蓄积(立方米/公顷)(end_stock_m3_per_ha)",
]  # fmt: skip
#: The Haicang demo plot's neighbourhood in Jingyuan (106.32–106.34° E, 35.49–35.51° N).
HAICANG_CORNER = (106.3300, 35.5000)


def make_project(client: TestClient, login: Login, name: str = "泾源西片碳汇林") -> int:
    """Create a draft forestry-carbon-ticket project of the Ningxia bureau in Jingyuan (through the API)."""
    body = {"name": name, "scheme": "forestry_carbon_ticket", "province_code": "64", "county_code": "640424",
            "crediting_start": "2021-01-01", "crediting_end": "2051-01-01"}  # fmt: skip
    answer = client.post("/api/v1/projects", json=body, headers=login("nx-bureau"))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def square(lon: float, lat: float, size: float) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def bowtie_geojson(path: Path) -> Path:
    """Two good sub-compartments and one mis-drawn (a bow-tie: its outline crosses itself) south of the samples."""
    lon, lat = 106.305, 35.455
    bowtie = [
        [lon + 0.02, lat],
        [lon + 0.025, lat + 0.004],
        [lon + 0.025, lat],
        [lon + 0.02, lat + 0.004],
        [lon + 0.02, lat],
    ]
    rings = [square(lon, lat, 0.003), square(lon + 0.01, lat, 0.003), bowtie]
    features = [
        {"type": "Feature", "properties": {"XIAO_BAN": f"BT-00{i + 1}", "MIAN_JI": 40},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for i, ring in enumerate(rings)
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def overlapping_geojson(path: Path) -> Path:
    """One sub-compartment drawn over the Haicang demo plot (project SH-64-000001's claim)."""
    lon, lat = HAICANG_CORNER
    features = [{"type": "Feature", "properties": {"XIAO_BAN": "OV-001", "MIAN_JI": 20},
                 "geometry": {"type": "Polygon", "coordinates": [square(lon, lat, 0.002)]}}]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def ticket_xlsx(path: Path, codes_and_mu: list[tuple[str, str]]) -> Path:
    """A filled 小班 table of the forestry carbon ticket, headers as the template writes them."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(TICKET_HEADER)
    for code, mu in codes_and_mu:
        sheet.append([code, float(mu), "pinus", 6.5, 8.1])
    workbook.save(path)
    return path


def map_config(html: str) -> dict[str, Any]:
    """Return the desk map's configuration from a page or fragment (its ``data-config`` attribute)."""
    return json.loads(unescape(html.split('data-config="')[1].split('"')[0]))  # type: ignore[no-any-return]


def upload(client: TestClient, project_id: int, path: Path, **fields: str) -> Any:
    page = client.get(f"/projects/{project_id}/upload")
    token = csrf_of(page.text)
    with path.open("rb") as handle:
        return client.post(f"/projects/{project_id}/upload", data={"csrf_token": token, **fields},
                           files={"file": (path.name, handle.read())}, headers={"HX-Request": "true"})  # fmt: skip


def finished(client: TestClient, project_id: int, fragment: str) -> str:
    """Poll the job's fragment (as the page does) until the job has ended; return the last fragment."""
    job = (
        int(fragment.split('hx-get="/projects/')[1].split("/imports/")[1].split('"')[0])
        if "hx-get" in fragment
        else None
    )
    deadline = time.monotonic() + 60
    while job is not None and ('data-status="queued"' in fragment or 'data-status="running"' in fragment):
        assert time.monotonic() < deadline, "the import did not end"
        time.sleep(0.2)
        fragment = client.get(f"/projects/{project_id}/imports/{job}", headers={"HX-Request": "true"}).text
    return fragment


@pytest.fixture
def bureau(client: TestClient, login: Login) -> int:
    project = make_project(client, login)
    assert log_in(client, "nx-bureau").status_code == 303
    return project


def test_projects_list_only_the_own_organisation(client: TestClient, login: Login) -> None:
    make_project(client, login)
    log_in(client, "nx-bureau")
    page = client.get("/projects", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "泾源西片碳汇林" in page.text and "SH-64-000001" in page.text
    client.cookies.clear()
    log_in(client, "jy-coop")
    other = client.get("/projects")
    assert other.status_code == 200 and "泾源西片碳汇林" not in other.text
    assert client.get("/projects/1").status_code == 404  # the bureau's project is not the cooperative's


def test_columns_step_preselects_the_inventory_names(client: TestClient, bureau: int) -> None:
    token = csrf_of(client.get(f"/projects/{bureau}/upload").text)
    files = {"file": (GBK_ZIP.name, GBK_ZIP.read_bytes())}
    answer = client.post(
        f"/projects/{bureau}/upload/columns", data={"csrf_token": token}, files=files, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert "GBK" in html and "JY-W-001" in html
    assert '<option value="小班号" selected>' in html and '<option value="面积_亩" selected>' in html


def test_gbk_upload_with_a_mapping_stores_the_plots_and_serves_them_as_tiles(client: TestClient, bureau: int) -> None:
    mapping = {"map_code": "小班号", "map_name": "名称", "map_declared_area": "面积_亩", "map_species": "树种"}
    fragment = finished(client, bureau, upload(client, bureau, GBK_ZIP, **mapping).text)
    assert 'data-status="succeeded"' in fragment, fragment
    page = client.get(f"/projects/{bureau}", headers={"Accept-Language": "en"}).text
    assert "JY-W-001" in page and "泾源西片一号小班" in page  # the name column mapped by the person
    config = map_config(page)
    west, south, east, north = config["extent"]
    assert 106.29 < west < east < 106.33 and 35.46 < south < north < 35.49
    tile = client.get(f"/projects/{bureau}/tiles/12/3257/1615.mvt")
    assert tile.status_code == 200 and tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(tile.content)
    assert sorted(f["properties"]["code"] for f in decoded["plots"]["features"]) == ["JY-W-001", "JY-W-002", "JY-W-003"]
    assert client.get(f"/projects/{bureau}/tiles/12/0/0.mvt").status_code == 204
    plot_id = decoded["plots"]["features"][0]["id"]
    card = client.get(f"/projects/{bureau}/plots/{plot_id}/card", headers={"Accept-Language": "zh-CN"}).text
    assert "亩" in card and "公顷" in card and "2021-01-01 – 2051-01-01" in card


def test_a_mis_drawn_feature_is_refused_at_its_location(client: TestClient, bureau: int, tmp_path: Path) -> None:
    fragment = finished(client, bureau, upload(client, bureau, bowtie_geojson(tmp_path / "bowtie.geojson")).text)
    assert 'data-status="failed"' in fragment and "BT-003" in fragment
    config = map_config(fragment)
    refused = [f for f in config["overlay"]["features"] if f["properties"]["role"] == "refused"]
    # its outline (as a line: it is invalid) and a point where the outline crosses itself
    assert sorted(f["geometry"]["type"] for f in refused) == ["LineString", "Point"]
    assert {f["properties"]["plot_code"] for f in refused} == {"BT-003"}
    assert any(
        "self-intersection" in line.lower() or "invalid" in line.lower() for line in refused[0]["properties"]["lines"]
    )
    retried = finished(client, bureau, upload(client, bureau, tmp_path / "bowtie.geojson", repair="on").text)
    assert 'data-status="succeeded"' in retried


def test_a_double_counting_conflict_is_drawn_against_the_claimed_plot(
    client: TestClient, bureau: int, tmp_path: Path
) -> None:
    fragment = finished(client, bureau, upload(client, bureau, overlapping_geojson(tmp_path / "over.geojson")).text)
    assert 'data-status="failed"' in fragment and "SH-64-000001" in fragment
    overlay = map_config(fragment)["overlay"]["features"]
    roles = sorted(f["properties"]["role"] for f in overlay)
    assert roles == ["conflict", "existing", "overlap"]
    overlap = next(f for f in overlay if f["properties"]["role"] == "overlap")["properties"]
    assert overlap["overlap_m2"] > 30_000 and 0 < overlap["percent_existing"] < 10
    assert abs(overlap["overlap_mu"] - overlap["overlap_m2"] * 15 / 10_000) < 0.01


def test_a_report_is_filed_from_an_xlsx_table_and_its_sheet_opens(
    client: TestClient, bureau: int, tmp_path: Path
) -> None:
    mapping = {"map_code": "小班号", "map_declared_area": "面积_亩"}
    assert 'data-status="succeeded"' in finished(client, bureau, upload(client, bureau, GBK_ZIP, **mapping).text)
    template = client.get(f"/projects/{bureau}/reports/template/FJ-FORESTRY-CARBON-TICKET.xlsx")
    assert template.status_code == 200
    rows = list(load_workbook(io.BytesIO(template.content)).worksheets[0].iter_rows(values_only=True))
    assert rows[0][0] == "小班号(sub_compartment_id)" and [r[0] for r in rows[1:]] == [
        "JY-W-001",
        "JY-W-002",
        "JY-W-003",
    ]
    # JY-W-003 carries a CCER registration for the whole period: the methodology refuses it (double issuance)
    table = ticket_xlsx(tmp_path / "table.xlsx", [(str(r[0]), str(r[1])) for r in rows[1:3]])
    page = client.get(f"/projects/{bureau}/reports/new")
    form = {"csrf_token": csrf_of(page.text), "methodology": "FJ-FORESTRY-CARBON-TICKET", "period_start": "2024-01-01",
            "period_end": "2025-12-31", "relative_uncertainty": "0.05"}  # fmt: skip
    files = {"table": ("table.xlsx", table.read_bytes())}
    preview = client.post(f"/projects/{bureau}/reports/preview", data=form, files=files, headers={"HX-Request": "true"})
    assert preview.status_code == 200 and "issuable_units_t" in preview.text, preview.text
    # each value not found in a primary source is labelled on its row
    assert 'class="provisional"' in preview.text and "暂定：未在原始文献中找到" in preview.text
    filed = client.post(f"/projects/{bureau}/reports", data=form, files=files, follow_redirects=False)
    assert filed.status_code == 303, filed.text
    sheet = client.get(filed.headers["location"])
    assert sheet.status_code == 200 and "FJ-FORESTRY-CARBON-TICKET" in sheet.text


def test_a_table_problem_is_named_by_row_and_column(client: TestClient, bureau: int) -> None:
    page = client.get(f"/projects/{bureau}/reports/new")
    form = {"csrf_token": csrf_of(page.text), "methodology": "FJ-FORESTRY-CARBON-TICKET", "period_start": "2024-01-01",
            "period_end": "2025-12-31"}  # fmt: skip
    bad = ",".join(TICKET_HEADER) + "\r\nX-1,abc,pinus,1,2\r\n"
    files = {"table": ("t.csv", bad.encode("gb18030"))}
    headers = {"HX-Request": "true", "Accept-Language": "en"}
    answer = client.post(f"/projects/{bureau}/reports/preview", data=form, files=files, headers=headers)
    assert answer.status_code == 200 and "Row 2" in answer.text and "area_mu" in answer.text


def test_submit_for_validation(client: TestClient, bureau: int) -> None:
    page = client.get(f"/projects/{bureau}")
    answer = client.post(f"/projects/{bureau}/submit", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get(f"/api/v1/projects/{bureau}").status_code in (200, 401)
    after = client.get(answer.headers["location"], headers={"Accept-Language": "en"}).text
    assert "submitted for validation" in after and 'id="submit-project"' not in after


def forest_right_scan(path: Path) -> Path:
    """A small PNG standing for a scanned 林权证."""
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, format="PNG")
    return path


def test_a_forest_right_scan_is_attached_listed_and_downloaded(
    client: TestClient, bureau: int, tmp_path: Path, login: Login
) -> None:
    scan = forest_right_scan(tmp_path / "林权证.png")
    page = client.get(f"/projects/{bureau}/evidence")
    assert page.status_code == 200
    form = {
        "csrf_token": csrf_of(page.text),
        "kind": "forest_right_certificate",
        "description": "泾源县林权证 2019-0042",
    }
    answer = client.post(f"/projects/{bureau}/evidence", data=form, files={"file": (scan.name, scan.read_bytes())},
                         follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303, answer.text
    listed = client.get(answer.headers["location"], headers={"Accept-Language": "zh-CN"}).text
    digest = hashlib.sha256(scan.read_bytes()).hexdigest()
    assert "林权证.png" in listed and digest in listed and "image/png" in listed
    attachment = int(listed.split('href="/evidence/')[1].split('"')[0])
    download = client.get(f"/evidence/{attachment}")
    assert download.status_code == 200 and download.content == scan.read_bytes()
    assert download.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:"
    entries = client.get("/api/v1/audit/entries?limit=500", headers=login("auditor")).json()["items"]
    attached = [e for e in entries if e["action"] == "evidence.attached"]
    assert attached and attached[-1]["payload"]["sha256"] == digest
    wrong = client.post(f"/projects/{bureau}/evidence", data={**form, "kind": "photo"},
                        files={"file": ("scan.pdf", b"%PDF-1.4 not really")})  # fmt: skip
    assert wrong.status_code in (415, 422) and "<html" in wrong.text  # a page, with the reason
