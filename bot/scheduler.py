"""APScheduler drives the schedule rows; the rows, not the scheduler, remember what is due.

The job store stays in memory: at start-up the tick job is added with a fixed
id and runs at once, which fires everything that fell due while the bot was
down. Each row is claimed in the database before it fires, so it fires once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from handlers.router import Engine

log = logging.getLogger(__name__)

TICK_JOB_ID = "schedules:fire-due"


class Scheduler:
    def __init__(self, engine: Engine, tick_seconds: float) -> None:
        self.engine = engine
        self.tick_seconds = tick_seconds
        self._scheduler = AsyncIOScheduler(timezone="UTC")

    def start(self, now: datetime) -> None:
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.tick_seconds,
            id=TICK_JOB_ID,
            replace_existing=True,
            next_run_time=now,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        self._scheduler.start()

    async def _tick(self) -> None:
        try:
            fired = await self.engine.fire_due()
        except Exception:
            log.exception("firing due schedules failed")
            return
        if fired:
            log.info("schedules fired", extra={"count": fired})

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
