"""FastAPI dependencies as typed aliases: session, clock, settings, and the caller — of the API and of the pages.

Dependencies that only read ``app.state`` are ``async def`` so FastAPI calls them on the event loop instead
of sending each through the thread pool (a thread hop per dependency per request, measured on order entry).

Authorisation runs once per request as an application-wide dependency (:func:`authorize`) that looks
the route up in ``access/permissions.py``; routes that need the caller declare :data:`CurrentUser`. The JSON
API knows its callers by bearer token or API key only (no cookie, so no cross-site request can act through
it); a page (an action named ``page_…``) knows a person by the session cookie only (:func:`resolve_person`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from celery import Celery
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session

from access import permissions
from access.throttle import ApiKeyQuota
from core.audit_tree import AuditTree
from core.auth import (
    Principal,
    PrincipalCache,
    api_key_digest,
    decode_token,
    principal_of,
    user_for_api_key,
    user_for_token,
)
from core.clock import Clock
from core.db import session_scope
from core.errors import AuthenticationFailed, PermissionDenied
from core.sessions import LiveSession, SessionPolicy, resolve_session
from core.settings import Settings
from core.witnessing import WitnessPolicy

#: The cookie holding a person's session token (HttpOnly, SameSite=Lax, Secure under SHANHAI_HTTPS).
SESSION_COOKIE = "shanhai_session"


class LoginRequired(Exception):
    """A page needs a logged-in person and the request has no live session: the pages answer with ``/login``.

    Not a :class:`~core.errors.ShanhaiError`: the JSON API never raises it (it knows no sessions), so it is no
    problem type of the API's document; the composition root hands it to ``web`` alone.
    """


oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_settings_dep(request: Request) -> Settings:
    """Return the application's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """Yield a database session, rolled back on error and closed after the response."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


async def get_clock(request: Request) -> Clock:
    """Return the application's clock."""
    clock: Clock = request.app.state.clock
    return clock


async def get_celery(request: Request) -> Celery:
    """Return the application's Celery app."""
    celery: Celery = request.app.state.celery
    return celery


async def get_audit_tree(request: Request) -> AuditTree:
    """Return the application's Merkle-tree cache of the audit log."""
    tree: AuditTree = request.app.state.audit_tree
    return tree


async def get_audit_signing_key(request: Request) -> Ed25519PrivateKey:
    """Return the key that signs audit tree heads (read from outside the database at start-up)."""
    key: Ed25519PrivateKey = request.app.state.audit_signing_key
    return key


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(get_clock)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
AuditTreeDep = Annotated[AuditTree, Depends(get_audit_tree)]
AuditSigningKeyDep = Annotated[Ed25519PrivateKey, Depends(get_audit_signing_key)]


def _resolve_principal(
    request: Request, session: Session, settings: Settings, clock: Clock, api_key: str | None
) -> Principal | None:
    """Return the caller from a bearer token or an API key, ``None`` when anonymous.

    The token's signature and expiry are checked on every call; the user or key row is read through the
    app's :class:`PrincipalCache` (``SHANHAI_AUTH_CACHE_SECONDS``). A valid API key counts one request of
    its quota (``SHANHAI_API_KEY_REQUESTS_PER_MINUTE``), whose ``RateLimit-*`` headers go on the response.

    Raises:
        AuthenticationFailed: Credentials were presented but are not valid.
        TooManyRequests: The API key is over its quota.
    """
    cache: PrincipalCache = request.app.state.principal_cache
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if token and scheme.lower() == "bearer":
        claims = decode_token(token, token_type="access", key=settings.signing_key(), clock=clock)
        return cache.get_or_load(("user", int(claims["sub"])),
                                 lambda: principal_of(user_for_token(session, claims), "token"))  # fmt: skip
    if scheme:
        raise AuthenticationFailed("only Bearer tokens are accepted in the Authorization header")
    if api_key:
        digest = api_key_digest(api_key)
        principal = cache.get_or_load(("api_key", digest),
                                      lambda: principal_of(user_for_api_key(session, api_key), "api_key"))  # fmt: skip
        quota: ApiKeyQuota = request.app.state.api_key_quota
        request.state.rate_limit_headers = quota.hit(digest)  # sent by access.throttle.RateLimitHeaders
        return principal
    return None


def session_policy(settings: Settings) -> SessionPolicy:
    """Return the lifetime rules of people's sessions from the settings."""
    return SessionPolicy(idle=timedelta(minutes=settings.session_idle_minutes),
                         max_age=timedelta(hours=settings.session_max_hours))  # fmt: skip


def resolve_person(request: Request, session: Session, settings: Settings, clock: Clock) -> Principal | None:
    """Return the person of the request's session cookie, ``None`` without a live session.

    Reads the session row and its user on every request (no cache): logging out, idling past
    ``SHANHAI_SESSION_IDLE_MINUTES`` or deactivating the user ends the session at the next request. The live
    session is left in ``request.state.person_session`` (the pages derive their CSRF token from it).
    """
    request.state.person_session = None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    live: LiveSession | None = resolve_session(session, token, session_policy(settings), clock=clock)
    if live is None:
        request.state.session_ended = True
        return None
    request.state.person_session = live
    request.state.person = principal_of(live.user, "session")  # for error pages, after the session has closed
    person: Principal = request.state.person
    return person


def authorize(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    _token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal | None:
    """Apply the route's rule from ``access/permissions.py``: 401 when anonymous, 403 for a wrong role.

    Public routes ignore credentials that do not verify (an expired access token sent along with a
    refresh request must not block the refresh). Pages know the person by the session cookie alone;
    an anonymous request for a page that needs a role raises :class:`LoginRequired`.
    """
    name = getattr(request.scope.get("route"), "name", "")
    rule = permissions.rule_for(name, metrics_public=settings.resolved_metrics_public)
    if permissions.is_page(name):
        person = resolve_person(request, session, settings, clock)
        if rule == permissions.PUBLIC:
            return person
        if person is None:
            raise LoginRequired("this page needs you to log in")
        if rule is None or person.role not in rule:
            raise PermissionDenied(f"the role {person.role.value!r} may not open this page")
        return person
    if rule == permissions.PUBLIC:
        try:
            return _resolve_principal(request, session, settings, clock, api_key)
        except AuthenticationFailed:
            return None
    principal = _resolve_principal(request, session, settings, clock, api_key)
    if principal is None:
        raise AuthenticationFailed("this endpoint needs a bearer token or an API key")
    if rule is None or principal.role not in rule:
        raise PermissionDenied(f"the role {principal.role.value!r} may not call this endpoint")
    return principal


async def require_principal(principal: Annotated[Principal | None, Depends(authorize)]) -> Principal:
    """Return the authorised caller (routes with a role rule always have one)."""
    if principal is None:
        raise AuthenticationFailed("this endpoint needs a bearer token or an API key")
    return principal


CurrentUser = Annotated[Principal, Depends(require_principal)]


async def get_witness_policy(request: Request) -> WitnessPolicy:
    """Return the audit log's origin, witnesses and quorum (ADR 033)."""
    policy: WitnessPolicy = request.app.state.witness_policy
    return policy


WitnessPolicyDep = Annotated[WitnessPolicy, Depends(get_witness_policy)]
