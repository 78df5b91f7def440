"""Oxatis time: naive store-local wall times on the wire, aware UTC instants everywhere else.

Oxatis writes and filters on naive local times (ASSUMPTION, oxatis-api.md §6 Q6:
the store time zone setting says which zone). Two nights a year make that
lossy, and both are handled here, in one place:

* on the autumn night the wall clock repeats an hour: a wall time in it has
  two readings and the wire does not say which. :func:`to_utc` always takes the
  later one, so the same reply always maps to the same order (a stored order
  equals the store's data whenever it was read), and a timestamp is never
  placed before the event it records happened;
* a window's lower bound must cover every instant after it, so
  :func:`wall_floor` returns the earliest wall time any later instant reads,
  which is before the bound's own wall time just ahead of a fall-back;
* in spring the wall clock skips an hour: no instant reads a time in the gap,
  so bounds computed from instants never fall into it.

.NET's ``DateTime.MinValue`` (``0001-01-01T00:00:00``) means "no date" and reads as ``None``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["to_utc", "wall_floor", "wall_time"]

_LOOKAHEAD = timedelta(hours=3)  # longer than any backward jump of a wall clock
_STEP = timedelta(minutes=15)


def to_utc(value: datetime | None, tz: tzinfo) -> datetime | None:
    """An Oxatis timestamp as an aware UTC instant, or ``None`` for no date."""
    if value is None or value.year <= 1:
        return None
    try:
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        later = value.replace(tzinfo=tz, fold=1).astimezone(UTC)
        earlier = value.replace(tzinfo=tz, fold=0).astimezone(UTC)
    except (OverflowError, ValueError):  # 9999-12-31 in a zone east of UTC, and the like
        return None
    return max(earlier, later)  # in the spring gap fold=0 is the later one


def wall_time(instant: datetime, tz: tzinfo) -> datetime:
    """The store's naive wall time for an aware instant, in whole seconds (rounded down)."""
    return instant.astimezone(tz).replace(tzinfo=None, microsecond=0)


def wall_floor(instant: datetime, tz: tzinfo) -> datetime:
    """The earliest wall time read by any instant at or after ``instant``.

    Sending it as a window's start includes every order modified at or after
    ``instant``, even when the wall clock falls back soon after.
    """
    floor = wall_time(instant, tz)
    offset = instant.astimezone(tz).utcoffset()
    probe = instant
    while probe < instant + _LOOKAHEAD:
        nxt = probe + _STEP
        next_offset = nxt.astimezone(tz).utcoffset()
        if offset is not None and next_offset is not None and next_offset < offset:
            low, high = probe, nxt  # the clock fell back somewhere in (low, high]
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                if mid.astimezone(tz).utcoffset() == offset:
                    low = mid
                else:
                    high = mid
            floor = min(floor, wall_time(high, tz) - timedelta(seconds=1))
        offset, probe = next_offset, nxt
    return floor
