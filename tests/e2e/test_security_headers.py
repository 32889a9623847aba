"""Security headers on every answer, the documentation pages' CSP, no-store on credentials, CORS on demand."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response

import shanhai.cli
from api.security import PAGE_POLICY, SecurityPolicy, inline_hashes
from core.clock import FixedClock
from core.settings import Settings
from shanhai.app import create_app

API_CSP = "default-src 'none'; frame-ancestors 'none'"
Login = Callable[[str], dict[str, str]]


def assert_common_headers(response: object, csp: str = API_CSP) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"] == csp
    assert "Strict-Transport-Security" not in headers  # the test settings are not behind HTTPS
    assert "server" not in headers


def test_every_answer_carries_the_headers(client: TestClient, app: FastAPI) -> None:
    async def boom(_request: Request) -> Response:
        raise RuntimeError("unexpected")

    app.add_route("/boom", boom)
    answers = {
        "/health": 200,
        "/openapi.json": 200,
        "/static/docs/swagger-ui.css": 200,
        "/api/v1/no-such-route": 404,
        "/api/v1/me": 401,
        "/boom": 500,  # rendered by Starlette's error middleware, inside the security headers
    }
    for path, status in answers.items():
        response = client.get(path)
        assert response.status_code == status, path
        assert_common_headers(response)
    too_large = client.post("/api/v1/projects", content=b"x" * 64, headers={"Content-Length": str(10**9)})
    assert too_large.status_code == 413
    assert_common_headers(too_large)


def test_authenticated_answers_are_not_stored(client: TestClient, login: Login) -> None:
    assert "Cache-Control" not in client.get("/health").headers
    assert client.get("/api/v1/me", headers=login("registry")).headers["Cache-Control"] == "no-store"
    refused = client.get("/api/v1/me", headers={"X-API-Key": "not-a-key"})
    assert refused.status_code == 401 and refused.headers["Cache-Control"] == "no-store"
    # The token answer holds credentials although its request carried none in a header.
    token = client.post("/api/v1/auth/token", data={"username": "nx-bureau", "password": "demo-nx-bureau-2026"})
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_documentation_pages_allow_exactly_their_inline_scripts(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    inline = re.findall(r"<script>(.*?)</script>", response.text, flags=re.S)
    directives = dict(d.split(" ", 1) for d in response.headers["Content-Security-Policy"].split("; "))
    script_src = directives["script-src"].split()
    assert script_src == ["'self'", *map(sha256_source, inline)]  # no 'unsafe-inline', no CDN
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["img-src"] == "'self' data: blob:" and directives["worker-src"] == "'self' blob:"
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert (len(inline) > 0) == (path != "/redoc")
    assert_common_headers(response, response.headers["Content-Security-Policy"])


def test_an_injected_script_would_not_match_the_hashes(client: TestClient) -> None:
    page = client.get("/docs")
    policy = page.headers["Content-Security-Policy"]
    assert sha256_source("alert(1)") not in policy
    assert inline_hashes(page.text)["script"][0] in policy


def test_the_route_policy_is_the_longest_prefix() -> None:
    docs = PAGE_POLICY.allowing("script-src", "'sha256-a'")
    policy = SecurityPolicy(routes={"/docs": docs, "/app/": PAGE_POLICY})
    assert policy.policy_for("/docs") is docs and policy.policy_for("/docs/x") is docs
    assert policy.policy_for("/docsx").header() == API_CSP
    assert policy.policy_for("/app") is PAGE_POLICY and policy.policy_for("/app/map") is PAGE_POLICY
    assert "worker-src 'self' blob:" in PAGE_POLICY.header() and "script-src 'self';" in PAGE_POLICY.header()


@pytest.fixture
def app_with(settings: Settings, clock: FixedClock) -> Iterator[Callable[..., TestClient]]:
    apps: list[FastAPI] = []

    def build(**changes: object) -> TestClient:
        application = create_app(settings.model_copy(update=changes), clock=clock)
        apps.append(application)
        return TestClient(application, raise_server_exceptions=False)

    yield build
    for application in apps:
        application.state.engine.dispose()


def test_hsts_only_behind_https(app_with: Callable[..., TestClient]) -> None:
    response = app_with(https=True).get("/health")
    assert response.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert "Strict-Transport-Security" not in app_with().get("/health").headers


PREFLIGHT = {"Origin": "https://app.example.cn", "Access-Control-Request-Method": "GET"}


def test_cors_is_closed_unless_origins_are_configured(app_with: Callable[..., TestClient]) -> None:
    closed = app_with()
    assert "access-control-allow-origin" not in closed.options("/api/v1/me", headers=PREFLIGHT).headers
    assert "access-control-allow-origin" not in closed.get("/health", headers={"Origin": PREFLIGHT["Origin"]}).headers

    opened = app_with(cors_origins=("https://app.example.cn",))
    preflight = opened.options("/api/v1/me", headers=PREFLIGHT | {"Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.cn"
    assert_common_headers(preflight)
    other = opened.options("/api/v1/me", headers=PREFLIGHT | {"Origin": "https://evil.example"})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def forget_log_handler() -> None:
    """Remove the handler ``shanhai serve`` installed on the root logger (ADR 029)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "shanhai"]:
        root.removeHandler(handler)


def test_shanhai_serve_hides_the_server_header(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda _app, **options: calls.append(options))
    monkeypatch.setenv("SHANHAI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHANHAI_ENVIRONMENT", "test")
    shanhai.cli.get_settings.cache_clear()
    try:
        assert shanhai.cli.main(["serve", "--port", "8123"]) == 0
    finally:
        shanhai.cli.get_settings.cache_clear()
        forget_log_handler()
    assert len(calls) == 1 and calls[0]["server_header"] is False
    assert (calls[0]["host"], calls[0]["port"]) == ("127.0.0.1", 8123)
