"""/alerts (police, admins): this week's broadcasts; one's details and delivery report; cancelling one."""

from __future__ import annotations

from handlers.broadcasts import rules, views
from handlers.context import Ctx
from handlers.errors import DomainError


async def list_alerts(ctx: Ctx) -> None:
    found = await rules.recent(ctx.repos, ctx.user, ctx.clock.now())
    ctx.response.replies.append(views.recent(found))


async def show_details(ctx: Ctx, broadcast_id: int) -> None:
    broadcast = await rules.visible(ctx.repos, ctx.user, broadcast_id)
    report = await rules.delivery_report(ctx.repos, broadcast, buildings=True)
    ctx.response.replies.append(views.details(ctx.community, report))


async def cancel(ctx: Ctx, broadcast_id: int) -> None:
    try:
        broadcast, stopped = await rules.cancel(ctx.repos, ctx.user, broadcast_id, ctx.clock.now())
    except rules.NotCancellable as late:
        raise DomainError(
            "broadcast.cannot_cancel", id=late.broadcast.id, state=views.state_label(late.broadcast.state)
        ) from None
    if broadcast.state == "scheduled":
        ctx.say("broadcast.cancelled_scheduled", id=broadcast.id)
    else:
        ctx.say("broadcast.cancelled_sending", id=broadcast.id, stopped=stopped)
