"""Plot imports remember the declared-area unit the uploader stated (``area_unit``: mu | ha, or none).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply: existing jobs stated no unit (``NULL``: from the column names, else mu)."""
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area_unit", sa.String(length=2), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.drop_column("area_unit")
