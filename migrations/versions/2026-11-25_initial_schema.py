"""Initial schema: audit log, organisations and users, projects and plots.

On PostgreSQL the PostGIS extension is created and the plot geometry gets a GiST index; on SQLite the
geometry is WKB and an R-tree (plot_rtree, kept by triggers) serves search (docs/adr/002-portable-geometry-column.md).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import geodata.overlap
import geodata.sqltypes

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recorded_at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_log_seq_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("entry_hash", name=op.f("uq_audit_log_entry_hash")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_log_prev_hash")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_subject"), ["subject"], unique=False)

    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "forestry_bureau",
                "forest_owner",
                "ecology_bureau",
                "verifier",
                "registry",
                "operator",
                "enterprise",
                "bank",
                "auditor",
                name="org_kind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
        sa.UniqueConstraint("name", name=op.f("uq_organisation_name")),
    )
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_app_user_organisation_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_api_key_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_api_key_key_sha256")),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_user_id"), ["user_id"], unique=False)

    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column(
            "scheme",
            sa.Enum(
                "forestry_carbon_ticket",
                "ccer_afforestation",
                "ecological_restoration",
                "ocean_fishery",
                name="scheme",
                native_enum=False,
                length=40,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "submitted",
                "validated",
                "registered",
                "rejected",
                name="project_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("county_code", sa.String(length=6), nullable=True),
        sa.Column("crediting_start", sa.Date(), nullable=False),
        sa.Column("crediting_end", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_project_created_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_project_organisation_id_organisation")
        ),
        sa.CheckConstraint("crediting_end > crediting_start", name=op.f("ck_project_crediting_period_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
        sa.UniqueConstraint("code", name=op.f("uq_project_code")),
    )
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "plot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("plot_code", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("geometry", geodata.sqltypes.MultiPolygonGeometry(), nullable=False),
        sa.Column("geometry_sha256", sa.String(length=64), nullable=False),
        sa.Column("min_lon", sa.Float(), nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lon", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("perimeter_m", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_start", sa.Date(), nullable=False),
        sa.Column("claim_end", sa.Date(), nullable=False),
        sa.Column(
            "claim_status",
            sa.Enum("active", "withdrawn", name="claim_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("external_registrations", sa.JSON(), nullable=False),
        sa.Column("declared_area_mu", sa.Float(), nullable=True),
        sa.CheckConstraint("area_m2 > 0", name=op.f("ck_plot_area_positive")),
        sa.CheckConstraint("claim_end > claim_start", name=op.f("ck_plot_claim_period_order")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_plot_created_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_plot_project_id_project")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plot")),
    )
    with op.batch_alter_table("plot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plot_claim_status"), ["claim_status"], unique=False)
        batch_op.create_index(batch_op.f("ix_plot_geometry_sha256"), ["geometry_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_plot_project_id"), ["project_id"], unique=False)
        batch_op.create_index("uq_plot_project_code", ["project_id", "plot_code"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_plot_geometry", "plot", ["geometry"], postgresql_using="gist")
    else:
        for statement in geodata.overlap.rtree_ddl("plot"):
            op.execute(statement)
    op.execute("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    """Revert."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_plot_geometry", table_name="plot")
    else:
        for statement in geodata.overlap.rtree_drop_ddl("plot"):
            op.execute(statement)
    with op.batch_alter_table("plot", schema=None) as batch_op:
        batch_op.drop_index("uq_plot_project_code")
        batch_op.drop_index(batch_op.f("ix_plot_project_id"))
        batch_op.drop_index(batch_op.f("ix_plot_geometry_sha256"))
        batch_op.drop_index(batch_op.f("ix_plot_claim_status"))

    op.drop_table("plot")
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_organisation_id"))

    op.drop_table("project")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_user_id"))

    op.drop_table("api_key")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_user_organisation_id"))

    op.drop_table("app_user")
    op.drop_table("organisation")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_subject"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
    op.drop_table("audit_head")
