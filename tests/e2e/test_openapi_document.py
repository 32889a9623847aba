"""``docs/openapi.json`` is the app's OpenAPI document, kept current (issue 17 item 4).

After a change to the API, rewrite it with ``SHANHAI_WRITE_OPENAPI=1 pytest tests/e2e/test_openapi_document.py``
and commit it with the change (its diff is the API's shape change, for review and for the changelog).
"""

from __future__ import annotations

import inspect
import os

from fastapi import FastAPI, Response
from pydantic import BaseModel

from api.openapi import api_routes, document_text
from tests.conftest import REPO

PUBLISHED = REPO / "docs" / "openapi.json"


def test_the_published_openapi_document_is_current(app: FastAPI) -> None:
    current = document_text(app)
    if os.environ.get("SHANHAI_WRITE_OPENAPI") == "1":
        PUBLISHED.write_text(current, encoding="utf-8")
    assert PUBLISHED.read_text(encoding="utf-8") == current, (
        "docs/openapi.json is stale: SHANHAI_WRITE_OPENAPI=1 pytest tests/e2e/test_openapi_document.py"
    )


def test_no_answer_is_untyped(app: FastAPI) -> None:
    """Every operation's 2xx answer has a schema; no JSON answer is a free-form object or array of them."""
    document = app.openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answers = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            assert answers, (method, path)
            for code, response in answers.items():
                if code == "204":
                    continue
                for media_type, entry in response["content"].items():
                    schema = entry.get("schema", {})
                    assert schema, (method, path, media_type)
                    if media_type == "application/json":
                        assert "$ref" in schema, (method, path, schema)


def test_every_handler_declares_a_response_model_or_a_file(app: FastAPI) -> None:
    """No handler returns ``dict[str, Any]`` or ``list[dict…]``: a pydantic model, or a file/stream ``Response``."""
    untyped = []
    for path, route in api_routes(app):
        model = route.response_model
        returns = inspect.signature(route.endpoint).return_annotation
        if model is None:
            if returns in ("None", None) or (inspect.isclass(returns) and issubclass(returns, Response)):
                continue
            if isinstance(returns, str) and returns.endswith("Response"):
                continue
            untyped.append(f"{path} {route.name}: {returns}")
        elif not (inspect.isclass(model) and issubclass(model, BaseModel)):
            untyped.append(f"{path} {route.name}: {model}")
    assert untyped == []
