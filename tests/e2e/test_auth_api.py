"""Logging in, refreshing, API keys and expiry over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from core.auth import ApiKey, PrincipalCache, User
from core.clock import FixedClock
from tests.conftest import PASSWORDS

Login = Callable[[str], dict[str, str]]


def test_login_and_me(client: TestClient) -> None:
    response = client.post("/api/v1/auth/token", data={"username": "nx-bureau", "password": PASSWORDS["nx-bureau"]})
    assert response.status_code == 200
    tokens = response.json()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert me["username"] == "nx-bureau" and me["role"] == "forestry_bureau" and me["authenticated_via"] == "token"


def test_wrong_password_and_unknown_user_get_the_same_401(client: TestClient) -> None:
    wrong = client.post("/api/v1/auth/token", data={"username": "nx-bureau", "password": "nope"})
    unknown = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_access_token_expires_and_refresh_renews(client: TestClient, clock: FixedClock) -> None:
    tokens = client.post("/api/v1/auth/token", data={"username": "auditor", "password": PASSWORDS["auditor"]}).json()
    clock.advance(timedelta(minutes=16))
    expired = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = client.get("/api/v1/me", headers=expired)
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    # the expired access token sent along must not block the refresh (a public route)
    renewed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, headers=expired)
    assert renewed.status_code == 200, renewed.text
    fresh = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert client.get("/api/v1/me", headers=fresh).status_code == 200


def test_access_token_is_not_a_refresh_token(client: TestClient) -> None:
    tokens = client.post("/api/v1/auth/token", data={"username": "auditor", "password": PASSWORDS["auditor"]}).json()
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401
    refresh_as_access = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert client.get("/api/v1/me", headers=refresh_as_access).status_code == 401


def test_forged_token_is_401(client: TestClient) -> None:
    import jwt

    forged = jwt.encode(
        {"sub": "1", "typ": "access", "exp": 4102444800},
        "not-the-key-but-long-enough-for-hs256-0123456789",
        algorithm="HS256",
    )
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_enterprise_api_key_is_shown_once_and_works(client: TestClient, login: Login) -> None:
    created = client.post("/api/v1/api-keys", json={"label": "trading bot"}, headers=login("enterprise"))
    assert created.status_code == 201
    key = created.json()["api_key"]
    assert key.startswith("shk_") and len(key) > 40
    me = client.get("/api/v1/me", headers={"X-API-Key": key}).json()
    assert me["role"] == "enterprise" and me["authenticated_via"] == "api_key"
    assert client.get("/api/v1/me", headers={"X-API-Key": key + "x"}).status_code == 401
    audit = client.get(
        "/api/v1/audit/entries", params={"subject": f"api_key:{created.json()['id']}"}, headers=login("auditor")
    )
    [entry] = audit.json()["items"]
    assert key not in str(entry) and entry["action"] == "api_key.created"


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    wrong_method = client.delete("/health")
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == 405


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        assert "/static/docs/" in html.text
        assert "cdn" not in html.text.lower() and "fonts.googleapis" not in html.text
    assert client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/docs/redoc.standalone.js").status_code == 200
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Shanhai"


def test_a_deactivated_user_is_refused_once_the_auth_cache_entry_is_older_than_its_ttl(
    client: TestClient, login: Login, app: FastAPI
) -> None:
    """Per-process principal cache (ADR 004): one row read per TTL, deactivation honoured within the TTL."""
    now = [1000.0]
    app.state.principal_cache = PrincipalCache(2.0, monotonic=lambda: now[0])
    headers = login("fj-enterprise")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with app.state.session_factory() as db:
        db.execute(update(User).where(User.username == "fj-enterprise").values(is_active=False))
        db.commit()
    now[0] += 1.9  # within the TTL the remembered caller is used: the row is not read again
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    now[0] += 0.2  # past it: the row is read, the user is inactive
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_revoked_api_key_is_refused_at_once_with_the_cache_off(
    client: TestClient, login: Login, app: FastAPI
) -> None:
    app.state.principal_cache = PrincipalCache(0)
    created = client.post("/api/v1/api-keys", json={"label": "erp"}, headers=login("fj-enterprise"))
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["api_key"]}
    assert client.get("/api/v1/me", headers=key).status_code == 200
    with app.state.session_factory() as db:
        db.execute(update(ApiKey).values(revoked_at=datetime(2026, 11, 25, tzinfo=UTC)))
        db.commit()
    assert client.get("/api/v1/me", headers=key).status_code == 401
