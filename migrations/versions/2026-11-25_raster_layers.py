"""Raster layers registered by name from the server raster directory.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "raster_layer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("categorical", "continuous", name="raster_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("units", sa.String(length=50), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("crs", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("transform", sa.JSON(), nullable=False),
        sa.Column("nodata", sa.Float(), nullable=True),
        sa.Column("class_names", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raster_layer")),
        sa.UniqueConstraint("name", name=op.f("uq_raster_layer_name")),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("raster_layer")
