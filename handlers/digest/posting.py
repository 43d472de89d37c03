"""Posting the weekly digest to the police groups when its schedule falls due."""

from __future__ import annotations

import logging

from handlers import notify
from handlers.clock import Clock
from handlers.community import Community
from handlers.digest import rules, views
from handlers.registry import Gathered, Lane
from storage.models import Schedule
from storage.repositories import Repos

log = logging.getLogger(__name__)


async def gather(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> rules.Figures:
    """The figures of the last full week, read in a read-only transaction (they scan history).

    On time that is the week before `schedule.due_at`; after the bot was down for more
    than a week it is the latest week, not a stale one (the weeks missed are not sent).
    """
    now = clock.now()
    end = rules.latest_due(community, now)
    return await rules.collect(repos, community, end - rules.PERIOD, end, now)


async def post(
    repos: Repos, community: Community, clock: Clock, schedule: Schedule, figures: rules.Figures
) -> None:
    """Post the digest to the police groups, and arm next week's."""
    now = clock.now()
    await rules.arm_next(repos, community, now)
    # A weekly summary may wait behind an alert: nobody is waiting for it this minute.
    await notify.to_police(repos, community, views.digest(community, figures), now, Lane.BULK)
    log.info("digest posted", extra={"ref": schedule.ref, "period_end": figures.end.isoformat()})


WEEKLY = Gathered(gather, post)
