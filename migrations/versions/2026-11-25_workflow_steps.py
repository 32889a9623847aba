"""Workflow steps of projects and monitoring reports (comments, evidence, separation of duties).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "workflow_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=30), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_workflow_step_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_workflow_step_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_step")),
    )
    with op.batch_alter_table("workflow_step", schema=None) as batch_op:
        batch_op.create_index("ix_workflow_step_subject", ["subject_kind", "subject_id"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("workflow_step", schema=None) as batch_op:
        batch_op.drop_index("ix_workflow_step_subject")

    op.drop_table("workflow_step")
