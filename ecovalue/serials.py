"""Serials of ecological-product rights (pure): one documented format, its parser, and a round trip.

``SH-EPR-<county>-<year>-<sequence>``: the GB/T 2260 county of the right, the year of its first valuation run,
and a six-digit sequence within that county and year.

>>> format_serial(RightSerial("640424", 2026, 7))
'SH-EPR-640424-2026-000007'
>>> parse_serial("SH-EPR-640424-2026-000007")
RightSerial(county_code='640424', year=2026, sequence=7)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidInput

PREFIX = "SH-EPR"
_PATTERN = re.compile(r"^SH-EPR-(?P<county>\d{6})-(?P<year>\d{4})-(?P<sequence>\d{6})$")


@dataclass(frozen=True, slots=True)
class RightSerial:
    """The parts of a right's serial."""

    county_code: str
    year: int
    sequence: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d{6}", self.county_code) or not 1000 <= self.year <= 9999:
            raise InvalidInput(f"not a right serial's county and year: {self.county_code!r}, {self.year!r}")
        if not 1 <= self.sequence <= 999_999:
            raise InvalidInput(f"a right serial's sequence is 1 … 999999, not {self.sequence}")


def format_serial(serial: RightSerial) -> str:
    """Return the text of a serial."""
    return f"{PREFIX}-{serial.county_code}-{serial.year:04d}-{serial.sequence:06d}"


def parse_serial(text: str) -> RightSerial:
    """Return the parts of a serial's text, or raise :class:`InvalidInput`."""
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise InvalidInput(f"not a right serial: {text!r} (expected SH-EPR-<county>-<year>-<nnnnnn>)")
    return RightSerial(match["county"], int(match["year"]), int(match["sequence"]))
