"""Wall-clock times in the community's time zone: what people type and what a series repeats.

Times are stored in UTC; these turn them into local days and clock times and back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo

# The ISO weekdays a series repeats on ("5" is every Friday).
DAILY = "1234567"
WEEKDAYS = "12345"


def local_day(moment: datetime, tz: tzinfo) -> date:
    return moment.astimezone(tz).date()


def at_local(day: date, clock: time, tz: tzinfo) -> datetime:
    """The UTC moment of a wall-clock time on a local date.

    zoneinfo resolves the offset for that very date (DST included); a time that a
    clock change skips lands just after the gap, one repeated lands on its first pass.
    """
    return datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)


def hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))
