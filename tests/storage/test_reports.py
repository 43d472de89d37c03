"""ReportRepo (storage/reports.py): ticket numbers and state moves under races."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.db import Database
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


async def test_ticket_counter_and_state_moves_are_race_safe(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        repos = Repos(connection)
        assert [await repos.reports.next_ticket_number(2026) for _ in range(3)] == [1, 2, 3]
        assert await repos.reports.next_ticket_number(2027) == 1
        user = await repos.users.create("x", NOW)
        report = await repos.reports.create(
            ticket="2026-0009",
            reporter_id=user.id,
            category="fire",
            urgency="normal",
            description="x",
            anonymous=False,
            state="submitted",
            created_at=NOW,
            updated_at=NOW,
        )
        assert await repos.reports.move(report.id, "submitted", "acknowledged", NOW)
        # The second of two simultaneous clicks finds the state already changed.
        assert not await repos.reports.move(report.id, "submitted", "acknowledged", NOW)
