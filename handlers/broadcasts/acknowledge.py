"""A resident presses 收到 under an urgent alert."""

from __future__ import annotations

from handlers.broadcasts import rules
from handlers.context import Ctx


async def acknowledge(ctx: Ctx, broadcast_id: int) -> None:
    first = await rules.acknowledge(ctx.repos, ctx.user, broadcast_id, ctx.clock.now())
    # A toast is thanks enough; channels without toasts show it as a reply.
    ctx.notice("broadcast.ack_thanks" if first else "broadcast.ack_again")
