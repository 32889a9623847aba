"""Every operation documents its problem answers as ``application/problem+json`` (issue 17 item 2)."""

from __future__ import annotations

from fastapi import FastAPI

from api.problems import MEDIA_TYPE, PROBLEM_BASE
from tests.statuses import undocumented


def test_every_operation_documents_problems_with_the_shared_schema(app: FastAPI) -> None:
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail", "instance"]
    shared = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
            assert {"422", "429", "500"} <= set(errors), (method, path)
            for code, reference in errors.items():
                assert reference == {"$ref": f"#/components/responses/Problem{code}"}, (method, path, code)
                response = shared[f"Problem{code}"]
                assert list(response["content"]) == [MEDIA_TYPE], (method, path, code)
                assert response["content"][MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
                assert PROBLEM_BASE not in response["description"] or "`" in response["description"]


def test_role_rules_and_paths_decide_401_403_404(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert {"401", "403", "404", "409"} <= set(paths["/api/v1/orders/{order_id}/cancel"]["post"]["responses"])
    assert "503" in paths["/api/v1/orders"]["post"]["responses"]
    public = paths["/public/v1/retirements"]["get"]["responses"]
    assert "401" not in public and "403" not in public and "409" not in public
    assert "404" in paths["/public/v1/retirements/{code}"]["get"]["responses"]
    assert "`core/not-found`" in app.openapi()["components"]["responses"]["Problem404"]["description"]


def test_the_status_check_names_what_is_not_documented(app: FastAPI) -> None:
    document = app.openapi()
    seen = {
        ("GET", "/public/v1/retirements", 200),
        ("GET", "/public/v1/retirements", 403),
        ("GET", "<unmatched>", 404),
        ("GET", "/docs", 200),
        ("PUT", "/public/v1/retirements", 405),
    }
    assert undocumented(seen, document) == ["GET /public/v1/retirements 403"]
