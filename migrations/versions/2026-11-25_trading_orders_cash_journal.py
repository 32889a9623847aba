"""Trading: instruments, cash accounts and entries, orders, trades, the order journal, idempotency records.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "trading_instrument",
        sa.Column("instrument_id", sa.String(length=60), nullable=False),
        sa.Column("credit_class", sa.String(length=10), nullable=False),
        sa.Column("vintage_year", sa.Integer(), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=True),
        sa.Column("reference_price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("style", sa.String(length=30), nullable=False),
        sa.Column("tick_fen", sa.Integer(), nullable=False),
        sa.Column("lot_t", sa.Integer(), nullable=False),
        sa.Column("always_open", sa.Boolean(), nullable=False),
        sa.Column("resale_next_day", sa.Boolean(), nullable=False),
        sa.Column("buyer_fee_bp", sa.Integer(), nullable=False),
        sa.Column("seller_fee_bp", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "buyer_fee_bp >= 0 AND seller_fee_bp >= 0 AND buyer_fee_bp <= 10000",
            name=op.f("ck_trading_instrument_fees_range"),
        ),
        sa.CheckConstraint(
            "reference_price_ticks > 0 AND tick_fen > 0 AND lot_t > 0",
            name=op.f("ck_trading_instrument_positive_units"),
        ),
        sa.PrimaryKeyConstraint("instrument_id", name=op.f("pk_trading_instrument")),
    )
    op.create_table(
        "cash_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("available_fen", sa.BigInteger(), nullable=False),
        sa.Column("held_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("available_fen >= 0", name=op.f("ck_cash_account_available_not_negative")),
        sa.CheckConstraint("held_fen >= 0", name=op.f("ck_cash_account_held_not_negative")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_cash_account_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_account")),
        sa.UniqueConstraint("organisation_id", "kind", name="uq_cash_account_org_kind"),
    )
    op.create_table(
        "idempotency_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_idempotency_record_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_record")),
        sa.UniqueConstraint("organisation_id", "key", name="uq_idempotency_record_org_key"),
    )
    op.create_table(
        "matcher_cursor",
        sa.Column("instrument_id", sa.String(length=60), nullable=False),
        sa.Column("applied_seq", sa.BigInteger(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["trading_instrument.instrument_id"],
            name=op.f("fk_matcher_cursor_instrument_id_trading_instrument"),
        ),
        sa.PrimaryKeyConstraint("instrument_id", name=op.f("pk_matcher_cursor")),
    )
    op.create_table(
        "order_journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.String(length=60), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["trading_instrument.instrument_id"],
            name=op.f("fk_order_journal_instrument_id_trading_instrument"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_journal")),
        sa.UniqueConstraint("instrument_id", "seq", name="uq_order_journal_instrument_seq"),
    )
    op.create_table(
        "cash_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=10), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["cash_account.id"], name=op.f("fk_cash_entry_account_id_cash_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_entry")),
    )
    with op.batch_alter_table("cash_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cash_entry_account_id"), ["account_id"], unique=False)

    op.create_table(
        "trade_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.String(length=60), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("placed_by_user_id", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column("remaining_t", sa.BigInteger(), nullable=False),
        sa.Column("filled_t", sa.BigInteger(), nullable=False),
        sa.Column("time_in_force", sa.String(length=4), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("held_fen", sa.BigInteger(), nullable=False),
        sa.Column("retire_on_fill", sa.Boolean(), nullable=False),
        sa.Column("beneficiary", sa.String(length=300), nullable=True),
        sa.Column("purpose", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "remaining_t >= 0 AND filled_t >= 0 AND held_fen >= 0", name=op.f("ck_trade_order_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["trading_instrument.instrument_id"],
            name=op.f("fk_trade_order_instrument_id_trading_instrument"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_trade_order_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["placed_by_user_id"], ["app_user.id"], name=op.f("fk_trade_order_placed_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_order")),
    )
    with op.batch_alter_table("trade_order", schema=None) as batch_op:
        batch_op.create_index("ix_trade_order_org_status", ["organisation_id", "status"], unique=False)

    op.create_table(
        "trade",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.String(length=60), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column("buy_order_id", sa.Integer(), nullable=False),
        sa.Column("sell_order_id", sa.Integer(), nullable=False),
        sa.Column("buyer_organisation_id", sa.Integer(), nullable=False),
        sa.Column("seller_organisation_id", sa.Integer(), nullable=False),
        sa.Column("notional_fen", sa.BigInteger(), nullable=False),
        sa.Column("buyer_fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("seller_fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("serials", sa.JSON(), nullable=False),
        sa.Column("retirement_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["buy_order_id"], ["trade_order.id"], name=op.f("fk_trade_buy_order_id_trade_order")),
        sa.ForeignKeyConstraint(
            ["buyer_organisation_id"], ["organisation.id"], name=op.f("fk_trade_buyer_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["trading_instrument.instrument_id"],
            name=op.f("fk_trade_instrument_id_trading_instrument"),
        ),
        sa.ForeignKeyConstraint(["retirement_id"], ["retirement.id"], name=op.f("fk_trade_retirement_id_retirement")),
        sa.ForeignKeyConstraint(["sell_order_id"], ["trade_order.id"], name=op.f("fk_trade_sell_order_id_trade_order")),
        sa.ForeignKeyConstraint(
            ["seller_organisation_id"], ["organisation.id"], name=op.f("fk_trade_seller_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade")),
    )
    with op.batch_alter_table("trade", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trade_buy_order_id"), ["buy_order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trade_buyer_organisation_id"), ["buyer_organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trade_sell_order_id"), ["sell_order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trade_seller_organisation_id"), ["seller_organisation_id"], unique=False)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("trade", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trade_seller_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_trade_sell_order_id"))
        batch_op.drop_index(batch_op.f("ix_trade_buyer_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_trade_buy_order_id"))

    op.drop_table("trade")
    with op.batch_alter_table("trade_order", schema=None) as batch_op:
        batch_op.drop_index("ix_trade_order_org_status")

    op.drop_table("trade_order")
    with op.batch_alter_table("cash_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cash_entry_account_id"))

    op.drop_table("cash_entry")
    op.drop_table("order_journal")
    op.drop_table("matcher_cursor")
    op.drop_table("idempotency_record")
    op.drop_table("cash_account")
    op.drop_table("trading_instrument")
