"""GEP accounting: region layers and regions, accounting runs and their tiles.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import geodata.sqltypes

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "gep_region_layer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "level",
            sa.Enum("county", "township", name="gep_region_level", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gep_region_layer")),
        sa.UniqueConstraint("name", name=op.f("uq_gep_region_layer_name")),
    )
    op.create_table(
        "gep_region",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("geometry", geodata.sqltypes.MultiPolygonGeometry(), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"], ["gep_region_layer.id"], name=op.f("fk_gep_region_layer_id_gep_region_layer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gep_region")),
        sa.UniqueConstraint("layer_id", "code", name="uq_gep_region_layer_code"),
    )
    with op.batch_alter_table("gep_region", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gep_region_layer_id"), ["layer_id"], unique=False)

    op.create_table(
        "gep_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("region_layer_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "running", "succeeded", "failed", name="gep_run_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("valuation", sa.JSON(), nullable=False),
        sa.Column("tiles_total", sa.Integer(), nullable=False),
        sa.Column("tiles_done", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("output_dir", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["region_layer_id"], ["gep_region_layer.id"], name=op.f("fk_gep_run_region_layer_id_gep_region_layer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gep_run")),
    )
    with op.batch_alter_table("gep_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gep_run_region_layer_id"), ["region_layer_id"], unique=False)

    op.create_table(
        "gep_run_tile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("window", sa.JSON(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["gep_run.id"], name=op.f("fk_gep_run_tile_run_id_gep_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gep_run_tile")),
        sa.UniqueConstraint("run_id", "index", name="uq_gep_run_tile_index"),
    )
    with op.batch_alter_table("gep_run_tile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gep_run_tile_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("gep_run_tile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gep_run_tile_run_id"))

    op.drop_table("gep_run_tile")
    with op.batch_alter_table("gep_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gep_run_region_layer_id"))

    op.drop_table("gep_run")
    with op.batch_alter_table("gep_region", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gep_region_layer_id"))

    op.drop_table("gep_region")
    op.drop_table("gep_region_layer")
