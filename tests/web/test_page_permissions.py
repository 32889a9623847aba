"""Every page × every role, walked from the app's routes and the one permissions table (as the API matrix test)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from access import permissions
from core.auth import OrgKind
from shanhai.app import create_app
from tests.conftest import USER_OF_ROLE
from tests.web.helpers import log_in
from web.app import PAGE_ROUTERS

#: A value for each path parameter of a page (a missing certificate is a 404 page: allowed, not refused).
SAMPLES = {"code": "SH-64-000001", "report_id": "1", "project_id": "1", "plot_id": "1", "import_id": "1",
           "z": "0", "x": "0", "y": "0", "methodology": "FJ-FORESTRY-CARBON-TICKET", "kind": "csv",
           "attachment_id": "1", "instrument_id": "FCT-2025", "auction_id": "1", "run_id": "1", "before_id": "1",
           "indicator": "water_conservation", "table": "summary", "event_id": "1"}  # fmt: skip
VERIFY_SAMPLE = {"/verify/{code}": "/verify/ZZZZ-0000"}


def page_routes(_app: FastAPI) -> list[APIRoute]:
    """The page routes the composition root mounts (FastAPI keeps included routers nested)."""
    return [r for router in PAGE_ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def concrete(route: APIRoute) -> str:
    if route.path in VERIFY_SAMPLE:
        return VERIFY_SAMPLE[route.path]
    path = route.path
    for name, value in SAMPLES.items():
        path = path.replace("{" + name + "}", value)
    return path


def expected(rule: permissions.Rule | None, role: OrgKind | None, path: str = "") -> set[int]:
    if rule == permissions.PUBLIC:
        return {200, 404}
    if role is None:
        return {303}  # to the login form
    if (
        rule is not None
        and role in rule
        and any(f"{{{name}}}" in path for name in ("project_id", "attachment_id", "instrument_id", "event_id"))
    ):
        # the demo project is the bureau's: another proponent finds no such project (its existence not revealed);
        # no plot import, attachment 1, instrument or loss event exists in the seed; an empty tile is 204
        return {200, 204, 404}
    if rule is not None and role in rule and "{run_id}" in path:
        # the seeded GEP run's COGs are not on this test's data directory (its tiles and rasters are 404); the
        # pixel read needs its lon/lat (422 without)
        return {200, 404, 422} if path.endswith("/value") else {200, 404}
    return {200} if rule is not None and role in rule else {403}


def test_every_page_has_a_rule_and_every_page_rule_a_page(app: FastAPI) -> None:
    names = {r.name for r in page_routes(app)}
    assert names == {name for name in permissions.RULES if permissions.is_page(name)}
    assert all(r.include_in_schema is False for r in page_routes(app))  # pages are not in the OpenAPI document


def test_every_get_page_for_every_role(app: FastAPI, client: TestClient) -> None:
    gets = [r for r in page_routes(app) if "GET" in r.methods]
    seen = []
    for role in [None, *OrgKind]:
        if role is not None and role.value not in USER_OF_ROLE:
            continue
        client.cookies.clear()
        if role is not None:
            assert log_in(client, role.value).status_code == 303
        for route in gets:
            status = client.get(concrete(route), follow_redirects=False).status_code
            seen.append((route.name, role, status))
            assert status in expected(permissions.RULES.get(route.name), role, route.path), (route.path, role, status)
    assert len({name for name, _, _ in seen}) == len(gets) >= 8


def test_a_page_missing_from_the_table_stops_the_app(monkeypatch: object, settings: object) -> None:
    import pytest

    patch = pytest.MonkeyPatch()
    patch.delitem(permissions.RULES, "page_verify")
    try:
        with pytest.raises(permissions.MissingRule, match="page_verify"):
            create_app(settings)  # type: ignore[arg-type]
    finally:
        patch.undo()
