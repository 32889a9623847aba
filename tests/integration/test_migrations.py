"""One migration head, and migrations that agree with the models on SQLite and on PostgreSQL + PostGIS.

Several branches add tables at the same time; these tests fail when two of them both extend the same revision
(two heads) or when a model and its migration disagree. They check whatever revisions are there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

import carbon.ledger
import carbon.models
import carbon.reversals.models
import core.audit
import core.auth
import core.inbox
import ecovalue.models
import geodata.models
import gep.models
import trading.models
from core.db import Base, make_engine
from core.migrate import alembic_config, heads, schema_diff, upgrade
from geodata.sqltypes import MultiPolygonGeometry
from tests.conftest import fresh_postgres_database

# Imported for their side effect of registering tables on Base.metadata, as migrations/env.py does.
MODELS = (core.audit, core.auth, core.inbox, geodata.models, carbon.ledger, carbon.models, carbon.reversals.models,
          gep.models, trading.models, ecovalue.models)  # fmt: skip


def test_the_migrations_have_exactly_one_head() -> None:
    assert len(heads()) == 1, f"several Alembic heads {heads()}: relink the newest revision's down_revision"


def test_a_fork_shows_as_two_heads(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for revision, down in (("a", None), ("b", "a"), ("c", "a")):
        (versions / f"{revision}.py").write_text(f"revision = {revision!r}\ndown_revision = {down!r}\n")
    config = alembic_config("sqlite://")
    config.set_main_option("script_location", str(tmp_path))
    assert sorted(heads(config)) == ["b", "c"]


def _assert_models_match(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = schema_diff(connection, Base.metadata)
    assert diff == [], "the models and the migrations disagree; add a migration for:\n" + "\n".join(map(str, diff))


def test_a_migrated_sqlite_database_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        _assert_models_match(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def migrated_postgres() -> Iterator[Engine]:
    with fresh_postgres_database("_schema") as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.mark.postgres
def test_a_migrated_postgres_database_matches_the_models(migrated_postgres: Engine) -> None:
    _assert_models_match(migrated_postgres)


@pytest.mark.postgres
def test_every_geometry_column_is_a_postgis_multipolygon(migrated_postgres: Engine) -> None:
    # schema_diff cannot compare these types (PostGIS geometry reflects as NullType), so they are checked here.
    columns = [
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, MultiPolygonGeometry)
    ]
    assert columns, "no geometry column found"
    with migrated_postgres.connect() as connection:
        for table, column in columns:
            column_type = connection.scalar(
                text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                    " WHERE attrelid = CAST(:table AS regclass) AND attname = :column"
                ),
                {"table": table, "column": column},
            )
            assert column_type == "geometry(MultiPolygon,4490)", (table, column, column_type)
