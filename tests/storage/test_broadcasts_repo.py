"""Broadcast storage: who can be reached, listing once, figures from the outbox, cancelling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.db import Database
from storage.models import BroadcastCandidate
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


async def person(repos: Repos, name: str, *, grid: str | None = "g1", role: str = "resident") -> int:
    user = await repos.users.create(name, NOW, role=role)
    await repos.users.update(user.id, onboarded_at=NOW, grid_key=grid, building="3")
    return user.id


def copy(candidate: BroadcastCandidate) -> dict[str, Any]:
    return {
        "user_id": candidate.user_id,
        "channel": candidate.channel,
        "chat_id": candidate.chat_id,
        "language": "zh_CN",
        "grid_key": candidate.grid_key,
        "building": candidate.building,
        "next_attempt_at": NOW,
    }


async def test_one_chat_per_person_the_newest_reachable_one(db: Database) -> None:
    async with db.transaction() as connection:
        repos = Repos(connection)
        both = await person(repos, "both")
        await repos.users.add_identity("telegram", "t1", both, "t1", NOW)
        await repos.users.add_identity("wecom", "w1", both, "w1", NOW + timedelta(hours=1))
        blocked = await person(repos, "blocked")
        await repos.users.add_identity("telegram", "t2", blocked, "t2", NOW)
        await repos.users.mark_blocked("telegram", "t2", NOW)
        # Met the bot only in a group: no private chat to write to.
        group_only = await person(repos, "group-only")
        await repos.users.add_identity("telegram", "t3", group_only, None, NOW)
        elsewhere = await person(repos, "elsewhere", grid="g2", role="volunteer")
        await repos.users.add_identity("telegram", "t4", elsewhere, "t4", NOW)
        not_onboarded = await repos.users.create("new", NOW)
        await repos.users.add_identity("telegram", "t5", not_onboarded.id, "t5", NOW)

        everyone = await repos.broadcasts.candidates("community", [], None)
        assert [(c.user_id, c.channel, c.chat_id) for c in everyone] == [
            (both, "wecom", "w1"),
            (elsewhere, "telegram", "t4"),
        ]
        in_g1 = await repos.broadcasts.candidates("grids", ["g1"], None)
        assert [c.user_id for c in in_g1] == [both]
        volunteers = await repos.broadcasts.candidates("volunteers", [], ["volunteer"])
        assert [c.user_id for c in volunteers] == [elsewhere]


async def test_recipients_are_listed_once_and_counted_from_the_outbox(db: Database) -> None:
    async with db.transaction() as connection:
        repos = Repos(connection)
        author = await person(repos, "police", role="police")
        for name in ("a", "b", "c"):
            user_id = await person(repos, name)
            await repos.users.add_identity("telegram", name, user_id, name, NOW)
        broadcast_id = await repos.broadcasts.create(
            author_id=author,
            kind="fraud",
            priority="urgent",
            text="当心诈骗",
            photo_id=None,
            audience={"type": "community", "grids": []},
            state="sending",
            scheduled_at=None,
            notice_id=None,
            now=NOW,
        )
        assert await repos.broadcasts.start_sending(broadcast_id, NOW)
        assert not await repos.broadcasts.start_sending(broadcast_id, NOW)
        people = await repos.broadcasts.candidates("community", [], None)
        group = {**copy(people[0]), "user_id": None, "chat_id": "-100", "grid_key": None, "building": None}
        assert await repos.broadcasts.add_recipients(broadcast_id, [*map(copy, people), group], NOW) == 4

        rows = {row.chat_id: row for row in await repos.outbox.all()}
        assert set(rows) == {"a", "b", "c", "-100"}
        assert all(
            row.kind == "broadcast" and row.payload["broadcast_id"] == broadcast_id for row in rows.values()
        )
        assert [chat for chat, row in rows.items() if row.payload["group"]] == ["-100"]
        await repos.outbox.mark_sent([rows["a"].id], NOW)
        await repos.outbox.mark_final(rows["b"].id, "blocked", "Forbidden: bot was blocked by the user")

        a_id = people[0].user_id
        assert await repos.broadcasts.acknowledge(broadcast_id, a_id, NOW)
        assert not await repos.broadcasts.acknowledge(broadcast_id, a_id, NOW)
        figures = await repos.broadcasts.figures(broadcast_id)
        assert (figures.people, figures.groups, figures.delivered, figures.pending, figures.blocked) == (
            3,
            1,
            1,
            2,
            1,
        )
        assert (figures.people_delivered, figures.acked) == (1, 1)
        assert await repos.broadcasts.next_pending_at(broadcast_id) == NOW

        # Cancelling gives up what has not gone out, and can happen once.
        assert await repos.broadcasts.cancel(broadcast_id, NOW) == 2
        assert await repos.broadcasts.cancel(broadcast_id, NOW) is None
        assert await repos.broadcasts.next_pending_at(broadcast_id) is None
        assert (await repos.outbox.counts()) == {"sent": 1, "blocked": 1, "failed": 2}


async def test_subscriptions_and_opt_out_counts(db: Database) -> None:
    async with db.transaction() as connection:
        repos = Repos(connection)
        a = await person(repos, "a")
        b = await person(repos, "b")
        assert await repos.broadcasts.subscription(a) is None
        await repos.broadcasts.save_subscription(a, ["fraud", "weather", "fraud"], "22:00", "07:00", NOW)
        await repos.broadcasts.save_subscription(b, ["fraud"], None, None, NOW)
        saved = await repos.broadcasts.subscription(a)
        assert saved is not None
        assert (saved.muted_kinds, saved.quiet_from, saved.quiet_until) == (
            ["fraud", "weather"],
            "22:00",
            "07:00",
        )
        assert await repos.broadcasts.opt_outs() == {"fraud": 2, "weather": 1}
