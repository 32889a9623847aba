"""The review desk and holdings in Chromium (issue 22), continuing the bureau's journey, in Chinese and English.

Chinese: a verifier of the proponent's own organisation sees the bureau's report read-only with the reason (the
server's refusal of the decision itself is tested in ``tests/web/test_review_desk.py``); the bureau attaches a
site photo to the report; then the independent verifier opens the report from ``/review``, sees its plots
on the map and the calculation trace, and verifies; the registry issues after confirming tonnes, buffer share
and serials; the bureau transfers to the Fujian enterprise, which accepts if the class requires it, retires and
downloads the certificate; the bureau pledges 30 t to the bank, which releases them; an anonymous visitor
opens ``/verify/{code}`` and sees it verified by the browser.
English: the queue, the issued report, the holdings of each party read back. Throughout: no console error, no
request leaving the server, axe-core clean.

``SHANHAI_SCREENSHOTS=docs/screenshots`` writes the screenshots (``review-*``, ``holdings-*``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from carbon.models import MonitoringReport, Project
from core.auth import Organisation, OrgKind
from tests.browser.conftest import Site
from tests.browser.test_bureau_journey import check, wait_map
from tests.browser.test_pages_in_chromium import LOCALES, SHOTS, Watch, log_in
from tests.web.test_bureau_desk import forest_right_scan


def shot(page: Any, name: str, language: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{language}.png"), full_page=True)


@pytest.fixture(scope="module")
def report(site: Site) -> dict[str, int]:
    """The seeded Yongning restoration report (submitted, its project registered) and the organisations."""
    engine = create_engine(site.settings.database_url)
    with Session(engine) as session:
        found = session.scalars(
            select(MonitoringReport).where(MonitoringReport.methodology_id == "NX-RESTORATION")
        ).one()
        kinds = dict(session.execute(select(Organisation.kind, Organisation.id)).all())
        ids = {"report": found.id, "project": found.project_id, "bureau": kinds[OrgKind.FORESTRY_BUREAU],
               "verifier": kinds[OrgKind.VERIFIER]}  # fmt: skip
    engine.dispose()
    return ids


def give_project(site: Site, project_id: int, organisation_id: int) -> None:
    """Hand the project to another organisation (the read-only case: the verifier's own project)."""
    engine = create_engine(site.settings.database_url)
    with Session(engine) as session:
        session.execute(update(Project).where(Project.id == project_id).values(organisation_id=organisation_id))
        session.commit()
    engine.dispose()


def new_page(browser: Any, site: Site, language: str) -> tuple[Any, Any, Watch]:
    ctx = browser.new_context(
        base_url=site.base, viewport={"width": 1280, "height": 900}, locale=LOCALES[language],
        extra_http_headers={"Accept-Language": LOCALES[language]}, accept_downloads=True,
    )  # fmt: skip
    page = ctx.new_page()
    return ctx, page, Watch(page, site.base)


def test_the_review_and_holdings_journey_in_chinese(
    browser: Any, site: Site, report: dict[str, int], tmp_path: Path
) -> None:
    problems: dict[str, list[str]] = {}
    report_id = report["report"]

    # 0. a verifier of the proponent's own organisation: read-only, with the reason
    give_project(site, report["project"], report["verifier"])
    ctx, page, watch = new_page(browser, site, "zh")
    log_in(page, "verifier")
    page.goto("/review")
    row = page.inner_text(f"[data-testid=report-{report_id}]")
    assert "只读" in row and "贵机构是项目业主" in row, row
    assert "never the proponent" in page.get_attribute(f"[data-testid=report-{report_id}] [data-rule]", "data-rule")
    page.goto(f"/review/reports/{report_id}")
    assert page.locator("#verify-report").count() == 0
    assert "贵机构是项目业主" in page.inner_text("[data-testid=read-only]")
    check(page, problems, "read-only")
    shot(page, "review-read-only", "zh")
    ctx.close()
    give_project(site, report["project"], report["bureau"])
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # 1. the bureau attaches a site photo to the report (its desk, web (2/6)); the verifier will see it
    ctx, page, watch = new_page(browser, site, "zh")
    log_in(page, "nx-bureau")
    page.goto(f"/projects/{report['project']}/evidence")
    page.select_option("#evidence-kind", "photo")
    page.select_option("#evidence-report", str(report_id))
    page.set_input_files("#evidence-file", str(forest_right_scan(tmp_path / "样地照片.png")))
    page.fill("#evidence-description", "永宁样地 2025-10 复查照片")
    page.click("#attach-evidence")
    page.wait_for_url("**/evidence?attached=*")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # 2. the independent verifier: from the queue to the report, its plots, trace and evidence, verified
    ctx, page, watch = new_page(browser, site, "zh")
    log_in(page, "verifier")
    page.goto("/review")
    check(page, problems, "queue")
    shot(page, "review-queue", "zh")
    page.click(f"[data-testid=report-{report_id}] a[href='/review/reports/{report_id}']")
    page.wait_for_url(f"**/review/reports/{report_id}")
    wait_map(page)
    codes = page.evaluate("() => window.shanhaiMaps.at(-1).queryRenderedFeatures({layers: ['plots-fill']})"
                          ".map(f => f.properties.code)")  # fmt: skip
    assert "NX-YN-KS-001" in codes, codes
    assert "NX-YN-KS-001" in page.inner_text("[data-testid=report-plots]")
    trace = page.inner_text("[data-testid=trace]")
    assert "issuable_units_t" in trace and "0E-" not in trace, trace[:500]
    assert "样地照片.png" in page.inner_text("table.evidence")
    check(page, problems, "report")
    shot(page, "review-report", "zh")
    page.fill("#decision-comment", "样地复核无误")
    page.click("#verify-report")
    page.wait_for_url("**decided=verify")
    assert page.inner_text("[data-testid=report-status]") == "已核查"
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # 3. the registry issues, confirming tonnes, buffer share and serials
    ctx, page, watch = new_page(browser, site, "zh")
    log_in(page, "registry")
    page.goto("/review")
    page.click(f"[data-testid=to-issue] a[href='/review/reports/{report_id}']")
    summary = page.inner_text("#issue-form")
    assert "缓冲库" in summary and "SH-ERS-64-" in summary, summary
    check(page, problems, "issue")
    shot(page, "review-issue", "zh")
    page.check("#confirm-issue")
    page.click("#issue-report")
    page.wait_for_url("**decided=issue")
    assert page.inner_text("[data-testid=report-status]") == "已签发"
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # 4. the bureau transfers to the Fujian enterprise
    ctx, page, watch = new_page(browser, site, "zh")
    log_in(page, "nx-bureau")
    page.goto("/holdings")
    assert "SH-ERS-64-" in page.inner_text("[data-testid=blocks]")
    enterprise = page.locator("#transfer-to option", has_text="厦门海沧").get_attribute("value")
    page.select_option("#transfer-to", enterprise)
    page.fill("#transfer-t", "200")
    page.click("#transfer")
    page.wait_for_url("**done=transfer")
    page.fill("#pledge-t", "30")  # and pledges 30 t to the bank, which releases them
    page.click("#pledge")
    page.wait_for_url("**done=pledge")
    assert "已质押" in page.inner_text("[data-testid=blocks]")
    check(page, problems, "holdings-bureau")
    shot(page, "holdings-bureau", "zh")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)
    ctx, page, watch = new_page(browser, site, "zh")
    log_in(page, "fj-bank")
    page.goto("/holdings")
    pledgors = page.inner_text("[data-testid=pledgors]")
    assert "宁夏回族自治区林业和草原局" in pledgors and "30" in pledgors, pledgors
    check(page, problems, "holdings-bank")
    shot(page, "holdings-bank", "zh")
    page.click("[data-testid=pledgors] button[type=submit]:not([formaction])")
    page.wait_for_url("**done=release")
    assert "没有向贵行质押的碳汇量" in page.inner_text("[data-testid=pledgors]")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # 5. the enterprise accepts (if the class requires it), retires and downloads the certificate
    ctx, page, watch = new_page(browser, site, "zh")
    log_in(page, "fj-enterprise")
    page.goto("/holdings")
    accept = page.locator("[data-testid=incoming] button[id^=accept-]")
    if accept.count():
        accept.first.click()
        page.wait_for_url("**done=accept")
    assert "可交易" in page.inner_text("[data-testid=blocks]")  # the bureau's oldest tonnes, now the enterprise's
    page.fill("#retire-t", "150")
    page.fill("#retire-beneficiary", "厦门海沧港务物流有限公司")
    page.fill("#retire-purpose", "2025 年度碳中和")
    page.fill("#retire-year", "2025")
    page.click("#retire")
    page.wait_for_selector("[data-testid=certificate]")
    code = page.url.split("retired=")[1]
    with page.expect_download() as download:
        page.click("#certificate-pdf")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF"), pdf[:20]
    check(page, problems, "holdings-retired")
    shot(page, "holdings-retired", "zh")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # 6. anyone checks the certificate in the browser
    ctx, page, watch = new_page(browser, site, "zh")
    page.goto(f"/verify/{code}")
    page.wait_for_selector("#browser-verdict[data-result]", state="attached", timeout=10_000)
    assert page.get_attribute("#browser-verdict", "data-result") == "verified"
    assert "150" in page.inner_text("main")
    check(page, problems, "verify")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_review_and_holdings_pages_in_english(browser: Any, site: Site, report: dict[str, int]) -> None:
    problems: dict[str, list[str]] = {}
    for who, pages in (("verifier", ["/review", f"/review/reports/{report['report']}"]),
                       ("registry", ["/review"]), ("nx-bureau", ["/holdings"]), ("fj-enterprise", ["/holdings"]),
                       ("fj-bank", ["/holdings"])):  # fmt: skip
        ctx, page, watch = new_page(browser, site, "en")
        log_in(page, who)
        for path in pages:
            page.goto(path)
            if "/reports/" in path:
                wait_map(page)
            assert (
                "Holdings" in page.inner_text("main")
                or "Review" in page.inner_text("main")
                or "report" in (page.inner_text("main"))
            )
            name = f"{who}{path.replace('/', '-')}"
            check(page, problems, name)
        if who == "verifier":
            shot(page, "review-report", "en")
        if who == "fj-enterprise":
            shot(page, "holdings", "en")
        ctx.close()
        assert not watch.errors and not watch.outside, (who, watch.errors, watch.outside)
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
