"""/settings (everyone): which kinds of broadcast a person receives, and their quiet hours."""

from __future__ import annotations

from handlers.broadcasts import rules, views
from handlers.context import Ctx


async def show_settings(ctx: Ctx) -> None:
    current = await ctx.repos.broadcasts.subscription(ctx.user.id)
    ctx.response.replies.append(views.settings(current))


async def toggle_kind(ctx: Ctx, kind: str, muted: bool) -> None:
    await rules.set_muted(ctx.repos, ctx.user, kind, muted, ctx.clock.now())
    ctx.notice("broadcast.muted_short" if muted else "broadcast.unmuted_short", kind=views.kind_label(kind))
    await show_settings(ctx)
