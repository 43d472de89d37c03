"""Monthly honours (平安卫士, 优秀志愿者): decided and announced on the 1st for the month before."""

from __future__ import annotations

from datetime import datetime

from handlers.clock import Clock
from handlers.community import Community
from handlers.services import timebank as bank
from storage.models import Schedule
from storage.repositories import Repos


async def arm_current_month(repos: Repos, community: Community, now: datetime) -> None:
    """At start-up: make sure this month's honours are armed (a no-op when they are, or were done)."""
    await bank.arm_honours(repos, community, repos.ledger.month(now))


async def fire(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    """The honours of the month `schedule.ref`; then the next month's are armed."""
    period, now = schedule.ref, clock.now()
    honours = await bank.decide_honours(repos, community, period, now)
    if honours or not await repos.rewards.honours(period):
        await bank.announce_honours(repos, community, period, honours, now)
    await bank.arm_honours(repos, community, bank.next_period(period))
