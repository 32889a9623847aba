"""Every signed tree head is stored, insert-only, for the alarm on a rewritten or truncated log (ADR 028).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

``audit_signed_head`` keeps one row per tree size (the first head signed over it). Triggers refuse ``UPDATE``
and ``DELETE`` on both databases, and ``TRUNCATE`` on PostgreSQL, whatever the role: a superuser bypasses
grants but not triggers. On PostgreSQL ``PUBLIC`` loses every privilege on the table but ``SELECT`` and
``INSERT``; in production an operator gives the table and its trigger function to a separate owner role so
that the application's role cannot drop the trigger (ADR 028 has the statements).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

MESSAGE = "audit_signed_head is insert-only: a signed tree head is never updated or deleted"

POSTGRES_UP = (
    f"""
    CREATE FUNCTION audit_signed_head_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    "CREATE TRIGGER audit_signed_head_no_change BEFORE UPDATE OR DELETE ON audit_signed_head "
    "FOR EACH ROW EXECUTE FUNCTION audit_signed_head_refuse()",
    "CREATE TRIGGER audit_signed_head_no_truncate BEFORE TRUNCATE ON audit_signed_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_signed_head_refuse()",
    "REVOKE ALL ON audit_signed_head FROM PUBLIC",
    "GRANT SELECT, INSERT ON audit_signed_head TO PUBLIC",
)
POSTGRES_DOWN = (
    "DROP TRIGGER audit_signed_head_no_truncate ON audit_signed_head",
    "DROP TRIGGER audit_signed_head_no_change ON audit_signed_head",
    "DROP FUNCTION audit_signed_head_refuse()",
)
SQLITE_UP = (
    "CREATE TRIGGER audit_signed_head_no_update BEFORE UPDATE ON audit_signed_head "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    "CREATE TRIGGER audit_signed_head_no_delete BEFORE DELETE ON audit_signed_head "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
)
SQLITE_DOWN = ("DROP TRIGGER audit_signed_head_no_delete", "DROP TRIGGER audit_signed_head_no_update")


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "audit_signed_head",
        sa.Column("tree_size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.CheckConstraint("tree_size >= 0", name=op.f("ck_audit_signed_head_tree_size_not_negative")),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_audit_signed_head")),
    )
    for statement in POSTGRES_UP if op.get_bind().dialect.name == "postgresql" else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    """Revert."""
    for statement in POSTGRES_DOWN if op.get_bind().dialect.name == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("audit_signed_head")
