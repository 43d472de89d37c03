"""What patrols do on schedule: extend series, remind volunteers, warn police of a short-handed shift."""

from __future__ import annotations

from handlers import notify
from handlers.clock import Clock
from handlers.community import Community
from handlers.patrols import announce, rules, views
from storage.models import Schedule
from storage.repositories import Repos


async def fire_generate(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    now = clock.now()
    await rules.generate_all(repos, community, now)
    await rules.arm_next_generation(repos, community, now)


async def fire_reminder(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    now = clock.now()
    shift_id, _, _hours = schedule.ref.partition(":")
    due = await rules.due_reminder(repos, community, int(shift_id), now)
    if due is not None:
        await announce.tell(repos, community, due.people, views.reminder(community, due), now)


async def fire_understaffed(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    now = clock.now()
    short = await rules.understaffed(repos, int(schedule.ref), now)
    if short is not None:
        shift, taken = short
        await notify.to_police(repos, community, views.understaffed(community, shift, taken), now)
