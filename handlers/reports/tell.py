"""Who is told what when a report is filed, moves, or waits too long: built by views, sent via the outbox."""

from __future__ import annotations

from datetime import datetime

from handlers import notify
from handlers.community import Community
from handlers.reports import cards, views
from handlers.reports.rules import Moved
from storage.models import Report
from storage.repositories import Repos


async def filed(repos: Repos, community: Community, report: Report, now: datetime) -> None:
    """The grid's workers privately, and the police groups as a card."""
    await grid_workers(repos, community, report, "notify.new_report", now)
    await cards.post(repos, community, report.id, now, edit=False)


async def grid_workers(repos: Repos, community: Community, report: Report, key: str, now: datetime) -> int:
    """Tell the workers of the report's grid (`key` with the card); returns how many there are."""
    if not report.grid_key:
        return 0
    workers = await repos.users.workers_of_grid(report.grid_key)
    for worker in workers:
        shown = await views.card(repos, community, report, show_reporter=False)
        await notify.to_user(repos, community, worker, views.with_card(key, report, shown), now)
    return len(workers)


async def moved(repos: Repos, community: Community, moved: Moved, now: datetime) -> None:
    """The reporter, the card in the police groups, and the worker it was assigned to."""
    report = moved.report
    reporter = await repos.users.get(report.reporter_id)
    if reporter is not None:
        original = await repos.reports.get(report.duplicate_of) if report.duplicate_of else None
        reply = views.reporter_told(community, report, moved.note, original)
        await notify.to_user(repos, community, reporter, reply, now)
    await cards.post(repos, community, report.id, now, edit=True)
    if moved.assignee is not None:
        task = await views.card(repos, community, report, show_reporter=False)
        await notify.to_user(repos, community, moved.assignee, views.assigned_to_you(report, task), now)


async def escalated(repos: Repos, community: Community, report: Report, now: datetime) -> None:
    minutes = int((now - report.created_at).total_seconds() // 60)
    shown = await views.card(repos, community, report, show_reporter=False)
    await notify.to_police(repos, community, views.escalation(report, minutes, shown), now)
