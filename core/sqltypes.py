"""Column types that behave the same on both databases: exact decimals and timezone-aware instants.

**Instants.** ``DateTime(timezone=True)`` keeps the offset on PostgreSQL (``timestamptz``) but not on
SQLite, which stores the text without it and gives back a *naive* datetime — so answers built from it
lost their offset and were not RFC 3339. :class:`UtcDateTime` stores every instant in UTC (a naive value
is refused: its instant is unknown) and always returns an aware UTC datetime, on both databases.

>>> instant = UtcDateTime()
>>> instant.process_result_value(datetime(2026, 11, 25, 9, 30), _SQLITE).isoformat()
'2026-11-25T09:30:00+00:00'
>>> instant.process_bind_param(datetime.fromisoformat("2026-11-25T17:30:00+08:00"), _SQLITE)
datetime.datetime(2026, 11, 25, 9, 30)

**Decimals.**
PostgreSQL stores ``Decimal`` natively in ``NUMERIC(p, s)``. SQLite has no decimal type, and
SQLAlchemy's ``Numeric`` would round-trip through ``float`` there (with a warning). :class:`ExactDecimal`
binds the value as its exact decimal text on SQLite, where the ``NUMERIC`` column's affinity stores it
as an integer or a double. A double holds every decimal of up to 15 significant digits exactly
(``DBL_DIG``), so values with more digits are refused on SQLite instead of being rounded: with three
decimals that leaves 999,999,999,999.999 t. Reading turns the stored value back into a ``Decimal``
quantised to the column's scale (``str`` of a double gives its shortest round-trip form), so both
databases return the same value. Floats are refused on the way in: tonnes and money are never float.

>>> column = ExactDecimal(20, 3)
>>> column.process_bind_param(Decimal("1234.5"), _SQLITE)
'1234.500'
>>> column.process_result_value(1234.5, _SQLITE)
Decimal('1234.500')
>>> column.process_bind_param(Decimal("1234567890123.5"), _SQLITE)
Traceback (most recent call last):
...
ValueError: 1234567890123.500 has more than the 15 significant digits SQLite stores exactly
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

_SQLITE = sqlite.dialect()
#: Decimal digits a double always round-trips (``DBL_DIG``).
SQLITE_EXACT_DIGITS = 15


class _TextBoundNumeric(Numeric[Decimal]):
    """``NUMERIC`` in DDL, with no float conversion in either direction (SQLite only)."""

    def bind_processor(self, dialect: Dialect) -> None:
        """Bind the value as given (exact decimal text)."""
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        """Return the stored value as given; :class:`ExactDecimal` turns it into a ``Decimal``."""
        return None


class ExactDecimal(TypeDecorator[Decimal]):
    """A ``NUMERIC(precision, scale)`` column that returns exact ``Decimal`` on PostgreSQL and SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Return ``NUMERIC`` on PostgreSQL, a text binding on SQLite (the column itself is ``NUMERIC``)."""
        if dialect.name == "sqlite":
            return _TextBoundNumeric(precision=self.precision, scale=self.scale, asdecimal=False)
        return dialect.type_descriptor(Numeric(precision=self.precision, scale=self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """Refuse floats; quantise to the scale; bind as text on SQLite."""
        if value is None:
            return None
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise TypeError(f"{type(value).__name__} is not an exact decimal; tonnes and money are never float")
        quantised = Decimal(value).quantize(self._quantum)
        if dialect.name != "sqlite":
            return quantised
        if len(quantised.as_tuple().digits) > SQLITE_EXACT_DIGITS:
            raise ValueError(
                f"{quantised} has more than the {SQLITE_EXACT_DIGITS} significant digits SQLite stores exactly"
            )
        return str(quantised)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Return the stored value as a ``Decimal`` of the column's scale."""
        if value is None:
            return None
        return Decimal(str(value)).quantize(self._quantum)


class UtcDateTime(TypeDecorator[datetime]):
    """A ``TIMESTAMP WITH TIME ZONE`` column that takes and returns aware datetimes, stored in UTC.

    Every model's instants use it, so every answer carries an offset on SQLite as on PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; convert to UTC (and drop the offset on SQLite, which would ignore it)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()} is naive; an instant needs a timezone")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the instant as an aware UTC datetime (SQLite gives it back naive, in UTC)."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
