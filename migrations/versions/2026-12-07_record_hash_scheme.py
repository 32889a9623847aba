"""RFC 8785 records: ``monitoring_report.hash_scheme`` (ADR 033, "Records").

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-07

Reports filed before this revision keep the platform's own canonical JSON: the new column's server default
names it (``shanhai-json/1``), so their records recompute exactly as before. New reports are hashed under
RFC 8785 and their records name it (``hash_scheme``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("monitoring_report") as batch:
        batch.add_column(
            sa.Column("hash_scheme", sa.String(length=20), server_default="shanhai-json/1", nullable=False)
        )
        batch.create_check_constraint("hash_scheme_known", "hash_scheme IN ('shanhai-json/1', 'rfc8785')")


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("monitoring_report") as batch:
        batch.drop_constraint("hash_scheme_known", type_="check")
        batch.drop_column("hash_scheme")
