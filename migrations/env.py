"""Alembic environment: runs migrations on the connection or URL given by ``core.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import carbon.ledger
import carbon.models
import carbon.reversals.models
import core.audit
import core.audit_heads
import core.auth
import core.inbox
import core.sessions
import core.task_owners
import core.witnessing
import ecovalue.models
import geodata.models
import gep.models
import trading.models
from core.db import Base, make_engine
from core.migrate import compare_options

# Imported for their side effect of registering tables on Base.metadata (autogenerate compares them).
_MODELS = (
    core.audit,
    core.audit_heads,
    core.auth,
    geodata.models,
    carbon.ledger,
    carbon.models,
    gep.models,
    trading.models,
    core.task_owners,
    core.witnessing,
    core.inbox,
    carbon.reversals.models,
    ecovalue.models,
)
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        **compare_options(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on ``config.attributes['connection']`` or on a new engine for the URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no database URL configured for migrations")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `shanhai db upgrade`")
run_migrations_online()
