"""Each queued task's owner, so that ``GET /tasks/{id}`` shows a task only to its organisation and the registry.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

Tasks queued before this revision have no owner row: they answer 404 (they were results of re-measurements
only, kept by the result backend for a day).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "task_owner",
        sa.Column("task_id", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=100), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_task_owner_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_task_owner_user_id_app_user")),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_task_owner")),
    )
    op.create_index(op.f("ix_task_owner_organisation_id"), "task_owner", ["organisation_id"], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f("ix_task_owner_organisation_id"), table_name="task_owner")
    op.drop_table("task_owner")
