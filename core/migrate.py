"""Run the Alembic migrations of the ``migrations`` package against a database URL."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from core.db import make_engine


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
