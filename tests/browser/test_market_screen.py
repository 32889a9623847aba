"""The market screen in Chromium (issue 23): two traders, one instrument, live through the stream.

The site's clock is injected (``FixedClock``, Wednesday 2026-11-25 18:00 Beijing) and the instrument trades
around the clock (``always_open``), so sessions and T+1 give the same answers at any hour the tests run.
Chinese: the seller's double-clicked ticket places one order; it shows on the buyer's book without a reload; the
buyer's order crosses it and the trade shows on both screens, in both traders' fills; the seller amends and
cancels the rest; a price outside the band is refused with the problem's message. English: the same screens
read back and a refusal. Throughout: no console error, no request leaving the server, axe-core clean.

``SHANHAI_SCREENSHOTS=docs/screenshots`` writes the screenshots (``market-*``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, issue_batch
from core.auth import Organisation, OrgKind, User, principal_of
from tests.browser.conftest import Site
from tests.browser.test_pages_in_chromium import LOCALES, SHOTS, Watch, axe_violations, log_in
from tests.conftest import PASSWORDS, USER_OF_ROLE

INSTRUMENT = "FCT-2025"
SELLER = USER_OF_ROLE["forestry_bureau"]
BUYER = USER_OF_ROLE["enterprise"]
LIVE = "#market[data-state=live]"


def api(site: Site, method: str, path: str, body: dict[str, Any] | None = None, who: str | None = None) -> Any:
    """Call this server's JSON API as a demo user (the operator's set-up, reading back orders)."""
    headers = {"Content-Type": "application/json"}
    if who is not None:
        form = f"username={who}&password={PASSWORDS[who]}".encode()
        request = urllib.request.Request(site.base + "/api/v1/auth/token", data=form, method="POST")
        with urllib.request.urlopen(request) as answer:  # our own server, 127.0.0.1
            headers["Authorization"] = f"Bearer {json.load(answer)['access_token']}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(site.base + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def list_market(site: Site) -> None:
    """Issue 5,000 t to the Ningxia bureau, list FCT-2025 (60.00 CNY, always open), give the buyer cash."""
    engine = create_engine(site.settings.database_url)
    try:
        with Session(engine) as session:
            registry = next(u for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.REGISTRY)
            issue_batch(session, IssueBatch(1, "test:market", CreditClass.FORESTRY_CARBON_TICKET, 2025, 5_000, 0),
                        actor=principal_of(registry, "test"), clock=site.clock)  # fmt: skip
            session.commit()
            buyer = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)).one()
    finally:
        engine.dispose()
    operator = USER_OF_ROLE["operator"]
    body = {"instrument_id": INSTRUMENT, "credit_class": "FCT", "vintage_year": 2025, "reference_price_cny": "60",
            "always_open": True, "buyer_fee_bp": 50, "seller_fee_bp": 30,
            # the block desk all day and from 10 t, so the journey's block trade does not depend on the hour
            "block_min_t": 10, "block_open_minute": 0, "block_close_minute": 1440}  # fmt: skip
    api(site, "POST", "/api/v1/instruments", body, operator)
    api(site, "POST", "/api/v1/cash/deposits",
        {"organisation_id": buyer, "amount_fen": 10_000_000, "reference": "BANK-TEST"}, operator)  # fmt: skip


@pytest.fixture(scope="module")
def market(site: Site) -> Site:
    list_market(site)
    return site


def shot(page: Any, name: str, language: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"market-{name}-{language}.png"), full_page=True)


def trader_page(browser: Any, site: Site, language: str, who: str) -> tuple[Any, Any, Watch]:
    ctx = browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900}, locale=LOCALES[language],
                              extra_http_headers={"Accept-Language": LOCALES[language]})  # fmt: skip
    page = ctx.new_page()
    watch = Watch(page, site.base)
    log_in(page, who)
    page.goto(f"/market/{INSTRUMENT}")
    page.wait_for_selector(LIVE, state="attached", timeout=20_000)
    page.wait_for_function("() => window.htmx !== undefined")
    return ctx, page, watch


def ticket(page: Any, side: str, price: str, quantity: str) -> None:
    page.check(f"#side-{side}")
    page.fill("#ticket-price", price)
    page.fill("#ticket-quantity", quantity)


def open_orders(site: Site, who: str) -> list[dict[str, Any]]:
    items = api(site, "GET", "/api/v1/orders?status=open", who=who)["items"]
    return [o for o in items if o["instrument_id"] == INSTRUMENT]


def check(page: Any, problems: dict[str, list[str]], name: str) -> None:
    if found := axe_violations(page):
        problems[name] = found


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    found: list[Watch] = []
    yield found
    errors = [e for w in found for e in w.errors]
    outside = [u for w in found for u in w.outside]
    assert not errors, errors
    assert not outside, outside


def test_two_traders_cross_and_both_screens_update_live(browser: Any, market: Site, watches: list[Watch]) -> None:
    problems: dict[str, list[str]] = {}
    seller_ctx, seller, seller_watch = trader_page(browser, market, "zh", SELLER)
    buyer_ctx, buyer, buyer_watch = trader_page(browser, market, "zh", BUYER)
    watches += [seller_watch, buyer_watch]
    assert int(seller.inner_text("[data-testid=sellable]").rstrip(" t").replace(",", "")) >= 5_000
    assert "100,000.00 CNY" in buyer.inner_text("[data-testid=cash-available]")
    assert "54.00 – 66.00" in seller.inner_text("[data-testid=band]")

    # a double-clicked submit: one key, one order
    ticket(seller, "sell", "60.00", "100")
    key = seller.get_attribute("[data-testid=idempotency-key]", "value")
    seller.dblclick("#send-order")
    seller.wait_for_selector("[data-testid=placed]")
    assert seller.get_attribute("[data-testid=idempotency-key]", "value") != key  # the next submission's own key
    assert len(open_orders(market, SELLER)) == 1
    seller.wait_for_selector("[data-testid=open-orders] tr[data-order]")
    assert seller.locator("[data-testid=open-orders] tr[data-order]").count() == 1

    # the ask shows on the buyer's book without a reload
    buyer.wait_for_function("() => document.querySelector('#book-rows').innerText.includes('60.00')")
    check(buyer, problems, "book")

    # the buyer crosses it: the trade on both screens, in both traders' fills
    ticket(buyer, "buy", "60.00", "40")
    buyer.click("#send-order")
    buyer.wait_for_selector("[data-testid=placed]")
    for page in (seller, buyer):
        page.wait_for_selector("#trade-rows tr[data-trade]")
        assert "40" in page.inner_text("#trade-rows")
        page.wait_for_selector("[data-testid=fills] tbody tr:has-text('60.00')")
        assert page.inner_text("#last-price") == "60.00"
        assert page.inner_text("#volume-today") == "40"
    seller.wait_for_function("() => document.querySelector('#book-rows').innerText.includes('60')")
    assert "卖出" in seller.inner_text("[data-testid=fills]") and "买入" in buyer.inner_text("[data-testid=fills]")
    buyer.wait_for_function("() => document.querySelector('[data-testid=sellable]').innerText.includes('0 t')")
    check(seller, problems, "instrument-seller")
    check(buyer, problems, "instrument-buyer")
    shot(seller, "instrument", "zh")

    # the rest amended, then cancelled
    order = open_orders(market, SELLER)[0]
    assert order["remaining_t"] == 60
    row = f"[data-testid=open-orders] tr[data-order='{order['order_id']}']"
    seller.fill(f"{row} input[name=price]", "61.00")
    seller.click(f"{row} form.amend button")
    buyer.wait_for_function("() => document.querySelector('#book-rows').innerText.includes('61.00')")
    assert open_orders(market, SELLER)[0]["price_cny"] == "61.00"
    seller.click(f"[data-testid=cancel-{order['order_id']}]")
    seller.wait_for_selector(f"{row}", state="detached")
    assert open_orders(market, SELLER) == []

    # a refusal: the problem's message on the ticket, nothing placed
    ticket(buyer, "buy", "99.00", "10")
    buyer.click("#send-order")
    refusal = buyer.wait_for_selector("[data-testid=refusal]").inner_text()
    assert "拒绝" in refusal and "band" in refusal, refusal
    assert buyer.input_value("#ticket-price") == "99.00" and buyer.is_checked("#side-buy")  # kept to correct
    assert open_orders(market, BUYER) == []
    check(buyer, problems, "refusal")
    shot(buyer, "refusal", "zh")

    buyer.goto("/market")
    assert INSTRUMENT in buyer.inner_text("table.instruments") and "60.00" in buyer.inner_text("table.instruments")
    check(buyer, problems, "market")
    shot(buyer, "list", "zh")
    seller_ctx.close()
    buyer_ctx.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_market_screen_in_english(browser: Any, market: Site, watches: list[Watch]) -> None:
    problems: dict[str, list[str]] = {}
    ctx, page, watch = trader_page(browser, market, "en", BUYER)
    watches.append(watch)
    assert "Order ticket" in page.inner_text("main") and "Tonnes you may sell now (T+1)" in page.inner_text("main")
    check(page, problems, "instrument")
    ticket(page, "sell", "60.00", "1000000")
    page.click("#send-order")
    refusal = page.wait_for_selector("[data-testid=refusal]").inner_text()
    assert refusal.startswith("Refused:"), refusal
    # after the swap: a full-page screenshot leaves style attributes that htmx's settle would copy back (CSP)
    shot(page, "instrument", "en")
    page.goto("/market")
    assert "Volume today (t)" in page.inner_text("main")
    check(page, problems, "market")
    ctx.close()
    anonymous = browser.new_context(base_url=market.base, locale=LOCALES["en"],
                                    extra_http_headers={"Accept-Language": LOCALES["en"]})  # fmt: skip
    page = anonymous.new_page()
    watches.append(Watch(page, market.base))
    page.goto(f"/market/{INSTRUMENT}")
    page.wait_for_selector(LIVE, state="attached", timeout=20_000)
    assert "Log in as a trader" in page.inner_text("main") and page.locator("#ticket").count() == 0
    check(page, problems, "anonymous")
    anonymous.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_an_auction_is_bid_and_closed_and_a_block_trade_confirmed(
    browser: Any, market: Site, watches: list[Watch]
) -> None:
    problems: dict[str, list[str]] = {}
    now = market.clock.now()
    terms = {
        "instrument_id": INSTRUMENT,
        "quantity_t": 300,
        "reserve_price_cny": "58.00",
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(minutes=10)).isoformat(),
    }
    auction = api(market, "POST", "/api/v1/auctions", terms, SELLER)["auction_id"]  # fmt: skip
    ctx, buyer, watch = trader_page(browser, market, "zh", BUYER)
    watches.append(watch)

    # bid on the auction's page
    buyer.goto("/auctions")
    assert "进行中" in buyer.inner_text("table.auctions")
    check(buyer, problems, "auctions")
    buyer.click(f"table.auctions a[href='/auctions/{auction}']")
    buyer.fill("#bid-price", "59.50")
    buyer.fill("#bid-quantity", "120")
    buyer.click("#place-bid")
    buyer.wait_for_selector("[data-testid=bid-placed]")
    assert "59.50" in buyer.inner_text("[data-testid=my-bids]")
    check(buyer, problems, "auction")
    shot(buyer, "auction-bid", "zh")

    # closed after its window: the allocation is public, shown to anyone
    market.clock.advance(timedelta(minutes=15))
    api(market, "POST", f"/api/v1/auctions/{auction}/close", None, USER_OF_ROLE["operator"])
    anonymous = browser.new_context(base_url=market.base, locale=LOCALES["zh"],
                                    extra_http_headers={"Accept-Language": LOCALES["zh"]})  # fmt: skip
    public = anonymous.new_page()
    watches.append(Watch(public, market.base))
    public.goto(f"/auctions/{auction}")
    assert "已结束" in public.inner_text("[data-testid=phase]")
    allocations = public.inner_text("[data-testid=allocations]")
    assert "120" in allocations and "59.50" in allocations, allocations
    check(public, problems, "auction-closed")
    shot(public, "auction-closed", "zh")
    anonymous.close()

    # a block trade proposed by the seller and confirmed by the buyer
    seller_ctx, seller, seller_watch = trader_page(browser, market, "zh", SELLER)
    watches.append(seller_watch)
    seller.goto("/block-trades")
    assert "42.00 – 78.00 (±30 %)" in seller.inner_text("[data-testid=block-rules]")
    seller.select_option("#block-side", "sell")
    seller.select_option("#block-counterparty", label=seller.locator("#block-counterparty option", has_text="海沧")
                         .first.inner_text())  # fmt: skip
    seller.fill("#block-price", "62.00")
    seller.fill("#block-quantity", "500")
    seller.click("#propose-block")
    seller.wait_for_selector("[data-testid=done]")
    assert "待确认" in seller.inner_text("[data-testid=blocks]")
    check(seller, problems, "block-proposed")
    block = api(market, "GET", "/api/v1/block-trades?status=proposed", who=BUYER)["items"][0]["block_trade_id"]
    buyer.goto("/block-trades")
    buyer.click(f"[data-testid=confirm-{block}]")
    buyer.wait_for_selector("[data-testid=done]")
    assert "已成交" in buyer.inner_text(f"tr[data-block='{block}']")
    check(buyer, problems, "block-confirmed")
    shot(buyer, "block-trades", "zh")
    seller_ctx.close()
    ctx.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
