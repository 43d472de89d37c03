"""What the time bank's dialogue tests share: points to start with, and presses that arrive at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from handlers.messages import Incoming
from storage import schema as t
from storage.repositories import Repos
from tests.harness import CHANNEL, POLICE_GROUP, Harness

RESIDENT_GROUP = "resident-group"


async def give_points(bot: Harness, who: str, points: int, key: str, when: datetime | None = None) -> None:
    """Credit points through the real ledger, as a resolved report or a patrol would."""
    user_id = await bot.user_id(who)
    community = bot.rt.community

    async def credit(repos: Repos) -> None:
        ledger = Repos(repos.connection, community.tz).ledger
        await ledger.credit_user(
            user_id, points, key, "points.reason.award", {"reason": "test"}, None, when or bot.clock.now()
        )

    await bot.repos_do(credit)


async def at_once(bot: Harness, *presses: tuple[str, str], group: bool = False) -> list[list[str]]:
    """Several button presses handled concurrently by the engine (double clicks, two officers)."""
    responses = await asyncio.gather(
        *(
            bot.rt.engine.handle(
                Incoming(
                    channel=CHANNEL,
                    user_external_id=who,
                    chat_id=POLICE_GROUP if group else who,
                    display_name=who,
                    is_group=group,
                    action=action,
                )
            )
            for who, action in presses
        )
    )
    await bot.deliver()
    return [[bot.render(reply.text) for reply in response.replies] for response in responses]


async def verified(bot: Harness) -> bool:
    return bool(await bot.repos_do(lambda r: r.ledger.verify()))


async def patrolled(bot: Harness, starts_at: datetime, minutes: dict[str, int]) -> None:
    """A two-hour shift created by "police", and the minutes each person worked on it."""
    police = await bot.user_id("police")
    people = {who: await bot.user_id(who) for who in minutes}

    async def insert(repos: Repos) -> None:
        shift = await repos.patrols.add_shift(
            starts_at,
            area="A 线",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=2),
            meeting_lat=31.23,
            meeting_lon=121.47,
            min_volunteers=1,
            max_volunteers=10,
            created_by=police,
        )
        assert shift is not None
        for who, worked in minutes.items():
            await repos.connection.execute(
                t.patrol_signups.insert().values(
                    shift_id=shift.id,
                    user_id=people[who],
                    state="confirmed",
                    created_at=starts_at,
                    updated_at=starts_at,
                    checked_in_at=starts_at,
                    checkin_method="location",
                    checked_out_at=starts_at + timedelta(minutes=worked),
                    checkout_method="location",
                    minutes_worked=worked,
                    no_show=False,
                )
            )

    await bot.repos_do(insert)
