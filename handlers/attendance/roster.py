"""/roster for leaders and police, /patrolstats for police."""

from __future__ import annotations

from handlers.attendance import rules, views
from handlers.context import Ctx


async def show_roster(ctx: Ctx) -> None:
    now = ctx.clock.now()
    for shift, lines in await rules.rosters(ctx.repos, ctx.community, ctx.user, now):
        may_confirm = rules.may_confirm_now(ctx.community, shift, now)
        ctx.response.replies.append(views.roster(shift, lines, ctx.user, may_confirm))


async def show_stats(ctx: Ctx) -> None:
    month, stats = await rules.month_stats(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    ctx.response.replies.append(views.month_stats(month, stats))
