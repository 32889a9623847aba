"""Evidence attachments of projects and monitoring reports: what each file is, who attached it, its SHA-256.

The bytes live outside the database in a content-addressed store (``carbon.evidence``, ADR 037); the row
names them by SHA-256, which the audit entry of the attachment also records.

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "evidence_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "forest_right_certificate",
                "land_use_document",
                "field_sheet",
                "photo",
                "land_cover_before",
                "land_cover_after",
                "verification_report",
                "other",
                name="evidence_kind",
                native_enum=False,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_evidence_attachment_size_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_evidence_attachment_created_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_evidence_attachment_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_evidence_attachment_project_id_project")),
        sa.ForeignKeyConstraint(
            ["report_id"], ["monitoring_report.id"], name=op.f("fk_evidence_attachment_report_id_monitoring_report")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_attachment")),
    )
    op.create_index(op.f("ix_evidence_attachment_project_id"), "evidence_attachment", ["project_id"], unique=False)
    op.create_index(op.f("ix_evidence_attachment_report_id"), "evidence_attachment", ["report_id"], unique=False)
    op.create_index(op.f("ix_evidence_attachment_sha256"), "evidence_attachment", ["sha256"], unique=False)


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f("ix_evidence_attachment_sha256"), table_name="evidence_attachment")
    op.drop_index(op.f("ix_evidence_attachment_report_id"), table_name="evidence_attachment")
    op.drop_index(op.f("ix_evidence_attachment_project_id"), table_name="evidence_attachment")
    op.drop_table("evidence_attachment")
