"""Decisions on the review desk and in holdings in Chromium, in Chinese and English: the registry decides a
proposed reversal on ``/review/reversals/{id}`` (the evidence, the before/after picture, the plot on the map, the
tonnes at risk and what confirming cancels, named before it is confirmed); a transfer of ERS tonnes (the class
needs the receiver's acceptance) is accepted by the Fujian enterprise; the bank enforces a pledge. Throughout: no
console error, no request leaving the server, axe-core clean.

The site is the browser tests' (``tests/browser/conftest.py``) with a raster directory of this module's own, for
the synthetic composite pairs the loss events are raised from (``tests.web.test_review_reversals.propose_loss``).
``SHANHAI_SCREENSHOTS=docs/screenshots`` writes ``review-reversal-{zh,en}.png``.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from carbon.ledger import Batch, BlockState, CreditClass, open_blocks, transfer
from carbon.models import MonitoringReport
from carbon.reversals.models import EventStatus, LossEvent
from carbon.workflow import StepRequest, report_step
from core.auth import Organisation, OrgKind, User, principal_of
from core.clock import FixedClock
from core.settings import Settings
from shanhai.app import create_app
from tests.browser.conftest import Site, _need_chromium, _prepare
from tests.browser.test_bureau_journey import check, wait_map
from tests.browser.test_review_journey import new_page, shot
from tests.conftest import TEST_SECRET, free_port
from tests.web.test_review_reversals import propose_loss

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[Site]:
    """The browser tests' site (``conftest.site``), its raster directory this module's own."""
    _need_chromium()
    data = tmp_path_factory.mktemp("site")
    (data / "rasters").mkdir()
    shutil.copyfile(template_db, data / "shanhai.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(environment="test", data_dir=data, database_url=f"sqlite:///{data / 'shanhai.db'}",
                        raster_dir=data / "rasters", secret_key=TEST_SECRET,  # type: ignore[arg-type]
                        public_base_url=base, map_review_number="GS（2026）0000号 (test)")  # fmt: skip
    certificate = _prepare(settings)
    clock = FixedClock(AT)
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="shanhai-web-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the in-thread server did not start"
        time.sleep(0.05)
    yield Site(base, settings, clock, certificate)
    server.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


def _session(site: Site) -> tuple[Any, Session]:
    engine = create_engine(site.settings.database_url)
    return engine, Session(engine)


def propose(site: Site, stem: str, scar_px: tuple[int, int]) -> dict[str, int]:
    """Raise a loss event on Haicang (proposed); return its id and tonnes at risk."""
    engine, session = _session(site)
    try:
        event_id = propose_loss(session, raster_dir=site.settings.raster_dir, clock=FixedClock(AT), stem=stem,
                                scar_px=scar_px)  # fmt: skip
        event = session.get_one(LossEvent, event_id)
        return {"id": event_id, "tonnes": event.tonnes_at_risk_t}
    finally:
        session.close()
        engine.dispose()


def event_status(site: Site, event_id: int) -> tuple[EventStatus, int | None]:
    engine, session = _session(site)
    try:
        event = session.get_one(LossEvent, event_id)
        return event.status, event.cancelled_t
    finally:
        session.close()
        engine.dispose()


def issue_yongning(site: Site) -> None:
    """Verify and issue the seeded Yongning restoration report (ERS tonnes) through the workflow's services."""
    engine, session = _session(site)
    try:
        report_id = session.scalars(
            select(MonitoringReport.id).where(MonitoringReport.methodology_id == "NX-RESTORATION")
        ).one()

        def principal(kind: OrgKind) -> Any:
            user = session.scalars(select(User).join(User.organisation).where(Organisation.kind == kind)
                                   .order_by(User.id)).first()  # fmt: skip
            assert user is not None
            return principal_of(user, "test")

        clock = FixedClock(AT)
        report_step(session, report_id, "verify", StepRequest(comment="ok"), actor=principal(OrgKind.VERIFIER),
                    clock=clock)  # fmt: skip
        report_step(session, report_id, "issue", StepRequest(comment=""), actor=principal(OrgKind.REGISTRY),
                    clock=clock)  # fmt: skip
    finally:
        session.close()
        engine.dispose()


def only_ers_with_the_bureau(site: Site) -> None:
    """Move the bureau's tradable tonnes of other classes (Haicang's, older) to the enterprise, through the ledger's
    service: the page transfers the oldest vintage first, and this journey transfers ERS tonnes."""
    engine, session = _session(site)
    try:
        bureaus = select(User).join(User.organisation).where(Organisation.kind == OrgKind.FORESTRY_BUREAU)
        bureau = session.scalars(bureaus.order_by(User.id)).first()
        enterprise = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)
                                     .order_by(Organisation.id)).first()  # fmt: skip
        assert bureau is not None and enterprise is not None
        others: dict[int, int] = {}
        for block in open_blocks(session, bureau.organisation_id):
            batch = session.get_one(Batch, block.batch_id)
            if block.state is BlockState.TRADABLE and batch.credit_class is not CreditClass.ECOLOGICAL_RESTORATION:
                others[batch.id] = others.get(batch.id, 0) + block.serial_end - block.serial_start + 1
        if others:
            transfer(session, from_organisation_id=bureau.organisation_id, to_organisation_id=enterprise,
                     quantity_t=sum(others.values()), actor=principal_of(bureau, "test"), clock=FixedClock(AT),
                     batch_ids=list(others))  # fmt: skip
    finally:
        session.close()
        engine.dispose()


def decide_reversal(browser: Any, site: Site, language: str, problems: dict[str, list[str]]) -> None:
    """The auditor sees the proposal read-only; the registry confirms it, the tonnes named first."""
    zh = language == "zh"
    event = propose(site, f"browser-{language}", (40, 30) if zh else (70, 50))
    assert event["tonnes"] > 0, event
    ctx, page, watch = new_page(browser, site, language)
    log_in_as(page, "auditor")
    page.goto(f"/review/reversals/{event['id']}")
    assert page.locator("#confirm-event").count() == 0
    read_only = page.inner_text("[data-testid=read-only]")
    assert ("只能由登记机构决定" if zh else "Only the registry decides") in read_only, read_only
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    ctx, page, watch = new_page(browser, site, language)
    log_in_as(page, "registry")
    page.goto("/review")
    page.click(f"[data-testid=reversal-{event['id']}] a.button")
    page.wait_for_url(f"**/review/reversals/{event['id']}")
    wait_map(page)
    roles = page.evaluate("() => window.shanhaiMaps.at(-1).querySourceFeatures('report').map(f => f.properties.role)")
    assert "lost" in roles and "affected" in roles, roles
    page.wait_for_function("() => document.querySelector('[data-testid=before-after]').naturalWidth > 0")
    tonnes = f"{event['tonnes']:,}"
    summary = page.inner_text("[data-testid=confirm-summary]")
    # the first loss is covered by the buffer pool; the second, larger one drains it and the class rule takes the
    # shortfall from the proponent's tradable tonnes: the confirmation names both
    expected = f"确认将注销 {tonnes} 吨：从缓冲库注销 {tonnes} 吨" if zh else f"Confirming cancels {tonnes} t: "
    assert expected in summary, summary
    assert zh or ("from the buffer pool" in summary and "t from the proponent's tradable tonnes" in summary)
    assert "0E-" not in page.inner_text("main")
    check(page, problems, f"reversal-{language}")
    shot(page, "review-reversal", language)
    page.fill("#confirm-reason", "县林业站现场核实火烧迹地" if zh else "Burn scar confirmed on site")
    page.check("#confirm-reversal")
    page.click("#confirm-event")
    page.wait_for_url("**decided=confirm")
    assert page.inner_text("[data-testid=event-status]") == ("已确认冲销" if zh else "Reversal confirmed")
    cancelled = page.inner_text("[data-testid=cancelled]")
    assert tonnes in cancelled, cancelled
    check(page, problems, f"reversal-decided-{language}")
    shot(page, "review-reversal-decided", language)
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)
    assert event_status(site, event["id"]) == (EventStatus.CONFIRMED, event["tonnes"])


def log_in_as(page: Any, who: str) -> None:
    from tests.browser.test_pages_in_chromium import log_in

    log_in(page, who)


def test_the_registry_decides_a_reversal_in_chinese(browser: Any, site: Site) -> None:
    problems: dict[str, list[str]] = {}
    decide_reversal(browser, site, "zh", problems)
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_registry_decides_a_reversal_in_english(browser: Any, site: Site) -> None:
    problems: dict[str, list[str]] = {}
    decide_reversal(browser, site, "en", problems)
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_an_ers_transfer_is_accepted_and_a_pledge_enforced(browser: Any, site: Site, language: str) -> None:
    problems: dict[str, list[str]] = {}
    zh = language == "zh"
    if zh:
        issue_yongning(site)
    only_ers_with_the_bureau(site)
    # the bureau transfers ERS tonnes to the enterprise, and pledges some to the bank
    ctx, page, watch = new_page(browser, site, language)
    log_in_as(page, "nx-bureau")
    page.goto("/holdings")
    assert "SH-ERS-64-" in page.inner_text("[data-testid=blocks]")
    enterprise = page.locator("#transfer-to option", has_text="厦门海沧").get_attribute("value")
    page.select_option("#transfer-to", enterprise)
    page.fill("#transfer-t", "40")
    page.click("#transfer")
    page.wait_for_url("**done=transfer")
    page.fill("#pledge-t", "25")
    page.click("#pledge")
    page.wait_for_url("**done=pledge")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # the enterprise accepts the ERS transfer (the class needs it)
    ctx, page, watch = new_page(browser, site, language)
    log_in_as(page, "fj-enterprise")
    page.goto("/holdings")
    incoming = page.inner_text("[data-testid=incoming]")
    assert "SH-ERS-64-" in incoming or "40" in incoming, incoming
    accept = page.locator("[data-testid=incoming] button[id^=accept-]")
    assert accept.count() >= 1, incoming
    check(page, problems, f"incoming-{language}")
    accept.first.click()
    page.wait_for_url("**done=accept")
    assert ("已接收转让" if zh else "accepted") in page.inner_text("[data-testid=done]")
    assert "SH-ERS-64-" in page.inner_text("[data-testid=blocks]")
    check(page, problems, f"accepted-{language}")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)

    # the bank enforces the bureau's pledge: the tonnes become the bank's
    ctx, page, watch = new_page(browser, site, language)
    log_in_as(page, "fj-bank")
    page.goto("/holdings")
    pledgors = page.inner_text("[data-testid=pledgors]")
    assert ("宁夏回族自治区林业和草原局" if zh else "25") in pledgors, pledgors
    page.click("[data-testid=pledgors] button[formaction='/holdings/pledges/enforce']")
    page.wait_for_url("**done=enforce")
    assert ("质押已处置" if zh else "enforced") in page.inner_text("[data-testid=done]")
    assert "SH-" in page.inner_text("[data-testid=blocks]")
    check(page, problems, f"enforced-{language}")
    ctx.close()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
