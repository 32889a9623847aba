"""Every page in Chromium, in Chinese and English: no console error, nothing fetched from elsewhere, no serious
accessibility violation (axe-core), the map reaching ``idle`` with the expected outlines, the certificate verified
in the browser from the QR code's URL, and the same page without JavaScript and at phone size.

``SHANHAI_SCREENSHOTS=DIR`` also writes a screenshot of each page in each language to ``DIR`` (the README's are
made so: ``SHANHAI_SCREENSHOTS=docs/screenshots``).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbon.ledger.certificates import check_certificate
from core.tree_head import raw_public_key
from tests.browser.conftest import AXE, Site
from tests.conftest import PASSWORDS

LOCALES = {"zh": "zh-CN", "en": "en-GB"}
#: The elements sticking out of a 390-px viewport (outside horizontally scrolling table boxes).
WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.scroll'))
  .slice(0, 8).map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""
SHOTS = os.environ.get("SHANHAI_SCREENSHOTS")


class Watch:
    """A page's console errors, page errors and every request that tried to leave the server."""

    def __init__(self, page: Any, base: str) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

        def guard(route: Any) -> None:
            if route.request.url.startswith(base) or route.request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                self.outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)


@pytest.fixture
def context(browser: Any, site: Site, request: pytest.FixtureRequest) -> Iterator[Any]:
    options = {"viewport": {"width": 1280, "height": 900}, **getattr(request, "param", {})}
    ctx = browser.new_context(base_url=site.base, **options)
    yield ctx
    ctx.close()


def pages(site: Site) -> dict[str, str]:
    code = site.certificate["verification_code"]
    return {"home": "/", "projects": "/registry/projects", "project": "/registry/projects/SH-64-000001",
            "retirements": "/registry/retirements", "verify-form": "/verify", "verify": f"/verify/{code}",
            "sheet": "/reports/1/sheet"}  # fmt: skip


def log_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/")


def axe_violations(page: Any) -> list[str]:
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the test driver, so the page's CSP stays strict
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result if v["impact"] in ("serious", "critical")]  # fmt: skip


def wait_islands(page: Any) -> None:
    if page.locator("#map").count():
        page.wait_for_selector("#map[data-state=idle]", state="attached", timeout=20_000)
    if page.locator("#charts").count():
        page.wait_for_selector("#charts[data-state=drawn]", state="attached", timeout=10_000)
    if page.locator("#browser-verdict").count():
        page.wait_for_selector("#browser-verdict[data-result]", state="attached", timeout=10_000)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_page_in_chromium(browser: Any, site: Site, language: str) -> None:
    accept = {"Accept-Language": LOCALES[language]}
    ctx = browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900}, locale=LOCALES[language],
                              extra_http_headers=accept)  # fmt: skip
    page = ctx.new_page()
    watch = Watch(page, site.base)
    problems: dict[str, list[str]] = {}
    page.goto("/login")  # the anonymous shell (a log-in button instead of the person)
    if found := axe_violations(page):
        problems["login"] = found
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"login-{language}.png"), full_page=True)
    log_in(page, "nx-bureau")
    for name, path in pages(site).items():
        page.goto(path)
        wait_islands(page)
        expected_lang = "zh-CN" if language == "zh" else "en"
        assert page.get_attribute("html", "lang") == expected_lang, (name, path)
        found = axe_violations(page)
        if found:
            problems[name] = found
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"{name}-{language}.png"), full_page=True)
    ctx.close()
    assert not watch.errors, watch.errors
    assert not watch.outside, watch.outside
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_map_reaches_idle_with_the_registered_outlines(context: Any, site: Site) -> None:
    page = context.new_page()
    watch = Watch(page, site.base)
    page.goto("/")
    page.wait_for_selector("#map[data-state=idle]", state="attached", timeout=20_000)
    codes = page.evaluate(
        "() => window.shanhaiMap.queryRenderedFeatures({layers: ['outlines-fill']}).map(f => f.properties.code)"
    )
    provinces = page.evaluate("() => window.shanhaiMap.querySourceFeatures('provinces').length")
    assert "SH-64-000001" in codes and provinces > 0
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)


def test_the_certificate_from_its_qr_url_verifies_in_the_browser(context: Any, site: Site) -> None:
    page = context.new_page()
    watch = Watch(page, site.base)
    url = site.certificate["verify_url"]  # what the certificate's QR code holds
    assert url.startswith(site.base + "/verify/")
    page.goto(url)
    page.wait_for_selector("#browser-verdict[data-result]", state="attached", timeout=10_000)
    assert page.get_attribute("#browser-verdict", "data-result") == "verified"
    assert "ok" in (page.get_attribute("#server-verdict", "class") or "")
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)


def _vectors(site: Site) -> list[tuple[str, dict[str, Any], bool]]:
    """Certificates and tampered copies, with Python's verdict (carbon.certificates.check_certificate)."""
    import urllib.request

    code = site.certificate["verification_code"]
    with urllib.request.urlopen(f"{site.base}/public/v1/retirements/{code}") as answer:  # our own server
        facts = json.load(answer)
    tampered: list[tuple[str, dict[str, Any]]] = [("genuine", facts)]
    for name, edit in [
        ("beneficiary", lambda f: f.update(beneficiary="someone else")),
        ("quantity", lambda f: f.update(quantity_t=f["quantity_t"] + 1)),
        ("signature", lambda f: f["tree_head"].update(signature="0" * 128)),
        ("root", lambda f: f["tree_head"].update(root_hash="ab" * 32)),
        ("entry", lambda f: f["audit_entry"]["payload"].update(quantity_t=1)),
        ("path", lambda f: f["inclusion_proof"].update(audit_path=["cd" * 32, *f["inclusion_proof"]["audit_path"]])),
    ]:
        copied = copy.deepcopy(facts)
        edit(copied)
        tampered.append((name, copied))
    key = site_key(site)
    return [(name, f, not check_certificate(f, key)) for name, f in tampered]


def site_key(site: Site) -> Any:
    from core.audit_tree import load_signing_key

    return load_signing_key(site.settings).public_key()


def test_the_browser_check_agrees_with_python_on_test_vectors(context: Any, site: Site) -> None:
    page = context.new_page()
    page.goto("/verify")
    key_hex = raw_public_key(site_key(site)).hex()
    vectors = _vectors(site)
    assert [ok for _, _, ok in vectors] == [True] + [False] * (len(vectors) - 1)
    for name, facts, python_ok in vectors:
        result = page.evaluate(
            "async ([facts, key]) => (await import('/static/web/js/verify.mjs')).checkCertificate(facts, key)",
            [facts, key_hex],
        )
        assert result["supported"] and result["ok"] == python_ok, (name, result)


@pytest.mark.parametrize("context", [{"java_script_enabled": False, "viewport": {"width": 390, "height": 844},
                                      "is_mobile": True}], indirect=True)  # fmt: skip
def test_the_certificate_without_javascript_at_phone_size(context: Any, site: Site) -> None:
    page = context.new_page()
    page.goto(site.certificate["verify_url"].removeprefix(site.base))
    assert "ok" in (page.get_attribute("#server-verdict", "class") or "")
    assert page.get_attribute("#browser-verdict", "data-result") is None
    assert "JavaScript" in page.inner_text("#browser-verdict")
    for serial in site.certificate["serials"]:
        assert serial in page.content()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, (width, page.evaluate(WIDE))
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "verify-phone-nojs.png"), full_page=True)
    page.goto("/")
    assert "SH-64-000001" in page.content() and page.locator("#map-notice").is_visible()


def test_the_retirement_search_swaps_results_with_htmx(context: Any, site: Site) -> None:
    page = context.new_page()
    watch = Watch(page, site.base)
    page.goto("/registry/retirements")
    page.wait_for_function("() => window.htmx !== undefined")
    code = site.certificate["verification_code"]
    page.fill("input[name=beneficiary]", "nobody at all")
    with page.expect_response(lambda r: "/registry/retirements?" in r.url and r.request.headers.get("hx-request")):
        page.click("form.search button[type=submit]")
    page.wait_for_function(f"() => !document.getElementById('results').textContent.includes('{code}')")
    assert "beneficiary=nobody" in page.url  # hx-push-url: the search is a link one can share
    assert page.locator("main h1").count() == 1  # the partial replaced the results, not the page
    page.fill("input[name=beneficiary]", "haicang")
    page.click("form.search button[type=submit]")
    page.wait_for_function(f"() => document.getElementById('results').textContent.includes('{code}')")
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)
