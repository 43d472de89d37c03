"""Quiet hours from /settings: a preset, none, or typed ("22:30-06:30") in a one-step dialogue."""

from __future__ import annotations

from handlers import conversation
from handlers.broadcasts import rules
from handlers.broadcasts.settings import show_settings
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import StaleAction


async def quiet_button(ctx: Ctx, value: str) -> None:
    now = ctx.clock.now()
    if value == "ask":
        await conversation.begin(ctx, QUIET_FLOW, "quiet")
        return
    if value == "off":
        await rules.set_quiet_hours(ctx.repos, ctx.user, None, None, now)
        ctx.notice("broadcast.quiet_cleared")
    elif value in rules.QUIET_PRESETS:
        start, end = rules.QUIET_PRESETS[value]
        await rules.set_quiet_hours(ctx.repos, ctx.user, start, end, now)
        ctx.notice("broadcast.quiet_saved", start=start, end=end)
    else:
        raise StaleAction()
    await show_settings(ctx)


async def ask_quiet(ctx: Ctx) -> None:
    ctx.say("broadcast.ask_quiet")


async def handle_quiet(ctx: Ctx) -> str | None:
    if ctx.inp.action or not ctx.inp.text:
        ctx.say("error.stale_button" if ctx.inp.action else "broadcast.quiet_unreadable")
        return None
    parsed = rules.parse_quiet_hours(ctx.inp.text)
    if parsed is None:
        ctx.say("broadcast.quiet_unreadable")
        return None
    start, end = parsed
    await rules.set_quiet_hours(ctx.repos, ctx.user, start, end, ctx.clock.now())
    await show_settings(ctx)
    return END


QUIET_FLOW = Flow(
    name="alert_quiet",
    steps={"quiet": Step(ask_quiet, handle_quiet)},
    expired_key="broadcast.quiet_expired",
)
