"""Settling a shift once it is over (the closing job) and police reviewing forgotten check-outs."""

from __future__ import annotations

from datetime import datetime

from handlers import notify
from handlers.attendance import rules, views
from handlers.clock import Clock
from handlers.community import Community
from handlers.context import Ctx
from handlers.messages import Verbatim
from handlers.patrols import announce
from storage import audit
from storage.models import Schedule
from storage.repositories import Repos


async def close_shift(repos: Repos, community: Community, shift_id: int, now: datetime) -> bool:
    """Settle attendance and tell who needs to know; False if there was nothing (more) to settle.

    Forgotten check-outs are closed and their volunteers told, no-shows may reach a
    sign-up ban (announced by patrols), and the police get a summary to review.
    """
    closed = await rules.close_shift(repos, community, shift_id, now)
    if closed is None:
        return False
    for auto in closed.flagged:
        if auto.volunteer is not None:
            told = views.auto_checked_out(closed.shift, auto.minutes, auto.points)
            await notify.to_user(repos, community, auto.volunteer, told, now)
    for user_id in closed.no_shows:
        await announce.ban_if_reached(repos, community, user_id, now)
    await notify.to_police(repos, community, views.closed_summary(closed), now)
    return True


async def fire_close(repos: Repos, community: Community, clock: Clock, schedule: Schedule) -> None:
    await close_shift(repos, community, int(schedule.ref), clock.now())


async def review(ctx: Ctx, signup_id: int, *, void: bool) -> None:
    """Police keep or void the hours of a check-out closed automatically; a voided volunteer is told."""
    now = ctx.clock.now()
    found, volunteer = await rules.review_flagged(ctx.repos, ctx.community, ctx.user, signup_id, void, now)
    if void:
        # Voiding reverses the points the hours earned: a revocation of points like any other.
        await ctx.repos.audit.record(
            now,
            audit.POINTS_REVOKE,
            via=ctx.channel,
            actor_id=ctx.user.id,
            subject_id=volunteer.id,
            target=f"signup:{signup_id}",
            detail={"source": "patrol_hours"},
        )
        told = views.hours_voided(ctx.community, found.shift)
        await notify.to_user(ctx.repos, ctx.community, volunteer, told, now)
    key = "attendance.review_voided" if void else "attendance.review_kept"
    ctx.say(key, name=Verbatim(volunteer.display_name))
    ctx.notice(key, name=Verbatim(volunteer.display_name))
