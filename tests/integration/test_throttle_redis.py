"""Login throttles and API-key quotas shared by several API processes through Redis (issue 16.2).

Marked ``redis``: under CI=true this fails if Redis is missing; elsewhere it skips.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from access.throttle import ApiKeyQuota, LoginThrottle, open_storage
from core.errors import TooManyRequests
from core.settings import Settings


def test_several_processes_are_refused_on_the_in_memory_store() -> None:
    with pytest.raises(ValidationError, match="SHANHAI_RATE_LIMIT_STORAGE_URL on Redis"):
        Settings(api_processes=2)
    with pytest.raises(ValidationError, match="SHANHAI_RATE_LIMIT_STORAGE_URL on Redis"):
        Settings(api_processes=4, rate_limit_storage_url="memory://")
    assert Settings(api_processes=2, rate_limit_storage_url="redis://127.0.0.1:6379/2").api_processes == 2


def test_uvicorn_or_gunicorn_workers_from_web_concurrency_are_refused_on_the_in_memory_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``uvicorn --workers`` and gunicorn take their worker count from WEB_CONCURRENCY, outside our settings."""
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with pytest.raises(ValidationError, match=r"\(WEB_CONCURRENCY\) need SHANHAI_RATE_LIMIT_STORAGE_URL"):
        Settings()
    assert Settings(rate_limit_storage_url="redis://127.0.0.1:6379/2").web_concurrency == 4
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    assert Settings().web_concurrency == 1


@pytest.mark.redis
def test_two_processes_share_one_count_through_redis(redis_url: str) -> None:
    settings = Settings(rate_limit_storage_url=redis_url, login_user_attempts=3, login_lockout_seconds=20.0)
    first, second = LoginThrottle(open_storage(settings), settings), LoginThrottle(open_storage(settings), settings)
    name = f"user-{uuid.uuid4().hex}"
    assert first.record_failure(name, "192.0.2.1") == []
    assert second.record_failure(name, "192.0.2.2") == []
    [lockout] = first.record_failure(name, "192.0.2.3")  # the third failure, counted across both
    assert lockout.subject == f"user_name:{name}" and lockout.seconds == 20.0
    with pytest.raises(TooManyRequests) as refused:
        second.check(name, "192.0.2.4")
    assert 19 <= refused.value.retry_after_seconds <= 20
    assert second.unlock(username=name)
    first.check(name, "192.0.2.4")  # lifted for every process


@pytest.mark.redis
def test_an_api_key_quota_is_shared_through_redis(redis_url: str) -> None:
    settings = Settings(rate_limit_storage_url=redis_url)
    first, second = ApiKeyQuota(open_storage(settings), 2), ApiKeyQuota(open_storage(settings), 2)
    key = uuid.uuid4().hex
    assert first.hit(key)["RateLimit-Remaining"] == "1"
    assert second.hit(key)["RateLimit-Remaining"] == "0"
    with pytest.raises(TooManyRequests):
        first.hit(key)


def test_serve_starts_as_many_processes_as_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SHANHAI_API_PROCESSES`` is the process count itself, so the refusal above guards what really runs."""
    import argparse

    import uvicorn

    from shanhai.cli import cmd_serve

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    settings = Settings(api_processes=3, rate_limit_storage_url="redis://127.0.0.1:6379/2")
    assert cmd_serve(settings, argparse.Namespace(host="127.0.0.1", port=8001)) == 0
    [(app, options)] = calls
    assert app == "shanhai.app:create_app" and options["factory"] is True and options["workers"] == 3
