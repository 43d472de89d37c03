"""The patrol repository on SQLite (and PostgreSQL when configured): the invariants of its data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage import schema as t
from storage.db import Database
from storage.models import PatrolShift
from storage.repositories import Repos

NOW = datetime(2026, 5, 18, 1, 0, tzinfo=UTC)
EVENING = datetime(2026, 5, 20, 11, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


async def users(db: Database, *names: str) -> list[int]:
    async with db.transaction() as connection:
        repos = Repos(connection)
        return [(await repos.users.create(name, NOW)).id for name in names]


def shift_values(created_by: int, starts_at: datetime = EVENING, **extra: Any) -> dict[str, Any]:
    return {
        "series_id": None,
        "area": "3号楼至南门",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=2),
        "meeting_lat": 31.23,
        "meeting_lon": 121.47,
        "meeting_label": None,
        "min_volunteers": 1,
        "max_volunteers": 3,
        "leader_id": None,
        "created_by": created_by,
        **extra,
    }


async def add_shift(db: Database, created_by: int, **extra: Any) -> PatrolShift:
    async with db.transaction() as connection:
        shift = await Repos(connection).patrols.add_shift(NOW, **shift_values(created_by, **extra))
    assert shift is not None
    return shift


async def test_a_series_generates_each_shift_once(db: Database) -> None:
    [police] = await users(db, "police")
    async with db.transaction() as connection:
        repos = Repos(connection)
        series = await repos.patrols.create_series(
            NOW,
            area="沿河步道",
            weekdays="5",
            start_time="19:00",
            end_time="21:00",
            meeting_lat=31.23,
            meeting_lon=121.47,
            meeting_label=None,
            min_volunteers=2,
            max_volunteers=4,
            leader_id=None,
            created_by=police,
            generated_until="2026-05-21",
        )
        first = await repos.patrols.add_shift(NOW, **shift_values(police, series_id=series.id))
        again = await repos.patrols.add_shift(NOW, **shift_values(police, series_id=series.id))
        assert first is not None and again is None
        # One-off shifts (no series) never collide with each other.
        assert await repos.patrols.add_shift(NOW, **shift_values(police)) is not None
        assert await repos.patrols.add_shift(NOW, **shift_values(police)) is not None
        assert await repos.patrols.series_shift_at(series.id, EVENING) == first

        await repos.patrols.mark_generated(series.id, "2026-05-31")
        await repos.patrols.mark_generated(series.id, "2026-05-25")  # never moves back
        assert (await repos.patrols.series(series.id)).generated_until == "2026-05-31"
        assert [s.id for s in await repos.patrols.active_series()] == [series.id]
        assert await repos.patrols.stop_series(series.id)
        assert not await repos.patrols.stop_series(series.id)
        assert await repos.patrols.active_series() == []


async def test_the_database_refuses_a_shift_that_ends_before_it_starts(db: Database) -> None:
    [police] = await users(db, "police")
    with pytest.raises(IntegrityError):
        await add_shift(db, police, ends_at=EVENING - timedelta(hours=1))


async def test_sign_ups_the_waiting_list_and_a_comeback(db: Database) -> None:
    police, wang, li, zhao = await users(db, "police", "wang", "li", "zhao")
    shift = await add_shift(db, police)
    async with db.transaction() as connection:
        patrols = Repos(connection).patrols
        mine = await patrols.put_signup(shift.id, wang, "confirmed", NOW)
        li_waits = await patrols.put_signup(shift.id, li, "waiting", NOW + timedelta(minutes=1))
        zhao_waits = await patrols.put_signup(shift.id, zhao, "waiting", NOW + timedelta(minutes=1))
        assert [await patrols.waiting_position(s) for s in (li_waits, zhao_waits)] == [1, 2]
        assert await patrols.taken([shift.id]) == {shift.id: 1}

        # A second sign-up row for the same person is impossible; an active one is not overwritten.
        same = await patrols.put_signup(shift.id, wang, "waiting", NOW + timedelta(minutes=5))
        assert (same.id, same.state, same.created_at) == (mine.id, "confirmed", NOW)

        assert await patrols.move_signup(li_waits.id, "waiting", "cancelled", NOW)
        assert not await patrols.move_signup(li_waits.id, "waiting", "confirmed", NOW)
        assert await patrols.waiting_position(zhao_waits) == 1
        back = await patrols.put_signup(shift.id, li, "waiting", NOW + timedelta(minutes=9))
        assert back.id == li_waits.id and back.state == "waiting"
        assert await patrols.waiting_position(back) == 2
        assert [s.user_id for s in await patrols.signups(shift.id, ("waiting",))] == [zhao, li]
        assert [s.user_id for s in await patrols.signups(shift.id)] == [wang, zhao, li]

        assert await patrols.cancel_shift(shift.id, NOW)
        assert not await patrols.cancel_shift(shift.id, NOW)
        # A cancelled shift is nobody's shift any more.
        assert await patrols.of_user(wang, NOW) == []


async def test_shifts_of_a_person_and_overlaps(db: Database) -> None:
    police, wang = await users(db, "police", "wang")
    evening = await add_shift(db, police)
    later = await add_shift(db, police, starts_at=EVENING + timedelta(hours=1))
    next_day = await add_shift(db, police, starts_at=EVENING + timedelta(days=1))
    async with db.transaction() as connection:
        patrols = Repos(connection).patrols
        await patrols.put_signup(evening.id, wang, "confirmed", NOW)
        await patrols.put_signup(next_day.id, wang, "waiting", NOW)
        assert await patrols.overlapping(wang, later.starts_at, later.ends_at, later.id) == evening
        assert await patrols.overlapping(wang, evening.starts_at, evening.ends_at, evening.id) is None
        # Waiting for a shift holds no place, so it overlaps nothing.
        assert await patrols.overlapping(wang, next_day.starts_at, next_day.ends_at, later.id) is None
        assert [(s.state, sh.id) for s, sh in await patrols.of_user(wang, NOW)] == [
            ("confirmed", evening.id),
            ("waiting", next_day.id),
        ]
        # Over once it has ended.
        assert [sh.id for _s, sh in await patrols.of_user(wang, evening.ends_at)] == [next_day.id]
        upcoming = await patrols.upcoming(NOW, NOW + timedelta(days=4))
        assert [s.id for s in upcoming] == [evening.id, later.id, next_day.id]
        assert [s.id for s in await patrols.upcoming(NOW, NOW + timedelta(days=4), limit=1)] == [evening.id]
        # Only shifts starting inside the window.
        assert [s.id for s in await patrols.upcoming(NOW, evening.starts_at + timedelta(hours=1))] == [
            evening.id
        ]


async def test_no_shows_count_after_the_moment_police_forgave_them(db: Database) -> None:
    police, wang = await users(db, "police", "wang")
    early = await add_shift(db, police)
    late = await add_shift(db, police, starts_at=EVENING + timedelta(days=2))
    async with db.transaction() as connection:
        repos = Repos(connection)
        for shift in (early, late):
            await repos.patrols.put_signup(shift.id, wang, "confirmed", NOW)
        await connection.execute(sa.update(t.patrol_signups).values(no_show=True))
        assert await repos.patrols.no_shows(wang, None) == 2
        assert await repos.patrols.no_shows(wang, EVENING + timedelta(days=1)) == 1
        assert await repos.patrols.no_shows(wang, late.starts_at) == 0


async def test_asking_to_volunteer_once_at_a_time(db: Database) -> None:
    police, chen = await users(db, "police", "chen")
    async with db.transaction() as connection:
        patrols = Repos(connection).patrols
        assert await patrols.volunteer_request(chen) is None
        assert await patrols.request_volunteer(chen, NOW)
        assert not await patrols.request_volunteer(chen, NOW)  # still waiting
        assert await patrols.decide_volunteer(chen, False, police, NOW)
        assert not await patrols.decide_volunteer(chen, True, police, NOW)  # decided already
        decided = await patrols.volunteer_request(chen)
        assert (decided.approved, decided.decided_by) == (False, police)
        # Declined people may ask again; approved ones need not.
        later = NOW + timedelta(days=30)
        assert await patrols.request_volunteer(chen, later)
        again = await patrols.volunteer_request(chen)
        assert (again.requested_at, again.approved, again.decided_at) == (later, None, None)
        assert await patrols.decide_volunteer(chen, True, police, later)
        assert not await patrols.request_volunteer(chen, later)
