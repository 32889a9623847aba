"""Monitoring reports: a methodology result per project, plots and period, with its trace and hash.

Tonnes are NUMERIC(20, 3) (exact decimals; ``core.sqltypes.ExactDecimal`` in the ORM), whole units BIGINT.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "monitoring_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("methodology_id", sa.String(length=100), nullable=False),
        sa.Column("methodology_version", sa.String(length=40), nullable=False),
        sa.Column("parameter_set_id", sa.String(length=100), nullable=False),
        sa.Column("parameter_set_version", sa.String(length=40), nullable=False),
        sa.Column("parameter_set_sha256", sa.String(length=64), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("provisional_reason", sa.Text(), nullable=False),
        sa.Column("plot_ids", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("record_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Enum("submitted", name="report_status", native_enum=False, length=20), nullable=False),
        sa.Column("gross_removal_tco2e", sa.Numeric(precision=20, scale=3), nullable=False),
        sa.Column("net_removal_tco2e", sa.Numeric(precision=20, scale=3), nullable=False),
        sa.Column("uncertainty_deduction_tco2e", sa.Numeric(precision=20, scale=3), nullable=False),
        sa.Column("creditable_tco2e", sa.Numeric(precision=20, scale=3), nullable=False),
        sa.Column("buffer_units_t", sa.BigInteger(), nullable=False),
        sa.Column("issuable_units_t", sa.BigInteger(), nullable=False),
        sa.Column("remainder_tco2e", sa.Numeric(precision=20, scale=3), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by_user_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "buffer_units_t >= 0 AND issuable_units_t >= 0", name=op.f("ck_monitoring_report_units_not_negative")
        ),
        sa.CheckConstraint("period_end > period_start", name=op.f("ck_monitoring_report_period_order")),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_monitoring_report_project_id_project")),
        sa.ForeignKeyConstraint(
            ["submitted_by_user_id"], ["app_user.id"], name=op.f("fk_monitoring_report_submitted_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_report")),
    )
    with op.batch_alter_table("monitoring_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitoring_report_project_id"), ["project_id"], unique=False)
        batch_op.create_index(
            "ix_monitoring_report_project_period", ["project_id", "period_start", "period_end"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitoring_report_record_sha256"), ["record_sha256"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("monitoring_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_report_record_sha256"))
        batch_op.drop_index("ix_monitoring_report_project_period")
        batch_op.drop_index(batch_op.f("ix_monitoring_report_project_id"))

    op.drop_table("monitoring_report")
