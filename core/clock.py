"""Time as an injected dependency, so that services are deterministic under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current UTC time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time, truncated to microseconds."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests, replays)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        """Return the fixed time."""
        return self._at

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._at += delta
