"""/leaderboard: top 10 of this month or all time, in the community or one's grid; opting out of it."""

from __future__ import annotations

from handlers import choices
from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.messages import Choice, Lines, Reply, Text, Verbatim
from storage.ledger import ALL_TIME

TOP = 10
MONTH, EVER = "m", "a"
COMMUNITY, GRID = "c", "g"


async def show_leaderboard(ctx: Ctx) -> None:
    await _show(ctx, MONTH, COMMUNITY)


async def _show(ctx: Ctx, period_code: str, scope: str) -> None:
    ledger = ctx.repos.ledger
    period = ledger.month(ctx.clock.now()) if period_code == MONTH else ALL_TIME
    grid = ctx.community.grid(ctx.user.grid_key) if scope == GRID and ctx.user.grid_key else None
    grid_key = grid.key if grid is not None else None
    standings = await ledger.leaderboard(period, grid_key, limit=TOP)
    people = await ctx.repos.users.many([s.user_id for s in standings])
    lines: list[Text] = [
        Text(
            "leaderboard.header",
            {
                "period": Text("leaderboard.this_month" if period_code == MONTH else "leaderboard.all_time"),
                "scope": Verbatim(grid.name if grid is not None else ctx.community.name),
            },
        )
    ]
    for rank, standing in enumerate(standings, start=1):
        person = people.get(standing.user_id)
        name = person.display_name if person is not None else "?"
        key = "leaderboard.line_me" if standing.user_id == ctx.user.id else "leaderboard.line"
        lines.append(Text(key, {"rank": rank, "name": Verbatim(name), "points": standing.points}))
    if not standings:
        lines.append(Text("leaderboard.empty"))
    if ctx.user.leaderboard_opt_out:
        lines.append(Text("leaderboard.you_are_hidden"))
    elif all(s.user_id != ctx.user.id for s in standings):
        mine = await ctx.repos.rewards.standing(ctx.user.id, period, grid_key)
        if mine is not None:
            lines.append(Text("leaderboard.your_rank", {"rank": mine[0], "points": mine[1]}))
    ctx.response.replies.append(Reply(Lines(tuple(lines)), _buttons(ctx, period_code, scope)))


def _buttons(ctx: Ctx, period_code: str, scope: str) -> tuple[tuple[Choice, ...], ...]:
    def show(key: str, period: str, where: str) -> Choice:
        return Choice(Text(key), action=choices.encode("lb", "show", period, where))

    periods = (
        show("leaderboard.button_month", MONTH, scope),
        show("leaderboard.button_all_time", EVER, scope),
    )
    scopes = [show("leaderboard.button_community", period_code, COMMUNITY)]
    if ctx.user.grid_key and ctx.community.grid(ctx.user.grid_key) is not None:
        scopes.append(show("leaderboard.button_grid", period_code, GRID))
    if ctx.user.leaderboard_opt_out:
        opt = Choice(
            Text("leaderboard.button_opt_in"), action=choices.encode("lb", "opt", "in", period_code, scope)
        )
    else:
        opt = Choice(
            Text("leaderboard.button_opt_out"), action=choices.encode("lb", "opt", "out", period_code, scope)
        )
    return (periods, tuple(scopes), (opt,))


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
