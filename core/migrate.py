"""Run the Alembic migrations of the ``migrations`` package against a database URL, and check them.

Several branches add tables at the same time, so two things are checked (``tests/integration/test_migrations.py``):
the migrations have exactly one head (:func:`heads`), and a database migrated to it matches the models
(:func:`schema_diff`, Alembic's autogenerate comparison, with the filters of :func:`compare_options` that
``migrations/env.py`` uses too).
"""

from __future__ import annotations

import warnings
from importlib import resources
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Index, MetaData, inspect
from sqlalchemy.exc import SAWarning

from core.db import make_engine

#: Tables owned by the database, not by the models: PostGIS's catalogue of reference systems.
EXTENSION_TABLES = frozenset({"spatial_ref_sys"})


def alembic_config(url: str) -> Config:
    """Return an Alembic config for ``url`` pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def current_tables(url: str) -> list[str]:
    """Return the table names present in the database at ``url``."""
    engine = make_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def heads(config: Config | None = None) -> tuple[str, ...]:
    """Return the head revisions of the migrations (one, unless two branches both added a revision)."""
    script = ScriptDirectory.from_config(config or alembic_config("sqlite://"))
    return tuple(script.get_heads())


def compare_options(dialect_name: str) -> dict[str, Any]:
    """Return the autogenerate options of ``dialect_name``: compare types, and skip what models do not own.

    * tables: SQLite's R-tree virtual tables (``plot_rtree*``, ``geodata.overlap.rtree_ddl``) are kept by
      triggers written in the migrations, and PostGIS owns ``spatial_ref_sys``;
    * indexes: a GiST index (``postgresql_using="gist"``) exists on PostgreSQL only — the model declares it with
      ``ddl_if(dialect="postgresql")``, which autogenerate does not read — so it is not expected elsewhere.
    """

    def include_name(name: str | None, kind: str, _parent: object) -> bool:
        if kind != "table" or name is None:
            return True
        return "_rtree" not in name and name not in EXTENSION_TABLES

    def include_object(obj: object, _name: str | None, kind: str, reflected: bool, _compare_to: object) -> bool:
        postgresql_only = isinstance(obj, Index) and obj.dialect_options["postgresql"].get("using") == "gist"
        return not (kind == "index" and not reflected and postgresql_only and dialect_name != "postgresql")

    return {"compare_type": True, "include_name": include_name, "include_object": include_object}


def schema_diff(connection: Connection, metadata: MetaData) -> list[Any]:
    """Return Alembic's differences between the database on ``connection`` and ``metadata`` (empty = agree).

    PostGIS ``geometry`` columns reflect as ``NullType`` with a warning (SQLAlchemy does not know the type), so
    their type is not compared here; ``tests/integration/test_migrations.py`` checks it with ``format_type``.
    """
    context = MigrationContext.configure(connection, opts=compare_options(connection.dialect.name))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Did not recognize type 'geometry'", category=SAWarning)
        return list(compare_metadata(context, metadata))
