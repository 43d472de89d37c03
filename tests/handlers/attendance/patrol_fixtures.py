"""Patrol shifts and sign-ups written straight into the database.

Tests of what happens on a shift (check-in, check-out, closing, statistics)
should not depend on the dialogue that creates shifts and signs people up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from handlers.patrols import rules as patrols
from storage import schema as t
from storage.repositories import Repos
from tests.harness import Harness

# The example community's centre: every test shift meets there.
MEETING_LAT = 31.2304
MEETING_LON = 121.4737
# Metres per degree of latitude (mean Earth radius), to place people at a known distance.
METRES_PER_DEGREE = 111_195.0


def north_of_meeting(metres: float) -> tuple[float, float]:
    """A point this many metres due north of the meeting point."""
    return MEETING_LAT + metres / METRES_PER_DEGREE, MEETING_LON


async def add_shift(
    h: Harness,
    starts_at: datetime,
    *,
    minutes: int = 120,
    area: str = "北门巡逻",
    created_by: int,
    leader_id: int | None = None,
    min_volunteers: int = 1,
    max_volunteers: int = 5,
    state: str = "scheduled",
    arm_close: bool = True,
) -> int:
    """A shift as /newpatrol would store it, with its closing job armed."""

    async def insert(repos: Repos) -> int:
        shift = await repos.patrols.add_shift(
            h.clock.now(),
            area=area,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            meeting_lat=MEETING_LAT,
            meeting_lon=MEETING_LON,
            meeting_label="北门岗亭",
            min_volunteers=min_volunteers,
            max_volunteers=max_volunteers,
            leader_id=leader_id,
            state=state,
            created_by=created_by,
        )
        assert shift is not None
        if arm_close and state == "scheduled":
            await patrols.arm_close(repos, shift)
        return shift.id

    return int(await h.repos_do(insert))


async def sign_up(h: Harness, shift_id: int, user_id: int, state: str = "confirmed", **values: Any) -> int:
    """A sign-up as the sign-up buttons would store it; `values` set attendance columns directly."""

    async def insert(repos: Repos) -> int:
        return int(
            (
                await repos.connection.execute(
                    t.patrol_signups.insert()
                    .values(
                        shift_id=shift_id,
                        user_id=user_id,
                        state=state,
                        created_at=h.clock.now(),
                        updated_at=h.clock.now(),
                        **values,
                    )
                    .returning(t.patrol_signups.c.id)
                )
            ).scalar_one()
        )

    return await h.repos_do(insert)


async def cancel_shift(h: Harness, shift_id: int) -> None:
    async def cancel(repos: Repos) -> None:
        await repos.connection.execute(
            t.patrol_shifts.update().where(t.patrol_shifts.c.id == shift_id).values(state="cancelled")
        )

    await h.repos_do(cancel)


async def link_report(h: Harness, ticket: str, shift_id: int) -> None:
    async def link(repos: Repos) -> None:
        await repos.connection.execute(
            t.reports.update().where(t.reports.c.ticket == ticket).values(patrol_shift_id=shift_id)
        )

    await h.repos_do(link)


async def ledger_entries_for(h: Harness, source_key: str) -> int:
    async def count(repos: Repos) -> int:
        return int(
            (
                await repos.connection.execute(
                    sa.select(sa.func.count())
                    .select_from(t.ledger_entries)
                    .where(t.ledger_entries.c.source_key == source_key)
                )
            ).scalar_one()
        )

    return await h.repos_do(count)
