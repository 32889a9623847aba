"""The auditor's desk and administration in Chromium (issue 25), in Chinese and English.

The auditor verifies the chain, checks today's head in the browser and keeps it (a download); activity follows
(an enterprise creates an API key, uses it and revokes it — the revoked key then gets 401; the registry creates a
user, who logs in, and deactivates them — their open session is refused on its next click); the kept head is
checked against the new one in the browser (signature and RFC 9162 consistency proof, ``verify.mjs``), and an
entry's inclusion proof too. The flows report draws its chart and downloads its CSV; the operator records a
deposit. Last, an insider rewrites the log as in the hardening issue's test
(``tests.conftest.rewrite_audit_entry``): the page shows the alarm and the kept head as inconsistent. Throughout:
no console error, no request leaving the server, axe-core clean.

``SHANHAI_SCREENSHOTS=docs/screenshots`` writes the README's screenshots (``audit-*``, ``admin-*``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from core.db import make_engine
from core.merkle import MerkleTree, verify_consistency
from tests.browser.conftest import Site
from tests.browser.test_bureau_journey import api
from tests.browser.test_pages_in_chromium import LOCALES, SHOTS, Watch, axe_violations, log_in
from tests.conftest import PASSWORDS, rewrite_audit_entry
from web.static_files import static_url

NEW_USER = "auditor-2"
NEW_PASSWORD = "Kept-heads-and-proofs-2026"


def context(browser: Any, site: Site, language: str) -> Any:
    return browser.new_context(
        base_url=site.base, viewport={"width": 1280, "height": 900}, locale=LOCALES[language],
        extra_http_headers={"Accept-Language": LOCALES[language]}, accept_downloads=True,
    )  # fmt: skip


def shot(page: Any, name: str, language: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}-{language}.png"), full_page=True)


def check(page: Any, problems: dict[str, list[str]], name: str) -> None:
    if found := axe_violations(page):
        problems[name] = found


def open_audit(page: Any) -> None:
    page.goto("/audit")
    page.wait_for_selector("#head-verdict[data-result]", state="attached", timeout=10_000)


def key_status(site: Site, key: str) -> int:
    request = urllib.request.Request(site.base + "/api/v1/me", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request) as answer:  # our own server, 127.0.0.1
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def check_kept(page: Any, kept: Path) -> str:
    page.set_input_files("#kept-file", str(kept))
    page.wait_for_selector("#kept-verdict[data-result]", state="attached", timeout=10_000)
    return str(page.get_attribute("#kept-verdict", "data-result"))


@pytest.fixture(scope="module")
def kept_heads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kept")


def test_the_browser_consistency_check_agrees_with_python(browser: Any, site: Site) -> None:
    """``verifyConsistency`` (verify.mjs) against core.merkle on every pair of sizes up to 13, and tampered proofs."""
    tree = MerkleTree()
    for i in range(13):
        tree.append(f"entry {i}".encode())
    cases = []
    for second in range(1, 14):
        for first in range(1, second + 1):
            proof = [p.hex() for p in tree.consistency_proof(first, second)]
            first_root, second_root = tree.root(first).hex(), tree.root(second).hex()
            cases.append([first, second, first_root, second_root, proof, True])
            if proof:
                bent = [proof[0][:-2] + ("00" if proof[0][-2:] != "00" else "01"), *proof[1:]]
                cases.append([first, second, first_root, second_root, bent, False])
            if first < second:
                cases.append([first, second, tree.root(second - 1).hex(), second_root, proof, False])
    for case in cases:  # the expected verdict is Python's own
        case[5] = verify_consistency(case[0], case[1], bytes.fromhex(case[2]), bytes.fromhex(case[3]),
                                     [bytes.fromhex(p) for p in case[4]])  # fmt: skip
    ctx = browser.new_context(base_url=site.base)
    page = ctx.new_page()
    page.goto("/verify")
    verdicts = page.evaluate(
        """async ([url, cases]) => {
          const m = await import(url);
          const hex = (h) => m.hexToBytes(h);
          const out = [];
          for (const [a, b, ra, rb, proof] of cases) {
            out.push(await m.verifyConsistency(a, b, hex(ra), hex(rb), proof.map(hex)));
          }
          return out;
        }""",
        [static_url("js/verify.mjs"), cases],
    )
    ctx.close()
    assert verdicts == [case[5] for case in cases]
    assert sum(verdicts) >= 91 and not all(verdicts)  # every honest pair verifies; tampered ones do not


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_auditor_keeps_a_head_and_checks_it_after_activity(
    browser: Any, site: Site, language: str, kept_heads: Path
) -> None:
    ctx = context(browser, site, language)
    page = ctx.new_page()
    watch = Watch(page, site.base)
    problems: dict[str, list[str]] = {}
    log_in(page, "auditor")

    # 1. the chain verified, today's head checked in the browser and kept
    open_audit(page)
    assert page.get_attribute("#head-verdict", "data-result") == "verified"
    page.click("#verify-chain")
    page.wait_for_selector("#chain-verdict[data-ok=true]")
    open_audit(page)
    with page.expect_download() as download:
        page.click("#keep-head")
    kept = kept_heads / f"kept-{language}.json"
    download.value.save_as(kept)
    shot(page, "audit", language)
    check(page, problems, "audit")

    # 2. activity: an enterprise creates an API key, uses it, revokes it (then 401)
    enterprise = context(browser, site, language)
    desk = enterprise.new_page()
    desk_watch = Watch(desk, site.base)
    log_in(desk, "fj-enterprise")
    desk.goto("/settings/api-keys")
    desk.fill("input[name=label]", f"ERP {language}")
    desk.click("#create-key button[type=submit]")
    key = desk.inner_text("#new-key").strip()
    assert key.startswith("shk_") and key_status(site, key) == 200
    shot(desk, "admin-api-keys", language)
    check(desk, problems, "api-keys")
    desk.locator("tr", has_text=f"ERP {language}").locator("button.revoke").click()
    desk.wait_for_url("**/settings/api-keys")
    assert key not in desk.content()  # shown once
    assert key_status(site, key) == 401
    enterprise.close()
    assert not desk_watch.errors and not desk_watch.outside, (desk_watch.errors, desk_watch.outside)

    # 3. the registry creates a user, who logs in; deactivated, their open session is refused on the next click
    registry = context(browser, site, language)
    admin = registry.new_page()
    admin_watch = Watch(admin, site.base)
    log_in(admin, "registry")
    admin.goto("/admin/users")
    username = f"{NEW_USER}-{language}"
    value = admin.locator("select[name=organisation_id] option", has_text="Independent auditor").get_attribute("value")
    admin.select_option("#create-user select[name=organisation_id]", value)
    admin.fill("#create-user input[name=username]", username)
    admin.fill("#create-user input[name=display_name]", "审计员二")
    admin.fill("#create-user input[name=password]", NEW_PASSWORD)
    admin.click("#create-user button[type=submit]")
    admin.wait_for_selector("#notice")
    other = context(browser, site, language)
    person = other.new_page()
    person_watch = Watch(person, site.base)
    person.goto("/login")
    person.fill("#username", username)
    person.fill("#password", NEW_PASSWORD)
    person.click("form.login button[type=submit]")
    person.wait_for_url("**/")
    admin.goto("/admin/users")
    shot(admin, "admin-users", language)
    check(admin, problems, "admin-users")
    admin.locator(f"#user-{username} button.deactivate").click()
    admin.wait_for_selector("#notice")
    assert "Deactivated" in admin.inner_text(f"#user-{username}") or "已停用" in admin.inner_text(f"#user-{username}")
    person.click("nav a[href='/audit']")
    person.wait_for_url("**/login**")
    assert person.locator("p.notice[role=status]").count() == 1
    other.close()
    registry.close()
    for seen in (admin_watch, person_watch):
        assert not seen.errors and not seen.outside, (seen.errors, seen.outside)

    # 4. the kept head against today's, in the browser; an entry's inclusion proof
    open_audit(page)
    assert int(page.inner_text("#head-size")) > json.loads(kept.read_text())["tree_size"]
    assert check_kept(page, kept) == "consistent"
    first = page.locator("button.check-inclusion").first
    seq = first.get_attribute("data-seq")
    first.click()
    page.wait_for_selector(f".inclusion-result[data-seq='{seq}'][data-result]")
    assert page.get_attribute(f".inclusion-result[data-seq='{seq}']", "data-result") == "included"
    shot(page, "audit-kept-consistent", language)
    check(page, problems, "audit-kept")
    ctx.close()
    assert not problems, problems
    assert not watch.errors, watch.errors
    assert not watch.outside, watch.outside


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_flows_report_in_the_browser(browser: Any, site: Site, language: str, tmp_path: Path) -> None:
    ctx = context(browser, site, language)
    page = ctx.new_page()
    watch = Watch(page, site.base)
    log_in(page, "auditor")
    page.goto("/reports/flows")
    page.wait_for_selector("#flows-chart[data-state=drawn]", state="attached", timeout=10_000)
    assert page.locator("#flows-chart svg path").count() > 0
    assert page.locator("#by-county tbody tr").count() >= 1
    with page.expect_download() as download:
        page.click("a[href^='/reports/flows.csv']")
    saved = tmp_path / "flows.csv"
    download.value.save_as(saved)
    assert saved.read_text(encoding="utf-8-sig").startswith("kind,month")
    shot(page, "flows", language)
    problems: dict[str, list[str]] = {}
    check(page, problems, "flows")
    ctx.close()
    assert not problems, problems
    assert not watch.errors, watch.errors
    assert not watch.outside, watch.outside


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_operator_records_a_deposit(browser: Any, site: Site, language: str) -> None:
    ctx = context(browser, site, language)
    page = ctx.new_page()
    watch = Watch(page, site.base)
    if language == "zh":  # list an instrument as the operator's script would, so the table has a row
        form = f"username=operator&password={PASSWORDS['operator']}".encode()
        with urllib.request.urlopen(urllib.request.Request(site.base + "/api/v1/auth/token", data=form)) as answer:
            token = json.load(answer)["access_token"]
        body = {"instrument_id": "FCT-2021", "credit_class": "FCT", "vintage_year": 2021, "reference_price_cny": "60",
                "always_open": True}  # fmt: skip
        api(site, "POST", "/api/v1/instruments", body, token)
    log_in(page, "operator")
    page.goto("/operator")
    assert "FCT-2021" in page.inner_text("#instruments")
    value = page.locator("#deposit option", has_text="Xiamen Haicang").get_attribute("value")
    page.select_option("#deposit select[name=organisation_id]", value)
    page.fill("#deposit input[name=amount_cny]", "1000.50")
    page.fill("#deposit input[name=reference]", f"BANK-{language}-0001")
    page.click("#deposit button[type=submit]")
    page.wait_for_selector("#notice")
    assert "1,000.50" in page.inner_text(f"#account-{value}") or "2,001.00" in page.inner_text(f"#account-{value}")
    shot(page, "operator", language)
    problems: dict[str, list[str]] = {}
    check(page, problems, "operator")
    ctx.close()
    assert not problems, problems
    assert not watch.errors, watch.errors
    assert not watch.outside, watch.outside


def test_a_rewritten_log_shows_as_inconsistent(browser: Any, site: Site, kept_heads: Path) -> None:
    kept = min(json.loads((kept_heads / f"kept-{language}.json").read_text())["tree_size"] for language in LOCALES)
    engine = make_engine(site.settings.database_url)
    try:
        with Session(engine) as session:
            rewrite_audit_entry(session, kept - 1, {"i": "rewritten"})  # inside both kept heads, as the hardening test
    finally:
        engine.dispose()
    for language in ("zh", "en"):
        ctx = context(browser, site, language)
        page = ctx.new_page()
        watch = Watch(page, site.base)
        log_in(page, "auditor")
        open_audit(page)
        assert page.locator("[data-testid=alarm]").count() == 1
        assert page.get_attribute("#head-verdict", "data-result") == "none"
        assert check_kept(page, kept_heads / f"kept-{language}.json") == "inconsistent"
        assert page.locator("#kept-problems li[data-problem=rewritten]").count() == 1
        shot(page, "audit-inconsistent", language)
        problems: dict[str, list[str]] = {}
        check(page, problems, "audit-inconsistent")
        ctx.close()
        assert not problems, problems
        assert not watch.errors, watch.errors
        assert not watch.outside, watch.outside
