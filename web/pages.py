"""Rendering a page: the locale's Jinja2 environment, the shell's context (person, navigation, CSRF), headers.

One :class:`jinja2.Environment` per locale, each with its Babel catalog installed (``jinja2.ext.i18n``, new
style: ``_()`` autoescapes and formats), built once per process. Every page answer carries the pages'
Content-Security-Policy itself (``api.security`` keeps a route's own header), so ``/`` gets it without a
prefix that would cover the JSON API too.

CSRF: a form or htmx request must carry a token derived from the browser's session (HMAC with the app's
signing key): ``csrf_token`` in the form or the ``X-CSRF-Token`` header (``hx-headers`` on ``<body>`` sends it
with every htmx request). An anonymous browser gets a random ``shanhai_csrf`` cookie to derive from, so the
login form is protected too (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from access import permissions
from access.deps import SESSION_COOKIE
from core.auth import Principal
from core.errors import InvalidInput, PermissionDenied
from core.settings import Settings
from web import i18n
from web.i18n import N_
from web.static_files import static_url

TEMPLATES: Final = Path(__file__).parent / "templates"
ANON_COOKIE: Final = "shanhai_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
#: The pages' policy: ``api.security.PAGE_POLICY`` spelled out (``web`` does not import ``api``); the
#: composition root checks they agree. A configured basemap's origin is added to ``img-src``/``connect-src``.
PAGE_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class NavItem:
    """One link of the navigation: shown only to roles the permissions table allows for its action."""

    action: str
    href: str
    label: str  # an English message id, translated at render


NAVIGATION: Final = (
    NavItem("page_home", "/", N_("Map and totals")),
    NavItem("page_registry_projects", "/registry/projects", N_("Projects")),
    NavItem("page_registry_retirements", "/registry/retirements", N_("Retirements")),
    NavItem("page_market", "/market", N_("Market")),
    NavItem("page_auctions", "/auctions", N_("Auctions")),
    NavItem("page_verify", "/verify", N_("Verify a certificate")),
    NavItem("page_projects", "/projects", N_("My projects")),
    NavItem("page_review", "/review", N_("Review queue")),
    NavItem("page_holdings", "/holdings", N_("Holdings")),
    NavItem("page_block_trades", "/block-trades", N_("Block trades")),
    NavItem("page_flows", "/reports/flows", N_("Flows")),
    NavItem("page_audit", "/audit", N_("Audit log")),
    NavItem("page_admin_users", "/admin/users", N_("Users")),
    NavItem("page_operator", "/operator", N_("Operator's desk")),
    NavItem("page_api_keys", "/settings/api-keys", N_("API keys")),
    NavItem("page_gep_runs", "/gep/runs", N_("GEP accounting")),
)


@cache
def environment(locale: str) -> jinja2.Environment:
    """Return the Jinja2 environment of ``locale`` (its catalog installed; built once)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.ChainableUndefined,  # an optional key missing from a record renders empty, never a 500
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = lambda value, places=0: i18n.format_number(value, locale, places=places)
    env.filters["area"] = lambda value: i18n.format_area(value, locale)
    # The certificate states areas in ha (2 decimals, a JSON number): ha × 10000 m²/ha = m², exactly from its text.
    env.filters["area_from_ha"] = lambda value: i18n.format_area(Decimal(str(value)) * 10_000, locale)
    env.filters["plot_area"] = lambda value: i18n.format_plot_area(value, locale)
    env.filters["area_from_mu"] = lambda value: i18n.format_plot_area(
        None if value is None else Decimal(str(value)) * i18n.SQUARE_METRES_PER_MU, locale
    )
    env.filters["beijing"] = lambda value: i18n.format_beijing(value, locale)
    env.filters["json_data"] = json_data
    env.filters["plain"] = plain_decimal
    env.globals["static_url"] = static_url
    return env


def json_data(text: str) -> Markup:
    r"""Return JSON text safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` escaped.

    >>> str(json_data('{"a": "</script>"}'))
    '{"a": "\\u003c/script\\u003e"}'
    """
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))


def plain_decimal(value: Any, places: int | None = None) -> Any:
    """Return a decimal (or its text) without exponent or trailing zeros; anything else unchanged.

    With ``places``, a value with more decimals is shown to that many, followed by "…" (the exact value stays in
    the record and its trace).

    >>> plain_decimal("0E-14"), plain_decimal("12.500"), plain_decimal("1E+2"), plain_decimal("2021-01-01")
    ('0', '12.5', '100', '2021-01-01')
    >>> plain_decimal("1497.49383800684462696783025", 6)
    '1497.493838…'
    """
    if isinstance(value, bool) or not isinstance(value, (str, Decimal)):
        return value
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except ArithmeticError:
        return value
    if not number.is_finite():
        return value
    number = number.normalize()
    cut = places is not None and number.as_tuple().exponent < -places  # type: ignore[operator]
    if cut:
        number = number.quantize(Decimal(1).scaleb(-(places or 0))).normalize()
    text = format(number, "f")
    text = "0" if text in ("-0", "0") else text
    return text + "…" if cut else text


def query_date(text: str, name: str) -> date | None:
    """Return the date a filter field names (``YYYY-MM-DD``), ``None`` when empty.

    Raises:
        InvalidInput: The field is not a date (a 422 page names the field).
    """
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name} is not a date", [{"pointer": f"/query/{name}", "reason": "not YYYY-MM-DD"}]
        ) from None


def locale_of(request: Request) -> str:
    """Return the request's locale (remembered switch, else ``Accept-Language``, else zh_CN)."""
    return i18n.choose_locale(request.cookies.get(i18n.LOCALE_COOKIE), request.headers.get("accept-language"))


def csrf_token(request: Request, settings: Settings) -> str:
    """Return the CSRF token of this browser: derived from its live session, else from its anonymous cookie."""
    live = getattr(request.state, "person_session", None)
    if live is not None:
        basis = "session:" + live.token_sha256
    else:
        anonymous = getattr(request.state, "anon_csrf", None) or request.cookies.get(ANON_COOKIE)
        if not anonymous:
            anonymous = secrets.token_urlsafe(24)
            request.state.anon_csrf = anonymous  # set as a cookie by render()
        basis = "anonymous:" + anonymous
    key = settings.signing_key().encode("utf-8")
    return hmac.new(key, b"csrf:" + basis.encode("utf-8"), hashlib.sha256).hexdigest()


def check_csrf(request: Request, settings: Settings, sent: str | None) -> None:
    """Refuse a state-changing page request whose CSRF token is missing or wrong.

    Raises:
        PermissionDenied: The token does not match this browser's (a cross-site form, or an old page).
    """
    sent = sent or request.headers.get(CSRF_HEADER)
    if request.cookies.get(ANON_COOKIE) is None and getattr(request.state, "person_session", None) is None:
        raise PermissionDenied("this form has expired: open the page again and resubmit")
    if not sent or not hmac.compare_digest(sent, csrf_token(request, settings)):
        raise PermissionDenied("this form has expired: open the page again and resubmit")


def shell_context(request: Request, principal: Principal | None) -> dict[str, Any]:
    """Return what every page's shell needs: locale, person, navigation for their role, CSRF token, path."""
    settings: Settings = request.app.state.settings
    locale = locale_of(request)
    role = principal.role if principal is not None else None
    return {
        "locale": locale,
        "html_lang": i18n.HTML_LANG[locale],
        "person": principal,
        "navigation": [item for item in NAVIGATION if permissions.allows(item.action, role)],
        "csrf_token": csrf_token(request, settings),
        "path": request.url.path,
        "query": request.url.query,
        "session_ended": getattr(request.state, "session_ended", False),
        "map_review_number": settings.map_review_number,
    }


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    principal: Principal | None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` in the request's locale inside the shell, with the pages' headers and cookies."""
    settings: Settings = request.app.state.settings
    shell = shell_context(request, principal)
    html = environment(shell["locale"]).get_template(template).render({**shell, **context})
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Security-Policy"] = page_policy(settings)
    response.headers["Content-Language"] = shell["html_lang"]
    response.headers["Vary"] = "Cookie, Accept-Language"
    anonymous = getattr(request.state, "anon_csrf", None)
    if anonymous:
        set_cookie(response, settings, ANON_COOKIE, anonymous, max_age=None)
    return response


def page_policy(settings: Settings) -> str:
    """Return the pages' Content-Security-Policy, allowing a configured basemap's origin for tiles."""
    if settings.basemap_url is None:
        return PAGE_CSP
    origin = "/".join(settings.basemap_url.split("/")[:3])
    return PAGE_CSP.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {origin}").replace(
        "connect-src 'self'", f"connect-src 'self' {origin}"
    )


def set_cookie(response: Response, settings: Settings, name: str, value: str, *, max_age: int | None) -> None:
    """Set a cookie the way every page cookie is set: HttpOnly, SameSite=Lax, Secure under HTTPS, path ``/``."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=settings.https)


def clear_session_cookie(response: Response, settings: Settings) -> None:
    """Remove the session cookie from the browser."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=settings.https)
