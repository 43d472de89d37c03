"""Joining two accounts of one person (/link) carries everything that points at the person."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from storage import schema as t
from storage.db import Database
from storage.ledger import redemption_ref
from storage.repositories import Repos

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


async def _shift(repos: Repos, creator: int, hours_ahead: int) -> int:
    starts = NOW + timedelta(hours=hours_ahead)
    shift = await repos.patrols.add_shift(
        NOW,
        area="A 线",
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        meeting_lat=31.23,
        meeting_lon=121.47,
        min_volunteers=1,
        max_volunteers=5,
        created_by=creator,
    )
    assert shift is not None
    return shift.id


async def _sign_up(repos: Repos, shift_id: int, user_id: int, state: str) -> None:
    await repos.connection.execute(
        t.patrol_signups.insert().values(
            shift_id=shift_id, user_id=user_id, state=state, created_at=NOW, updated_at=NOW
        )
    )


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


async def _one_person_twice(repos: Repos) -> tuple[int, int]:
    """(kept, dropped): one person's accounts on two channels."""
    keep = (await repos.users.create("王芳 (Telegram)", NOW)).id
    drop = (await repos.users.create("王芳 (企业微信)", NOW)).id
    return keep, drop


async def test_merging_keeps_one_row_where_only_one_is_allowed_and_moves_the_rest(database: Database) -> None:
    async with database.transaction() as connection:
        repos = Repos(connection)
        keep, drop = await _one_person_twice(repos)
        both, only_dropped = await _shift(repos, keep, 24), await _shift(repos, keep, 48)
        await _sign_up(repos, both, keep, "confirmed")
        await _sign_up(repos, both, drop, "waiting")
        await _sign_up(repos, only_dropped, drop, "confirmed")
        await connection.execute(t.volunteer_requests.insert().values(user_id=drop, requested_at=NOW))
        await repos.links.merge_users(keep, drop, NOW)
    async with database.transaction() as connection:
        signups = (
            await connection.execute(
                sa.select(
                    t.patrol_signups.c.shift_id, t.patrol_signups.c.user_id, t.patrol_signups.c.state
                ).order_by(t.patrol_signups.c.shift_id)
            )
        ).all()
        requests = (await connection.execute(sa.select(t.volunteer_requests.c.user_id))).scalars().all()
        gone = await Repos(connection).users.get(drop)
    # The surviving person's own sign-up wins over the waiting-list entry of the other account.
    assert [tuple(row) for row in signups] == [(both, keep, "confirmed"), (only_dropped, keep, "confirmed")]
    assert requests == [keep] and gone is None


async def test_two_requests_for_the_same_reward_become_one_and_the_points_come_back(
    database: Database,
) -> None:
    async with database.transaction() as connection:
        repos = Repos(connection)
        keep, drop = await _one_person_twice(repos)
        requests = {}
        for user_id, points in ((keep, 100), (drop, 80)):
            await repos.ledger.credit_user(
                user_id, points, f"seed:{user_id}", "points.reason.award", {}, None, NOW
            )
            for reward in ("tissues", "umbrella") if user_id == drop else ("tissues",):
                redemption = await repos.rewards.request(user_id, reward, 30, NOW)
                assert redemption is not None
                await repos.ledger.reserve(
                    user_id,
                    30,
                    redemption_ref(redemption.id),
                    "points.reason.redemption_requested",
                    {},
                    user_id,
                    NOW,
                )
                requests[user_id, reward] = redemption.id
        await repos.links.merge_users(keep, drop, NOW)
    async with database.transaction() as connection:
        repos = Repos(connection)
        states = {key: (await repos.rewards.get(rid)).state for key, rid in requests.items()}
        assert states == {
            (keep, "tissues"): "pending",
            (drop, "tissues"): "rejected",  # the double; the dropped account's umbrella still waits
            (drop, "umbrella"): "pending",
        }
        assert [r.user_id for r in await repos.rewards.pending()] == [keep, keep]
        # 100 + 80 earned, two requests of 30 still held.
        assert await repos.ledger.balance(keep) == 120
        assert await repos.ledger.reserved(keep) == 60
        assert await repos.ledger.verify()
