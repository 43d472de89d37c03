"""RewardRepo: redemptions asked and decided once, stock never past its limit, ranks, honours, searches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from storage import schema as t
from storage.db import Database
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


async def make_users(db: Database, *names: str) -> list[int]:
    async with db.transaction() as connection:
        repos = Repos(connection)
        ids = []
        for name in names:
            user = await repos.users.create(name, NOW)
            await repos.users.update(user.id, onboarded_at=NOW)
            ids.append(user.id)
        return ids


async def test_one_pending_request_per_person_and_reward(db: Database) -> None:
    wang, chen = await make_users(db, "wang", "chen")
    async with db.transaction() as connection:
        rewards = Repos(connection).rewards
        first = await rewards.request(wang, "rice", 100, NOW)
        assert first is not None and (first.state, first.cost) == ("pending", 100)
        assert await rewards.request(wang, "rice", 100, NOW) is None
        assert await rewards.request(wang, "pen", 10, NOW) is not None
        assert await rewards.request(chen, "rice", 100, NOW) is not None

        assert await rewards.decide(first.id, "rejected", chen, NOW, reason="no") is True
        assert await rewards.decide(first.id, "approved", chen, NOW, pickup_code="ABC234") is False
        decided = await rewards.get(first.id)
        assert (decided.state, decided.reason, decided.pickup_code) == ("rejected", "no", None)
        # Decided, the reward may be asked for again.
        assert await rewards.request(wang, "rice", 100, NOW) is not None
        assert [r.reward_key for r in await rewards.of_user(wang, ("pending",))] == ["rice", "pen"]
        assert [r.user_id for r in await rewards.pending()] == [wang, chen, wang]
        assert await rewards.count_pending() == 3


async def test_simultaneous_requests_ask_once(db: Database) -> None:
    (wang,) = await make_users(db, "wang")

    async def attempt() -> bool:
        async with db.transaction() as connection:
            made = await Repos(connection).rewards.request(wang, "rice", 100, NOW)
            await asyncio.sleep(0.01)  # a slow transaction: the others try while this one is open
            return made is not None

    assert sorted(await asyncio.gather(*(attempt() for _ in range(6)))) == [False] * 5 + [True]


async def test_stock_is_taken_one_at_a_time_and_never_past_the_limit(db: Database) -> None:
    async def take(stock: int | None) -> bool:
        async with db.transaction() as connection:
            taken = await Repos(connection).rewards.take_stock("rice", stock)
            await asyncio.sleep(0.005)  # a slow transaction: the others try while this one is open
            return taken

    results = await asyncio.gather(*(take(3) for _ in range(8)))
    assert sum(results) == 3
    assert await take(None)
    async with db.transaction() as connection:
        rewards = Repos(connection).rewards
        assert await rewards.issued() == {"rice": 4}
        # A smaller stock written into the community file later: nothing more goes out.
        assert await rewards.take_stock("rice", 2) is False


async def test_a_pickup_code_is_unique(db: Database) -> None:
    wang, chen = await make_users(db, "wang", "chen")
    async with db.transaction() as connection:
        rewards = Repos(connection).rewards
        first = await rewards.request(wang, "rice", 100, NOW)
        await rewards.decide(first.id, "approved", chen, NOW, pickup_code="ABC234")
        assert await rewards.pickup_code_taken("ABC234")
        assert not await rewards.pickup_code_taken("ABC235")


async def test_standing_ranks_like_the_leaderboard(db: Database) -> None:
    a, b, c, d, e = await make_users(db, "a", "b", "c", "d", "e")
    async with db.transaction() as connection:
        repos = Repos(connection)
        for user_id, grid in ((a, "g1"), (b, "g2"), (c, "g1"), (d, "g1"), (e, "g1")):
            await repos.users.update(user_id, grid_key=grid)
        for user_id, points in ((a, 30), (b, 50), (c, 30), (d, 99)):
            await repos.ledger.credit_user(user_id, points, f"award:{user_id}", "x", {}, None, NOW)
        await repos.users.update(d, leaderboard_opt_out=True)
        period = repos.ledger.month(NOW)
        board = [s.user_id for s in await repos.ledger.leaderboard(period)]
        assert board == [b, a, c]
        assert [await repos.rewards.standing(u, period) for u in board] == [(1, 50), (2, 30), (3, 30)]
        assert await repos.rewards.standing(c, period, "g1") == (2, 30)
        assert await repos.rewards.standing(b, period, "g1") is None
        assert await repos.rewards.standing(e, period) is None
        assert await repos.rewards.standing(a, "2026-04") is None


async def test_find_people_takes_the_typed_text_literally(db: Database) -> None:
    await make_users(db, "王小明", "王_明", "100%李", "Wang Fang")
    async with db.transaction() as connection:
        repos = Repos(connection)
        await repos.users.create("王未注册", NOW)  # not onboarded: cannot be awarded
        rewards = repos.rewards
        assert [u.display_name for u in await rewards.find_people("王", 10)] == ["王_明", "王小明"]
        assert [u.display_name for u in await rewards.find_people("_", 10)] == ["王_明"]
        assert [u.display_name for u in await rewards.find_people("%", 10)] == ["100%李"]
        assert [u.display_name for u in await rewards.find_people("wang", 10)] == ["Wang Fang"]
        assert len(await rewards.find_people("王", 1)) == 1


async def test_award_entries_know_their_person_and_reversal(db: Database) -> None:
    (wang,) = await make_users(db, "wang")
    async with db.transaction() as connection:
        repos = Repos(connection)
        entry = await repos.ledger.credit_user(wang, 10, "award:x", "x", {"reason": "r"}, None, NOW)
        found = await repos.rewards.award_entry(entry)
        assert (found.user_id, found.amount, found.reversed, found.reason_params) == (
            wang,
            10,
            False,
            {"reason": "r"},
        )
        reversal = await repos.ledger.reverse(entry, "y", {}, None, NOW)
        assert (await repos.rewards.award_entry(entry)).reversed is True
        # A reversal moves points out of the person's account: it is not an award of theirs.
        assert await repos.rewards.award_entry(reversal) is None
        assert await repos.rewards.award_entry(10**6) is None


async def test_patrol_leaders_and_honours_recorded_once(db: Database) -> None:
    police, a, b, hidden = await make_users(db, "police", "a", "b", "hidden")
    start = datetime(2026, 5, 1, tzinfo=UTC)
    async with db.transaction() as connection:
        repos = Repos(connection)
        await repos.users.update(hidden, leaderboard_opt_out=True)
        for offset, state, worked in (
            (1, "scheduled", {a: 60, b: 90, hidden: 500}),
            (2, "cancelled", {a: 300}),
        ):
            when = start + timedelta(days=offset)
            shift = await repos.patrols.add_shift(
                when,
                area="x",
                starts_at=when,
                ends_at=when + timedelta(hours=2),
                meeting_lat=0,
                meeting_lon=0,
                min_volunteers=0,
                max_volunteers=5,
                state=state,
                created_by=police,
            )
            assert shift is not None
            for user_id, minutes in worked.items():
                await connection.execute(
                    t.patrol_signups.insert().values(
                        shift_id=shift.id,
                        user_id=user_id,
                        state="confirmed",
                        created_at=when,
                        updated_at=when,
                        minutes_worked=minutes,
                    )
                )
        rewards = repos.rewards
        leaders = await rewards.patrol_leaders(start, start + timedelta(days=31), 5)
        assert leaders == [(b, 90), (a, 60)]
        assert await rewards.patrol_leaders(start, start + timedelta(days=31), 0) == []
        assert await rewards.patrol_leaders(start + timedelta(days=31), start + timedelta(days=60), 5) == []

        added = await rewards.add_honours("2026-05", "guardian", leaders, NOW)
        assert [(h.rank, h.user_id, h.score) for h in added] == [(1, b, 90), (2, a, 60)]
        assert await rewards.add_honours("2026-05", "guardian", [(a, 1)], NOW) == []
        assert [h.user_id for h in await rewards.honours("2026-05")] == [b, a]
        rows = await rewards.patrol_hours_between(start, start + timedelta(days=31))
        assert [(r.user_id, r.minutes_worked) for r in rows] == [(a, 60), (b, 90), (hidden, 500)]
