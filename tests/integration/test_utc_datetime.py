"""``UtcDateTime`` gives back aware UTC instants on SQLite and PostgreSQL alike, and refuses naive ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from core.db import make_engine
from core.sqltypes import UtcDateTime

BEIJING = timezone(timedelta(hours=8))
metadata = MetaData()
moments = Table("test_utc_moments", metadata, Column("id", Integer, primary_key=True), Column("at", UtcDateTime()))


def check_round_trip(engine: Engine) -> None:
    with engine.connect() as conn:
        moments.create(conn)
        try:
            conn.execute(insert(moments), [{"id": 1, "at": datetime(2026, 11, 25, 17, 30, tzinfo=BEIJING)}])
            at = conn.scalar(select(moments.c.at))
            assert at == datetime(2026, 11, 25, 9, 30, tzinfo=UTC) and at.utcoffset() == timedelta(0)
            assert at.isoformat() == "2026-11-25T09:30:00+00:00"
            with pytest.raises(StatementError, match="naive"):
                conn.execute(insert(moments), [{"id": 2, "at": datetime(2026, 11, 25, 9, 30)}])
        finally:
            conn.rollback()
            moments.drop(conn, checkfirst=True)
            conn.commit()


def test_sqlite_returns_aware_utc() -> None:
    engine = make_engine("sqlite://")
    check_round_trip(engine)
    engine.dispose()


@pytest.mark.postgres
def test_postgres_returns_aware_utc(pg_engine: Engine) -> None:
    check_round_trip(pg_engine)
