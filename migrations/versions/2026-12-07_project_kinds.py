"""Project kinds (issue 26): what a project accounts, sea areas' licences, the IPCC inventory credit class.

``project.kind`` (plots | sea_areas | inventory_units; existing projects are plot projects), ``plot.licence_number``
and ``plot.licence_kind`` for aquaculture sea areas (海域使用权证 / 养殖证), and the registry's rules for the new
credit class ``IFL`` (IPCC inventory forest-land sink). The ``scheme`` and ``credit_class`` enums are
non-native strings without a CHECK constraint, so their new values need no DDL.

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0024"
branch_labels = None
depends_on = None

POLICY = {
    "credit_class": "IFL",
    "requires_acceptance": False,
    "acceptance_days": 7,
    "reversal_rule": "buffer_then_proponent",
    "note": "IPCC inventory forest-land sink: a loss beyond the buffer is taken from the proponent's units.",
}


def upgrade() -> None:
    """Apply."""
    op.add_column(
        "project",
        sa.Column(
            "kind",
            sa.Enum("plots", "sea_areas", "inventory_units", name="project_kind", native_enum=False, length=20),
            nullable=False,
            server_default="plots",
        ),
    )
    # Plain ADD COLUMN (no batch copy): the SQLite plot table carries the R-tree triggers of plot_rtree.
    op.add_column("plot", sa.Column("licence_number", sa.String(length=60), nullable=True))
    op.add_column(
        "plot",
        sa.Column(
            "licence_kind",
            sa.Enum("sea_use_right", "aquaculture", name="licence_kind", native_enum=False, length=20),
            nullable=True,
        ),
    )
    op.create_index(op.f("ix_plot_licence_number"), "plot", ["licence_number"], unique=False)
    policy = sa.table(
        "credit_class_policy",
        sa.column("credit_class", sa.String),
        sa.column("requires_acceptance", sa.Boolean),
        sa.column("acceptance_days", sa.Integer),
        sa.column("reversal_rule", sa.String),
        sa.column("note", sa.Text),
    )
    op.bulk_insert(policy, [POLICY])


def downgrade() -> None:
    """Revert."""
    op.execute(sa.text("DELETE FROM credit_class_policy WHERE credit_class = 'IFL'"))
    op.drop_index(op.f("ix_plot_licence_number"), table_name="plot")
    op.drop_column("plot", "licence_kind")
    op.drop_column("plot", "licence_number")
    op.drop_column("project", "kind")
