"""Security headers on every answer, a Content-Security-Policy per route, and CORS only when configured.

:class:`SecurityHeaders` is a pure ASGI middleware (never ``BaseHTTPMiddleware``, which would buffer the
Server-Sent Events of the market-data stream): it edits the headers of ``http.response.start`` and passes
every body chunk on as it comes. On every answer it sets

* ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``;
* ``Content-Security-Policy``: the policy of the longest route prefix in :attr:`SecurityPolicy.routes`, else
  :data:`API_POLICY` (``default-src 'none'; frame-ancestors 'none'`` — JSON needs nothing, and no page may
  frame it); a route that sets its own header keeps it;
* ``Strict-Transport-Security`` when the deployment says it is served over HTTPS (``SHANHAI_HTTPS``);
* ``Cache-Control: no-store`` on authenticated answers — the request carried ``Authorization``,
  ``X-API-Key`` or a cookie, or it asked for a token (:data:`CREDENTIAL_PREFIXES`) — unless the answer declared
  itself ``Cache-Control: public`` (the pages' static files, the same for everyone: ``web.static_files``);

:class:`ShanhaiApp` installs the middleware outside Starlette's error middleware, so unexpected-error (500)
answers carry the headers too. The documentation pages compute their script hashes from the HTML they
serve (:func:`inline_hashes`, ``api.docs``); the web pages (next issue) register :data:`PAGE_POLICY`
under their prefix the same way. See ``docs/adr/027-security-headers.md``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings

#: Request headers that carry credentials: an answer to such a request is never stored by a cache.
CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"cookie"})
#: Paths whose answers hold credentials although the request may carry none (the OAuth2 token endpoint).
CREDENTIAL_PREFIXES = ("/api/v1/auth/",)
#: Two years, with subdomains (the value the HSTS preload list asks for).
HSTS_VALUE = "max-age=63072000; includeSubDomains"


@dataclass(frozen=True)
class ContentSecurityPolicy:
    """A Content-Security-Policy as directives mapped to their sources, rendered in insertion order."""

    directives: Mapping[str, tuple[str, ...]]

    def header(self) -> str:
        """Return the header value, such as ``default-src 'none'; frame-ancestors 'none'``."""
        return "; ".join(" ".join((name, *sources)) for name, sources in self.directives.items())

    def allowing(self, directive: str, *sources: str) -> ContentSecurityPolicy:
        """Return a copy whose ``directive`` also allows ``sources`` (after the ones it has)."""
        kept = self.directives.get(directive, ())
        added = tuple(source for source in sources if source not in kept)
        return ContentSecurityPolicy({**self.directives, directive: kept + added})


#: JSON answers, files and problems: nothing may load from them, and no page may frame them.
API_POLICY = ContentSecurityPolicy({"default-src": ("'none'",), "frame-ancestors": ("'none'",)})

#: HTML pages served from the API's own origin: scripts, styles and data from the origin only; workers and
#: images also from ``blob:`` (map tiles rendered in a worker), images from ``data:``; no plugins, no framing.
PAGE_POLICY = ContentSecurityPolicy(
    {
        "default-src": ("'self'",),
        "script-src": ("'self'",),
        "style-src": ("'self'",),
        "img-src": ("'self'", "data:", "blob:"),
        "worker-src": ("'self'", "blob:"),
        "connect-src": ("'self'",),
        "object-src": ("'none'",),
        "base-uri": ("'none'",),
        "form-action": ("'self'",),
        "frame-ancestors": ("'none'",),
    }
)


@dataclass(frozen=True)
class SecurityPolicy:
    """What :class:`SecurityHeaders` adds: per-route CSP, HSTS on or off."""

    routes: Mapping[str, ContentSecurityPolicy] = field(default_factory=dict)
    default: ContentSecurityPolicy = API_POLICY
    hsts: bool = False

    def policy_for(self, path: str) -> ContentSecurityPolicy:
        """Return the policy of the longest route prefix of ``path``, else :attr:`default`.

        Prefixes match whole segments: ``/docs`` covers ``/docs/oauth2-redirect`` but not ``/docsx``; ``/`` covers
        every path.
        """

        def covers(prefix: str) -> bool:
            base = prefix.rstrip("/")
            return path == base or path.startswith(base + "/")

        matches = [prefix for prefix in self.routes if covers(prefix)]
        return self.routes[max(matches, key=len)] if matches else self.default


def carries_credentials(scope: Scope) -> bool:
    """Return whether the request sent credentials or asked for a token."""
    if str(scope.get("path", "")).startswith(CREDENTIAL_PREFIXES):
        return True
    return any(name.lower() in CREDENTIAL_HEADERS for name, _value in scope.get("headers") or [])


class SecurityHeaders:
    """Pure ASGI middleware adding the security headers to every HTTP answer, streamed answers included."""

    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Edit the start message of the answer; pass its body on untouched."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.policy.policy_for(str(scope.get("path", ""))).header()
        no_store = carries_credentials(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", csp)
                if self.policy.hsts:
                    headers["Strict-Transport-Security"] = HSTS_VALUE
                # A file the same for everyone (the pages' static assets) says so with ``public``: keep its policy.
                if no_store and not headers.get("Cache-Control", "").startswith("public"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ShanhaiApp(FastAPI):
    """FastAPI with :class:`SecurityHeaders` as its outermost layer, outside Starlette's error middleware."""

    security_policy: SecurityPolicy = SecurityPolicy()

    def build_middleware_stack(self) -> ASGIApp:
        """Wrap Starlette's stack (error middleware first) in the security headers."""
        return SecurityHeaders(super().build_middleware_stack(), self.security_policy)


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Answer cross-origin requests from ``SHANHAI_CORS_ORIGINS`` only; with none configured, add nothing.

    Credentials travel in headers (bearer tokens, API keys), never in cookies, so ``allow_credentials`` stays off.
    """
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "Idempotency-Key", "Last-Event-ID"],
        expose_headers=["Location", "X-Request-ID"],
        max_age=600,
    )


class _InlineCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.inline and not any(name == "src" for name, _ in attrs):
            self._open = tag
            self.inline[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.inline[self._open][-1] += data


def inline_hashes(html: str) -> dict[str, tuple[str, ...]]:
    """Return the CSP sources (``'sha256-…'``) of the inline ``script`` and ``style`` elements of ``html``.

    The hash covers the element's text exactly as served (CSP Level 3 §8.5), so the page keeps working after a
    library changes its inline code, and an injected script still does not run.

    >>> inline_hashes("<script src='a.js'></script><script>go()</script>")["script"]
    ("'sha256-5KYv+PUboo5h+0+YAtGRPbwv5d/QxzHslP4YGnUaxRw='",)
    """
    collector = _InlineCollector()
    collector.feed(html)
    collector.close()
    return {
        tag: tuple(
            f"'sha256-{base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode('ascii')}'"
            for text in texts
        )
        for tag, texts in collector.inline.items()
    }
