"""The forestry bureau's journey in Chromium (issue 21), in Chinese and English.

Chinese: the bureau uploads the GBK Shapefile sample through the upload page, maps its columns (the inventory
names pre-selected), watches the import and sees its plots on the map with their areas (a clicked plot's card);
uploads a file with a mis-drawn feature and sees it refused at its location; uploads one overlapping another
project's plot and sees the conflict drawn with the overlap in m², 亩 and %; attaches a forest-right scan; files a
monitoring report from an XLSX table and opens its calculation sheet. English: the same two refusals uploaded
again, and every page of the journey read back. Throughout: no console error, no request leaving the server,
axe-core clean.

``SHANHAI_SCREENSHOTS=docs/screenshots`` writes the README's screenshots (``desk-*``).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Site
from tests.browser.test_pages_in_chromium import LOCALES, SHOTS, Watch, axe_violations, log_in
from tests.conftest import PASSWORDS
from tests.web.test_bureau_desk import GBK_ZIP, bowtie_geojson, forest_right_scan, overlapping_geojson, ticket_xlsx

MAP = ".desk-map[data-state=idle]"


def api(site: Site, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> Any:
    """Call this server's JSON API (setting up the journey's project, as a bureau's script would)."""
    headers = {"Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(site.base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request) as answer:  # our own server, 127.0.0.1
        return json.load(answer)


@pytest.fixture(scope="module")
def project(site: Site) -> int:
    form = f"username=nx-bureau&password={PASSWORDS['nx-bureau']}".encode()
    request = urllib.request.Request(site.base + "/api/v1/auth/token", data=form, method="POST")
    with urllib.request.urlopen(request) as answer:
        token = json.load(answer)["access_token"]
    body = {"name": "泾源西片碳汇林 (Jingyuan west)", "scheme": "forestry_carbon_ticket", "province_code": "64",
            "county_code": "640424", "crediting_start": "2021-01-01", "crediting_end": "2051-01-01"}  # fmt: skip
    return int(api(site, "POST", "/api/v1/projects", body, token)["id"])


def shot(page: Any, name: str, language: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"desk-{name}-{language}.png"), full_page=True)


def check(page: Any, problems: dict[str, list[str]], name: str) -> None:
    if found := axe_violations(page):
        problems[name] = found


def upload(page: Any, project: int, path: Path) -> None:
    """Choose the file, read its columns (the mapping step) and import with the suggested mapping."""
    page.goto(f"/projects/{project}/upload")
    page.wait_for_function("() => window.htmx !== undefined")
    page.set_input_files("#plot-file", str(path))
    page.click("#read-columns")
    page.wait_for_selector("#start-import")
    page.click("#start-import")
    page.wait_for_selector("#job .job[data-status=succeeded], #job .job[data-status=failed]", timeout=30_000)


def wait_map(page: Any) -> None:
    """Wait for the last desk map to be drawn (``idle``); say what the maps hold if it is not."""
    try:
        page.wait_for_selector(MAP, state="attached", timeout=20_000)
    except Exception as error:
        state = page.evaluate("""() => [[...document.querySelectorAll('.desk-map')].map(m => ({...m.dataset})),
            (window.shanhaiMaps || []).length,
            (window.shanhaiMaps || []).map(m => m.loaded())]""")
        raise AssertionError(f"no desk map reached idle: {state}") from error


def report_features(page: Any, role: str) -> list[dict[str, Any]]:
    return page.evaluate(  # type: ignore[no-any-return]
        """(role) => window.shanhaiMaps.at(-1).querySourceFeatures('report')
             .filter(f => f.properties.role === role).map(f => ({properties: f.properties}))""",
        role,
    )


def click_at(page: Any, lon: float, lat: float) -> None:
    """Click the last map at a lon/lat (the canvas pixel MapLibre projects it to)."""
    canvas = page.locator(".desk-map canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.shanhaiMaps.at(-1).project([lon, lat]); return [p.x, p.y]; }", [lon, lat]
    )
    assert 0 <= x <= box["width"] and 0 <= y <= box["height"], (x, y, box)
    page.mouse.click(box["x"] + x, box["y"] + y)


def refused_at_its_location(page: Any, language: str) -> None:
    wait_map(page)
    refused = report_features(page, "refused")
    assert {f["properties"]["plot_code"] for f in refused} == {"BT-003"}, refused
    click_at(page, 106.3275, 35.457)  # where the bow-tie's outline crosses itself: the reported location
    popup = page.wait_for_selector(".maplibregl-popup-content")
    text = popup.inner_text()
    assert "BT-003" in text and ("intersect" in text.lower() or "invalid" in text.lower()), text
    assert ("拒收" if language == "zh" else "Refused") in text


def conflict_drawn(page: Any, language: str) -> None:
    wait_map(page)
    assert report_features(page, "existing") and report_features(page, "conflict")
    overlap = report_features(page, "overlap")[0]["properties"]
    assert overlap["overlap_m2"] > 30_000
    click_at(page, 106.3305, 35.5005)  # inside both the upload and the Haicang plot
    text = page.wait_for_selector(".maplibregl-popup-content").inner_text()
    assert "m²" in text and "%" in text and ("亩" in text if language == "zh" else "mu" in text), text
    assert "SH-64-000001" in page.inner_text("[data-testid=conflicts]")


def test_the_bureau_journey_in_chinese(browser: Any, site: Site, project: int, tmp_path: Path) -> None:
    ctx = browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900}, locale=LOCALES["zh"],
                              extra_http_headers={"Accept-Language": LOCALES["zh"]})  # fmt: skip
    page = ctx.new_page()
    watch = Watch(page, site.base)
    problems: dict[str, list[str]] = {}
    log_in(page, "nx-bureau")

    # 1. the GBK Shapefile through the page: its columns mapped, the import watched, the plots on the map
    page.goto(f"/projects/{project}/upload")
    page.wait_for_function("() => window.htmx !== undefined")
    page.set_input_files("#plot-file", str(GBK_ZIP))
    page.click("#read-columns")
    page.wait_for_selector("#start-import")
    assert page.input_value("#map-code") == "小班号" and page.input_value("#map-declared_area") == "面积_亩"
    assert "GBK" in page.inner_text("#mapping") and "JY-W-001" in page.inner_text("#mapping")
    page.select_option("#map-name", "名称")
    check(page, problems, "columns")
    shot(page, "columns", "zh")
    page.click("#start-import")
    page.wait_for_selector("#job .job[data-status=succeeded]", timeout=30_000)
    page.click(f"#job a[href='/projects/{project}']")
    wait_map(page)
    codes = page.evaluate("() => window.shanhaiMaps.at(-1).queryRenderedFeatures({layers: ['plots-fill']})"
                          ".map(f => f.properties.code)")  # fmt: skip
    assert {"JY-W-001", "JY-W-002", "JY-W-003"} <= set(codes), codes
    click_at(page, 106.3055, 35.4671)
    card = page.wait_for_selector(".plot-card [data-testid=measured-area]").inner_text()
    assert "亩" in card and "公顷" in card, card
    assert "亩" in page.inner_text("main table")
    check(page, problems, "project")
    shot(page, "project", "zh")

    # 2. a mis-drawn feature: refused where it is
    upload(page, project, bowtie_geojson(tmp_path / "小班_自相交.geojson"))
    refused_at_its_location(page, "zh")
    check(page, problems, "refused")
    shot(page, "refused", "zh")

    # 3. a sub-compartment over another project's plot: the conflict drawn
    upload(page, project, overlapping_geojson(tmp_path / "小班_重叠.geojson"))
    conflict_drawn(page, "zh")
    check(page, problems, "conflict")
    shot(page, "conflict", "zh")

    # 4. a forest-right scan attached: listed with its SHA-256
    scan = forest_right_scan(tmp_path / "林权证扫描件.png")
    page.goto(f"/projects/{project}/evidence")
    page.select_option("#evidence-kind", "forest_right_certificate")
    page.set_input_files("#evidence-file", str(scan))
    page.fill("#evidence-description", "泾源县林权证 2019-0042")
    page.click("#attach-evidence")
    page.wait_for_url("**/evidence?attached=*")
    listed = page.inner_text("table.evidence")
    assert "林权证扫描件.png" in listed and hashlib.sha256(scan.read_bytes()).hexdigest() in listed, listed
    check(page, problems, "evidence")
    shot(page, "evidence", "zh")

    # 5. a monitoring report from an XLSX table: preview, file, the sheet
    table = ticket_xlsx(tmp_path / "小班表.xlsx", [("JY-W-001", "600"), ("JY-W-002", "450")])
    page.goto(f"/projects/{project}/reports/new")
    page.wait_for_function("() => window.htmx !== undefined")
    page.fill("#period-start", "2024-01-01")
    page.fill("#period-end", "2025-12-31")
    page.fill("#relative-uncertainty", "0.05")
    page.set_input_files("#table-file", str(table))
    page.click("#preview-report")
    page.wait_for_selector("#preview h2")
    preview = page.inner_text("#preview")
    assert "issuable_units_t" in preview and "暂定" in preview, preview
    check(page, problems, "report-preview")
    shot(page, "report-preview", "zh")
    page.click("#file-report")
    page.wait_for_url("**/reports/*/sheet")
    assert "FJ-FORESTRY-CARBON-TICKET" in page.inner_text("main")
    check(page, problems, "sheet")
    ctx.close()
    assert not watch.errors, watch.errors
    assert not watch.outside, watch.outside
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_bureau_journey_in_english(browser: Any, site: Site, project: int, tmp_path: Path) -> None:
    ctx = browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900}, locale=LOCALES["en"],
                              extra_http_headers={"Accept-Language": LOCALES["en"]})  # fmt: skip
    page = ctx.new_page()
    watch = Watch(page, site.base)
    problems: dict[str, list[str]] = {}
    log_in(page, "nx-bureau")
    page.goto("/projects")
    assert "SH-64-" in page.inner_text("main")
    check(page, problems, "projects")
    shot(page, "projects", "en")
    page.goto(f"/projects/{project}")
    wait_map(page)
    if "JY-W-001" in page.inner_text("main table"):  # after the Chinese journey (its module ran first)
        click_at(page, 106.3055, 35.4671)
        card = page.wait_for_selector(".plot-card [data-testid=measured-area]").inner_text()
        assert " ha (" in card and "mu)" in card, card
    check(page, problems, "project")
    shot(page, "project", "en")
    upload(page, project, bowtie_geojson(tmp_path / "misdrawn.geojson"))
    refused_at_its_location(page, "en")
    check(page, problems, "refused")
    shot(page, "refused", "en")
    upload(page, project, overlapping_geojson(tmp_path / "overlapping.geojson"))
    conflict_drawn(page, "en")
    check(page, problems, "conflict")
    shot(page, "conflict", "en")
    page.goto(f"/projects/{project}/evidence")
    check(page, problems, "evidence")
    page.goto(f"/projects/{project}/reports/new")
    check(page, problems, "report-new")
    ctx.close()
    assert not watch.errors, watch.errors
    assert not watch.outside, watch.outside
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
