"""OutboxRepo's lanes (storage/outbox.py): rows carry a priority, and the claim of chats' heads
takes the most urgent chats first while keeping each chat's own order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.kinds import Kinds
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
INTERACTIVE, URGENT, BULK = 0, 2, 4
KINDS = Kinds(
    outbox=frozenset({"message", "broadcast", "card"}),
    schedules=frozenset(),
    priorities={"broadcast": BULK, "card": INTERACTIVE},
)


async def test_a_row_takes_its_kinds_priority_unless_it_is_given_one(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection, kinds=KINDS).outbox
        await outbox.enqueue("console", "a", "zh_CN", "broadcast", {}, NOW)
        await outbox.enqueue("console", "b", "zh_CN", "broadcast", {}, NOW, priority=URGENT)
        await outbox.enqueue("console", "c", "zh_CN", "message", {}, NOW)
        await outbox.enqueue("console", "d", "zh_CN", "message", {}, NOW, priority=BULK)
        rows = await outbox.all()
    assert [(row.chat_id, row.priority) for row in rows] == [
        ("a", BULK),
        ("b", URGENT),
        ("c", INTERACTIVE),
        ("d", BULK),
    ]


async def test_heads_come_most_urgent_first_then_in_the_order_queued(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection).outbox
        for n in range(3):
            await outbox.enqueue("console", f"bulk{n}", "zh_CN", "broadcast", {}, NOW, priority=BULK)
        await outbox.enqueue("console", "group", "zh_CN", "broadcast", {}, NOW, priority=URGENT - 1)
        await outbox.enqueue("console", "person", "zh_CN", "broadcast", {}, NOW, priority=URGENT)
        await outbox.enqueue("console", "police", "zh_CN", "card", {}, NOW, priority=INTERACTIVE)
        heads = await outbox.heads(NOW, ["console"], 100)
        due = await outbox.due(NOW)
    expected = ["police", "group", "person", "bulk0", "bulk1", "bulk2"]
    assert [row.chat_id for row in heads] == expected
    assert [row.chat_id for row in due] == expected


async def test_a_chat_keeps_its_order_and_goes_with_its_most_urgent_row(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection).outbox
        await outbox.enqueue("console", "someone", "zh_CN", "broadcast", {}, NOW, priority=BULK)
        digest = await outbox.enqueue("console", "police", "zh_CN", "message", {}, NOW, priority=BULK)
        await outbox.enqueue("console", "police", "zh_CN", "card", {}, NOW, priority=INTERACTIVE)
        heads = await outbox.heads(NOW, ["console"], 100)
    # The police group's digest still goes before the card queued after it, but the group is
    # taken at the card's priority, ahead of the broadcast queued before both.
    assert [(row.chat_id, row.id, row.priority) for row in heads] == [
        ("police", digest, INTERACTIVE),
        ("someone", 1, BULK),
    ]


async def test_heads_below_a_priority_are_only_chats_with_a_more_urgent_row(repos_db: Database) -> None:
    async with repos_db.transaction() as connection:
        outbox = Repos(connection).outbox
        for n in range(5):
            await outbox.enqueue("console", f"bulk{n}", "zh_CN", "broadcast", {}, NOW, priority=BULK)
        await outbox.enqueue("console", "bulk0", "zh_CN", "message", {}, NOW, priority=INTERACTIVE)
        await outbox.enqueue("console", "reply", "zh_CN", "message", {}, NOW, priority=INTERACTIVE)
        # Waiting for a retry: not due, so not fetched ahead of anything.
        later = NOW + timedelta(hours=1)
        held = await outbox.enqueue("console", "held", "zh_CN", "message", {}, NOW, priority=INTERACTIVE)
        await outbox.mark_retry(held, "", later)
        await outbox.enqueue("console", "urgent", "zh_CN", "broadcast", {}, NOW, priority=URGENT)
        overtaking = await outbox.heads(NOW, ["console"], 100, below=BULK)
        only_interactive = await outbox.heads(NOW, ["console"], 100, below=URGENT)
    assert [row.chat_id for row in overtaking] == ["bulk0", "reply", "urgent"]
    assert [row.chat_id for row in only_interactive] == ["bulk0", "reply"]
