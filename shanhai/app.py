"""``create_app`` — the only composition root of the HTTP service: the JSON API (``api``) and the pages (``web``).

It chooses the metrics mode (ADR 029), builds the engine, session factory, clock, Celery app, audit tree cache
and audit signing key from one :class:`Settings`, installs the problem+json handlers, the body-size limit, the
security headers (with the documentation pages' Content-Security-Policy), CORS when origins are configured and the
request middleware (request id, metrics, access log), mounts the routers, and refuses to start if any route lacks
an access rule.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute

from access import permissions
from access.deps import LoginRequired, authorize
from access.throttle import ApiKeyQuota, LoginThrottle, RateLimitHeaders, open_storage
from api import openapi, problems
from api.docs import install_docs
from api.limits import BodySizeLimit
from api.observability import RequestContext
from api.params import refuse_unstorable_input
from api.routers import (
    auctions,
    audit,
    auth,
    ecovalue,
    evidence,
    gep,
    imports,
    inbox,
    market,
    monitoring,
    projects,
    rasters,
    regions,
    registry,
    reversals,
    system,
    trading,
    witnessing,
    workflow,
)
from api.security import PAGE_POLICY, SecurityPolicy, ShanhaiApp, install_cors
from api.tasks import router as tasks_router
from api.witness_loop import WitnessLoop
from api.worker import create_celery
from core.audit_tree import AuditTree, load_signing_key
from core.auth import PrincipalCache
from core.clock import Clock, SystemClock
from core.db import make_engine, make_session_factory
from core.metrics import configure_multiprocess
from core.settings import Settings, get_settings
from core.witnessing import WitnessPolicy
from trading.journal import MatcherCache
from trading.market_data import BookReplicas
from trading.order_entry import MatcherProcess, OrderEntry
from web.app import FILE_PAGE_SUFFIXES, PAGE_ROUTERS, STATIC_PREFIX, install_web
from web.errors import PAGE_PREFIXES, is_page_request, page_error

API_DESCRIPTION = """
Shanhai (山海) — cross-province carbon-sink trading and GEP accounting for the Fujian–Ningxia cooperation.

Log in with `POST /api/v1/auth/token` (OAuth2 password flow) and send `Authorization: Bearer <token>`;
machine clients of enterprises may send `X-API-Key`. Errors are RFC 9457 `application/problem+json`.
"""


ROUTERS: tuple[APIRouter, ...] = (
    system.router,
    auth.router,
    projects.router,
    imports.router,
    evidence.router,
    rasters.router,
    registry.router,
    registry.public,
    monitoring.router,
    workflow.router,
    gep.router,
    reversals.router,
    ecovalue.router,
    inbox.router,
    audit.router,
    trading.router,
    market.public,
    market.reports,
    auctions.router,
    auctions.public,
    regions.public,
    witnessing.public,
    tasks_router,
)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build the FastAPI application for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    clock = clock or SystemClock()
    configure_multiprocess(settings.prometheus_multiproc_dir)  # before the matcher child starts: it inherits it
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    session_factory = make_session_factory(engine)

    matchers = ([MatcherProcess(settings.resolved_database_url, clock) for _ in range(settings.matcher_groups)]
                if settings.matcher_process else [])  # fmt: skip
    login_pool = ThreadPoolExecutor(settings.login_workers, thread_name_prefix="shanhai-login")

    audit_tree = AuditTree()
    audit_signing_key = load_signing_key(settings)
    witness_policy = WitnessPolicy.from_settings(settings)
    witness_loop = (
        WitnessLoop(
            session_factory, audit_tree, audit_signing_key, clock, witness_policy, settings.audit_witness_seconds
        )
        if witness_policy.witnesses and settings.broker_url is None  # with a broker, the beat schedule does it
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if witness_loop is not None:
            witness_loop.start()
        yield
        if witness_loop is not None:
            witness_loop.stop()
        login_pool.shutdown(wait=False, cancel_futures=True)
        for matcher in matchers:
            matcher.close()

    app = ShanhaiApp(
        lifespan=lifespan,
        title="Shanhai",
        version="0.1.0",
        description=API_DESCRIPTION,
        dependencies=[Depends(authorize), Depends(refuse_unstorable_input)],
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.clock = clock
    app.state.celery = create_celery(settings, session_factory, clock)
    app.state.audit_tree = audit_tree
    app.state.witness_policy = witness_policy
    app.state.principal_cache = PrincipalCache(settings.auth_cache_seconds)
    rate_limit_storage = open_storage(settings)
    app.state.login_throttle = LoginThrottle(rate_limit_storage, settings)
    app.state.api_key_quota = ApiKeyQuota(rate_limit_storage, settings.api_key_requests_per_minute)
    app.state.login_pool = login_pool
    app.state.matchers = MatcherCache()
    app.state.order_entry = OrderEntry(session_factory, clock, app.state.matchers, matchers=matchers,
                                       groups=settings.matcher_groups)  # fmt: skip
    app.state.book_replicas = BookReplicas()
    app.state.audit_signing_key = audit_signing_key

    problems.install(app)
    install_page_errors(app)
    openapi.install(app)
    docs_policies = install_docs(app)
    page_policies = dict.fromkeys((*PAGE_PREFIXES, STATIC_PREFIX), PAGE_POLICY)
    app.security_policy = SecurityPolicy(routes={**docs_policies, **page_policies}, hsts=settings.https)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_upload_bytes,
        file_max_bytes=max(settings.max_file_upload_bytes, settings.max_attachment_bytes),
        file_path_suffixes=("/plot-imports", evidence.UPLOAD_SUFFIX, *FILE_PAGE_SUFFIXES),
    )
    app.add_middleware(RateLimitHeaders)
    install_cors(app, settings)
    app.add_middleware(RequestContext)  # outermost of the added ones: 413s and every problem carry the request id
    for router in ROUTERS:
        app.include_router(router)
    install_web(app)
    permissions.check_rules(route_names((*ROUTERS, *PAGE_ROUTERS)))
    return app


def install_page_errors(app: FastAPI) -> None:
    """Send errors of page requests to ``web``'s friendly pages; every other request keeps its problem+json.

    Wraps each handler :func:`api.problems.install` registered, so the API's answers are unchanged.
    """
    for error_class, api_handler in list(app.exception_handlers.items()):
        app.add_exception_handler(error_class, _dispatching(api_handler))

    async def login_required(request: Request, error: Exception) -> Any:
        return page_error(request, error, problems.status_for)

    app.add_exception_handler(LoginRequired, login_required)  # raised for pages only (access.deps.authorize)


def _dispatching(api_handler: Callable[..., Any]) -> Callable[[Request, Exception], Any]:
    async def handle(request: Request, error: Exception) -> Any:
        if is_page_request(request):
            return page_error(request, error, problems.status_for)
        answer = api_handler(request, error)
        return await answer if inspect.isawaitable(answer) else answer

    return handle


def operation_id(route: APIRoute) -> str:
    """Return a route's OpenAPI ``operationId``: its name, unique by the permissions table (``place_order``)."""
    return route.name


def route_names(routers: Sequence[APIRouter]) -> list[str]:
    """Return the names of every API route of ``routers`` (the keys of the permissions table)."""
    return [route.name for router in routers for route in router.routes if isinstance(route, APIRoute)]
