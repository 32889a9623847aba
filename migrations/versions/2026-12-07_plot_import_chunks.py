"""Plot imports: the upload is stored in pieces (``plot_import_chunk``) and a job has a heartbeat.

The API streams an upload into pieces and a worker streams them back to a temporary file, so neither
holds the whole file in memory; ``heartbeat_at`` lets a job whose worker died be ended. The bytes of
jobs not yet finished move from ``plot_import.content`` into one piece each.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def _holding_table() -> None:
    # The bytes wait here, in a table nothing references, while ``plot_import`` is rebuilt: on SQLite the
    # batch rebuild drops and recreates the table, and with foreign keys on, that would cascade to the pieces.
    op.create_table(
        "plot_import_bytes_moving",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def upgrade() -> None:
    """Apply."""
    _holding_table()
    op.execute(
        "INSERT INTO plot_import_bytes_moving (import_id, data) SELECT id, content FROM plot_import"
        " WHERE content IS NOT NULL"
    )
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("content")
    op.create_table(
        "plot_import_chunk",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["plot_import.id"],
            name=op.f("fk_plot_import_chunk_import_id_plot_import"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "seq", name=op.f("pk_plot_import_chunk")),
    )
    op.execute(
        "INSERT INTO plot_import_chunk (import_id, seq, data) SELECT import_id, 0, data FROM plot_import_bytes_moving"
    )
    op.drop_table("plot_import_bytes_moving")


def downgrade() -> None:
    """Revert: the pieces of each unfinished job are joined back into ``plot_import.content``."""
    _holding_table()
    bind = op.get_bind()
    chunk = sa.table("plot_import_chunk", sa.column("import_id"), sa.column("seq"), sa.column("data"))
    moving = sa.table("plot_import_bytes_moving", sa.column("import_id"), sa.column("data"))
    for import_id in bind.execute(sa.select(chunk.c.import_id).distinct()).scalars().all():
        pieces = bind.execute(sa.select(chunk.c.data).where(chunk.c.import_id == import_id).order_by(chunk.c.seq))
        bind.execute(sa.insert(moving).values(import_id=import_id, data=b"".join(pieces.scalars())))
    op.drop_table("plot_import_chunk")
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
        batch_op.drop_column("heartbeat_at")
    op.execute(
        "UPDATE plot_import SET content = (SELECT data FROM plot_import_bytes_moving m"
        " WHERE m.import_id = plot_import.id)"
    )
    op.drop_table("plot_import_bytes_moving")
