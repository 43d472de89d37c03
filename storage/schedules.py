"""Schedules: reminders, escalations, recurring notices and digests as rows, fired once each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage import schema as t
from storage.db import DbConnection
from storage.kinds import Kinds
from storage.models import Schedule
from storage.rows import Insert, Repo, all_models, to_model

PENDING = "pending"
DONE = "done"
CANCELLED = "cancelled"


class ScheduleRepo(Repo):
    def __init__(self, connection: DbConnection, kinds: Kinds | None = None) -> None:
        super().__init__(connection)
        # None: any kind (storage tests); the engine always passes its features' kinds.
        self.kinds = kinds

    async def arm(self, kind: str, ref: str, due_at: datetime) -> None:
        """Create the schedule, or re-arm it for a new time."""
        if self.kinds is not None:
            self.kinds.check_schedule(kind)

        # Prebuilt: a draft's expiry is re-armed at every step of a conversation (bench/throughput.py).
        def upsert(insert: Insert) -> Any:
            stmt = insert(t.schedules).values(state=PENDING, fired_at=None)
            return stmt.on_conflict_do_update(
                index_elements=["kind", "ref"],
                set_={"due_at": stmt.excluded.due_at, "state": PENDING, "fired_at": None},
            )

        await self.c.execute(self.prebuilt(upsert), {"kind": kind, "ref": ref, "due_at": due_at})

    async def cancel(self, kind: str, ref: str) -> None:
        s = t.schedules.c
        await self.c.execute(
            t.schedules.update()
            .where(s.kind == kind, s.ref == ref, s.state == PENDING)
            .values(state=CANCELLED)
        )

    async def pending_of(self, kind: str) -> list[Schedule]:
        s = t.schedules.c
        rows = await self.c.execute(
            sa.select(t.schedules).where(s.kind == kind, s.state == PENDING).order_by(s.due_at, s.id)
        )
        return all_models(Schedule, rows)

    async def due(self, now: datetime, limit: int = 100) -> list[Schedule]:
        s = t.schedules.c
        rows = await self.c.execute(
            sa.select(t.schedules)
            .where(s.state == PENDING, s.due_at <= now)
            .order_by(s.due_at, s.id)
            .limit(limit)
        )
        return all_models(Schedule, rows)

    async def claim(self, schedule_id: int, now: datetime) -> bool:
        """Take a due schedule for firing; only one claimant ever succeeds."""
        s = t.schedules.c
        result = await self.c.execute(
            t.schedules.update()
            .where(s.id == schedule_id, s.state == PENDING)
            .values(state=DONE, fired_at=now)
        )
        return result.rowcount == 1

    async def get(self, kind: str, ref: str) -> Schedule | None:
        s = t.schedules.c
        row = (await self.c.execute(sa.select(t.schedules).where(s.kind == kind, s.ref == ref))).first()
        return to_model(Schedule, row)

    async def pending_kinds(self) -> set[str]:
        rows = await self.c.execute(
            sa.select(t.schedules.c.kind).where(t.schedules.c.state == PENDING).distinct()
        )
        return set(rows.scalars())
