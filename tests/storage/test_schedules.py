"""ScheduleRepo (storage/schedules.py): schedules fire once and can be re-armed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


async def test_schedules_fire_once_and_can_be_rearmed(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        schedules = Repos(connection).schedules
        await schedules.arm("draft_expiry", "1:console", NOW)
        await schedules.arm("draft_expiry", "1:console", NOW + timedelta(minutes=30))
        assert [s.due_at for s in await schedules.due(NOW + timedelta(minutes=29))] == []
        due = await schedules.due(NOW + timedelta(minutes=30))
        assert len(due) == 1
        assert await schedules.claim(due[0].id, NOW)
        assert not await schedules.claim(due[0].id, NOW)
        await schedules.cancel("draft_expiry", "1:console")
        cancelled = await schedules.get("draft_expiry", "1:console")
        assert cancelled is not None and cancelled.state == "done"
