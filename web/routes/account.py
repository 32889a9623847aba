"""Logging in and out, and the language switch.

``POST /login`` goes through the same throttled, audited password check as the token endpoint
(:func:`access.login.check_login`), then opens a server-side session (:mod:`core.sessions`) whose token goes
in an HttpOnly, SameSite=Lax cookie (Secure under ``SHANHAI_HTTPS``). A wrong password or a lock-out shows
the form again with the reason, never a stack trace. Only local paths are accepted as ``next``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import HTMLResponse, Response

from access.deps import SESSION_COOKIE, ClockDep, SessionDep, SettingsDep, authorize, session_policy
from access.login import check_login
from access.throttle import client_address
from core.auth import Principal
from core.errors import AuthenticationFailed, TooManyRequests
from core.sessions import end_session, open_session
from web import i18n
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, clear_session_cookie, locale_of, render, set_cookie

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal | None, Depends(authorize)]
NextPath = Annotated[str, Query(alias="next", max_length=500)]
#: The demo users a newcomer may log in as, by journey (the seed prints their passwords).
DEMO_JOURNEYS = (
    ("nx-bureau", N_("File plots and monitoring reports; hold, transfer, pledge and retire tonnes")),
    ("lj-fishery", N_("File sea areas and a season's harvest (the fishery project)")),
    ("verifier", N_("Verify monitoring reports from the review queue")),
    ("registry", N_("Issue tonnes and register projects; manage users")),
    ("operator", N_("List instruments and record cash deposits; manage users")),
    ("fj-enterprise", N_("Trade, hold and retire tonnes; API keys")),
    ("fj-bank", N_("Decide pledges: accept, release or enforce")),
    ("nx-ecology", N_("Run GEP accounting and read its maps and tables")),
    ("auditor", N_("Read everything, change nothing: the audit log and the flows")),
)


def safe_next(target: str | None) -> str:
    """Return ``target`` when it is a path on this site, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def page_login_form(request: Request, person: Person, next_path: NextPath = "/") -> HTMLResponse:
    """The login form (it says so when a session has just ended)."""
    context = {"next": safe_next(next_path), "error": None, "username": "", "journeys": DEMO_JOURNEYS,
               "show_demo": request.app.state.settings.environment != "production"}  # fmt: skip
    return render(request, "login.html", context, principal=person)


@router.post("/login", response_class=HTMLResponse)
async def page_login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=500)] = "/",
) -> Response:
    """Check the password (throttled, audited) and open a session; show the form again on failure."""
    check_csrf(request, settings, csrf_token)
    try:
        user = await check_login(request, session, settings, clock, username, password)
    except (AuthenticationFailed, TooManyRequests) as error:
        locked = isinstance(error, TooManyRequests)
        context = {"next": safe_next(next_path), "username": username, "journeys": DEMO_JOURNEYS,
                   "show_demo": settings.environment != "production",
                   "error": "locked" if locked else "wrong"}  # fmt: skip
        return render(request, "login.html", context, principal=None, status_code=429 if locked else 401)
    token = open_session(session, user, address=client_address(request, settings.trusted_proxies), clock=clock)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    max_age = int(session_policy(settings).max_age.total_seconds())
    set_cookie(response, settings, SESSION_COOKIE, token, max_age=max_age)
    return response


@router.post("/logout")
def page_logout(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    _person: Person,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:
    """End the session (server side: the cookie is useless afterwards) and go home.

    The form's token is checked while a session is live; a session already ended (idle, deactivated) has
    nothing left to protect, so its logout just clears the cookie instead of showing "the form has expired".
    """
    if getattr(request.state, "person_session", None) is not None:
        check_csrf(request, settings, csrf_token)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        end_session(session, token, clock=clock)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(response, settings)
    return response


@router.post("/lang")
def page_set_language(
    request: Request,
    settings: SettingsDep,
    _person: Person,
    locale: Annotated[str, Form(max_length=10)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=500)] = "/",
) -> Response:
    """Remember the chosen language (a year) and return to the page."""
    check_csrf(request, settings, csrf_token)
    chosen = locale if locale in i18n.LOCALES else locale_of(request)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_cookie(response, settings, i18n.LOCALE_COOKIE, chosen, max_age=365 * 24 * 3600)
    return response
