"""Becoming a volunteer (/volunteer) and the police desk of requests and sign-up bans (/volunteers)."""

from __future__ import annotations

from handlers import notify
from handlers.context import Ctx
from handlers.messages import Verbatim
from handlers.patrols import announce, rules, views

# Requests, and banned people, listed by /volunteers at a time.
DESK_SHOWN = 10


async def become_volunteer(ctx: Ctx) -> None:
    """/volunteer: join the patrols, at once or after police approve."""
    outcome = await announce.volunteer(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    await ctx.reload_user()
    ctx.response.replies.append(views.volunteer_outcome(outcome))


async def volunteer_desk(ctx: Ctx) -> None:
    """/volunteers: requests to volunteer to decide, and sign-up bans to lift, with their buttons."""
    desk = await rules.volunteer_desk(ctx.repos, ctx.community, ctx.user, DESK_SHOWN)
    ctx.response.replies.append(views.volunteer_desk(ctx.community, desk))


async def approve(ctx: Ctx, user_id: int) -> None:
    await _decide(ctx, user_id, approved=True)


async def reject(ctx: Ctx, user_id: int) -> None:
    await _decide(ctx, user_id, approved=False)


async def _decide(ctx: Ctx, user_id: int, *, approved: bool) -> None:
    """Police approve or reject a request to volunteer; the person is told."""
    now = ctx.clock.now()
    person = await rules.decide_volunteer(ctx.repos, ctx.user, user_id, approved, now)
    await notify.to_user(ctx.repos, ctx.community, person, views.volunteer_decided(approved), now)
    key = "patrol.volunteer.you_approved" if approved else "patrol.volunteer.you_rejected"
    ctx.notice(key, name=Verbatim(person.display_name))


async def lift_ban(ctx: Ctx, user_id: int) -> None:
    """Police forgive someone's no-shows so far; they are told they may sign up again."""
    now = ctx.clock.now()
    person = await rules.lift_ban(ctx.repos, ctx.community, ctx.user, user_id, now)
    await notify.to_user(ctx.repos, ctx.community, person, views.unbanned(), now)
    ctx.notice("patrol.ban_lifted", name=Verbatim(person.display_name))
