"""Registry ledger: accounts, issuance batches, serial blocks, movements, retirements.

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "registry_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind", sa.Enum("holding", "buffer", name="account_kind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_registry_account_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_account")),
    )
    with op.batch_alter_table("registry_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_account_organisation_id"), ["organisation_id"], unique=False)
        batch_op.create_index("uq_registry_account_org_kind", ["organisation_id", "kind"], unique=True)

    op.create_table(
        "retirement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column("beneficiary", sa.String(length=300), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("reporting_year", sa.Integer(), nullable=False),
        sa.Column("use", sa.String(length=100), nullable=False),
        sa.Column("verification_code", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity_t > 0", name=op.f("ck_retirement_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["registry_account.id"], name=op.f("fk_retirement_account_id_registry_account")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_retirement_created_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retirement")),
        sa.UniqueConstraint("verification_code", name=op.f("uq_retirement_verification_code")),
    )
    with op.batch_alter_table("retirement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retirement_account_id"), ["account_id"], unique=False)

    op.create_table(
        "issuance_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("batch_number", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column(
            "credit_class",
            sa.Enum("FCT", "CCA", "ERS", "OFS", name="credit_class", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("vintage_year", sa.Integer(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column("buffer_t", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by_user_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "buffer_t >= 0 AND buffer_t <= quantity_t", name=op.f("ck_issuance_batch_buffer_within_quantity")
        ),
        sa.CheckConstraint("quantity_t > 0", name=op.f("ck_issuance_batch_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["issued_by_user_id"], ["app_user.id"], name=op.f("fk_issuance_batch_issued_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_issuance_batch_project_id_project")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuance_batch")),
        sa.UniqueConstraint("source", name=op.f("uq_issuance_batch_source")),
    )
    with op.batch_alter_table("issuance_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issuance_batch_project_id"), ["project_id"], unique=False)
        batch_op.create_index("uq_issuance_batch_project_number", ["project_id", "batch_number"], unique=True)

    op.create_table(
        "holding_block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("serial_start", sa.BigInteger(), nullable=False),
        sa.Column("serial_end", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "tradable",
                "escrowed",
                "pledged",
                "retired",
                "cancelled",
                name="block_state",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("pledgee_organisation_id", sa.Integer(), nullable=True),
        sa.Column("retirement_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "serial_start >= 1 AND serial_start <= serial_end", name=op.f("ck_holding_block_range_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["registry_account.id"], name=op.f("fk_holding_block_account_id_registry_account")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["issuance_batch.id"], name=op.f("fk_holding_block_batch_id_issuance_batch")
        ),
        sa.ForeignKeyConstraint(
            ["pledgee_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_holding_block_pledgee_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["retirement_id"], ["retirement.id"], name=op.f("fk_holding_block_retirement_id_retirement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holding_block")),
    )
    with op.batch_alter_table("holding_block", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holding_block_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_holding_block_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_holding_block_closed_at"), ["closed_at"], unique=False)

    op.create_table(
        "registry_movement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("serial_start", sa.BigInteger(), nullable=False),
        sa.Column("serial_end", sa.BigInteger(), nullable=False),
        sa.Column("from_account_id", sa.Integer(), nullable=True),
        sa.Column("to_account_id", sa.Integer(), nullable=True),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["issuance_batch.id"], name=op.f("fk_registry_movement_batch_id_issuance_batch")
        ),
        sa.ForeignKeyConstraint(
            ["from_account_id"],
            ["registry_account.id"],
            name=op.f("fk_registry_movement_from_account_id_registry_account"),
        ),
        sa.ForeignKeyConstraint(
            ["to_account_id"], ["registry_account.id"], name=op.f("fk_registry_movement_to_account_id_registry_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_movement")),
    )
    with op.batch_alter_table("registry_movement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_movement_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_registry_movement_kind"), ["kind"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("registry_movement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_movement_kind"))
        batch_op.drop_index(batch_op.f("ix_registry_movement_batch_id"))

    op.drop_table("registry_movement")
    with op.batch_alter_table("holding_block", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holding_block_closed_at"))
        batch_op.drop_index(batch_op.f("ix_holding_block_batch_id"))
        batch_op.drop_index(batch_op.f("ix_holding_block_account_id"))

    op.drop_table("holding_block")
    with op.batch_alter_table("issuance_batch", schema=None) as batch_op:
        batch_op.drop_index("uq_issuance_batch_project_number")
        batch_op.drop_index(batch_op.f("ix_issuance_batch_project_id"))

    op.drop_table("issuance_batch")
    with op.batch_alter_table("retirement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_retirement_account_id"))

    op.drop_table("retirement")
    with op.batch_alter_table("registry_account", schema=None) as batch_op:
        batch_op.drop_index("uq_registry_account_org_kind")
        batch_op.drop_index(batch_op.f("ix_registry_account_organisation_id"))

    op.drop_table("registry_account")
