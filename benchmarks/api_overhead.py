"""What the request middleware costs: CPU per request of each layer alone, and of the whole app with and without it.

Usage::

    python benchmarks/api_overhead.py [--requests 5000] [--runs 5]

Two measurements, in one process, on the embedded default (a SQLite copy seeded with the demo data, in a
temporary directory), CPU time (``time.process_time``) so that a shared machine's load moves them less than
wall time:

* **each layer alone** — :class:`~api.observability.RequestContext` (request id, metrics, access log),
  :class:`~api.security.SecurityHeaders`, :class:`~access.throttle.RateLimitHeaders`,
  :class:`~api.limits.BodySizeLimit` and :func:`~api.params.refuse_unstorable_input` (on a limit order's JSON
  body) — around an ASGI app that answers at once, minus that bare app;
* **the whole app**, ``GET /api/v1/me`` with a bearer token through ``httpx.ASGITransport``, as built by
  :func:`shanhai.app.create_app` and with those layers replaced by pass-throughs (same code otherwise, same run,
  alternating), so the difference is what issue 16's middleware adds to a request.

The minimum over ``--runs`` is reported (the least disturbed run), in microseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from access.throttle import RateLimitHeaders  # noqa: E402
from api import app as app_module  # noqa: E402
from api import security  # noqa: E402
from api.limits import BodySizeLimit  # noqa: E402
from api.observability import RequestContext  # noqa: E402
from api.params import refuse_unstorable_input  # noqa: E402
from api.seed import seed_demo  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402

ORDER = {"instrument_id": "FCT-2025", "side": "buy", "price_cny": "60.00", "quantity_t": 10, "time_in_force": "gtc"}
HEADERS = [
    (b"host", b"bench"),
    (b"authorization", b"Bearer x"),
    (b"content-type", b"application/json"),
    (b"user-agent", b"bench"),
]


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> Message:
    return {"type": "http.request", "body": json.dumps(ORDER).encode(), "more_body": False}


async def _discard(_message: Message) -> None:
    return None


def _scope() -> Scope:
    return {"type": "http", "method": "POST", "path": "/api/v1/orders", "headers": list(HEADERS), "query_string": b""}


async def _guard_alone(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    await request.json()  # FastAPI has parsed the body before the dependency runs; the guard reads that parse
    await refuse_unstorable_input(request)
    await _answer(scope, receive, send)


async def _body_parsed(scope: Scope, receive: Receive, send: Send) -> None:
    await Request(scope, receive).json()
    await _answer(scope, receive, send)


async def _per_request_us(app: Callable[[Scope, Receive, Send], Awaitable[None]], requests: int, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        for _ in range(requests):
            await app(_scope(), _receive, _discard)
        best = min(best, (time.process_time() - started) / requests * 1e6)
    return best


async def layers_alone(requests: int, runs: int) -> dict[str, float]:
    """Return µs of CPU per request each layer adds around an app that answers at once."""
    bare = await _per_request_us(_answer, requests, runs)
    parsed = await _per_request_us(_body_parsed, requests, runs)
    costs = {
        "RequestContext": await _per_request_us(RequestContext(_answer), requests, runs) - bare,
        "SecurityHeaders": await _per_request_us(
            security.SecurityHeaders(_answer, security.SecurityPolicy()), requests, runs
        )
        - bare,
        "RateLimitHeaders": await _per_request_us(RateLimitHeaders(_answer), requests, runs) - bare,
        "BodySizeLimit": await _per_request_us(
            BodySizeLimit(_answer, max_bytes=10**6, file_max_bytes=10**7, file_path_suffixes=("/plot-imports",)),
            requests,
            runs,
        )
        - bare,
        "refuse_unstorable_input (order body)": await _per_request_us(_guard_alone, requests, runs) - parsed,
    }
    return {name: round(max(cost, 0.0), 1) for name, cost in costs.items()}


class _PassThrough:
    def __init__(self, app: ASGIApp, **_options: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


async def _no_guard() -> None:
    return None


def _build(settings: Settings, *, hardened: bool) -> Any:
    """Build the app as ``create_app`` does, or with the hardening layers replaced by pass-throughs."""
    saved = (app_module.RequestContext, app_module.RateLimitHeaders, app_module.BodySizeLimit,
             app_module.refuse_unstorable_input, security.ShanhaiApp.build_middleware_stack)  # fmt: skip
    if not hardened:
        app_module.RequestContext = _PassThrough  # type: ignore[assignment,misc]
        app_module.RateLimitHeaders = _PassThrough  # type: ignore[assignment,misc]
        app_module.BodySizeLimit = _PassThrough  # type: ignore[assignment,misc]
        app_module.refuse_unstorable_input = _no_guard  # type: ignore[assignment]
        security.ShanhaiApp.build_middleware_stack = security.FastAPI.build_middleware_stack  # type: ignore[method-assign]
    try:
        return app_module.create_app(settings)
    finally:
        (app_module.RequestContext, app_module.RateLimitHeaders, app_module.BodySizeLimit,
         app_module.refuse_unstorable_input, security.ShanhaiApp.build_middleware_stack) = saved  # fmt: skip


async def _me_us(app: Any, requests: int) -> float:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        token = await client.post(
            "/api/v1/auth/token", data={"username": "fj-enterprise", "password": "demo-fj-enterprise-2026"}
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for _ in range(100):  # warm the principal cache, the routes and the connection pool
            await client.get("/api/v1/me", headers=headers)
        started = time.process_time()
        for _ in range(requests):
            answer = await client.get("/api/v1/me", headers=headers)
        assert answer.status_code == 200, answer.text
        return (time.process_time() - started) / requests * 1e6


async def whole_app(requests: int, runs: int) -> dict[str, float]:
    """Return µs of CPU per ``GET /api/v1/me`` with and without the hardening layers (alternating runs)."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), environment="development")
        upgrade(settings.resolved_database_url)
        with make_session_factory(make_engine(settings.resolved_database_url))() as session:
            seed_demo(session, REPO / "samples", clock=SystemClock())
        apps = {"hardened": _build(settings, hardened=True), "bare": _build(settings, hardened=False)}
        best = {name: float("inf") for name in apps}
        for _ in range(runs):
            for name, app in apps.items():
                best[name] = min(best[name], await _me_us(app, requests))
    return {
        "with the middleware": round(best["hardened"], 1),
        "without": round(best["bare"], 1),
        "ratio": round(best["hardened"] / best["bare"], 3),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    report = {
        "cpu_us_per_request_each_layer_alone": asyncio.run(layers_alone(args.requests * 4, args.runs)),
        "cpu_us_per_get_me_whole_app": asyncio.run(whole_app(args.requests // 2, args.runs)),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
