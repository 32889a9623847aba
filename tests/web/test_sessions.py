"""People's sessions: the cookie's flags, CSRF, logout, idle timeout, deactivation, the throttle, open redirects."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import AuditEntry
from core.auth import User
from core.clock import FixedClock
from core.sessions import PersonSession
from core.settings import Settings
from shanhai.cli import main
from tests.web.helpers import csrf_of, log_in


def test_login_opens_a_server_side_session_in_an_httponly_lax_cookie(client: TestClient, session: Session) -> None:
    answer = log_in(client, "forestry_bureau", next_path="/registry/projects")
    assert answer.status_code == 303 and answer.headers["location"] == "/registry/projects"
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("shanhai_session=") and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain-HTTP development; SHANHAI_HTTPS=true adds it
    token = answer.cookies["shanhai_session"]
    [row] = session.scalars(select(PersonSession)).all()
    assert token not in (row.token_sha256, str(row.id)) and len(row.token_sha256) == 64  # only its digest is stored
    session.rollback()  # SQLite: end the read transaction (it holds the write lock) before the next request
    home = client.get("/", headers={"Accept-Language": "en"})
    assert "nx-bureau" in home.text and "Log out" in home.text
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "auth.login_succeeded")) == 1  # fmt: skip
    session.rollback()


def test_a_wrong_password_shows_the_form_again_and_is_audited(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"username": "nx-bureau", "password": "wrong-password-1", "csrf_token": token},
                         headers={"Accept-Language": "en"})  # fmt: skip
    assert answer.status_code == 401 and "The user name or password is not right." in answer.text
    assert "shanhai_session" not in answer.headers.get("set-cookie", "")


def test_the_login_form_goes_through_the_login_throttle(tmp_path: Path, template_db: Path, clock: FixedClock) -> None:
    import shutil

    from shanhai.app import create_app

    shutil.copyfile(template_db, tmp_path / "shanhai.db")
    settings = Settings(environment="test", data_dir=tmp_path, login_user_attempts=2, login_lockout_seconds=60)
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        token = csrf_of(client.get("/login").text)
        statuses = [client.post("/login", data={"username": "verifier", "password": f"nope-{i}", "csrf_token": token},
                                headers={"Accept-Language": "en"}).status_code for i in range(4)]  # fmt: skip
        assert statuses[:2] == [401, 401] and statuses[-1] == 429, statuses
    app.state.engine.dispose()


def test_login_without_the_form_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    answer = client.post("/login", data={"username": "nx-bureau", "password": "demo-nx-bureau-2026"})
    assert answer.status_code == 403 and "shanhai_session" not in answer.headers.get("set-cookie", "")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_next_never_leaves_the_site(client: TestClient, target: str) -> None:
    assert log_in(client, "verifier", next_path=target).headers["location"] == "/"


def test_logout_ends_the_session_on_the_server(client: TestClient) -> None:
    token = log_in(client, "registry").cookies["shanhai_session"]
    page = client.get("/")
    answer = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303
    client.cookies.set("shanhai_session", token)  # a copy of the cookie kept by an attacker opens nothing
    assert client.get("/reports/1/sheet", follow_redirects=False).status_code == 303


def test_an_idle_session_ends_with_a_friendly_relogin(client: TestClient, clock: FixedClock) -> None:
    log_in(client, "auditor")
    assert client.get("/reports/1/sheet").status_code == 200
    stale_form = csrf_of(client.get("/").text)
    clock.advance(timedelta(minutes=31))
    assert client.post("/logout", data={"csrf_token": stale_form}, follow_redirects=False).status_code == 303
    log_in(client, "auditor")
    clock.advance(timedelta(minutes=31))
    relogin = client.get("/reports/1/sheet", headers={"Accept-Language": "en"})
    assert relogin.url.path == "/login" and "Your session has ended" in relogin.text


def test_deactivating_a_user_ends_their_sessions_at_once(
    client: TestClient, session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(client, "auditor")
    assert client.get("/reports/1/sheet").status_code == 200
    monkeypatch.setenv("SHANHAI_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("SHANHAI_DATA_DIR", str(settings.data_dir))
    import shanhai.cli

    shanhai.cli.get_settings.cache_clear()
    try:
        assert main(["user", "deactivate", "auditor"]) == 0
    finally:
        shanhai.cli.get_settings.cache_clear()
    assert client.get("/reports/1/sheet", follow_redirects=False).status_code == 303
    session.expire_all()
    [row] = session.scalars(select(PersonSession)).all()
    assert (
        row.end_reason == "deactivated"
        and not session.scalars(select(User).where(User.username == "auditor")).one().is_active
    )
