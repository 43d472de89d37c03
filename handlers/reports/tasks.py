"""/tasks: open reports of the grids this person handles, oldest first, overdue ones marked."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.context import Ctx
from handlers.errors import PermissionDenied
from handlers.messages import Lines
from handlers.reports.rules import is_overdue, sees_reporter
from handlers.reports.views import card, summary_line
from storage import audit

SHOWN_WITH_BUTTONS = 5


async def list_tasks(ctx: Ctx) -> None:
    if ctx.user.role not in accounts.STAFF:
        raise PermissionDenied()
    grid_keys = await accounts.grids_for(ctx.repos, ctx.user)
    open_reports = await ctx.repos.reports.open_reports(grid_keys, limit=30)
    if not open_reports:
        ctx.say("tasks.none")
        return
    now = ctx.clock.now()
    lines = Lines(
        tuple(summary_line(r, ctx.community, overdue=is_overdue(ctx.community, r, now)) for r in open_reports)
    )
    overdue = sum(1 for r in open_reports if is_overdue(ctx.community, r, now))
    ctx.say("tasks.list", count=len(open_reports), overdue=overdue, lines=lines)
    # The oldest few come as cards so they can be acted on right here.
    show_reporter = sees_reporter(ctx.user)
    for report in open_reports[:SHOWN_WITH_BUTTONS]:
        if report.anonymous and show_reporter:
            # Police see who filed an anonymous report: each time they do is on the record.
            await ctx.repos.audit.record(
                now,
                audit.REPORT_REVEAL_REPORTER,
                via=ctx.channel,
                actor_id=ctx.user.id,
                subject_id=report.reporter_id,
                target=f"report:{report.ticket}",
            )
        ctx.response.replies.append(await card(ctx.repos, ctx.community, report, show_reporter=show_reporter))
