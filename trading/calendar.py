"""Trading-session calendars: when an instrument accepts orders, in exchange local time.

Invariants:

- Pure: a calendar answers from the timestamp it is given; it never reads the clock or a time-zone
  database. China has kept UTC+08:00 without daylight saving since 1991, so Asia/Shanghai is a fixed
  offset (``utc_offset_minutes = 480``); the offset is configurable for other venues.
- A session is the half-open interval ``[start, end)`` of local time: 09:30:00 is open, 11:30:00 is
  closed. Trading days are the configured weekdays minus ``closed_dates`` (holidays).
- Timestamps must be timezone-aware; a naive one is refused, because its instant is unknown.

>>> from datetime import datetime, timezone
>>> SHANGHAI_SESSIONS.is_open(datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc))   # 10:00 in Shanghai
True
>>> SHANGHAI_SESSIONS.is_open(datetime(2026, 11, 25, 3, 45, tzinfo=timezone.utc))  # 11:45, lunch break
False
>>> ALWAYS_OPEN.is_open(datetime(2026, 11, 29, 23, 59, tzinfo=timezone.utc))       # a Sunday night
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS_PER_DAY = 86_400
#: 1970-01-01 was a Thursday; Monday is weekday 0, as in :meth:`datetime.weekday`.
_EPOCH_WEEKDAY = 3


def _seconds_of(clock_time: time) -> int:
    return clock_time.hour * 3600 + clock_time.minute * 60 + clock_time.second


@dataclass(frozen=True, slots=True)
class SessionCalendar:
    """Sessions within a trading day, trading weekdays and holidays.

    Attributes:
        sessions: ``(start, end)`` pairs of local times, each session half-open ``[start, end)``.
        utc_offset_minutes: Local time minus UTC, in minutes (480 for Asia/Shanghai).
        weekdays: Trading weekdays, Monday = 0.
        closed_dates: Local dates on which there is no trading (holidays).
        always_open: When true, every instant is open (demo and tests).
    """

    sessions: tuple[tuple[time, time], ...]
    utc_offset_minutes: int = 480
    weekdays: frozenset[int] = frozenset(range(5))
    closed_dates: frozenset[date] = frozenset()
    always_open: bool = False
    _windows_s: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        windows = tuple((_seconds_of(start), _seconds_of(end)) for start, end in self.sessions)
        if any(start_s >= end_s for start_s, end_s in windows):
            raise ValueError("each session must end after it starts")
        object.__setattr__(self, "_windows_s", windows)

    def _local_day_and_second(self, at: datetime) -> tuple[int, int]:
        """Return (days since 1970-01-01 local, second of the local day) of an aware instant."""
        elapsed = at - _EPOCH
        local_s = elapsed.days * _SECONDS_PER_DAY + elapsed.seconds + self.utc_offset_minutes * 60
        return divmod(local_s, _SECONDS_PER_DAY)

    def is_open(self, at: datetime) -> bool:
        """Return whether the instant ``at`` (timezone-aware) falls inside a session of a trading day.

        Raises:
            ValueError: ``at`` is naive.
        """
        if at.tzinfo is None:
            raise ValueError("a naive timestamp has no instant; pass a timezone-aware datetime")
        if self.always_open:
            return True
        day, second = self._local_day_and_second(at)
        if (day + _EPOCH_WEEKDAY) % 7 not in self.weekdays:
            return False
        if self.closed_dates and date(1970, 1, 1) + timedelta(days=day) in self.closed_dates:
            return False
        return any(start_s <= second < end_s for start_s, end_s in self._windows_s)

    def trading_date(self, at: datetime) -> date:
        """Return the local calendar date of ``at``.

        >>> SHANGHAI_SESSIONS.trading_date(datetime(2026, 11, 25, 17, 0, tzinfo=UTC))
        datetime.date(2026, 11, 26)
        """
        if at.tzinfo is None:
            raise ValueError("a naive timestamp has no instant; pass a timezone-aware datetime")
        day, _ = self._local_day_and_second(at)
        return date(1970, 1, 1) + timedelta(days=day)


#: National listing-agreement hours: Mon–Fri 9:30–11:30 and 13:00–15:00, Asia/Shanghai (registry-trading §4.1).
SHANGHAI_SESSIONS = SessionCalendar(sessions=((time(9, 30), time(11, 30)), (time(13, 0), time(15, 0))))
#: National block-agreement hours: Mon–Fri 13:00–15:00, Asia/Shanghai (§4.1).
SHANGHAI_AFTERNOON = SessionCalendar(sessions=((time(13, 0), time(15, 0)),))
#: Open at every instant, every day: for the demo and for tests that are not about sessions.
ALWAYS_OPEN = SessionCalendar(sessions=(), weekdays=frozenset(range(7)), always_open=True)
