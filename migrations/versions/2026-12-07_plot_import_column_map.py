"""Plot imports remember the person's column mapping and the outlines their report draws (issue 21).

``column_map``: the column chosen for each plot attribute on the upload page (``NULL``: guessed from the column
names, as before). ``outlines``: the lon/lat outlines of the features the report speaks of (refused, in
conflict, warned), so the upload page can draw them on its map after the file's bytes are dropped.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

Follows 0024 (evidence attachments), the head on main when this branch last merged it; one head, tested.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply: existing jobs have neither."""
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("column_map", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("outlines", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert, in place.

    On SQLite a batch (copy and drop) of ``plot_import`` would delete, by its foreign key's cascade, the stored
    pieces of unfinished jobs (``plot_import_chunk``); SQLite 3.35 and later drops a column itself.
    """
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE plot_import DROP COLUMN outlines")
        op.execute("ALTER TABLE plot_import DROP COLUMN column_map")
        return
    op.drop_column("plot_import", "outlines")
    op.drop_column("plot_import", "column_map")
