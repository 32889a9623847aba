"""Monitoring-report storage: exact decimals on both databases, and the demo reports on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from api.seed import seed_demo
from carbon.models import MonitoringReport
from carbon.monitoring_records import recompute, record_hash
from core.clock import FixedClock
from core.db import make_engine
from core.sqltypes import ExactDecimal

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
VALUES = [Decimal("0.001"), Decimal("-833.884"), Decimal("999999999999.999"), Decimal("1704")]


def round_trip(engine: Engine, values: list[Decimal] = VALUES) -> list[Decimal | None]:
    metadata = MetaData()
    table = Table(
        "exact_decimal_probe", metadata, Column("id", Integer, primary_key=True), Column("tonnes", ExactDecimal(20, 3))
    )
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(table.insert(), [{"id": i, "tonnes": v} for i, v in enumerate(values)])
        found = list(conn.scalars(select(table.c.tonnes).order_by(table.c.id)))
        metadata.drop_all(conn)
    return found


def test_exact_decimals_round_trip_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        found = round_trip(engine)
    finally:
        engine.dispose()
    assert found == VALUES and all(isinstance(v, Decimal) for v in found)
    assert [str(v) for v in found] == ["0.001", "-833.884", "999999999999.999", "1704.000"]


def test_floats_are_refused() -> None:
    column = ExactDecimal(20, 3)
    with pytest.raises(TypeError, match="never float"):
        column.process_bind_param(0.1, postgresql.dialect())  # type: ignore[arg-type]
    assert column.process_bind_param(Decimal("1.5"), postgresql.dialect()) == Decimal("1.500")
    assert column.process_bind_param(None, postgresql.dialect()) is None
    assert column.process_result_value(None, postgresql.dialect()) is None


def test_sqlite_refuses_what_it_cannot_store_exactly(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        with pytest.raises(StatementError, match="15 significant digits"):
            round_trip(engine, [Decimal("12345678901234567.125")])
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_exact_decimals_round_trip_on_postgres(pg_engine: Engine) -> None:
    values = [*VALUES, Decimal("12345678901234567.125")]
    found = round_trip(pg_engine, values)
    assert found == values and all(isinstance(v, Decimal) for v in found)


@pytest.fixture
def pg_session(pg_engine: Engine) -> Iterator[Session]:
    connection = pg_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()
    outer.rollback()
    connection.close()


@pytest.mark.postgres
def test_demo_reports_on_postgres_store_numeric_and_recompute(pg_session: Session) -> None:
    assert seed_demo(pg_session, SAMPLES, clock=FixedClock(datetime(2026, 11, 25, tzinfo=UTC)))
    reports = list(pg_session.scalars(select(MonitoringReport).order_by(MonitoringReport.id)))
    assert len(reports) == 2
    for report in reports:
        pg_session.refresh(report)
        assert isinstance(report.net_removal_tco2e, Decimal)
        assert report.net_removal_tco2e == Decimal(report.record["result"]["net_removal_tco2e"])
        assert record_hash(report.record) == report.record_sha256 == recompute(report.record)
        assert report.hash_scheme == report.record["hash_scheme"] == "rfc8785"
