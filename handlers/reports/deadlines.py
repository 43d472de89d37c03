"""A report nobody acknowledged: its grid workers are reminded, then the police are alerted."""

from __future__ import annotations

from handlers.clock import Clock
from handlers.community import Community
from handlers.reports import rules, tell
from storage.models import Schedule
from storage.repositories import Repos


async def remind(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    now = clock.now()
    report = await rules.waiting_for_acknowledgement(repos, int(schedule.ref))
    if report is None:
        return
    told = await tell.grid_workers(repos, community, report, "notify.reminder", now)
    if told == 0:
        await tell.escalated(repos, community, report, now)


async def escalate(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    report = await rules.waiting_for_acknowledgement(repos, int(schedule.ref))
    if report is not None:
        await tell.escalated(repos, community, report, clock.now())
