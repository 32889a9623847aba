"""Witnessed tree heads and RFC 8785 entries: ``audit_cosignature`` and ``audit_log.scheme`` (ADR 033).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Entries written before this revision keep the platform's own canonical JSON: the new column's server default
names it (``shanhai-json/1``), so they verify exactly as before. New entries are written under RFC 8785.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("scheme", sa.String(length=20), server_default="shanhai-json/1", nullable=False))
        batch.create_check_constraint("scheme_known", "scheme IN ('shanhai-json/1', 'rfc8785')")
    op.create_table(
        "audit_cosignature",
        sa.Column("tree_size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.CheckConstraint("tree_size >= 0", name=op.f("ck_audit_cosignature_tree_size_not_negative")),
        sa.PrimaryKeyConstraint("tree_size", "witness", name=op.f("pk_audit_cosignature")),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("audit_cosignature")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("scheme_known", type_="check")
        batch.drop_column("scheme")
