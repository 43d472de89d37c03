"""/notices (police, admins): the running notices with their next time, and Stop."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.notices import rules, views


async def list_notices(ctx: Ctx) -> None:
    running = await rules.active(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    if not running:
        ctx.say("notice.none")
        return
    ctx.say("notice.list_header", count=len(running))
    for item in running:
        ctx.response.replies.append(views.running(ctx.community, item))


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if len(parts) != 3 or parts[1] != "stop" or not parts[2].isdigit():
        raise StaleAction()
    notice = await rules.stop(ctx.repos, ctx.user, int(parts[2]))
    ctx.notice("notice.stopped", id=notice.id)
    ctx.say("notice.stopped", id=notice.id)
