"""OutboxRepo (storage/outbox.py): what an outage leaves behind, as operators and retries see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.outbox import Backlog
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


async def test_the_backlog_counts_rows_by_kind_and_state_with_the_oldest_pending_due_time(
    repos_db: Database,
) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection).outbox
        ids = [
            await outbox.enqueue("console", chat, "zh_CN", kind, {}, NOW + timedelta(minutes=n))
            for n, (chat, kind) in enumerate(
                [("a", "message"), ("b", "message"), ("c", "message"), ("d", "card"), ("e", "card")]
            )
        ]
        await outbox.mark_sent([ids[0]], NOW)
        await outbox.mark_retry(ids[1], "Bad Gateway", NOW + timedelta(minutes=9), NOW)
        await outbox.mark_final(ids[4], "expired", "Bad Gateway")
        backlog = await outbox.backlog()
    assert backlog == [
        Backlog("card", "expired", 1, None),
        Backlog("card", "pending", 1, NOW + timedelta(minutes=3)),
        Backlog("message", "pending", 2, NOW + timedelta(minutes=2)),
        Backlog("message", "sent", 1, None),
    ]


async def test_failing_since_is_the_first_failure_however_often_it_is_retried(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection).outbox
        row_id = await outbox.enqueue("console", "a", "zh_CN", "message", {}, NOW)
        for minutes in (0, 1, 2):
            failed_at = NOW + timedelta(minutes=minutes)
            await outbox.mark_retry(row_id, "time-out", failed_at + timedelta(minutes=1), failed_at)
        [row] = await outbox.all()
    assert (row.attempts, row.failing_since, row.next_attempt_at) == (3, NOW, NOW + timedelta(minutes=3))
