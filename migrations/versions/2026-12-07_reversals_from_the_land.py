"""Reversals found from the land (issue 27, ADR 038) and the generic in-app inbox.

Tables: change patches, composites, loss thresholds, watch runs, loss events (the registry's reversal proposals).

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-07

Tonnes are NUMERIC / BIGINT; areas are geodesic m² (float, as ``plot.area_m2``). ``loss_threshold_policy`` starts
empty: a class without a row uses the cited defaults of ``carbon/reversals/data/loss_thresholds.yaml``.
The lead rechains ``down_revision`` at merge.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import geodata.sqltypes

revision = "0025"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "change_patch_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("survey_year", sa.Integer(), nullable=False),
        sa.Column("source_crs", sa.Text(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("patch_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_change_patch_file_created_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_patch_file")),
        sa.UniqueConstraint("name", name=op.f("uq_change_patch_file_name")),
    )
    op.create_table(
        "inbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_by_user_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(read_at IS NULL) = (read_by_user_id IS NULL)", name=op.f("ck_inbox_message_read_both_or_neither")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisation.id"], name=op.f("fk_inbox_message_organisation_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["read_by_user_id"], ["app_user.id"], name=op.f("fk_inbox_message_read_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_message")),
    )
    with op.batch_alter_table("inbox_message", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_message_organisation_id_id", ["organisation_id", "id"], unique=False)

    op.create_table(
        "land_composite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "kind", sa.Enum("ndvi", "land_cover", name="composite_kind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("raster_layer_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("acquired_start", sa.Date(), nullable=False),
        sa.Column("acquired_end", sa.Date(), nullable=False),
        sa.Column("sensor", sa.String(length=100), nullable=False),
        sa.Column("vegetated_classes", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("acquired_end >= acquired_start", name=op.f("ck_land_composite_acquired_order")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_land_composite_created_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["raster_layer_id"], ["raster_layer.id"], name=op.f("fk_land_composite_raster_layer_id_raster_layer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_land_composite")),
        sa.UniqueConstraint("name", name=op.f("uq_land_composite_name")),
    )
    with op.batch_alter_table("land_composite", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_land_composite_region_code"), ["region_code"], unique=False)

    op.create_table(
        "loss_threshold_policy",
        sa.Column("credit_class", sa.String(length=10), nullable=False),
        sa.Column("season_window_days", sa.Integer(), nullable=False),
        sa.Column("min_before_ndvi", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("ndvi_drop", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("relative_drop", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("min_area_mu", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by_user_id"], ["app_user.id"], name=op.f("fk_loss_threshold_policy_updated_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("credit_class", name=op.f("pk_loss_threshold_policy")),
    )
    op.create_table(
        "change_patch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("patch_code", sa.String(length=100), nullable=False),
        sa.Column("change_type", sa.String(length=100), nullable=False),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.Column("loss_kind", sa.String(length=20), nullable=False),
        sa.Column("change_date", sa.Date(), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("geometry", geodata.sqltypes.MultiPolygonGeometry(), nullable=False),
        sa.Column("min_lon", sa.Float(), nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lon", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["change_patch_file.id"], name=op.f("fk_change_patch_file_id_change_patch_file")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_patch")),
    )
    with op.batch_alter_table("change_patch", schema=None) as batch_op:
        batch_op.create_index("ix_change_patch_bbox", ["min_lon", "max_lon", "min_lat", "max_lat"], unique=False)
        batch_op.create_index(batch_op.f("ix_change_patch_file_id"), ["file_id"], unique=False)

    op.create_table(
        "land_watch_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("before_composite_id", sa.Integer(), nullable=False),
        sa.Column("after_composite_id", sa.Integer(), nullable=False),
        sa.Column("patch_file_ids", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "running", "succeeded", "failed", name="watch_run_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("tile_size", sa.Integer(), nullable=False),
        sa.Column("tiles_total", sa.Integer(), nullable=False),
        sa.Column("tiles_done", sa.Integer(), nullable=False),
        sa.Column("plot_ids", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("season_gap_days", sa.Integer(), nullable=False),
        sa.Column("events_raised", sa.Integer(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["after_composite_id"],
            ["land_composite.id"],
            name=op.f("fk_land_watch_run_after_composite_id_land_composite"),
        ),
        sa.ForeignKeyConstraint(
            ["before_composite_id"],
            ["land_composite.id"],
            name=op.f("fk_land_watch_run_before_composite_id_land_composite"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["app_user.id"], name=op.f("fk_land_watch_run_created_by_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_land_watch_run")),
    )
    op.create_table(
        "land_watch_tile",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["land_watch_run.id"], name=op.f("fk_land_watch_tile_run_id_land_watch_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "index", name=op.f("pk_land_watch_tile")),
    )
    op.create_table(
        "loss_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("plot_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("credit_class", sa.String(length=10), nullable=False),
        sa.Column(
            "status",
            sa.Enum("proposed", "confirmed", "rejected", name="loss_event_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("plot_area_m2", sa.Float(), nullable=False),
        sa.Column("lost_area_m2", sa.Float(), nullable=False),
        sa.Column("ndvi_loss_m2", sa.Float(), nullable=False),
        sa.Column("patch_loss_m2", sa.Float(), nullable=False),
        sa.Column("before_date", sa.Date(), nullable=False),
        sa.Column("after_date", sa.Date(), nullable=False),
        sa.Column("change_date", sa.Date(), nullable=True),
        sa.Column("at_risk_tco2e", sa.Numeric(precision=20, scale=3), nullable=False),
        sa.Column("tonnes_at_risk_t", sa.BigInteger(), nullable=False),
        sa.Column("at_risk", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("evidence_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("cancelled_t", sa.BigInteger(), nullable=True),
        sa.Column("cancellation", sa.JSON(), nullable=True),
        sa.CheckConstraint("(status = 'proposed') = (decided_at IS NULL)", name=op.f("ck_loss_event_decided_once")),
        sa.CheckConstraint(
            "status != 'confirmed' OR cancelled_t IS NOT NULL", name=op.f("ck_loss_event_confirmed_cancels")
        ),
        sa.CheckConstraint(
            "status != 'rejected' OR decision_reason IS NOT NULL", name=op.f("ck_loss_event_rejected_has_reason")
        ),
        sa.CheckConstraint("lost_area_m2 >= 0 AND tonnes_at_risk_t >= 0", name=op.f("ck_loss_event_loss_not_negative")),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"], ["app_user.id"], name=op.f("fk_loss_event_decided_by_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(["plot_id"], ["plot.id"], name=op.f("fk_loss_event_plot_id_plot")),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name=op.f("fk_loss_event_project_id_project")),
        sa.ForeignKeyConstraint(["run_id"], ["land_watch_run.id"], name=op.f("fk_loss_event_run_id_land_watch_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loss_event")),
    )
    with op.batch_alter_table("loss_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_loss_event_plot_id"), ["plot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loss_event_project_id"), ["project_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loss_event_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loss_event_status"), ["status"], unique=False)
        batch_op.create_index("uq_loss_event_run_plot", ["run_id", "plot_id"], unique=True)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("loss_event", schema=None) as batch_op:
        batch_op.drop_index("uq_loss_event_run_plot")
        batch_op.drop_index(batch_op.f("ix_loss_event_status"))
        batch_op.drop_index(batch_op.f("ix_loss_event_run_id"))
        batch_op.drop_index(batch_op.f("ix_loss_event_project_id"))
        batch_op.drop_index(batch_op.f("ix_loss_event_plot_id"))

    op.drop_table("loss_event")
    op.drop_table("land_watch_tile")
    op.drop_table("land_watch_run")
    with op.batch_alter_table("change_patch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_patch_file_id"))
        batch_op.drop_index("ix_change_patch_bbox")

    op.drop_table("change_patch")
    op.drop_table("loss_threshold_policy")
    with op.batch_alter_table("land_composite", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_land_composite_region_code"))

    op.drop_table("land_composite")
    with op.batch_alter_table("inbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_message_organisation_id_id")

    op.drop_table("inbox_message")
    op.drop_table("change_patch_file")
