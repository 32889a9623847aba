"""The OpenAPI document: every operation's problem answers, one shared ``Problem`` schema (issue 17, ADR 030).

FastAPI documents the 2xx answer of a route and a 422 ``HTTPValidationError`` in ``application/json``; the API
answers every error as RFC 9457 ``application/problem+json`` (``api/problems.py``). :func:`install` replaces the
app's ``openapi()`` with one that, after FastAPI's, gives every operation the problem answers it can give, each
as ``application/problem+json`` with the shared ``Problem`` schema and, in its description, the ``type`` values
of that status:

* every operation: 422 (the request guard of ``api/params.py`` and the route's own validation), 429 (an API
  key over its quota is refused before any route) and 500 (``core/internal-error``: never expected);
* an operation with a role rule: 401 and 403 (``api/permissions.py``);
* an operation with a path parameter or a body (ids in it): 404;
* an operation that writes (not ``GET``): 409 (conflicts, idempotency keys, lost races) and, with a body, 413;
* an operation with a body: 400 (a body that does not decode);
* the order-entry operations: 503 (the matcher process stopped; ADR 018);
* :data:`EXTRA_STATUSES`: what a route's service can answer beyond that.

``tests/conftest.py`` records every (method, route, status) the test suite sees and fails the run on a status
the document does not list for that operation.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from access import permissions
from api.problems import HTTP_SLUGS, MEDIA_TYPE, PROBLEM_BASE, status_of_class
from core.errors import ShanhaiError

#: Statuses of the problem answers, with the description of each.
DESCRIPTIONS: Final[dict[int, str]] = {
    400: "The request was refused by a domain rule",
    401: "No valid credentials (bearer token or API key)",
    403: "The caller's role may not call this operation, or not on this object",
    404: "A named object does not exist (or is not visible to the caller)",
    409: "The request conflicts with the state (balances, idempotency key, a concurrent change)",
    413: "The request body is larger than the server accepts",
    415: "The uploaded file's content is not a type accepted here (sniffed from the bytes, not the name)",
    422: "The request is malformed or does not match the schema; `errors` lists every place",
    429: "Too many requests: a login lock-out or an API key over its quota (`Retry-After`)",
    500: "An unexpected error; it has been logged under `reference` (never expected)",
    503: "A part of the platform the request needs is not running; retry with the same idempotency key",
}
#: Order-entry routes: their commands run in the matcher process, which may stop (ADR 018).
ORDER_ENTRY: Final = frozenset(
    {
        "place_order",
        "cancel_order",
        "amend_order",
        "close_instrument_day",
        "propose_block_trade",
        "confirm_block_trade",
        "close_auction",
    }
)
#: Statuses a route's service answers beyond the general rules above (found by the status recorder).
EXTRA_STATUSES: Final[dict[str, frozenset[int]]] = {
    "login_for_token": frozenset({401}),  # a wrong user name or password
    "refresh_access_token": frozenset({401}),  # a refresh token that does not verify
    # Signing a tree head refuses a log that no longer extends the last signed head (ADR 028).
    "read_audit_tree_head": frozenset({409, 503}),  # 409: the hash chain is broken (core/audit-chain-broken)
    "read_audit_inclusion_proof": frozenset({404}),  # an entry or a tree size beyond the log
    "read_audit_consistency_proof": frozenset({404}),
    "read_audit_checkpoint": frozenset({409, 503}),  # signs the head as the tree-head route does
    "read_audit_witnessed_checkpoint": frozenset({404}),  # before a quorum of witnesses cosigned any head
    "read_retirement_witnessing": frozenset({409, 503}),  # keeps the certificate's head at its first read
    "create_retirement": frozenset({503}),
    "verify_retirement": frozenset({503}),
    "read_certificate": frozenset({503}),
    "public_certificate": frozenset({503}),
    "upload_project_attachment": frozenset({415}),  # the content is not a type its kind accepts
    "upload_report_attachment": frozenset({415}),
}


class Problem(BaseModel):
    """An RFC 9457 problem: every error answer of the API (``application/problem+json``).

    Extension members (``errors``, ``conflicts``, ``reason``, ``retry_after_seconds``, ``reference``, figures
    such as ``available_fen``…) depend on the ``type``.
    """

    model_config = ConfigDict(extra="allow", title="Problem")
    type: str = Field(
        description=f"A stable URI `{PROBLEM_BASE}<domain>/<name>`; clients switch on it.",
        examples=[PROBLEM_BASE + "core/not-found"],
    )
    title: str = Field(description="A short summary, the same for every problem of the type.")
    status: int = Field(ge=400, le=599, description="The HTTP status of the answer.")
    detail: str = Field(description="What went wrong this time, for a person.")
    instance: str = Field(description="The path of the request.")
    request_id: str | None = Field(default=None, description="The `X-Request-ID` of the answer (find its logs).")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Every place of the request that is wrong (`pointer`, `reason`…), where listed."
    )


def _subclasses(cls: type[ShanhaiError]) -> Iterable[type[ShanhaiError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def problem_types() -> dict[int, list[str]]:
    """Return the problem ``type`` URIs by status: every domain error class's, and the HTTP layer's.

    >>> PROBLEM_BASE + "core/not-found" in problem_types()[404]
    True
    """
    import carbon.methods.base  # noqa: F401 — defines domain error classes; imported for the walk
    import core.money  # noqa: F401
    import gep.tables  # noqa: F401

    by_status: dict[int, set[str]] = defaultdict(set)
    for cls in _subclasses(ShanhaiError):
        by_status[status_of_class(cls)].add(PROBLEM_BASE + cls.slug)
    for status, (slug, _title) in HTTP_SLUGS.items():
        by_status[status].add(PROBLEM_BASE + slug)
    by_status[422].update({PROBLEM_BASE + "core/invalid-request", PROBLEM_BASE + "core/malformed-json"})
    by_status[409].add(PROBLEM_BASE + "core/conflict")
    by_status[400].add(PROBLEM_BASE + "http/400")  # FastAPI refuses a body it cannot decode
    return {status: sorted(types) for status, types in sorted(by_status.items())}


def problem_statuses(route: APIRoute) -> set[int]:
    """Return the statuses of the problem answers ``route`` documents (the rules of the module docstring)."""
    statuses = {422, 429, 500}
    if permissions.RULES.get(route.name) != permissions.PUBLIC:
        statuses |= {401, 403}
    if route.param_convertors or route.body_field is not None:  # ids in the path or in the body
        statuses.add(404)
    methods = route.methods or set()
    if methods - {"GET", "HEAD"}:
        statuses.add(409)
        if route.body_field is not None:
            statuses.add(413)
    if route.body_field is not None:  # a body that does not decode (not UTF-8, not the form it claims)
        statuses.add(400)
    if route.name in ORDER_ENTRY:
        statuses.add(503)
    return statuses | EXTRA_STATUSES.get(route.name, frozenset())


def _problem_response(status: int, types: list[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{t.removeprefix(PROBLEM_BASE)}`" for t in types)
    description = f"{DESCRIPTIONS.get(status, 'Problem')}. Types ({PROBLEM_BASE}…): {listed}."
    return {"description": description, "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """Return every documented API route of ``app`` with its full path template (included routers walked)."""
    found = []
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            found.append((context.path_format or route.path_format, route))
    return found


def _type_files(responses: dict[str, Any]) -> None:
    """Give the 2xx answers that are files or text (CSV, PDF, GeoPackage, …) a string schema, not ``{}``.

    FastAPI documents a ``Response``-class route as ``application/json`` with an empty schema beside the media
    type the route declares; the JSON entry is dropped when another is declared.
    """
    for status, response in responses.items():
        content = response.get("content", {})
        if not status.startswith("2") or not content:
            continue
        if len(content) > 1 and not content.get("application/json", {}).get("schema"):
            content.pop("application/json", None)
        for media_type, entry in content.items():
            if entry.get("schema"):
                continue
            text = media_type.startswith("text/") or media_type.endswith(("+xml", "/xml"))
            entry["schema"] = {"type": "string"} if text else {"type": "string", "format": "binary"}


def build(app: FastAPI) -> dict[str, Any]:
    """Return the app's OpenAPI document with every operation's problem answers."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        openapi_version=app.openapi_version,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    types = problem_types()
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    shared = document["components"].setdefault("responses", {})
    for path, route in api_routes(app):
        for method in sorted(route.methods or ()):
            operation = document["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            _type_files(responses)
            for status in sorted(problem_statuses(route)):
                name = f"Problem{status}"
                shared.setdefault(name, _problem_response(status, types.get(status, [])))
                responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
    document["components"]["responses"] = dict(sorted(shared.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return document


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) return :func:`build`'s document, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_text(app: FastAPI) -> str:
    """Return the app's OpenAPI document as published in ``docs/openapi.json`` (indented, UTF-8, newline)."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
