"""Serial numbers of block rows: the one derivation of a block's serial string (format in ADR 010)."""

from __future__ import annotations

from carbon.ledger.tables import HoldingBlock
from carbon.serials import SerialBlock


def serial_of(block: HoldingBlock) -> SerialBlock:
    """Return the serial range of a block (the one derivation of its serial string)."""
    batch = block.batch
    return SerialBlock(
        batch.credit_class.value, batch.province_code, batch.project_id, batch.vintage_year, batch.batch_number,
        block.serial_start, block.serial_end,
    )  # fmt: skip


def serials(blocks: list[HoldingBlock]) -> list[str]:
    """Return the serial strings of blocks."""
    return [serial_of(b).format() for b in blocks]
