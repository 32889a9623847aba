"""Plot imports: uploaded plot files processed as jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "plot_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("repair", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "running", "succeeded", "failed", name="import_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("features_total", sa.Integer(), nullable=True),
        sa.Column("features_done", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("plot_ids", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_plot_import_created_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_plot_import_project_id_project")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plot_import")),
    )
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plot_import_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plot_import_project_id"))

    op.drop_table("plot_import")
