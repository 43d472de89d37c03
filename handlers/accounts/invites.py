"""/invite <role> [grid]: a one-time, expiring link that grants a role."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.accounts.views import INVITE_PREFIX
from handlers.context import Ctx
from handlers.messages import DeepLink, Text, When


async def create(ctx: Ctx) -> None:
    words = ctx.inp.args.split()
    if not words:
        ctx.say("invite.usage", grids=", ".join(g.key for g in ctx.community.grids))
        return
    role = words[0].lower()
    grid_key = words[1] if len(words) > 1 else None
    invite = await accounts.create_invite(ctx.repos, ctx.community, ctx.user, role, grid_key, ctx.clock.now())
    ctx.say(
        "invite.created",
        role=Text(f"role.{invite.role}"),
        link=DeepLink(INVITE_PREFIX + invite.code),
        expires=When(invite.expires_at),
    )
