"""Block trades and one-way auctions: block_trade, auction, auction_bid; trade mode; instrument block rules.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "auction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.String(length=60), nullable=False),
        sa.Column("seller_organisation_id", sa.Integer(), nullable=False),
        sa.Column("announced_by_user_id", sa.Integer(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column("reserve_price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(length=12), nullable=False),
        sa.Column("qualification", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("escrowed_t", sa.BigInteger(), nullable=False),
        sa.Column("allocated_t", sa.BigInteger(), nullable=False),
        sa.Column("clearing_price_ticks", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("rule IN ('uniform', 'pay_as_bid')", name=op.f("ck_auction_known_rule")),
        sa.CheckConstraint(
            "quantity_t > 0 AND reserve_price_ticks > 0 AND escrowed_t >= 0 AND allocated_t >= 0",
            name=op.f("ck_auction_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["announced_by_user_id"], ["app_user.id"], name=op.f("fk_auction_announced_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["trading_instrument.instrument_id"],
            name=op.f("fk_auction_instrument_id_trading_instrument"),
        ),
        sa.ForeignKeyConstraint(
            ["seller_organisation_id"], ["organisation.id"], name=op.f("fk_auction_seller_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auction")),
    )
    with op.batch_alter_table("auction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auction_ends_at"), ["ends_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_auction_seller_organisation_id"), ["seller_organisation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_auction_status"), ["status"], unique=False)

    op.create_table(
        "block_trade",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.String(length=60), nullable=False),
        sa.Column("proposer_organisation_id", sa.Integer(), nullable=False),
        sa.Column("counterparty_organisation_id", sa.Integer(), nullable=False),
        sa.Column("proposed_by_user_id", sa.Integer(), nullable=False),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("buyer_organisation_id", sa.Integer(), nullable=False),
        sa.Column("seller_organisation_id", sa.Integer(), nullable=False),
        sa.Column("price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column("reference_price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("held_fen", sa.BigInteger(), nullable=False),
        sa.Column("escrowed_t", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "proposer_organisation_id <> counterparty_organisation_id", name=op.f("ck_block_trade_two_parties")
        ),
        sa.CheckConstraint(
            "quantity_t > 0 AND price_ticks > 0 AND held_fen >= 0 AND escrowed_t >= 0",
            name=op.f("ck_block_trade_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["buyer_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_block_trade_buyer_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["counterparty_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_block_trade_counterparty_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"], ["app_user.id"], name=op.f("fk_block_trade_decided_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["trading_instrument.instrument_id"],
            name=op.f("fk_block_trade_instrument_id_trading_instrument"),
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by_user_id"], ["app_user.id"], name=op.f("fk_block_trade_proposed_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["proposer_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_block_trade_proposer_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["seller_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_block_trade_seller_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_block_trade")),
    )
    with op.batch_alter_table("block_trade", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_block_trade_counterparty_organisation_id"), ["counterparty_organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_block_trade_proposer_organisation_id"), ["proposer_organisation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_block_trade_status"), ["status"], unique=False)

    op.create_table(
        "auction_bid",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("auction_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("placed_by_user_id", sa.Integer(), nullable=False),
        sa.Column("price_ticks", sa.BigInteger(), nullable=False),
        sa.Column("quantity_t", sa.BigInteger(), nullable=False),
        sa.Column("held_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("allocated_t", sa.BigInteger(), nullable=False),
        sa.Column("paid_price_ticks", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "quantity_t > 0 AND price_ticks > 0 AND held_fen >= 0 AND allocated_t >= 0",
            name=op.f("ck_auction_bid_positive"),
        ),
        sa.ForeignKeyConstraint(["auction_id"], ["auction.id"], name=op.f("fk_auction_bid_auction_id_auction")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_auction_bid_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["placed_by_user_id"], ["app_user.id"], name=op.f("fk_auction_bid_placed_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auction_bid")),
    )
    with op.batch_alter_table("auction_bid", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auction_bid_auction_id"), ["auction_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_auction_bid_organisation_id"), ["organisation_id"], unique=False)

    with op.batch_alter_table("trade", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=10), server_default="book", nullable=False))
        batch_op.add_column(sa.Column("block_trade_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("auction_bid_id", sa.Integer(), nullable=True))
        batch_op.alter_column("buy_order_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.alter_column("sell_order_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(batch_op.f("ix_trade_auction_bid_id"), ["auction_bid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_trade_block_trade_id"), ["block_trade_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_trade_block_trade_id_block_trade"), "block_trade", ["block_trade_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_trade_auction_bid_id_auction_bid"), "auction_bid", ["auction_bid_id"], ["id"]
        )

    with op.batch_alter_table("trading_instrument", schema=None) as batch_op:
        batch_op.add_column(sa.Column("block_min_t", sa.BigInteger(), server_default="100000", nullable=False))
        batch_op.add_column(sa.Column("block_band_bp", sa.Integer(), server_default="3000", nullable=False))
        batch_op.add_column(sa.Column("block_open_minute", sa.Integer(), server_default="780", nullable=False))
        batch_op.add_column(sa.Column("block_close_minute", sa.Integer(), server_default="900", nullable=False))
        batch_op.create_check_constraint(
            op.f("ck_trading_instrument_block_rules"),
            "block_min_t > 0 AND block_band_bp >= 0 AND block_band_bp < 10000 AND block_open_minute >= 0 "
            "AND block_open_minute < block_close_minute AND block_close_minute <= 1440",
        )


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("trading_instrument", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_trading_instrument_block_rules"), type_="check")
        batch_op.drop_column("block_close_minute")
        batch_op.drop_column("block_open_minute")
        batch_op.drop_column("block_band_bp")
        batch_op.drop_column("block_min_t")

    with op.batch_alter_table("trade", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_trade_auction_bid_id_auction_bid"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_trade_block_trade_id_block_trade"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_trade_block_trade_id"))
        batch_op.drop_index(batch_op.f("ix_trade_auction_bid_id"))
        batch_op.alter_column("sell_order_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.alter_column("buy_order_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("auction_bid_id")
        batch_op.drop_column("block_trade_id")
        batch_op.drop_column("mode")

    with op.batch_alter_table("auction_bid", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auction_bid_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_auction_bid_auction_id"))

    op.drop_table("auction_bid")
    with op.batch_alter_table("block_trade", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_block_trade_status"))
        batch_op.drop_index(batch_op.f("ix_block_trade_proposer_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_block_trade_counterparty_organisation_id"))

    op.drop_table("block_trade")
    with op.batch_alter_table("auction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auction_status"))
        batch_op.drop_index(batch_op.f("ix_auction_seller_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_auction_ends_at"))

    op.drop_table("auction")
