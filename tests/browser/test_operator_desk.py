"""The operator's desk in Chromium (issue 25, ADR 044): list an instrument, run an auction to its allocation.

The site's clock is injected (``FixedClock``, Wednesday 2026-11-25 18:00 Beijing), as on the market screen.
Chinese: the operator lists FCT-2025 on ``/operator`` (round the clock, the block desk all day) and it shows on
``/market``; records the buyer's deposit; announces a one-way auction of the Ningxia bureau's tonnes; the
enterprise bids on ``/auctions/{id}``; after the window the operator closes it on ``/operator`` and the allocation
is published on the auction's public page. English: the desk reads back, and listing a code that is taken is the
problem page with the service's message. Throughout: no console error, no request leaving the server, axe-core
clean.

``SHANHAI_SCREENSHOTS=docs/screenshots`` writes the screenshots (``operator-*``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, issue_batch
from core.auth import Organisation, OrgKind, User, principal_of
from tests.browser.conftest import Site
from tests.browser.test_pages_in_chromium import LOCALES, SHOTS, Watch, axe_violations, log_in
from tests.conftest import USER_OF_ROLE

INSTRUMENT = "FCT-2025"
OPERATOR = USER_OF_ROLE["operator"]
BUYER = USER_OF_ROLE["enterprise"]
BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def desk(site: Site) -> dict[str, int]:
    """Issue 5,000 t of FCT 2025 to the Ningxia bureau; nothing is listed yet. Return the organisations' ids."""
    engine = create_engine(site.settings.database_url)
    try:
        with Session(engine) as session:
            registry = next(u for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.REGISTRY)
            issue_batch(session, IssueBatch(1, "test:operator", CreditClass.FORESTRY_CARBON_TICKET, 2025, 5_000, 0),
                        actor=principal_of(registry, "test"), clock=site.clock)  # fmt: skip
            session.commit()
            ids = {o.kind.value: o.id for o in session.scalars(select(Organisation).order_by(Organisation.id.desc()))}
    finally:
        engine.dispose()
    return ids


def shot(page: Any, name: str, language: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"operator-{name}-{language}.png"), full_page=True)


def person_page(browser: Any, site: Site, language: str, who: str | None) -> tuple[Any, Any, Watch]:
    ctx = browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900}, locale=LOCALES[language],
                              extra_http_headers={"Accept-Language": LOCALES[language]})  # fmt: skip
    page = ctx.new_page()
    watch = Watch(page, site.base)
    if who is not None:
        log_in(page, who)
    return ctx, page, watch


def check(page: Any, problems: dict[str, list[str]], name: str) -> None:
    if found := axe_violations(page):
        problems[name] = found


def local(moment: Any) -> str:
    """A moment as the form takes it: Beijing time, to the minute."""
    return str(moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"))


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    found: list[Watch] = []
    yield found
    errors = [e for w in found for e in w.errors]
    outside = [u for w in found for u in w.outside]
    assert not errors, errors
    assert not outside, outside


def test_the_operator_lists_an_instrument_and_runs_an_auction_to_its_allocation(
    browser: Any, site: Site, desk: dict[str, int], watches: list[Watch]
) -> None:
    problems: dict[str, list[str]] = {}
    ctx, page, watch = person_page(browser, site, "zh", OPERATOR)
    watches.append(watch)
    page.goto("/operator")
    assert page.locator("#instruments").count() == 0 and page.locator("#announce-auction").count() == 0
    check(page, problems, "empty")

    # 1. list FCT-2025: 60.00 CNY, round the clock, fees 50/30 bp, the block desk all day from 10 t
    page.fill("#instrument-id", INSTRUMENT)
    page.select_option("#instrument-class", "FCT")
    page.fill("#instrument-vintage", "2025")
    page.fill("#instrument-reference", "60.00")
    page.check("#hours-always")
    page.fill("input[name=buyer_fee_bp]", "50")
    page.fill("input[name=seller_fee_bp]", "30")
    page.fill("#block-min", "10")
    page.fill("#block-opens", "00:00")
    page.fill("#block-closes", "24:00")
    page.click("#list-instrument-submit")
    assert INSTRUMENT in page.wait_for_selector("[data-testid=done]").inner_text()
    row = page.inner_text(f"tr[data-instrument='{INSTRUMENT}']")
    assert "60.00" in row and "全天开放" in row and "50/30" in row, row

    # 2. the buyer's deposit, exact to the fen
    page.select_option("#deposit select[name=organisation_id]", str(desk["enterprise"]))
    page.fill("#deposit input[name=amount_cny]", "100000.00")
    page.fill("#deposit input[name=reference]", "BANK-2026-1125")
    page.click("#deposit button[type=submit]")
    page.wait_for_selector("[data-testid=done]")
    assert "100,000.00" in page.inner_text(f"#account-{desk['enterprise']}")

    # 3. an auction of the Ningxia bureau's tonnes, open from a minute ago for ten minutes
    now = site.clock.now()
    page.select_option("#auction-instrument", INSTRUMENT)
    page.select_option("#auction-seller", str(desk["forestry_bureau"]))
    page.fill("#auction-quantity", "300")
    page.fill("#auction-reserve", "58.00")
    page.fill("#auction-starts", local(now - timedelta(minutes=1)))
    page.fill("#auction-ends", local(now + timedelta(minutes=10)))
    page.click("#announce-auction-submit")
    page.wait_for_selector("[data-testid=done]")
    auction = page.get_attribute("#auctions tbody tr[data-auction]", "data-auction")
    assert auction is not None and f"竞价 {auction}" in page.inner_text("[data-testid=done]")
    assert "进行中" in page.inner_text(f"tr[data-auction='{auction}'] [data-testid=phase]")
    check(page, problems, "announced")
    shot(page, "desk", "zh")

    # the instrument on the market screen
    page.goto("/market")
    assert INSTRUMENT in page.inner_text("table.instruments")
    check(page, problems, "market")

    # 4. the enterprise bids on the auction's page
    buyer_ctx, buyer, buyer_watch = person_page(browser, site, "zh", BUYER)
    watches.append(buyer_watch)
    buyer.goto(f"/auctions/{auction}")
    buyer.fill("#bid-price", "59.50")
    buyer.fill("#bid-quantity", "120")
    buyer.click("#place-bid")
    buyer.wait_for_selector("[data-testid=bid-placed]")
    assert "59.50" in buyer.inner_text("[data-testid=my-bids]")
    buyer_ctx.close()

    # 5. after the window the operator closes it: allocated, settled, the notional exact
    site.clock.advance(timedelta(minutes=15))
    page.goto("/operator")
    page.click(f"[data-testid=close-{auction}]")
    page.wait_for_selector("[data-testid=done]")
    allocations = page.inner_text(f"[data-testid=allocations-{auction}]")
    assert "120 t × 59.50 = 7,140.00 CNY" in allocations, allocations
    assert "已结束" in page.inner_text(f"tr[data-auction='{auction}'] [data-testid=phase]")
    check(page, problems, "closed")
    shot(page, "closed", "zh")
    ctx.close()

    # 6. the allocation is public
    anonymous, public, public_watch = person_page(browser, site, "zh", None)
    watches.append(public_watch)
    public.goto(f"/auctions/{auction}")
    allocations = public.inner_text("[data-testid=allocations]")
    assert "120" in allocations and "59.50" in allocations, allocations
    check(public, problems, "public")
    anonymous.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_operator_desk_in_english_and_a_refusal(
    browser: Any, site: Site, desk: dict[str, int], watches: list[Watch]
) -> None:
    problems: dict[str, list[str]] = {}
    ctx, page, watch = person_page(browser, site, "en", OPERATOR)
    watches.append(watch)
    page.goto("/operator")
    main = page.inner_text("main")
    assert "List an instrument" in main and "Announce an auction" in main and "Record a deposit" in main
    check(page, problems, "desk")
    shot(page, "desk", "en")
    # a code that is taken: the problem page with the service's message, nothing listed
    page.fill("#instrument-id", INSTRUMENT)
    page.fill("#instrument-vintage", "2025")
    page.fill("#instrument-reference", "70.00")
    with page.expect_response("**/operator/instruments") as answer:
        page.click("#list-instrument-submit")
    assert answer.value.status == 409
    assert "exists already" in page.inner_text("main")
    check(page, problems, "refused")
    shot(page, "refused", "en")
    ctx.close()
    # the browser reports the 409 document itself on the console; nothing else may be there
    watch.errors = [e for e in watch.errors if "status of 409" not in e]
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
