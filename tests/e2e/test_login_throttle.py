"""Logins are throttled per user name and per client address, audited, and unlockable (issue 16.2)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from ipaddress import ip_network
from typing import Any

import anyio.to_thread
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from core.clock import FixedClock
from core.metrics import EXPOSED
from core.settings import Settings
from shanhai.app import create_app
from tests.conftest import PASSWORDS

Login = Callable[[str], dict[str, str]]
TOKEN = "/api/v1/auth/token"
UNLOCK = "/api/v1/auth/lockouts/unlock"


@contextmanager
def throttled_client(
    settings: Settings, clock: FixedClock, *, peer: str = "198.51.100.9", **changes: Any
) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update=changes), clock=clock)
    try:
        with TestClient(app, raise_server_exceptions=False, client=(peer, 50000)) as client:
            yield client
    finally:
        app.state.engine.dispose()


def _login(client: TestClient, username: str, password: str, **headers: str) -> Any:
    return client.post(TOKEN, data={"username": username, "password": password}, headers=headers)


def _registry_headers(client: TestClient) -> dict[str, str]:
    token = _login(client, "registry", PASSWORDS["registry"]).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _audit(client: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit/entries", params=params, headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["items"]
    return entries


def _throttled_logins() -> float:
    for line in generate_latest(EXPOSED).decode("utf-8").splitlines():
        if line.startswith("shanhai_throttled_logins_total "):
            return float(line.split()[1])
    return 0.0


def test_wrong_passwords_lock_the_user_name_out_until_the_registry_unlocks_it(
    settings: Settings, clock: FixedClock
) -> None:
    with throttled_client(settings, clock, login_user_attempts=3, login_lockout_seconds=30.0) as client:
        assert [_login(client, "nx-bureau", "wrong").status_code for _ in range(3)] == [401, 401, 401]
        refused_before = _throttled_logins()
        # Locked: even the right password is refused, before it is hashed, with how long to wait.
        locked = _login(client, "nx-bureau", PASSWORDS["nx-bureau"])
        assert locked.status_code == 429, locked.text
        assert locked.headers["Retry-After"] == "30"
        body = locked.json()
        assert body["type"] == "urn:shanhai:problem:auth/too-many-requests" and body["retry_after_seconds"] == 30
        # The lock is per name, case-insensitive; other users from the same address still log in (below).
        assert _login(client, "NX-Bureau ", PASSWORDS["nx-bureau"]).status_code == 429
        assert _throttled_logins() == refused_before + 2
        registry = _registry_headers(client)
        [lockout] = _audit(client, registry, action="auth.locked_out")
        assert lockout["subject"] == "user_name:nx-bureau"
        assert lockout["payload"]["failures"] == 3 and lockout["payload"]["lockout_seconds"] == 30.0
        # Only the registry or the operator may unlock.
        owner = _login(client, "jy-coop", PASSWORDS["jy-coop"]).json()["access_token"]
        forbidden = client.post(UNLOCK, json={"username": "nx-bureau"}, headers={"Authorization": f"Bearer {owner}"})
        assert forbidden.status_code == 403
        assert client.post(UNLOCK, json={"username": "nx-bureau"}, headers=registry).status_code == 204
        assert _login(client, "nx-bureau", PASSWORDS["nx-bureau"]).status_code == 200
        [unlocked] = _audit(client, registry, action="auth.unlocked")
        assert unlocked["subject"] == "user_name:nx-bureau" and unlocked["actor"].startswith("user:")
        assert client.post(UNLOCK, json={"username": "nx-bureau"}, headers=registry).status_code == 404
        assert client.post(UNLOCK, json={}, headers=registry).status_code == 422


def test_each_further_failure_doubles_the_lock(settings: Settings, clock: FixedClock) -> None:
    with throttled_client(settings, clock, login_user_attempts=1, login_lockout_seconds=0.05) as client:
        for _ in range(3):
            assert _login(client, "auditor", "wrong").status_code == 401
            time.sleep(0.05 * 2**2 + 0.02)  # outlast the longest of the three locks
        registry = _registry_headers(client)
        locks = [entry["payload"]["lockout_seconds"] for entry in _audit(client, registry, action="auth.locked_out")]
        assert sorted(locks) == [0.05, 0.1, 0.2]


def test_a_flood_from_one_address_locks_the_address_not_only_the_names(settings: Settings, clock: FixedClock) -> None:
    with throttled_client(settings, clock, login_address_attempts=4, login_lockout_seconds=60.0) as client:
        statuses = [_login(client, f"guess-{n}", "password123").status_code for n in range(4)]
        assert statuses == [401, 401, 401, 401]
        refused = _login(client, "auditor", PASSWORDS["auditor"])
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    with throttled_client(settings, clock, peer="198.51.100.10", login_address_attempts=4) as other:
        assert _login(other, "auditor", PASSWORDS["auditor"]).status_code == 200  # a fresh process, another peer


def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_alone(settings: Settings, clock: FixedClock) -> None:
    proxy = "10.1.2.3"
    with throttled_client(
        settings, clock, peer=proxy, trusted_proxies=(ip_network("10.0.0.0/8"),), login_address_attempts=2,
        login_user_attempts=100, login_lockout_seconds=60.0,
    ) as client:  # fmt: skip
        for n in range(2):
            assert _login(client, f"guess-{n}", "x", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 401
        assert _login(client, "auditor", PASSWORDS["auditor"], **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        # Another officer of the bureau behind the same proxy is not locked out...
        assert _login(client, "auditor", PASSWORDS["auditor"], **{"X-Forwarded-For": "203.0.113.8"}).status_code == 200
        # ...and a client cannot dodge its lock by prepending an address of its choice.
        spoofed = {"X-Forwarded-For": "192.0.2.1, 203.0.113.7"}
        assert _login(client, "auditor", PASSWORDS["auditor"], **spoofed).status_code == 429
        registry = _registry_headers(client)
        [lockout] = _audit(client, registry, action="auth.locked_out")
        assert lockout["subject"] == "address:203.0.113.7"
        assert client.post(UNLOCK, json={"address": "203.0.113.7"}, headers=registry).status_code == 204
        assert _login(client, "auditor", PASSWORDS["auditor"], **{"X-Forwarded-For": "203.0.113.7"}).status_code == 200


def test_an_untrusted_peer_cannot_choose_its_address(settings: Settings, clock: FixedClock) -> None:
    with throttled_client(settings, clock, login_address_attempts=2, login_lockout_seconds=60.0) as client:
        for n in range(2):
            assert _login(client, f"guess-{n}", "x", **{"X-Forwarded-For": f"203.0.113.{n}"}).status_code == 401
        assert _login(client, "auditor", PASSWORDS["auditor"], **{"X-Forwarded-For": "192.0.2.99"}).status_code == 429


def test_every_login_and_failure_is_audited(client: TestClient, login: Login) -> None:
    assert _login(client, "nx-bureau", "wrong").status_code == 401
    assert _login(client, "nobody-here", "wrong").status_code == 401
    auditor = login("auditor")
    failed = _audit(client, auditor, action="auth.login_failed")
    assert {entry["subject"] for entry in failed} == {"user_name:nx-bureau", "user_name:nobody-here"}
    assert all(entry["payload"]["address"] == "testclient" and "wrong" not in str(entry) for entry in failed)
    [succeeded] = _audit(client, auditor, action="auth.login_succeeded")
    assert succeeded["payload"]["username"] == "auditor" and succeeded["subject"] == succeeded["actor"]


def test_a_login_flood_does_not_starve_other_requests(settings: Settings, clock: FixedClock) -> None:
    """Six Argon2 checks at once against an API of three threads: a health check still answers at once."""
    with throttled_client(settings, clock, login_workers=1, login_address_attempts=1000) as client:
        assert client.portal is not None

        async def shrink_thread_pool() -> None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = 3

        client.portal.call(shrink_thread_pool)
        assert client.get("/health").status_code == 200
        with ThreadPoolExecutor(6) as flood:
            started = time.perf_counter()
            logins = [flood.submit(_login, client, f"flood-{n}", "wrong") for n in range(6)]
            time.sleep(0.05)
            before = time.perf_counter()
            assert client.get("/health").status_code == 200
            health_seconds = time.perf_counter() - before
            assert [future.result().status_code for future in logins] == [401] * 6
            flood_seconds = time.perf_counter() - started
        assert health_seconds < flood_seconds / 4, (health_seconds, flood_seconds)


def test_an_api_key_has_a_quota_reported_in_ratelimit_headers(settings: Settings, clock: FixedClock) -> None:
    with throttled_client(settings, clock, api_key_requests_per_minute=3) as client:
        token = _login(client, "fj-enterprise", PASSWORDS["fj-enterprise"]).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        key = client.post("/api/v1/api-keys", json={"label": "bot"}, headers=bearer).json()["api_key"]
        answers = [client.get("/api/v1/me", headers={"X-API-Key": key}) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert [answer.headers["RateLimit-Remaining"] for answer in answers] == ["2", "1", "0"]
        assert {answer.headers["RateLimit-Limit"] for answer in answers} == {"3"}
        assert all(0 <= int(answer.headers["RateLimit-Reset"]) <= 60 for answer in answers)
        over = client.get("/api/v1/me", headers={"X-API-Key": key})
        assert over.status_code == 429 and over.json()["type"] == "urn:shanhai:problem:auth/too-many-requests"
        assert over.headers["RateLimit-Remaining"] == "0" and 1 <= int(over.headers["Retry-After"]) <= 60
        # A bearer token has no quota.
        assert client.get("/api/v1/me", headers=bearer).status_code == 200
        assert "RateLimit-Limit" not in client.get("/api/v1/me", headers=bearer).headers
