"""The role × endpoint matrix, stated literally and walked over HTTP.

The expected matrix is written out here by hand — not read from ``api/permissions.py`` — so a change to
the access rules must change this file too. Every API route must have a row: a new route without one
fails ``test_every_route_has_a_row``; a route without a rule in the table stops the app from starting.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import shanhai.app
from access.permissions import MissingRule
from core.settings import Settings

Login = Callable[[str], dict[str, str]]

B, W, E, V, R, X, N, K, A = (
    "forestry_bureau",
    "forest_owner",
    "ecology_bureau",
    "verifier",
    "registry",
    "operator",
    "enterprise",
    "bank",
    "auditor",
)
EVERYONE = {B, W, E, V, R, X, N, K, A}
PUBLIC = "public"

# (method, path) → who may call it. Path parameters use ids that exist in the demo data.
EXPECTED: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): {X, A},  # public only where SHANHAI_METRICS_PUBLIC (default: development)
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("POST", "/api/v1/auth/lockouts/unlock"): {R, X},
    ("GET", "/api/v1/me"): EVERYONE,
    ("POST", "/api/v1/api-keys"): {N},
    ("GET", "/api/v1/organisations"): EVERYONE,
    ("POST", "/api/v1/projects"): {B, W},
    ("GET", "/api/v1/projects"): EVERYONE,
    ("GET", "/api/v1/projects/{project_id}"): EVERYONE,
    ("POST", "/api/v1/projects/{project_id}/plots"): {B, W},
    ("GET", "/api/v1/projects/{project_id}/plots"): EVERYONE,
    ("GET", "/api/v1/plots/{plot_id}"): EVERYONE,
    # plot 1 is the forestry bureau's: the forest owner passes the role rule but not OWN_ORGANISATION below
    ("POST", "/api/v1/plots/{plot_id}/remeasure"): {B, R},
    ("GET", "/api/v1/plots/{plot_id}/overlaps"): EVERYONE,
    ("GET", "/api/v1/projects/{project_id}/plots.gpkg"): EVERYONE,
    ("POST", "/api/v1/projects/{project_id}/plot-imports"): {B, W},
    ("GET", "/api/v1/plot-imports/{import_id}"): {B, W, R, A},
    # evidence (ADR 037): the services narrow to the project's own organisation and a verifier's own kind
    ("POST", "/api/v1/projects/{project_id}/attachments"): {B, W, V},
    ("GET", "/api/v1/projects/{project_id}/attachments"): {B, W, V, R, A},
    ("POST", "/api/v1/monitoring-reports/{report_id}/attachments"): {B, W, V},
    ("GET", "/api/v1/monitoring-reports/{report_id}/attachments"): {B, W, V, R, A},
    ("GET", "/api/v1/attachments/{attachment_id}"): {B, W, V, R, A},
    ("GET", "/api/v1/attachments/{attachment_id}/content"): {B, W, V, R, A},
    ("POST", "/api/v1/raster-layers"): {X, R},
    ("GET", "/api/v1/raster-layers"): EVERYONE,
    ("GET", "/api/v1/plots/{plot_id}/zonal-statistics"): EVERYONE,
    ("GET", "/api/v1/holdings"): EVERYONE,
    ("POST", "/api/v1/projects/{project_id}/submit"): {B, W},
    ("POST", "/api/v1/projects/{project_id}/validate"): {V},
    ("POST", "/api/v1/projects/{project_id}/register"): {R},
    ("POST", "/api/v1/projects/{project_id}/reject"): {V, R},
    ("GET", "/api/v1/projects/{project_id}/workflow"): EVERYONE,
    ("POST", "/api/v1/monitoring-reports/{report_id}/verify"): {V},
    ("POST", "/api/v1/monitoring-reports/{report_id}/reject"): {V},
    ("POST", "/api/v1/monitoring-reports/{report_id}/issue"): {R},
    ("GET", "/api/v1/monitoring-reports/{report_id}/workflow"): EVERYONE,
    ("POST", "/api/v1/transfers"): {B, W, N, K},
    ("GET", "/api/v1/transfers/pending"): {B, W, N, K},
    ("POST", "/api/v1/transfers/{transfer_id}/accept"): {B, W, N, K},
    ("POST", "/api/v1/transfers/{transfer_id}/reject"): {B, W, N, K},
    ("POST", "/api/v1/transfers/expire"): {R},
    ("POST", "/api/v1/pledges"): {B, W, N},
    ("POST", "/api/v1/pledges/release"): {K},
    ("POST", "/api/v1/pledges/enforce"): {K},
    ("POST", "/api/v1/retirements"): {B, W, N, K},
    ("GET", "/api/v1/retirements/{retirement_id}/certificate.pdf"): EVERYONE,
    ("GET", "/public/v1/retirements/{code}"): PUBLIC,
    ("GET", "/public/v1/retirements/{code}/certificate.pdf"): PUBLIC,
    ("GET", "/public/v1/retirements/{code}/witnessed"): PUBLIC,
    ("GET", "/public/v1/batches"): PUBLIC,
    ("GET", "/public/v1/buffer"): PUBLIC,
    ("GET", "/public/v1/projects"): PUBLIC,
    ("GET", "/public/v1/batches.csv"): PUBLIC,
    ("GET", "/public/v1/retirements"): PUBLIC,
    ("GET", "/public/v1/retirements.csv"): PUBLIC,
    ("POST", "/api/v1/reversals"): {R},
    ("GET", "/api/v1/tasks/{task_id}"): {B, W, R},
    ("GET", "/api/v1/methodologies"): EVERYONE,
    ("GET", "/api/v1/methodologies/{methodology_id}/{version}"): EVERYONE,
    ("POST", "/api/v1/projects/{project_id}/monitoring-reports/preview"): {B, W},
    ("POST", "/api/v1/projects/{project_id}/monitoring-reports"): {B, W},
    ("GET", "/api/v1/projects/{project_id}/monitoring-reports"): EVERYONE,
    ("GET", "/api/v1/monitoring-reports/{report_id}"): EVERYONE,
    ("GET", "/api/v1/monitoring-reports/{report_id}/trace"): EVERYONE,
    ("GET", "/api/v1/monitoring-reports/{report_id}/sheet"): EVERYONE,
    ("POST", "/api/v1/gep/region-layers"): {E},
    ("GET", "/api/v1/gep/region-layers"): {E, A, R},
    ("POST", "/api/v1/gep/runs"): {E},
    ("GET", "/api/v1/gep/runs"): {E, A, R},
    ("GET", "/api/v1/gep/runs/{run_id}"): {E, A, R},
    ("GET", "/api/v1/gep/runs/{run_id}/tables/{table}.csv"): {E, A, R},
    ("GET", "/api/v1/gep/runs/{run_id}/tables.xlsx"): {E, A, R},
    ("GET", "/api/v1/gep/runs/{run_id}/rasters/{indicator}.tif"): {E, A, R},
    ("GET", "/api/v1/gep/runs/{run_id}/compare/{other_id}.csv"): {E, A, R},
    ("POST", "/api/v1/instruments"): {X},
    ("GET", "/api/v1/instruments"): EVERYONE,
    ("POST", "/api/v1/instruments/{instrument_id}/end-of-day"): {X},
    ("POST", "/api/v1/cash/deposits"): {X},
    ("POST", "/api/v1/cash/withdrawals"): {X},
    ("GET", "/api/v1/cash"): {B, W, N, X},
    ("POST", "/api/v1/orders"): {B, W, N},
    ("GET", "/api/v1/orders"): {B, W, N},
    ("GET", "/api/v1/orders/{order_id}"): {B, W, N},
    ("POST", "/api/v1/orders/{order_id}/cancel"): {B, W, N},
    ("POST", "/api/v1/orders/{order_id}/amend"): {B, W, N},
    ("GET", "/api/v1/fills"): {B, W, N},
    ("GET", "/public/v1/market/instruments/{instrument_id}/book"): PUBLIC,
    ("GET", "/public/v1/market/instruments/{instrument_id}/trades"): PUBLIC,
    ("GET", "/public/v1/market/instruments/{instrument_id}/bars"): PUBLIC,
    ("GET", "/public/v1/market/instruments/{instrument_id}/stream"): PUBLIC,
    ("GET", "/api/v1/reports/flows"): EVERYONE,
    ("GET", "/api/v1/reports/flows.csv"): EVERYONE,
    ("GET", "/api/v1/reports/flows.xlsx"): EVERYONE,
    ("POST", "/api/v1/block-trades"): {B, W, N},
    ("GET", "/api/v1/block-trades"): {B, W, N, X},
    ("GET", "/api/v1/block-trades/{block_trade_id}"): {B, W, N, X},
    ("POST", "/api/v1/block-trades/{block_trade_id}/confirm"): {B, W, N},
    ("POST", "/api/v1/block-trades/{block_trade_id}/reject"): {B, W, N},
    ("POST", "/api/v1/block-trades/{block_trade_id}/withdraw"): {B, W, N},
    ("POST", "/api/v1/block-trades/expire"): {X},
    ("POST", "/api/v1/auctions"): {B, W, N},
    ("POST", "/api/v1/auctions/{auction_id}/bids"): {B, W, N},
    ("GET", "/api/v1/auctions/{auction_id}/bids"): {B, W, N, X},
    ("POST", "/api/v1/auction-bids/{bid_id}/withdraw"): {B, W, N},
    ("POST", "/api/v1/auctions/{auction_id}/close"): {X},
    ("GET", "/public/v1/auctions"): PUBLIC,
    ("GET", "/public/v1/auctions/{auction_id}"): PUBLIC,
    ("GET", "/api/v1/audit/entries"): {A, R},
    ("GET", "/api/v1/audit/verify"): {A, R},
    ("GET", "/api/v1/audit/tree-head"): PUBLIC,
    ("GET", "/api/v1/audit/public-key"): PUBLIC,
    ("GET", "/api/v1/audit/checkpoint"): PUBLIC,
    ("GET", "/api/v1/audit/checkpoint/witnessed"): PUBLIC,
    ("GET", "/api/v1/audit/witnesses"): PUBLIC,
    ("GET", "/public/v1/regions"): PUBLIC,
    ("GET", "/public/v1/regions/boundaries"): PUBLIC,
    ("GET", "/api/v1/audit/proofs/inclusion"): PUBLIC,
    ("GET", "/api/v1/audit/proofs/consistency"): PUBLIC,
}

PATH_VALUES = {
    "{project_id}": "1",
    "{plot_id}": "1",
    "{import_id}": "1",
    "{retirement_id}": "1",
    "{code}": "NOPE",
    "{report_id}": "1",
    "{methodology_id}": "CCER-14-001",
    "{version}": "V01",
    "{task_id}": "00000000-0000-0000-0000-000000000000",
    "{run_id}": "1",
    "{other_id}": "1",
    "{table}": "summary",
    "{indicator}": "water_conservation",
    "{instrument_id}": "NOPE",
    "{order_id}": "1",
    "{block_trade_id}": "1",
    "{auction_id}": "1",
    "{bid_id}": "1",
    "{transfer_id}": "1",
    "{attachment_id}": "1",
}


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    schema = app.openapi()
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item}


def concrete(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    # A JSON array is never a valid body here, so allowed callers stop at validation (422) and
    # nothing is written; authorisation runs before body validation.
    kwargs = {"json": []} if method == "POST" else {}
    return client.request(method, concrete(path), headers=headers, **kwargs).status_code


def test_every_route_has_a_row(app: FastAPI) -> None:
    assert served_routes(app) == set(EXPECTED)


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_anonymous_calls(method: str, path: str, client: TestClient) -> None:
    status = call(client, method, path, {})
    if EXPECTED[(method, path)] == PUBLIC:
        assert status not in (401, 403)
    else:
        assert status == 401


@pytest.mark.parametrize("role", sorted(EVERYONE))
def test_role_matrix(role: str, client: TestClient, login: Login) -> None:
    headers = login(role)
    for (method, path), allowed in sorted(EXPECTED.items()):
        status = call(client, method, path, headers)
        if allowed == PUBLIC or role in allowed:
            assert status not in (401, 403), (role, method, path, status)
        else:
            assert status == 403, (role, method, path, status)


# Rows the services narrow to the caller's own organisation (and the registry), walked with resources of
# one organisation: (method, path) → role → status, on the forestry bureau's plot 1 and on a task the bureau
# queued; ``unknown`` is the status for an id that never existed.
OWN_ORGANISATION: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/api/v1/plots/{plot_id}/remeasure"): {B: 202, R: 202, W: 403},
    ("GET", "/api/v1/tasks/{task_id}"): {B: 200, R: 200, W: 404},
}
UNKNOWN_TASK = {B: 404, R: 404, W: 404}


def test_own_organisation_rows(client: TestClient, login: Login) -> None:
    queued = client.post("/api/v1/plots/1/remeasure", headers=login(B))
    assert queued.status_code == 202 and queued.json()["state"] == "SUCCESS", queued.text
    task_id = queued.json()["task_id"]
    for (method, path), statuses in OWN_ORGANISATION.items():
        concrete_path = path.replace("{plot_id}", "1").replace("{task_id}", task_id)
        for role, expected in statuses.items():
            response = client.request(method, concrete_path, headers=login(role))
            assert response.status_code == expected, (role, method, path, response.text)
            if expected == 200:
                assert response.json()["result"]["plot_id"] == 1
            if expected >= 400:
                assert "application/problem+json" in response.headers["content-type"]


def test_unknown_task_ids_are_404(client: TestClient, login: Login) -> None:
    for role, expected in UNKNOWN_TASK.items():  # Celery alone would answer 200 PENDING
        response = client.get(f"/api/v1/tasks/{PATH_VALUES['{task_id}']}", headers=login(role))
        assert response.status_code == expected and response.json()["type"].endswith("core/not-found")


def test_a_route_without_a_rule_stops_the_app(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    rogue = APIRouter()

    @rogue.get("/api/v1/rogue")
    def rogue_route() -> dict[str, str]:
        return {"oops": "no rule"}

    monkeypatch.setattr(shanhai.app, "ROUTERS", (*shanhai.app.ROUTERS, rogue))
    with pytest.raises(MissingRule, match="rogue_route"):
        shanhai.app.create_app(settings)


def test_route_names_are_unique(app: FastAPI) -> None:
    names = shanhai.app.route_names(shanhai.app.ROUTERS)
    assert len(names) == len(set(names))
    assert all(isinstance(r, APIRoute) for router in shanhai.app.ROUTERS for r in router.routes)
