"""Volunteers signing up: /patrols, /myshifts, taking a place, the waiting list, withdrawing, the calendar."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.patrols import announce, rules, views
from handlers.patrols.wording import shift_params
from storage.patrols import CONFIRMED


async def list_patrols(ctx: Ctx) -> None:
    """/patrols: the next two weeks' shifts with places, and a button per shift."""
    listed = await rules.upcoming(ctx.repos, ctx.user, ctx.clock.now())
    ctx.response.replies.append(views.patrol_list(ctx.community, ctx.user, listed))


async def list_mine(ctx: Ctx) -> None:
    """/myshifts: the person's shifts not over yet, with cancel buttons and the calendar file."""
    now = ctx.clock.now()
    listed = await rules.my_shifts(ctx.repos, ctx.user, now)
    ctx.response.replies.append(views.my_shifts(ctx.community, listed, now))


async def send_calendar(ctx: Ctx, _ref: int = 0) -> None:
    now = ctx.clock.now()
    listed = await rules.my_shifts(ctx.repos, ctx.user, now)
    shifts = [item.shift for item in listed if item.mine == CONFIRMED]
    ctx.response.replies.append(views.calendar_file(ctx.community, shifts, now))


async def join(ctx: Ctx, shift_id: int) -> None:
    await _join(ctx, shift_id, waiting_ok=False)


async def wait(ctx: Ctx, shift_id: int) -> None:
    await _join(ctx, shift_id, waiting_ok=True)


async def _join(ctx: Ctx, shift_id: int, *, waiting_ok: bool) -> None:
    try:
        joined = await rules.join(
            ctx.repos, ctx.community, ctx.user, shift_id, ctx.clock.now(), waiting_ok=waiting_ok
        )
    except rules.ShiftFull:
        ctx.response.replies.append(views.shift_full(shift_id))
        ctx.notice("patrol.full")
        return
    params = shift_params(ctx.community, joined.shift)
    if joined.position:
        ctx.say("patrol.waiting", **params, position=joined.position)
        ctx.notice("patrol.waiting_notice", position=joined.position)
    else:
        ctx.say("patrol.signed_up", **params)
        ctx.notice("patrol.signed_up_notice")


async def leave(ctx: Ctx, shift_id: int) -> None:
    now = ctx.clock.now()
    left = await rules.leave(ctx.repos, ctx.community, ctx.user, shift_id, now)
    await announce.promoted(ctx.repos, ctx.community, left.shift, left.promoted, now)
    key = "patrol.left" if left.was == CONFIRMED else "patrol.left_waiting"
    ctx.say(key, **shift_params(ctx.community, left.shift))
    ctx.notice("patrol.left_notice")
