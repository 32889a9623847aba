"""Settings refuse insecure defaults; password, token and API-key primitives."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from core.auth import (
    OrgKind,
    Principal,
    PrincipalCache,
    User,
    api_key_digest,
    decode_token,
    hash_password,
    issue_token,
    new_api_key,
    verify_password,
)
from core.clock import FixedClock
from core.errors import (
    AuditChainBroken,
    AuthenticationFailed,
    DoubleCounting,
    InsufficientFunds,
    OrderRejected,
    ServiceUnavailable,
    ShanhaiError,
)
from core.settings import Settings

KEY = "k" * 40


def test_development_generates_and_keeps_a_secret(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = settings.signing_key()
    assert len(key) >= 32 and (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path).signing_key() == key
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'shanhai.db').resolve()}"
    assert settings.resolved_result_backend is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "SECRET_KEY must be set"),
        ({"secret_key": "short"}, "at least 32"),
        ({"secret_key": KEY}, "PostgreSQL"),
        ({"secret_key": KEY, "database_url": "sqlite:///x.db"}, "PostgreSQL"),
        ({"secret_key": KEY, "database_url": "postgresql+psycopg://db/shanhai"}, "AUDIT_SIGNING_KEY_FILE"),
        (
            {
                "secret_key": KEY,
                "database_url": "postgresql+psycopg://db/shanhai",
                "audit_signing_key_file": "/run/secrets/audit_signing_key",
                "cors_origins": "*",
            },
            "not '\\*'",
        ),
    ],
)
def test_production_refuses_insecure_defaults(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(environment="production", **overrides)


def test_production_with_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHANHAI_ENVIRONMENT", "production")
    monkeypatch.setenv("SHANHAI_SECRET_KEY", KEY)
    monkeypatch.setenv("SHANHAI_DATABASE_URL", "postgresql+psycopg://db/shanhai")
    monkeypatch.setenv("SHANHAI_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("SHANHAI_AUDIT_SIGNING_KEY_FILE", "/run/secrets/audit_signing_key")
    monkeypatch.setenv("SHANHAI_HTTPS", "true")
    monkeypatch.setenv("SHANHAI_CORS_ORIGINS", "https://app.example.cn, http://127.0.0.1:5173")
    settings = Settings()
    assert settings.signing_key() == KEY and settings.resolved_result_backend == "redis://redis:6379/0"
    assert settings.https and settings.cors_origins == ("https://app.example.cn", "http://127.0.0.1:5173")


@pytest.mark.parametrize("origin", ["app.example.cn", "https://app.example.cn/path", "ftp://x", "https://"])
def test_cors_origins_are_origins(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(cors_origins=origin)  # type: ignore[arg-type]


def test_cors_and_hsts_are_off_by_default() -> None:
    assert Settings().cors_origins == () and Settings().https is False


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_passwords() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse") and not verify_password(hashed, "wrong")
    assert not verify_password("not-a-hash", "x")


def test_api_keys_are_random_and_stored_as_sha256() -> None:
    (a, digest_a), (b, _) = new_api_key(), new_api_key()
    assert a != b and len(digest_a) == 64 and api_key_digest(a) == digest_a


def _user() -> User:
    return cast(User, SimpleNamespace(id=5, organisation_id=2, organisation=SimpleNamespace(kind=OrgKind.VERIFIER)))


def test_tokens_carry_role_and_expire() -> None:
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    token, expires_at = issue_token(_user(), token_type="access", lifetime=timedelta(minutes=15), key=KEY, clock=clock)
    claims = decode_token(token, token_type="access", key=KEY, clock=clock)
    assert claims["sub"] == "5" and claims["role"] == "verifier" and claims["org"] == 2
    with pytest.raises(AuthenticationFailed, match="refresh token is required"):
        decode_token(token, token_type="refresh", key=KEY, clock=clock)
    clock.advance(expires_at - clock.now())
    with pytest.raises(AuthenticationFailed, match="expired"):
        decode_token(token, token_type="access", key=KEY, clock=clock)
    with pytest.raises(AuthenticationFailed, match="not valid"):
        decode_token(token + "x", token_type="access", key=KEY, clock=clock)


def test_principal_cache_keeps_at_most_max_entries_and_expires_by_ttl() -> None:
    now = [0.0]
    cache = PrincipalCache(2.0, max_entries=2, monotonic=lambda: now[0])
    who = [Principal(i, f"u{i}", 1, OrgKind.ENTERPRISE, "token") for i in range(3)]
    for p in who:
        cache.put(("user", p.user_id), p)
    assert cache.get(("user", 0)) is None  # the oldest went first
    assert cache.get(("user", 1)) == who[1] and cache.get(("user", 2)) == who[2]
    now[0] = 2.0
    assert cache.get(("user", 2)) is None  # an entry is used for less than the TTL
    off = PrincipalCache(0)
    off.put(("user", 0), who[0])
    assert off.get(("user", 0)) is None
    cache.clear()
    now[0] = 0.0
    assert cache.get(("user", 1)) is None


@pytest.mark.parametrize(
    "error",
    [
        OrderRejected("the order was rejected: off_tick", "off_tick"),
        DoubleCounting("overlaps plot 3", [{"plot_id": 3, "overlap_ha": 1.5}]),
        AuditChainBroken("entry 7 does not link", 7),
        InsufficientFunds("10 fen needed"),
        ServiceUnavailable("the matcher process stopped"),
    ],
)
def test_domain_errors_survive_pickling_with_their_problem_members(error: ShanhaiError) -> None:
    """Answers of the matcher process (ADR 018) cross a process boundary by pickle."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and copy.detail == error.detail and str(copy) == str(error)
    assert copy.extensions() == error.extensions()
