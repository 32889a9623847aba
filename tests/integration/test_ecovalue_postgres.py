"""The eco-compensation and collateral demo on PostgreSQL + PostGIS: locks, NUMERIC readings, recompute.

Marked ``postgres``: under CI=true this fails if the server is missing; elsewhere it skips.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from api.seed import seed_demo, seed_gep, seed_rasters
from core.audit import verify_chain
from core.auth import User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.inbox import messages_for
from ecovalue.demo import seed_ecovalue
from ecovalue.models import Decision, Obligation, Reading, StatementStatus
from ecovalue.rights import get_right
from ecovalue.statements import Respond, get_statement, rebuild_all, respond
from tests.conftest import SAMPLES, fresh_postgres_database

pytestmark = pytest.mark.postgres

CLOCK = FixedClock(datetime(2027, 4, 1, tzinfo=UTC))


def test_the_demo_on_postgres(tmp_path: Path) -> None:
    with fresh_postgres_database("_eco") as url:
        engine = make_engine(url)
        try:
            factory = make_session_factory(engine)
            with factory() as session:
                seed_demo(session, SAMPLES, clock=CLOCK)
                seed_rasters(session, SAMPLES / "rasters", clock=CLOCK)
                seed_gep(session, SAMPLES, raster_dir=SAMPLES / "rasters", data_dir=tmp_path, clock=CLOCK)
                ids = seed_ecovalue(session, raster_dir=SAMPLES / "rasters", data_dir=tmp_path, clock=CLOCK)
                assert ids is not None
                assert seed_ecovalue(session, raster_dir=SAMPLES / "rasters", data_dir=tmp_path, clock=CLOCK) is None
            with factory() as session:
                assert [r.matches for r in rebuild_all(session)] == [True, True]
                readings = session.scalars(select(Reading.value).order_by(Reading.sampled_on))
                assert next(iter(readings)) == Decimal("0.820000")
                users = {u.username: principal_of(u, "test") for u in session.scalars(select(User))}
                statement_id = ids.statements["JY-YZ-WQ"]
                for username in ("yz-ecology", "jy-ecology"):
                    respond(session, statement_id, Decision.CONFIRM, Respond(), actor=users[username], clock=CLOCK)
                assert get_statement(session, statement_id).status is StatementStatus.CONFIRMED
                [obligation] = session.scalars(select(Obligation).where(Obligation.statement_id == statement_id))
                assert (obligation.payer_region, obligation.amount_fen) == ("640424", 260_000_000)
                right = get_right(session, ids.right_id)
                assert right.value_fen < right.valuations[0].value_fen
                kinds = [m.kind for m in messages_for(session, users["fj-bank"])]
                assert kinds == ["eco_pledge.alert", "eco_pledge.requested"]
                assert verify_chain(session).ok
        finally:
            engine.dispose()
