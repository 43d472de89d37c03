"""/invite <role> [grid]: a one-time, expiring link that grants a role; /invites: the ones not yet
used, each with a Withdraw button."""

from __future__ import annotations

from handlers.accounts import rules as accounts
from handlers.accounts.views import INVITE_PREFIX, outstanding_invites
from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.messages import DeepLink, Text, When


async def create(ctx: Ctx) -> None:
    words = ctx.inp.args.split()
    if not words:
        ctx.say("invite.usage", grids=", ".join(g.key for g in ctx.community.grids))
        return
    role = words[0].lower()
    grid_key = words[1] if len(words) > 1 else None
    invite = await accounts.create_invite(
        ctx.repos, ctx.community, ctx.user, ctx.channel, role, grid_key, ctx.clock.now()
    )
    ctx.say(
        "invite.created",
        role=Text(f"role.{invite.role}"),
        link=DeepLink(INVITE_PREFIX + invite.code),
        expires=When(invite.expires_at),
    )


async def list_outstanding(ctx: Ctx) -> None:
    invites = await accounts.outstanding_invites(ctx.repos, ctx.user, ctx.clock.now())
    if not invites:
        ctx.say("invites.none")
        return
    makers = await ctx.repos.users.many(sorted({invite.created_by for invite in invites}))
    ctx.response.replies.append(outstanding_invites(invites, makers))


async def on_withdraw(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """`ivw:do:<code>`: take an invite back before anyone uses it."""
    if len(parts) != 3 or parts[1] != "do":
        raise StaleAction()
    invite = await accounts.withdraw_invite(ctx.repos, ctx.user, ctx.channel, parts[2], ctx.clock.now())
    ctx.say("invites.withdrawn", role=Text(f"role.{invite.role}"))
