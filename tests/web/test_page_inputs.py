"""Odd input to every page is a friendly page (or a redirect), never a 500 and never problem+json."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

ODD_GETS = [
    "/registry/retirements?page=0", "/registry/retirements?page=abc", "/registry/retirements?page=99999999999",
    "/registry/retirements?year=1999", "/registry/retirements?class=XYZ", "/registry/retirements?beneficiary=%00",
    "/registry/retirements?beneficiary=" + "x" * 400, "/registry/retirements?project=%25",
    "/registry/retirements.csv?year=x",
    "/registry/projects/%00", "/registry/projects/" + "A" * 60, "/registry/projects/..%2F..", "/verify?code=",
    "/verify?code=%20%20", "/verify?code=" + "A" * 50, "/verify/AAAA", "/verify/" + "A" * 41,
    "/verify/%E4%B8%AD%E6%96%87",
    "/reports/0/sheet", "/reports/99999999999/sheet", "/login?next=" + "x" * 600, "/static/web/nothing.js",
    "/static/web/../../core/settings.py",
]  # fmt: skip


@pytest.mark.parametrize("path", ODD_GETS)
def test_odd_get_is_a_page(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code < 500, (path, answer.status_code)
    if answer.status_code not in (200, 303) and not path.startswith("/static/"):
        assert answer.headers["content-type"].startswith("text/html"), (path, answer.headers["content-type"])


@pytest.mark.parametrize(("path", "data"), [
    ("/login", {}), ("/login", {"username": "x" * 200, "password": "y"}), ("/lang", {"locale": "xx"}),
    ("/lang", {}), ("/logout", {}), ("/login", {"username": "a", "password": "b", "csrf_token": "x" * 500}),
])  # fmt: skip
def test_odd_posts_are_pages(client: TestClient, path: str, data: dict[str, str]) -> None:
    client.get("/login")
    answer = client.post(path, data=data, follow_redirects=False)
    assert answer.status_code in (303, 401, 403, 422), (path, answer.status_code)  # never a 500, never a session
    if answer.status_code not in (303,):
        assert answer.headers["content-type"].startswith("text/html"), (path, answer.status_code)
