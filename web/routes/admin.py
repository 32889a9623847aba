"""Administration: the registry and the operator manage organisations and users; enterprises their API keys.

``/admin/users`` (issue 25) lists organisations and their users. Its forms register an organisation
(``core.auth.create_organisation``, GB/T 2260 codes checked, audited ``organisation.created``), create a user
(``core.auth.create_user``, the password policy applied, audited ``user.created``), deactivate one
(``core.sessions.deactivate_user``, as ``shanhai user deactivate``: every open session ends at once and the next
click is refused), reset a password (``core.auth.set_password``) or lift a login lock-out (the throttle's
``unlock``, audited ``auth.unlocked``, as ``POST /api/v1/auth/lockouts/unlock``). ``/settings/api-keys`` lists the
person's own keys, creates one (shown once) and revokes one (``api_key.revoked``). Every change is in the audit
log; the process forgets cached callers at once, so a deactivated user's token or a revoked key gets 401 on its
next use.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from access.throttle import LoginThrottle, normalise_user_name
from core.auth import (
    Organisation,
    OrgKind,
    Principal,
    User,
    create_api_key,
    create_organisation,
    create_user,
    list_api_keys,
    record_unlock,
    revoke_api_key,
    set_password,
)
from core.errors import Conflict, NotFound
from core.sessions import deactivate_user
from web.pages import CSRF_FIELD, check_csrf, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: The notices a redirect after a change may ask for (anything else shows none).
DONE = frozenset({"created", "deactivated", "password", "unlocked", "organisation"})
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _forget_cached_callers(request: Request) -> None:
    """Make a deactivation or revocation bite at once in this process (ADR 004's cache)."""
    request.app.state.principal_cache.clear()


def users_page(request: Request, session: SessionDep, person: Principal, *, notice: str | None = None,
               status_code: int = 200) -> HTMLResponse:  # fmt: skip
    """Render the users page (organisations, users, the forms), with a notice after a change."""
    organisations = list(session.scalars(select(Organisation).order_by(Organisation.id)))
    users = list(session.scalars(select(User).order_by(User.organisation_id, User.id)))
    context = {"organisations": organisations, "users": users, "notice": notice, "kinds": list(OrgKind)}
    return render(request, "admin_users.html", context, principal=person, status_code=status_code)


@router.get("/admin/users", response_class=HTMLResponse)
def page_admin_users(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """Organisations and their users, with the forms that manage them."""
    done = request.query_params.get("done")
    return users_page(request, session, person, notice=done if done in DONE else None)


@router.post("/admin/users")
def page_admin_create_user(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    organisation_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    username: Annotated[str, Form(min_length=1, max_length=100)],
    display_name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=256)], csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Create a user of an organisation (the password policy applies; a refusal is the problem page)."""
    check_csrf(request, settings, csrf_token)
    create_user(session, organisation_id=organisation_id, username=username, display_name=display_name,
                password=password, actor=person.actor, clock=clock)  # fmt: skip
    return RedirectResponse("/admin/users?done=created", status_code=303)


@router.post("/admin/organisations")
def page_admin_create_organisation(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    name: Annotated[str, Form(min_length=1, max_length=200)], kind: Annotated[OrgKind, Form()],
    province_code: Annotated[str, Form(pattern=r"^\d{2}$")],
    county_code: Annotated[str, Form(pattern=r"^(\d{6})?$")] = "", csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Register an organisation (GB/T 2260 province and county checked; audited ``organisation.created``)."""
    check_csrf(request, settings, csrf_token)
    create_organisation(session, name=name, kind=kind, province_code=province_code, county_code=county_code or None,
                        actor=person.actor, clock=clock)  # fmt: skip
    return RedirectResponse("/admin/users?done=organisation", status_code=303)


def _user(session: SessionDep, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


@router.post("/admin/users/{user_id}/deactivate")
def page_admin_deactivate_user(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person, user_id: UserId,
    csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Deactivate a user: their open sessions end now, their tokens and keys stop working."""
    check_csrf(request, settings, csrf_token)
    user = _user(session, user_id)
    if user.id == person.user_id:
        raise Conflict("you cannot deactivate yourself")
    if user.is_active:
        deactivate_user(session, user, actor=person.actor, clock=clock)
        _forget_cached_callers(request)
    return RedirectResponse("/admin/users?done=deactivated", status_code=303)


@router.post("/admin/users/{user_id}/password")
def page_admin_reset_password(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person, user_id: UserId,
    password: Annotated[str, Form(max_length=256)], csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Give a user a new password (the policy applies; audited ``user.password_changed``)."""
    check_csrf(request, settings, csrf_token)
    user = _user(session, user_id)
    set_password(session, username=user.username, password=password, actor=person.actor, clock=clock)
    return RedirectResponse("/admin/users?done=password", status_code=303)


@router.post("/admin/unlock", response_class=HTMLResponse)
def page_admin_unlock(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    username: Annotated[str, Form(min_length=1, max_length=100)], csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Lift the login lock-out of a user name (audited ``auth.unlocked``); say so when none was locked out."""
    check_csrf(request, settings, csrf_token)
    throttle: LoginThrottle = request.app.state.login_throttle
    if not throttle.unlock(username=username):
        return users_page(request, session, person, notice="not-locked", status_code=404)
    record_unlock(session, principal=person, subjects=[f"user_name:{normalise_user_name(username)}"], clock=clock)
    return RedirectResponse("/admin/users?done=unlocked", status_code=303)


@router.get("/settings/api-keys", response_class=HTMLResponse)
def page_api_keys(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """The person's API keys: prefix, label, created, revoked."""
    keys = list_api_keys(session, principal=person)
    return render(request, "api_keys.html", {"keys": keys, "created": None}, principal=person)


@router.post("/settings/api-keys", response_class=HTMLResponse)
def page_create_api_key(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    label: Annotated[str, Form(min_length=1, max_length=100)], csrf_token: CsrfField = "",
) -> HTMLResponse:  # fmt: skip
    """Create a key and show it this once (only its SHA-256 is stored)."""
    check_csrf(request, settings, csrf_token)
    _key, plaintext = create_api_key(session, principal=person, label=label.strip(), clock=clock)
    keys = list_api_keys(session, principal=person)
    return render(request, "api_keys.html", {"keys": keys, "created": plaintext}, principal=person, status_code=201)


@router.post("/settings/api-keys/{key_id}/revoke")
def page_revoke_api_key(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person, key_id: KeyId,
    csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Revoke one of the person's keys: its next request gets 401."""
    check_csrf(request, settings, csrf_token)
    revoke_api_key(session, principal=person, key_id=key_id, clock=clock)
    _forget_cached_callers(request)
    return RedirectResponse("/settings/api-keys", status_code=303)
