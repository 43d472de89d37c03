"""Monthly honours (平安卫士, 优秀志愿者): decided and announced on the 1st for the month before."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from handlers import notify
from handlers.clock import Clock
from handlers.community import Community
from handlers.registry import Lane
from handlers.timebank import rules, views
from storage.models import Honour, Schedule
from storage.repositories import Repos


async def arm_current_month(repos: Repos, community: Community, now: datetime) -> None:
    """At start-up: make sure this month's honours are armed (a no-op when they are, or were done)."""
    await rules.arm_honours(repos, community, repos.ledger.month(now))


async def fire(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    """The honours of the month `schedule.ref`; then the next month's are armed."""
    period, now = schedule.ref, clock.now()
    honours = await rules.decide_honours(repos, community, period, now)
    if honours or not await repos.rewards.honours(period):
        await announce(repos, community, period, honours, now)
    await rules.arm_honours(repos, community, rules.next_period(period))


async def announce(
    repos: Repos, community: Community, period: str, honours: Sequence[Honour], now: datetime
) -> None:
    """Post the honours to the resident and police groups and congratulate each person.

    A month in which nobody qualified gets a short note to the police groups
    only: residents are not told that nobody was honoured.
    """
    if not honours:
        await notify.to_police(repos, community, views.no_honours(period), now)
        return
    people = await rules.honoured_people(repos, honours)
    post = views.honours_post(period, honours, people)
    # The month's honours are an announcement to everyone: they may wait behind what is urgent.
    await notify.to_resident_groups(repos, community, post, now, Lane.BULK)
    await notify.to_police(repos, community, post, now)
    for honour in honours:
        await notify.to_user(
            repos, community, people[honour.user_id], views.congratulation(period, honour), now
        )
