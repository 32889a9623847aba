"""Retirements keep the signed tree head that first included their audit entry.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Existing retirements keep NULL here: their heads were signed on each request and never stored. The first read of
their certificate keeps the head of the log's prefix ending with their entry, signed then (ADR 023).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = ("tree_head_timestamp", "tree_head_root_hash", "tree_head_key_id", "tree_head_signature")
WHOLE = " AND ".join(f"(audit_seq IS NULL) = ({column} IS NULL)" for column in COLUMNS)


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("retirement") as batch:
        batch.add_column(sa.Column("audit_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("tree_head_timestamp", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("tree_head_root_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("tree_head_key_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("tree_head_signature", sa.String(length=128), nullable=True))
        batch.create_check_constraint("tree_head_whole", WHOLE)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("retirement") as batch:
        batch.drop_constraint("tree_head_whole", type_="check")
        for column in ("tree_head_signature", "tree_head_key_id", "tree_head_root_hash", "tree_head_timestamp"):
            batch.drop_column(column)
        batch.drop_column("audit_seq")
