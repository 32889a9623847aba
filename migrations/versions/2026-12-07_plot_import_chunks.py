"""Plot imports: the upload is stored in pieces (``plot_import_chunk``) and a job has a heartbeat.

The API streams an upload into pieces and a worker streams them back to a temporary file, so neither
holds the whole file in memory; ``heartbeat_at`` lets a job whose worker died be ended. The bytes of
jobs not yet finished move from ``plot_import.content`` into one piece each.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
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
        "INSERT INTO plot_import_chunk (import_id, seq, data) SELECT id, 0, content FROM plot_import"
        " WHERE content IS NOT NULL"
    )
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("content")


def downgrade() -> None:
    """Revert: the pieces of each unfinished job are joined back into ``plot_import.content``."""
    with op.batch_alter_table("plot_import", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
        batch_op.drop_column("heartbeat_at")
    bind = op.get_bind()
    chunk = sa.table("plot_import_chunk", sa.column("import_id"), sa.column("seq"), sa.column("data"))
    job = sa.table("plot_import", sa.column("id"), sa.column("content", sa.LargeBinary()))
    ids = bind.execute(sa.select(chunk.c.import_id).distinct()).scalars().all()
    for import_id in ids:
        pieces = bind.execute(
            sa.select(chunk.c.data).where(chunk.c.import_id == import_id).order_by(chunk.c.seq)
        ).scalars()
        bind.execute(sa.update(job).where(job.c.id == import_id).values(content=b"".join(pieces)))
    op.drop_table("plot_import_chunk")
