"""Serial numbers: one per tonne, held in contiguous blocks, formatted and parsed by one pair of functions.

Shanhai serial block format (documented in ``docs/adr/010-serials-and-ledger.md``)::

    SH-FCT-64-000001-2025-000003-000000001-000001500
    │  │   │  │      │    │      │         └ last serial of the block (inclusive)
    │  │   │  │      │    │      └ first serial of the block (serials count from 1 within the batch)
    │  │   │  │      │    └ batch number within the project
    │  │   │  │      └ vintage year
    │  │   │  └ project number (the numeric part of the project code)
    │  │   └ province of origin (GB/T 2260, two digits)
    │  └ credit class (FCT forestry carbon ticket, CCA CCER-eligible afforestation,
    │    ERS ecological restoration sink — local, provisional, OFS ocean fishery sink,
    │    IFL IPCC inventory forest-land sink)
    └ registry (Shanhai)

A serial is identified by its batch (class, province, project, vintage, batch) and its number within the
batch; blocks of one batch never overlap. :func:`parse_block` reads exactly what :func:`SerialBlock.format`
writes (round trip); :func:`parse_vcs` reads Verra VCS serial ranges (13 fields, or 12 without the
program code) so units issued elsewhere can be recorded against the plots they came from.

>>> block = SerialBlock("FCT", "64", 1, 2025, 3, 1, 1500)
>>> block.format()
'SH-FCT-64-000001-2025-000003-000000001-000001500'
>>> parse_block(block.format()) == block
True
>>> [b.format()[-19:] for b in block.split(500)]
['000000001-000000500', '000000501-000001500']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime

from core.errors import InvalidInput

REGISTRY = "SH"
CREDIT_CLASSES = ("FCT", "CCA", "ERS", "OFS", "IFL")
MAX_SERIAL = 999_999_999
_BLOCK = re.compile(
    r"^SH-(?P<cls>[A-Z]{3})-(?P<prov>\d{2})-(?P<proj>\d{6})-(?P<vintage>\d{4})-(?P<batch>\d{6})"
    r"-(?P<start>\d{9})-(?P<end>\d{9})$"
)


@dataclass(frozen=True, order=True)
class SerialBlock:
    """A contiguous range of serials ``start..end`` (inclusive) of one batch."""

    credit_class: str
    province: str
    project_number: int
    vintage: int
    batch: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.credit_class not in CREDIT_CLASSES:
            raise InvalidInput(f"unknown credit class {self.credit_class!r}")
        if not (1 <= self.start <= self.end <= MAX_SERIAL):
            raise InvalidInput(f"a serial block needs 1 <= start <= end <= {MAX_SERIAL}, got {self.start}..{self.end}")

    @property
    def quantity(self) -> int:
        """Return the number of tonnes in the block."""
        return self.end - self.start + 1

    @property
    def batch_key(self) -> tuple[str, str, int, int, int]:
        """Return what identifies the batch (blocks with the same key share one serial space)."""
        return (self.credit_class, self.province, self.project_number, self.vintage, self.batch)

    def format(self) -> str:
        """Return the block's serial string."""
        return (
            f"{REGISTRY}-{self.credit_class}-{self.province}-{self.project_number:06d}-{self.vintage:04d}"
            f"-{self.batch:06d}-{self.start:09d}-{self.end:09d}"
        )

    def split(self, quantity: int) -> tuple[SerialBlock, SerialBlock]:
        """Return the first ``quantity`` tonnes and the rest (both non-empty)."""
        if not 0 < quantity < self.quantity:
            raise InvalidInput(f"cannot split {quantity} t off a block of {self.quantity} t")
        return replace(self, end=self.start + quantity - 1), replace(self, start=self.start + quantity)

    def overlaps(self, other: SerialBlock) -> bool:
        """Return whether two blocks share a serial."""
        return self.batch_key == other.batch_key and self.start <= other.end and other.start <= self.end


def parse_block(text: str) -> SerialBlock:
    """Parse a Shanhai serial block string (the inverse of :meth:`SerialBlock.format`)."""
    match = _BLOCK.match(text.strip())
    if match is None:
        raise InvalidInput(f"not a Shanhai serial block: {text!r}")
    return SerialBlock(
        match["cls"],
        match["prov"],
        int(match["proj"]),
        int(match["vintage"]),
        int(match["batch"]),
        int(match["start"]),
        int(match["end"]),
    )


@dataclass(frozen=True)
class VcsSerial:
    """A Verra VCS serial range (fields after the open-source ``sc-audit`` parser)."""

    batch_number: int
    block_start: int
    block_end: int
    program_code: str | None
    credit_type: str
    vvb_id: str
    registry: str
    country: str
    project_type: str
    project_id: int
    vintage_start: date
    vintage_end: date
    additional_certification: bool

    @property
    def quantity(self) -> int:
        """Return the number of units in the range."""
        return self.block_end - self.block_start + 1

    def format(self) -> str:
        """Return the serial string (12 or 13 fields, as it was read)."""
        fields = [
            str(self.batch_number),
            str(self.block_start),
            str(self.block_end),
            *([self.program_code] if self.program_code else []),
            self.credit_type,
            self.vvb_id,
            self.registry,
            self.country,
            self.project_type,
            str(self.project_id),
            self.vintage_start.strftime("%d%m%Y"),
            self.vintage_end.strftime("%d%m%Y"),
            "1" if self.additional_certification else "0",
        ]
        return "-".join(fields)


def parse_vcs(text: str) -> VcsSerial:
    """Parse a VCS serial range.

    >>> s = parse_vcs("9660-115597313-115618057-VCS-VCU-261-VER-US-14-1060-01012019-31122019-0")
    >>> s.quantity, s.project_id, s.vintage_start.isoformat(), s.additional_certification
    (20745, 1060, '2019-01-01', False)
    """
    parts = text.strip().split("-")
    if len(parts) == 12:
        parts = [*parts[:3], "", *parts[3:]]
    if len(parts) != 13 or parts[12] not in ("0", "1"):
        raise InvalidInput(f"not a VCS serial (12 or 13 dash-separated fields): {text!r}")
    try:
        start, end = int(parts[1]), int(parts[2])
        serial = VcsSerial(
            batch_number=int(parts[0]),
            block_start=start,
            block_end=end,
            program_code=parts[3] or None,
            credit_type=parts[4],
            vvb_id=parts[5],
            registry=parts[6],
            country=parts[7],
            project_type=parts[8],
            project_id=int(parts[9]),
            vintage_start=datetime.strptime(parts[10], "%d%m%Y").date(),
            vintage_end=datetime.strptime(parts[11], "%d%m%Y").date(),
            additional_certification=parts[12] == "1",
        )
    except ValueError as error:
        raise InvalidInput(f"not a VCS serial: {text!r} ({error})") from error
    if start > end or serial.vintage_start > serial.vintage_end:
        raise InvalidInput(f"not a VCS serial: {text!r} (range or vintage out of order)")
    return serial
