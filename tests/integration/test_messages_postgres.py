"""Messages a person can act on, on PostgreSQL: refusals name the organisation with CNY amounts, draft
projects stay off the public registry, a draft project's report is filed with its warning (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from starlette.requests import Request

from api.pagination import PageParams
from api.routers.registry import list_public_projects
from api.seed import seed_demo
from carbon.ledger import transfer
from carbon.models import Scheme
from carbon.monitoring_records import lifecycle_warnings
from carbon.projects import CreateProject, create_project
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import InsufficientFunds, InsufficientUnits
from tests.conftest import SAMPLES, fresh_postgres_database
from trading import cash

pytestmark = pytest.mark.postgres
CLOCK = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def messages_pg_url() -> Iterator[str]:
    with fresh_postgres_database("_messages") as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=CLOCK)
        engine.dispose()
        yield url


def test_refusals_name_the_organisation_and_show_cny(messages_pg_url: str) -> None:
    engine = make_engine(messages_pg_url)
    with make_session_factory(engine)() as session:
        who = {u.organisation.kind: u for u in session.scalars(select(User))}
        bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
        with pytest.raises(InsufficientUnits) as units:
            transfer(session, from_organisation_id=bureau.organisation_id,
                     to_organisation_id=enterprise.organisation_id, quantity_t=7,
                     actor=principal_of(bureau, "test"), clock=CLOCK)  # fmt: skip
        session.rollback()
        assert f"{bureau.organisation.name} (organisation {bureau.organisation_id})" in units.value.detail
        assert units.value.extensions()["needed_t"] == 7
        account = cash.cash_account(session, enterprise.organisation_id, now=CLOCK.now())
        with pytest.raises(InsufficientFunds) as funds:
            cash.check_hold(account, 123_456)
        assert enterprise.organisation.name in funds.value.detail and "1,234.56 CNY" in funds.value.detail
        assert funds.value.extensions()["needed_fen"] == 123_456
        session.rollback()
    engine.dispose()


def test_draft_projects_are_unlisted_and_warned(messages_pg_url: str) -> None:
    engine = make_engine(messages_pg_url)
    with make_session_factory(engine)() as session:
        bureau = next(u for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.FORESTRY_BUREAU)
        draft = create_project(
            session,
            CreateProject(name="Draft forest (test)", scheme=Scheme.FORESTRY_CARBON_TICKET, province_code="64",
                          crediting_start=date(2026, 1, 1), crediting_end=date(2046, 1, 1)),
            actor=principal_of(bureau, "test"), clock=CLOCK,
        )  # fmt: skip
        request = Request({"type": "http", "method": "GET", "scheme": "http", "server": ("testserver", 80),
                           "path": "/public/v1/projects", "query_string": b"", "headers": []})  # fmt: skip
        page = list_public_projects(session, request=request, page=PageParams(limit=200))
        listed = [feature.properties.code for feature in page.features]
        assert listed == ["SH-64-000001", "SH-64-000002"] and draft.code not in listed  # the two demo projects
        [warning] = lifecycle_warnings(draft)
        assert warning["code"] == "project_not_registered" and "cannot be issued" in warning["message"]
    engine.dispose()
