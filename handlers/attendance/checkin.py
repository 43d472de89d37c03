"""/checkin and /checkout with a shared location, and the leader (or police) confirming by hand.

Checking in waits for a location (Telegram's live location counts too: its
updates are checked silently until the person is close enough). Anyone who
cannot share one asks the leader, or the police group, to confirm by hand.
"""

from __future__ import annotations

from handlers import conversation, notify
from handlers.attendance import rules, views
from handlers.attendance.rules import IN, OUT
from handlers.community import GeoPoint
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.messages import Verbatim
from handlers.reports import filing as report_hazard
from storage.models import PatrolShift


async def check_in(ctx: Ctx) -> None:
    found = await rules.shift_to_check_in(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    await conversation.begin(ctx, FLOW, "arrive", {"signup": found.signup.id})


async def check_out(ctx: Ctx) -> None:
    found = await rules.shift_to_check_out(ctx.repos, ctx.user)
    await conversation.begin(ctx, FLOW, "leave", {"signup": found.signup.id})


async def _shift(ctx: Ctx) -> PatrolShift:
    found = await ctx.repos.attendance.get(int(ctx.data["signup"]))
    if found is None:
        raise StaleAction()
    return found.shift


async def ask_arrival(ctx: Ctx) -> None:
    """Where are you? (within the radius of the meeting point)"""
    ctx.response.replies.append(views.ask_location(ctx.community, await _shift(ctx), IN))


async def ask_departure(ctx: Ctx) -> None:
    """Where are you? (back at the meeting point to check out)"""
    ctx.response.replies.append(views.ask_location(ctx.community, await _shift(ctx), OUT))


async def _at_location(ctx: Ctx, direction: str) -> rules.Outcome | str | None:
    """Try the shared location for checking in or out: the outcome once close enough, else the next step."""
    signup_id = int(ctx.data["signup"])
    if ctx.inp.location is None:
        if ctx.inp.action:
            ctx.say("error.stale_button")
        else:
            ctx.response.replies.append(views.location_needed(direction, signup_id))
        return None
    point = GeoPoint(lat=ctx.inp.location.lat, lon=ctx.inp.location.lon)
    attempt = rules.check_in_at if direction == IN else rules.check_out_at
    try:
        outcome = await attempt(ctx.repos, ctx.community, ctx.user, signup_id, point, ctx.clock.now())
    except DomainError as refused:
        # The shift was cancelled, ended or confirmed by the leader meanwhile: nothing left to wait for.
        ctx.say(refused.key, keyboard="main", **refused.params)
        return END
    if not outcome.done:
        if not ctx.inp.live:
            reply = views.too_far(ctx.community, outcome.attendance.signup.id, outcome.distance_m, direction)
            ctx.response.replies.append(reply)
        # A live location moves every few seconds: stay quiet until it arrives.
        return "arrive" if direction == IN else "leave"
    return outcome


async def handle_arrival(ctx: Ctx) -> str | None:
    outcome = await _at_location(ctx, IN)
    if not isinstance(outcome, rules.Outcome):
        return outcome
    ctx.response.replies.append(views.checked_in(outcome.attendance.shift))
    return END


async def handle_departure(ctx: Ctx) -> str | None:
    outcome = await _at_location(ctx, OUT)
    if not isinstance(outcome, rules.Outcome):
        return outcome
    ctx.response.replies.append(views.checked_out(outcome.attendance.shift, outcome.minutes, outcome.points))
    return END


FLOW = Flow(
    rules.FLOW_NAME,
    {"arrive": Step(ask_arrival, handle_arrival), "leave": Step(ask_departure, handle_departure)},
    expired_key="attendance.expired",
    accepts_live_location=True,
)


# --- confirming by hand ----------------------------------------------------------------------


async def ask_by_hand(ctx: Ctx, direction: str, signup_id: int) -> None:
    """Ask the shift's leader (or, without one, the police group) to confirm by hand."""
    now = ctx.clock.now()
    found, leader = await rules.to_confirm(ctx.repos, ctx.community, ctx.user, direction, signup_id, now)
    reply = views.confirm_request(ctx.user, found, direction)
    if leader is not None and await notify.to_user(ctx.repos, ctx.community, leader, reply, now):
        key = "attendance.asked_leader"
    elif not notify.police_chats(ctx.community):
        raise DomainError("attendance.nobody_to_confirm")
    else:
        await notify.to_police(ctx.repos, ctx.community, reply, now)
        key = "attendance.asked_police"
    ctx.say(key)
    ctx.notice(key)


async def confirm_by_hand(ctx: Ctx, direction: str, signup_id: int) -> None:
    """The leader or police check someone in or out; the volunteer is told."""
    now = ctx.clock.now()
    done = await rules.confirm_by_hand(ctx.repos, ctx.community, ctx.user, direction, signup_id, now)
    told = views.told_by_hand(done, ctx.user, direction)
    await notify.to_user(ctx.repos, ctx.community, done.volunteer, told, now)
    name = Verbatim(done.volunteer.display_name)
    if direction == IN:
        ctx.say("attendance.hand_checked_in", name=name)
        ctx.notice("attendance.hand_checked_in", name=name)
    else:
        ctx.say("attendance.hand_checked_out", name=name, minutes=done.minutes, points=done.points)
        ctx.notice("attendance.hand_checked_out", name=name, minutes=done.minutes, points=done.points)


async def report_from_patrol(ctx: Ctx) -> None:
    """File a hazard report from the patrol: it is linked to the shift while checked in."""
    await report_hazard.start(ctx)
