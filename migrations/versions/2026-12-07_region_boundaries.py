"""Administrative boundaries (imported datasets) and stored plot warnings (issue 14, ADR 021).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import geodata.sqltypes

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply: ``region_dataset`` and ``region_boundary`` (empty: the shipped file is the fallback); ``plot.warnings``."""
    op.create_table(
        "region_dataset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("licence", sa.Text(), nullable=False),
        sa.Column("datum", sa.Text(), nullable=False),
        sa.Column("tolerance_m", sa.Float(), nullable=False),
        sa.Column("as_of", sa.String(length=100), nullable=False),
        sa.Column("feature_count", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_region_dataset")),
    )
    op.create_table(
        "region_boundary",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("geometry", geodata.sqltypes.MultiPolygonGeometry(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_region_boundary")),
    )
    # a plain ADD COLUMN (no table rebuild on SQLite, which would drop the plot R-tree triggers)
    op.add_column("plot", sa.Column("warnings", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    """Revert."""
    op.drop_column("plot", "warnings")
    op.drop_table("region_boundary")
    op.drop_table("region_dataset")
