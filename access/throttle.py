"""Login throttling and API-key quotas, counted in a `limits` storage (memory, or Redis across processes).

Logins (issue 16.2, MLPS level 3; ADR 026):

* Failures are counted per user name and per client address for ``SHANHAI_LOGIN_FAILURE_WINDOW_SECONDS``.
  Once a name has had ``SHANHAI_LOGIN_USER_ATTEMPTS`` failures (an address
  ``SHANHAI_LOGIN_ADDRESS_ATTEMPTS``), it is locked out for ``SHANHAI_LOGIN_LOCKOUT_SECONDS``, and each
  further failure doubles the lock (:func:`lockout_seconds`, capped at ``SHANHAI_LOGIN_LOCKOUT_MAX_SECONDS``).
* A locked-out login is refused with 429 and ``Retry-After`` before its password is hashed, so a flood costs
  no Argon2 time; a successful login forgets its user name's failures.
* The registry or the operator lifts a lock (``POST /api/v1/auth/lockouts/unlock``).
* The client address is the peer's, unless the peer is a trusted proxy (``SHANHAI_TRUSTED_PROXIES``): then
  it is the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy (:func:`client_address`),
  so that a bureau behind one reverse proxy is not locked out as one address, and an untrusted client cannot
  choose its own address by sending the header.

API keys (enterprises' machine clients) have a fixed-window quota per minute
(``SHANHAI_API_KEY_REQUESTS_PER_MINUTE``), reported in ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` headers (IETF draft "RateLimit header fields for HTTP").

The storage is ``SHANHAI_RATE_LIMIT_STORAGE_URL`` (e.g. ``redis://host:6379/2``); without it, the counts
live in the process's memory, which the settings refuse when ``SHANHAI_API_PROCESSES`` is more than one.
Counters use the storage's wall clock (``time.time``), not the application's :class:`~core.clock.Clock`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import cast

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import TooManyRequests
from core.metrics import record_throttled_login
from core.settings import Settings

Network = IPv4Network | IPv6Network
#: The longest user name kept in a counter key or an audit subject (the column is 100 characters).
MAX_NAME_LENGTH = 100


def open_storage(settings: Settings) -> Storage:
    """Return the `limits` storage of ``settings`` (memory when no URL is set)."""
    if settings.rate_limit_storage_url is None:
        return MemoryStorage()
    storage = storage_from_string(settings.rate_limit_storage_url)
    assert isinstance(storage, Storage), "only synchronous storages are supported"
    return storage


def lockout_seconds(failures: int, *, free_attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Return how long ``failures`` failures lock a name or an address out (0 = not locked).

    >>> [lockout_seconds(n, free_attempts=3, base_seconds=2, max_seconds=10) for n in range(1, 7)]
    [0.0, 0.0, 2.0, 4.0, 8.0, 10.0]
    """
    if failures < free_attempts:
        return 0.0
    exponent = min(failures - free_attempts, 62)  # 2**62 s outlasts any cap; the bound keeps the float finite
    return float(min(base_seconds * 2**exponent, max_seconds))


def client_address(request: Request, trusted_proxies: Sequence[Network]) -> str:
    """Return the client's address: the peer's, or, behind trusted proxies, the one they forwarded.

    ``X-Forwarded-For`` is read from the right: each proxy appends the address it received from, so the
    right-most entry that is not a trusted proxy is the first one no trusted party vouches beyond.
    """
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    forwarded = [part.strip() for part in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed([part for part in forwarded if part]):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return peer


def _is_trusted(address: str, trusted_proxies: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted_proxies)


def normalise_user_name(username: str) -> str:
    """Return the key under which a user name's failures are counted (case- and space-insensitive)."""
    return username.strip().casefold()[:MAX_NAME_LENGTH]


@dataclass(frozen=True)
class Lockout:
    """A name or address that a failure has just locked out (to be audited)."""

    kind: str  # "user_name" | "address"
    value: str
    failures: int
    seconds: float

    @property
    def subject(self) -> str:
        """Return the audit subject, e.g. ``user_name:nx-bureau`` or ``address:203.0.113.7``."""
        return f"{self.kind}:{self.value}"


class LoginThrottle:
    """Failure counters and lock-outs of user names and client addresses (thread-safe through the storage)."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self._free = {"user_name": settings.login_user_attempts, "address": settings.login_address_attempts}
        self._base = settings.login_lockout_seconds
        self._max = settings.login_lockout_max_seconds
        self._window = settings.login_failure_window_seconds

    def check(self, username: str, address: str) -> None:
        """Refuse a login of a locked-out name or from a locked-out address.

        Raises:
            TooManyRequests: Either is locked out; ``retry_after_seconds`` is the longer remaining lock.
        """
        remaining = max(self._remaining(("user_name", normalise_user_name(username))),
                        self._remaining(("address", address)))  # fmt: skip
        if remaining > 0:
            record_throttled_login()
            raise TooManyRequests(
                "too many failed logins for this user name or from this address; try again later, or ask the "
                "registry or the operator to unlock it",
                retry_after_seconds=math.ceil(remaining),
            )

    def record_failure(self, username: str, address: str) -> list[Lockout]:
        """Count a failed login; return the lock-outs it starts."""
        lockouts = []
        for kind, value in (("user_name", normalise_user_name(username)), ("address", address)):
            failures = self.storage.incr(self._key("failures", kind, value), self._expiry(self._window))
            seconds = lockout_seconds(failures, free_attempts=self._free[kind], base_seconds=self._base,
                                      max_seconds=self._max)  # fmt: skip
            if seconds > 0:
                lock_key = self._key("lock", kind, value)
                self.storage.clear(lock_key)
                self.storage.incr(lock_key, self._expiry(seconds))
                lockouts.append(Lockout(kind, value, failures, seconds))
        return lockouts

    def record_success(self, username: str) -> None:
        """Forget the failures of a user name that has just logged in."""
        self.unlock(username=username)

    def unlock(self, *, username: str | None = None, address: str | None = None) -> bool:
        """Lift the lock and forget the failures of a name and/or an address; return whether one was locked."""
        was_locked = False
        for kind, value in (("user_name", username), ("address", address)):
            if value is None:
                continue
            if kind == "user_name":
                value = normalise_user_name(value)
            was_locked = was_locked or self._remaining((kind, value)) > 0
            self.storage.clear(self._key("failures", kind, value))
            self.storage.clear(self._key("lock", kind, value))
        return was_locked

    def _remaining(self, target: tuple[str, str]) -> float:
        lock_key = self._key("lock", *target)
        if self.storage.get(lock_key) <= 0:
            return 0.0
        return max(0.0, self.storage.get_expiry(lock_key) - time.time())

    def _expiry(self, seconds: float) -> int:
        # Redis expiries are whole seconds; MemoryStorage.incr takes a float despite the base class's annotation,
        # and keeps fractions (tests use short locks).
        return cast("int", seconds) if isinstance(self.storage, MemoryStorage) else math.ceil(seconds)

    @staticmethod
    def _key(what: str, kind: str, value: str) -> str:
        return f"shanhai/login/{what}/{kind}/{value}"


class ApiKeyQuota:
    """A fixed-window per-minute quota of each API key."""

    def __init__(self, storage: Storage, requests_per_minute: int) -> None:
        self._limiter = FixedWindowRateLimiter(storage)
        self._item = RateLimitItemPerMinute(requests_per_minute, namespace="shanhai-api-key")

    def hit(self, key_digest: str) -> dict[str, str]:
        """Count one request of the key; return its ``RateLimit-*`` headers.

        Raises:
            TooManyRequests: The key is over its quota for this minute (with the headers and ``Retry-After``).
        """
        allowed = self._limiter.hit(self._item, key_digest)
        stats = self._limiter.get_window_stats(self._item, key_digest)
        reset_seconds = max(0, math.ceil(stats.reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(self._item.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": str(reset_seconds),
        }
        if not allowed:
            raise TooManyRequests(
                f"this API key has used its {self._item.amount} requests of this minute",
                retry_after_seconds=reset_seconds,
                headers=headers,
            )
        return headers


class RateLimitHeaders:
    """ASGI middleware: put the ``RateLimit-*`` headers a request's API key earned on its response.

    :func:`access.deps.authorize` leaves them in ``request.state.rate_limit_headers``; a middleware (rather than
    a dependency's ``Response``) reaches every response, streamed files and problem responses included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the start of its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get("rate_limit_headers") or {}
                if extra:
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    for name, value in extra.items():
                        raw_name = name.lower().encode("latin-1")
                        if raw_name not in present:  # a 429 already carries its own
                            headers.append((raw_name, value.encode("latin-1")))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
