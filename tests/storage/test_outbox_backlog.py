"""The outbox backlog that /metrics reports: pending rows only, by channel, kind and state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.repositories import Repos

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


async def test_the_backlog_counts_pending_rows_by_channel_kind_and_state(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection).outbox
        due = [await outbox.enqueue("telegram", str(n), "zh_CN", "message", {}, NOW) for n in range(3)]
        retried = await outbox.enqueue("telegram", "10", "zh_CN", "card", {}, NOW)
        await outbox.mark_retry(retried, "HTTP 502", NOW + timedelta(seconds=4))
        # Held over quiet hours: due in the morning.
        await outbox.enqueue("wecom", "WangFang", "zh_CN", "message", {}, NOW + timedelta(hours=9))
        sent = await outbox.enqueue("wecom", "LiXiaoMing", "zh_CN", "message", {}, NOW)
        await outbox.mark_sent([sent, due[0]], NOW)
        failed = await outbox.enqueue("telegram", "11", "zh_CN", "message", {}, NOW)
        await outbox.mark_final(failed, "failed", "chat not found")

    async with repos_db.transaction(read_only=True) as connection:
        backlog = await Repos(connection).outbox.backlog(NOW)
    assert sorted(backlog) == [
        ("telegram", "card", "retrying", 1),
        ("telegram", "message", "due", 2),
        ("wecom", "message", "scheduled", 1),
    ]
    async with repos_db.transaction(read_only=True) as connection:
        # Nine hours on, the quiet-hours row is due too.
        later = await Repos(connection).outbox.backlog(NOW + timedelta(hours=9))
    assert ("wecom", "message", "due", 1) in later
