"""/points: balance, tier and the latest movements with the reason for each."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.timebank import rules, views


async def show_points(ctx: Ctx) -> None:
    mine = await rules.points(ctx.repos, ctx.community, ctx.user)
    ctx.response.replies.append(views.points(mine))
