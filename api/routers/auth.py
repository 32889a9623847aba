"""Log in (OAuth2 password flow), refresh tokens, who am I, API keys, organisations."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select

from api.deps import ClockDep, CurrentUser, SessionDep, SettingsDep
from api.schemas import ApiKeyCreated, ApiKeyRequest, Me, OrganisationOut, RefreshRequest, TokenPair
from core.auth import (
    Organisation,
    User,
    authenticate_password,
    decode_token,
    issue_token,
    user_for_token,
)
from core.auth import create_api_key as create_api_key_for
from core.clock import Clock
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


@router.post("/auth/token")
def login_for_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> TokenPair:
    """Exchange a user name and password for a short-lived access token and a refresh token."""
    user = authenticate_password(session, form.username, form.password)
    return _token_pair(user, settings, clock)


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
def list_organisations(session: SessionDep, _principal: CurrentUser) -> list[OrganisationOut]:
    """List the organisations known to the platform."""
    return [OrganisationOut.of(org) for org in session.scalars(select(Organisation).order_by(Organisation.id))]
