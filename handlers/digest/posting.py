"""Posting the weekly digest to the police groups when its schedule falls due."""

from __future__ import annotations

import logging

from handlers import notify
from handlers.clock import Clock
from handlers.community import Community
from handlers.digest import rules, views
from storage.models import Schedule
from storage.repositories import Repos

log = logging.getLogger(__name__)


async def fire(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    """Post the digest of the last full week to the police groups, and arm next week's.

    On time that is the week before `schedule.due_at`; after the bot was down for more
    than a week it is the latest week, not a stale one (the weeks missed are not sent).
    """
    now = clock.now()
    await rules.arm_next(repos, community, now)
    end = rules.latest_due(community, now)
    figures = await rules.collect(repos, community, end - rules.PERIOD, end, now)
    await notify.to_police(repos, community, views.digest(community, figures), now)
    log.info("digest posted", extra={"ref": schedule.ref, "period_end": end.isoformat()})
