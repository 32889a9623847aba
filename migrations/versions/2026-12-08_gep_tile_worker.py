"""A GEP run's tile records the worker that computed it (issue 24: the run page shows progress per worker).

``worker``: the Celery worker's host name (``celery@host``), or ``process:<host>:<pid>`` when computed in a
process without a worker (seeding, the embedded default); ``NULL`` for tiles computed before this revision.

Revision ID: 0030
Revises: 0027
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply: earlier tiles name no worker."""
    with op.batch_alter_table("gep_run_tile", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Revert, in place (SQLite 3.35 and later drops a column itself)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE gep_run_tile DROP COLUMN worker")
    else:
        op.drop_column("gep_run_tile", "worker")
