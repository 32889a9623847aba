"""Matcher cursor: the state hash is a checkpoint taken every few hundred commands (``hash_seq``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply: every existing hash was taken at the cursor, so ``hash_seq`` starts as ``applied_seq``."""
    with op.batch_alter_table("matcher_cursor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hash_seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE matcher_cursor SET hash_seq = applied_seq")
    with op.batch_alter_table("matcher_cursor", schema=None) as batch_op:
        batch_op.alter_column("hash_seq", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    """Revert (the hash then no longer matches ``applied_seq``: the next batch rewrites it)."""
    with op.batch_alter_table("matcher_cursor", schema=None) as batch_op:
        batch_op.drop_column("hash_seq")
