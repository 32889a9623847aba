"""Registry: per-class rules (receiver acceptance, reversals), pending transfers, open-block indexes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OPEN = sa.text("closed_at IS NULL")

#: The registry's default rules per credit class (ADR 016); the registry changes them by updating the rows.
POLICIES = [
    ("FCT", False, 7, "buffer_then_proponent",
     "Fujian forestry carbon ticket: transfers complete at once; the issuing bureau backs a loss beyond the buffer."),
    ("CCA", True, 7, "buffer_then_proponent",
     "CCER-eligible afforestation: the receiver confirms each transfer, as in the national registry."),
    ("ERS", True, 7, "buffer_then_proponent",
     "Ecological restoration sink (local, provisional): the receiver acknowledges the provisional status."),
    ("OFS", False, 7, "buffer_only",
     "Ocean fishery sink: losses are pooled over the sea area, so they come from the buffer pool only."),
]  # fmt: skip


def upgrade() -> None:
    """Apply."""
    policy = op.create_table(
        "credit_class_policy",
        sa.Column("credit_class", sa.String(length=10), nullable=False),
        sa.Column("requires_acceptance", sa.Boolean(), nullable=False),
        sa.Column("acceptance_days", sa.Integer(), nullable=False),
        sa.Column(
            "reversal_rule",
            sa.Enum("buffer_only", "buffer_then_proponent", name="reversal_rule", native_enum=False, length=30),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("acceptance_days >= 1", name=op.f("ck_credit_class_policy_acceptance_window_positive")),
        sa.PrimaryKeyConstraint("credit_class", name=op.f("pk_credit_class_policy")),
    )
    op.bulk_insert(
        policy,
        [
            {"credit_class": c, "requires_acceptance": a, "acceptance_days": d, "reversal_rule": r, "note": n}
            for c, a, d, r, n in POLICIES
        ],
    )
    op.create_table(
        "pending_transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_account_id", sa.Integer(), nullable=False),
        sa.Column("to_account_id", sa.Integer(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "accepted", "rejected", "expired", name="transfer_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint("quantity_t > 0", name=op.f("ck_pending_transfer_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_pending_transfer_created_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["from_account_id"],
            ["registry_account.id"],
            name=op.f("fk_pending_transfer_from_account_id_registry_account"),
        ),
        sa.ForeignKeyConstraint(
            ["to_account_id"], ["registry_account.id"], name=op.f("fk_pending_transfer_to_account_id_registry_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_transfer")),
    )
    with op.batch_alter_table("pending_transfer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_transfer_from_account_id"), ["from_account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pending_transfer_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_pending_transfer_to_account_id"), ["to_account_id"], unique=False)

    with op.batch_alter_table("holding_block", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_transfer_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_holding_block_open_holdings",
            ["account_id", "state", "batch_id", "serial_start"],
            unique=False,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )
        batch_op.create_index(
            "ix_holding_block_open_serials",
            ["batch_id", "serial_start"],
            unique=False,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )
        batch_op.create_index(batch_op.f("ix_holding_block_pending_transfer_id"), ["pending_transfer_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_holding_block_pending_transfer_id_pending_transfer"),
            "pending_transfer",
            ["pending_transfer_id"],
            ["id"],
        )


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("holding_block", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_holding_block_pending_transfer_id_pending_transfer"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_holding_block_pending_transfer_id"))
        batch_op.drop_index("ix_holding_block_open_serials")
        batch_op.drop_index("ix_holding_block_open_holdings")
        batch_op.drop_column("pending_transfer_id")
    with op.batch_alter_table("pending_transfer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_transfer_to_account_id"))
        batch_op.drop_index(batch_op.f("ix_pending_transfer_status"))
        batch_op.drop_index(batch_op.f("ix_pending_transfer_from_account_id"))
    op.drop_table("pending_transfer")
    op.drop_table("credit_class_policy")
