"""Concurrency on PostgreSQL: processes submitting crossing orders for one instrument, one of them killed.

CI version of the issue's acceptance test: 4 processes for 4 s, plus a fifth killed by ``SIGKILL`` after
1.5 s and restarted (``benchmarks/trading_concurrency.py`` runs 8 × 30 s). Checked: no double fill, no lost
acknowledged order, a consecutive journal, conserved cash and tonnes, and a book rebuilt from the journal
that equals the open orders.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.seed import seed_demo
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from tests.conftest import POSTGRES_URL, SAMPLES, service_unavailable

pytestmark = pytest.mark.postgres
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "trading_concurrency.py"


@pytest.fixture(scope="module")
def trading_pg_url() -> Iterator[str]:
    url = make_url(POSTGRES_URL)
    url = url.set(database=f"{url.database}_{os.getpid()}_trading")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    except Exception as error:
        admin.dispose()
        service_unavailable("PostgreSQL", error)
    rendered = url.render_as_string(hide_password=False)
    upgrade(rendered)
    engine = make_engine(rendered)
    with make_session_factory(engine)() as session:
        seed_demo(session, SAMPLES, clock=FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC)))
    engine.dispose()
    yield rendered
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def test_concurrent_order_entry_with_a_killed_process(trading_pg_url: str) -> None:
    spec = importlib.util.spec_from_file_location("trading_concurrency", BENCHMARK)
    assert spec is not None and spec.loader is not None
    load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load)
    figures = load.run(trading_pg_url, processes=4, seconds=4.0, kill_after=1.5)
    assert figures["acknowledged_places"] > 20 and figures["trades"] > 0
