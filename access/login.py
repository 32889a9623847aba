"""The throttled password check behind both doors: ``POST /api/v1/auth/token`` and the ``/login`` form.

Failed logins are counted per user name and per client address, a lock answers 429 before any hashing, and
every attempt is audited (ADR 026). The Argon2 check and its database work run in the app's login pool
(``SHANHAI_LOGIN_WORKERS``), never on the shared threads. What the caller gets back differs — a token pair for
the API, a session cookie for a person — but the check is this one function.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from anyio import to_thread
from sqlalchemy.orm import Session
from starlette.requests import Request

from access.throttle import LoginThrottle, client_address
from core.auth import User, check_password, find_login_user, record_login
from core.clock import Clock
from core.errors import AuthenticationFailed
from core.settings import Settings


async def check_login(
    request: Request, session: Session, settings: Settings, clock: Clock, username: str, password: str
) -> User:
    """Return the user whose password this is, counting and auditing the attempt.

    Raises:
        TooManyRequests: The user name or the client address is locked out (nothing is hashed).
        AuthenticationFailed: Unknown user, wrong password or inactive user (one message for all).
    """
    throttle: LoginThrottle = request.app.state.login_throttle
    pool: ThreadPoolExecutor = request.app.state.login_pool
    address = client_address(request, settings.trusted_proxies)
    await to_thread.run_sync(throttle.check, username, address)
    attempt = partial(_attempt_login, session, throttle, username, password, address=address, clock=clock)
    return await asyncio.get_running_loop().run_in_executor(pool, attempt)


def _attempt_login(
    session: Session, throttle: LoginThrottle, username: str, password: str, *, address: str, clock: Clock
) -> User:
    """Check a password, count and audit the attempt; run in the login pool, never on the shared threads.

    Its database work runs here too: on SQLite a thread waiting for the write lock must not hold one of the
    shared threads that the lock's holder may need to finish its request.
    """
    try:
        user = check_password(find_login_user(session, username), password)
    except AuthenticationFailed:
        lockouts = [(lockout.subject, lockout.failures, lockout.seconds)
                    for lockout in throttle.record_failure(username, address)]  # fmt: skip
        record_login(session, username=username, user=None, address=address, lockouts=lockouts, clock=clock)
        raise
    throttle.record_success(username)
    record_login(session, username=username, user=user, address=address, clock=clock)
    return user
