"""Eco-compensation and ecological-product rights (issue 28, ADR 039) (the in-app inbox is migration 0025's).

Agreements, readings, statements and obligations; rights, their valuations, bank policies and pledges.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

New tables only; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "eco_agreement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("basis_kind", sa.String(length=20), nullable=False),
        sa.Column("benchmark_year", sa.Integer(), nullable=False),
        sa.Column("period_start_year", sa.Integer(), nullable=False),
        sa.Column("period_end_year", sa.Integer(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("terms_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by_organisation_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("basis_kind IN ('gep', 'monitored')", name=op.f("ck_eco_agreement_basis_kind_known")),
        sa.ForeignKeyConstraint(
            ["created_by_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_eco_agreement_created_by_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_agreement")),
        sa.UniqueConstraint("code", name=op.f("uq_eco_agreement_code")),
    )
    op.create_table(
        "eco_bank_policy",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("max_ltv", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("alert_ltv", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("alert_ltv >= max_ltv AND alert_ltv <= 1", name=op.f("ck_eco_bank_policy_alert_ltv_range")),
        sa.CheckConstraint("max_ltv > 0 AND max_ltv <= 1", name=op.f("ck_eco_bank_policy_max_ltv_range")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_eco_bank_policy_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_eco_bank_policy")),
    )
    op.create_table(
        "eco_reading",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_code", sa.String(length=60), nullable=False),
        sa.Column("indicator", sa.String(length=60), nullable=False),
        sa.Column("sampled_on", sa.Date(), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=300), nullable=False),
        sa.Column("recorded_by_organisation_id", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recorded_by_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_eco_reading_recorded_by_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_reading")),
        sa.UniqueConstraint("section_code", "indicator", "sampled_on", name=op.f("uq_eco_reading_section_code")),
    )
    with op.batch_alter_table("eco_reading", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_reading_section_code"), ["section_code"], unique=False)

    op.create_table(
        "eco_agreement_party",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("side", sa.String(length=20), nullable=False),
        sa.Column("share", sa.Numeric(precision=7, scale=6), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["eco_agreement.id"], name=op.f("fk_eco_agreement_party_agreement_id_eco_agreement")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_eco_agreement_party_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_agreement_party")),
        sa.UniqueConstraint("agreement_id", "region_code", name=op.f("uq_eco_agreement_party_agreement_id")),
    )
    with op.batch_alter_table("eco_agreement_party", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_agreement_party_agreement_id"), ["agreement_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_eco_agreement_party_organisation_id"), ["organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_eco_agreement_party_region_code"), ["region_code"], unique=False)

    op.create_table(
        "eco_right",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("owner_organisation_id", sa.Integer(), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=False),
        sa.Column("region_layer", sa.String(length=100), nullable=False),
        sa.Column("region_codes", sa.JSON(), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("area_m2", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("method", sa.String(length=300), nullable=False),
        sa.Column(
            "status",
            sa.Enum("registered", "enforced", name="eco_right_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("valuation_run_id", sa.Integer(), nullable=False),
        sa.Column("valuation_date", sa.Date(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("registered_by_organisation_id", sa.Integer(), nullable=False),
        sa.Column("registered_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("value_fen >= 0", name=op.f("ck_eco_right_value_not_negative")),
        sa.ForeignKeyConstraint(
            ["owner_organisation_id"], ["organisation.id"], name=op.f("fk_eco_right_owner_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_eco_right_registered_by_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["valuation_run_id"], ["gep_run.id"], name=op.f("fk_eco_right_valuation_run_id_gep_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_right")),
        sa.UniqueConstraint("serial", name=op.f("uq_eco_right_serial")),
    )
    with op.batch_alter_table("eco_right", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_right_county_code"), ["county_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_eco_right_owner_organisation_id"), ["owner_organisation_id"], unique=False)

    op.create_table(
        "eco_statement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("issued", "confirmed", "disputed", name="eco_statement_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("direction", sa.String(length=40), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("record_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_eco_statement_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["eco_agreement.id"], name=op.f("fk_eco_statement_agreement_id_eco_agreement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_statement")),
    )
    with op.batch_alter_table("eco_statement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_statement_agreement_id"), ["agreement_id"], unique=False)

    op.create_table(
        "eco_obligation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("payer_region", sa.String(length=6), nullable=False),
        sa.Column("payer_organisation_id", sa.Integer(), nullable=False),
        sa.Column("payee_region", sa.String(length=6), nullable=False),
        sa.Column("payee_organisation_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status", sa.Enum("due", "paid", name="eco_obligation_status", native_enum=False, length=20), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_reference", sa.String(length=200), nullable=True),
        sa.CheckConstraint("currency = 'CNY'", name=op.f("ck_eco_obligation_currency_cny")),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_eco_obligation_amount_positive")),
        sa.ForeignKeyConstraint(
            ["payee_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_eco_obligation_payee_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_eco_obligation_payer_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"], ["eco_statement.id"], name=op.f("fk_eco_obligation_statement_id_eco_statement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_obligation")),
    )
    with op.batch_alter_table("eco_obligation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_obligation_payee_region"), ["payee_region"], unique=False)
        batch_op.create_index(batch_op.f("ix_eco_obligation_payer_region"), ["payer_region"], unique=False)
        batch_op.create_index(batch_op.f("ix_eco_obligation_statement_id"), ["statement_id"], unique=False)

    op.create_table(
        "eco_pledge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("right_id", sa.Integer(), nullable=False),
        sa.Column("bank_organisation_id", sa.Integer(), nullable=False),
        sa.Column("pledgor_organisation_id", sa.Integer(), nullable=False),
        sa.Column("loan_fen", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "requested",
                "active",
                "declined",
                "released",
                "enforced",
                name="eco_pledge_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("loan_fen > 0", name=op.f("ck_eco_pledge_loan_positive")),
        sa.ForeignKeyConstraint(
            ["bank_organisation_id"], ["organisation.id"], name=op.f("fk_eco_pledge_bank_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["pledgor_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_eco_pledge_pledgor_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(["right_id"], ["eco_right.id"], name=op.f("fk_eco_pledge_right_id_eco_right")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_pledge")),
    )
    with op.batch_alter_table("eco_pledge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_pledge_bank_organisation_id"), ["bank_organisation_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_eco_pledge_pledgor_organisation_id"), ["pledgor_organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_eco_pledge_right_id"), ["right_id"], unique=False)

    op.create_table(
        "eco_right_valuation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("right_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("valuation_date", sa.Date(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("record_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["right_id"], ["eco_right.id"], name=op.f("fk_eco_right_valuation_right_id_eco_right")),
        sa.ForeignKeyConstraint(["run_id"], ["gep_run.id"], name=op.f("fk_eco_right_valuation_run_id_gep_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_right_valuation")),
    )
    with op.batch_alter_table("eco_right_valuation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_right_valuation_right_id"), ["right_id"], unique=False)

    op.create_table(
        "eco_statement_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column(
            "decision", sa.Enum("confirm", "dispute", name="eco_decision", native_enum=False, length=20), nullable=False
        ),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("responded_by", sa.String(length=200), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_eco_statement_response_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"], ["eco_statement.id"], name=op.f("fk_eco_statement_response_statement_id_eco_statement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eco_statement_response")),
        sa.UniqueConstraint("statement_id", "organisation_id", name=op.f("uq_eco_statement_response_statement_id")),
    )
    with op.batch_alter_table("eco_statement_response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eco_statement_response_statement_id"), ["statement_id"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("eco_statement_response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_statement_response_statement_id"))

    op.drop_table("eco_statement_response")
    with op.batch_alter_table("eco_right_valuation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_right_valuation_right_id"))

    op.drop_table("eco_right_valuation")
    with op.batch_alter_table("eco_pledge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_pledge_right_id"))
        batch_op.drop_index(batch_op.f("ix_eco_pledge_pledgor_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_eco_pledge_bank_organisation_id"))

    op.drop_table("eco_pledge")
    with op.batch_alter_table("eco_obligation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_obligation_statement_id"))
        batch_op.drop_index(batch_op.f("ix_eco_obligation_payer_region"))
        batch_op.drop_index(batch_op.f("ix_eco_obligation_payee_region"))

    op.drop_table("eco_obligation")
    with op.batch_alter_table("eco_statement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_statement_agreement_id"))

    op.drop_table("eco_statement")
    with op.batch_alter_table("eco_right", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_right_owner_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_eco_right_county_code"))

    op.drop_table("eco_right")
    with op.batch_alter_table("eco_agreement_party", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_agreement_party_region_code"))
        batch_op.drop_index(batch_op.f("ix_eco_agreement_party_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_eco_agreement_party_agreement_id"))

    op.drop_table("eco_agreement_party")
    with op.batch_alter_table("eco_reading", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eco_reading_section_code"))

    op.drop_table("eco_reading")
    op.drop_table("eco_bank_policy")
    op.drop_table("eco_agreement")
