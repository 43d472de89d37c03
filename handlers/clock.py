"""Time source, replaceable so escalations and expiries can be tested without sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, moment: datetime) -> None:
        """Return once this clock shows `moment` (at once if it is past)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - self.now()).total_seconds()))


class FakeClock:
    """A clock that only moves when told to; what sleeps on it wakes when it is moved far enough."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
        self._moved()

    def set(self, moment: datetime) -> None:
        self._now = moment
        self._moved()

    async def sleep_until(self, moment: datetime) -> None:
        if moment <= self._now:
            await asyncio.sleep(0)
            return
        sleeper = (moment, asyncio.get_running_loop().create_future())
        self._sleepers.append(sleeper)
        try:
            await sleeper[1]
        finally:
            self._sleepers.remove(sleeper)

    def _moved(self) -> None:
        for until, woken in self._sleepers:
            if until <= self._now and not woken.done():
                woken.set_result(None)
