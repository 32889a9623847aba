"""Shared steps of the web tests: a page's CSRF token, logging a person in through the form, a retirement."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import PASSWORDS, USER_OF_ROLE
from tests.e2e.test_retirement_certificate import issue_haicang, retire

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
Login = Callable[[str], dict[str, str]]


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def log_in(client: TestClient, who: str, *, next_path: str = "/") -> Any:
    """Log in through the form as a demo user (by user name or role); return the answer to the POST."""
    username = USER_OF_ROLE.get(who, who)
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": PASSWORDS[username], "csrf_token": token,
                                       "next": next_path}, follow_redirects=False)  # fmt: skip


def make_retirement(client: TestClient, login: Login, session: Session) -> dict[str, Any]:
    """Issue the Haicang report's tonnes, move them to the enterprise and retire 100 t; return the certificate."""
    issue_haicang(client, login, session)
    return retire(client, login)  # type: ignore[no-any-return]
