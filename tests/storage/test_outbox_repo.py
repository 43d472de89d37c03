"""OutboxRepo (storage/outbox.py): what an outage leaves behind, as operators and retries see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


async def test_failing_since_is_the_first_failure_however_often_it_is_retried(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection).outbox
        row_id = await outbox.enqueue("console", "a", "zh_CN", "message", {}, NOW)
        for minutes in (0, 1, 2):
            failed_at = NOW + timedelta(minutes=minutes)
            await outbox.mark_retry(row_id, "time-out", failed_at + timedelta(minutes=1), failed_at)
        [row] = await outbox.all()
    assert (row.attempts, row.failing_since, row.next_attempt_at) == (3, NOW, NOW + timedelta(minutes=3))
