"""Log in (OAuth2 password flow), refresh tokens, who am I, API keys, organisations."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from access.login import check_login
from access.throttle import LoginThrottle, normalise_user_name
from api.deps import ClockDep, CurrentUser, SessionDep, SettingsDep
from api.pagination import Page, PageQuery, page_of
from api.schemas import ApiKeyCreated, ApiKeyRequest, Me, OrganisationOut, RefreshRequest, TokenPair, UnlockRequest
from core.auth import (
    Organisation,
    User,
    decode_token,
    issue_token,
    record_unlock,
    user_for_token,
)
from core.auth import create_api_key as create_api_key_for
from core.clock import Clock
from core.errors import NotFound
from core.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _token_pair(user: User, settings: Settings, clock: Clock) -> TokenPair:
    key = settings.signing_key()
    access, access_exp = issue_token(
        user, token_type="access", lifetime=timedelta(minutes=settings.access_token_minutes), key=key, clock=clock
    )
    refresh, refresh_exp = issue_token(
        user, token_type="refresh", lifetime=timedelta(days=settings.refresh_token_days), key=key, clock=clock
    )
    return TokenPair(access_token=access, expires_at=access_exp, refresh_token=refresh, refresh_expires_at=refresh_exp)


@router.post("/auth/token", responses={429: {"description": "The user name or the client address is locked out"}})
async def login_for_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TokenPair:
    """Exchange a user name and password for a short-lived access token and a refresh token.

    Failed logins are throttled per user name and per client address (429 with ``Retry-After``, doubling with
    each further failure), and every attempt is in the audit log. The Argon2 check runs in a small pool of
    its own (``SHANHAI_LOGIN_WORKERS``), so a flood of logins waits there instead of taking the threads
    every other request needs.
    """
    user = await check_login(request, session, settings, clock, form.username, form.password)
    return _token_pair(user, settings, clock)


@router.post("/auth/lockouts/unlock", status_code=204)
def unlock_login(
    body: UnlockRequest, request: Request, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> None:
    """Lift the login lock-out of a user name and/or a client address, and forget their failures.

    Raises:
        NotFound: Neither was locked out (nothing is audited).
    """
    throttle: LoginThrottle = request.app.state.login_throttle
    subjects = []
    if body.username is not None and throttle.unlock(username=body.username):
        subjects.append(f"user_name:{normalise_user_name(body.username)}")
    if body.address is not None and throttle.unlock(address=str(body.address)):
        subjects.append(f"address:{body.address}")
    if not subjects:
        raise NotFound("neither the user name nor the address is locked out")
    record_unlock(session, principal=principal, subjects=subjects, clock=clock)


@router.post("/auth/refresh")
def refresh_access_token(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> TokenPair:
    """Exchange a valid refresh token for a new token pair."""
    claims = decode_token(body.refresh_token, token_type="refresh", key=settings.signing_key(), clock=clock)
    return _token_pair(user_for_token(session, claims), settings, clock)


@router.get("/me")
def read_me(principal: CurrentUser) -> Me:
    """Return the caller's identity and role."""
    return Me.of(principal)


@router.post("/api-keys", status_code=201)
def create_api_key(body: ApiKeyRequest, principal: CurrentUser, session: SessionDep, clock: ClockDep) -> ApiKeyCreated:
    """Create an API key for the caller's machine clients; the key is shown only in this response."""
    key, plaintext = create_api_key_for(session, principal=principal, label=body.label, clock=clock)
    return ApiKeyCreated(id=key.id, label=key.label, prefix=key.prefix, api_key=plaintext, created_at=key.created_at)


@router.get("/organisations")
def list_organisations(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[OrganisationOut]:
    """List the organisations known to the platform."""
    query = select(Organisation).order_by(Organisation.id).limit(page.limit + 1).offset(page.offset)
    organisations, following = page_of(request, list(session.scalars(query)), page)
    return Page[OrganisationOut](
        items=[OrganisationOut.of(org) for org in organisations], limit=page.limit, next=following
    )
