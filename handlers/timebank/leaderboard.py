"""/leaderboard: top 10 of this month or all time, in the community or one's grid; opting out of it."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.timebank import rules, views
from handlers.timebank.rules import COMMUNITY, EVER, GRID, MONTH


async def show_leaderboard(ctx: Ctx) -> None:
    await _show(ctx, MONTH, COMMUNITY)


async def _show(ctx: Ctx, period_code: str, scope: str) -> None:
    board = await rules.leaderboard(ctx.repos, ctx.community, ctx.user, period_code, scope, ctx.clock.now())
    ctx.response.replies.append(views.leaderboard(ctx.community, ctx.user, board))


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`lb:show:<m|a>:<c|g>` switches the board; `lb:opt:<out|in>:<m|a>:<c|g>` hides or shows oneself."""
    if len(parts) == 4 and parts[1] == "show":
        period_code, scope = parts[2], parts[3]
    elif len(parts) == 5 and parts[1] == "opt" and parts[2] in ("out", "in"):
        period_code, scope = parts[3], parts[4]
        hidden = parts[2] == "out"
        if ctx.user.leaderboard_opt_out != hidden:
            await ctx.update_user(leaderboard_opt_out=hidden)
        ctx.notice("leaderboard.opted_out" if hidden else "leaderboard.opted_in")
    else:
        raise StaleAction()
    if period_code not in (MONTH, EVER) or scope not in (COMMUNITY, GRID):
        raise StaleAction()
    await _show(ctx, period_code, scope)
