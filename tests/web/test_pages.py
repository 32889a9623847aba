"""The pages through TestClient: every page in Chinese and English, the shell, errors as pages, CSV, the verdict."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.web.helpers import log_in, make_retirement

PUBLIC_PAGES = ["/", "/registry/projects", "/registry/projects/SH-64-000001", "/registry/retirements", "/verify",
                "/login"]  # fmt: skip


@pytest.fixture
def certificate(client: TestClient, login: Callable[[str], dict[str, str]], session: Session) -> dict[str, Any]:
    return make_retirement(client, login, session)


@pytest.mark.parametrize("path", PUBLIC_PAGES)
@pytest.mark.parametrize(
    ("accept", "lang", "marker"),
    [("zh-CN,zh;q=0.9", "zh-CN", "山海碳汇登记簿"), ("en-GB,en;q=0.8", "en", "Shanhai carbon registry")],
)
def test_every_public_page_renders_in_both_languages(
    client: TestClient, path: str, accept: str, lang: str, marker: str
) -> None:
    page = client.get(path, headers={"Accept-Language": accept})
    assert page.status_code == 200, page.text
    assert f'<html lang="{lang}">' in page.text and marker in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert page.headers["content-type"].startswith("text/html")


def test_chinese_is_the_default_and_the_switch_is_remembered(client: TestClient) -> None:
    home = client.get("/", headers={"Accept-Language": "fr"})
    assert '<html lang="zh-CN">' in home.text
    token = home.text.split('name="csrf_token" value="')[1][:64]
    switched = client.post("/lang", data={"locale": "en", "csrf_token": token, "next": "/registry/projects"},
                           follow_redirects=False)  # fmt: skip
    assert switched.status_code == 303 and switched.headers["location"] == "/registry/projects"
    assert (
        "httponly" in switched.headers["set-cookie"].lower()
        and "samesite=lax" in switched.headers["set-cookie"].lower()
    )
    assert '<html lang="en">' in client.get("/", headers={"Accept-Language": "zh-CN"}).text


def test_a_form_without_its_csrf_token_is_refused_as_a_page(client: TestClient) -> None:
    client.get("/login")
    refused = client.post("/lang", data={"locale": "en", "csrf_token": "0" * 64})
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]


def test_the_verify_page_states_the_server_verdict_and_carries_the_facts(
    client: TestClient, certificate: dict[str, Any]
) -> None:
    code = certificate["verification_code"]
    assert certificate["verify_url"].endswith(f"/verify/{code}")
    page = client.get(f"/verify/{code}", headers={"Accept-Language": "en"})
    assert page.status_code == 200, page.text
    assert "Verified." in page.text and 'id="verification-data"' in page.text
    for serial in certificate["serials"]:
        assert serial in page.text
    assert "NX-JY-HC-001" in page.text and "Not checked: this needs JavaScript" in page.text
    zh = client.get(f"/verify/{code.lower()}", headers={"Accept-Language": "zh-CN"})
    assert "核验通过" in zh.text
    assert client.get(f"/verify?code={code}", follow_redirects=False).headers["location"] == f"/verify/{code}"


def test_the_public_registry_lists_the_retirement_and_exports_csv(
    client: TestClient, certificate: dict[str, Any]
) -> None:
    code = certificate["verification_code"]
    listed = client.get("/registry/retirements", params={"beneficiary": "haicang"})
    assert code in listed.text
    assert code not in client.get("/registry/retirements", params={"beneficiary": "nobody"}).text
    empty_fields = client.get("/registry/retirements?beneficiary=&year=&class=&project=")  # a submitted empty form
    assert empty_fields.status_code == 200 and code in empty_fields.text
    assert code in client.get("/registry/retirements?year=2025&class=FCT&project=sh-64-000001").text
    partial = client.get("/registry/retirements", headers={"HX-Request": "true"})
    assert code in partial.text and "<html" not in partial.text
    exported = client.get("/registry/retirements.csv", params={"year": 2025})
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert rows[0][0] == "verification_code" and rows[1][0] == code and rows[1][2] == "100"
    home = client.get("/", headers={"Accept-Language": "en"})
    assert "SH-64-000001" in home.text and 'id="map-data"' in home.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/registry/projects/NOPE-1", 404),
        ("/verify/ZZZZ-0000", 404),
        ("/verify/<script>", 422),
        ("/registry/retirements?year=abc", 422),
        ("/reports/abc/sheet", 422),
        ("/registry/nothing", 404),
    ],
)
def test_bad_input_on_a_page_is_a_friendly_page_never_a_500(client: TestClient, path: str, status: int) -> None:
    page = client.get(path, headers={"Accept-Language": "en"}, follow_redirects=False)
    assert page.status_code in (status, 303), page.text
    if page.status_code != 303:
        assert page.headers["content-type"].startswith("text/html") and "Back to the home page" in page.text


def test_the_sheet_needs_a_login_and_then_renders_printable(client: TestClient) -> None:
    anonymous = client.get("/reports/1/sheet", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=%2Freports%2F1%2Fsheet"
    assert log_in(client, "forestry_bureau", next_path="/reports/1/sheet").headers["location"] == "/reports/1/sheet"
    sheet = client.get("/reports/1/sheet", headers={"Accept-Language": "en"})
    assert sheet.status_code == 200 and "Calculation steps" in sheet.text and "Record SHA-256" in sheet.text
