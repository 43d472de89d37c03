"""The buttons of broadcasts outside the /alert dialogue (`v1:bc:<verb>:<value>`), sent where they belong."""

from __future__ import annotations

from handlers.broadcasts import acknowledge, alerts, quiet, rules, settings
from handlers.context import Ctx
from handlers.errors import StaleAction


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if len(parts) != 3:
        raise StaleAction()
    verb, value = parts[1], parts[2]
    if verb in ("ack", "info", "stop"):
        if not value.isdigit():
            raise StaleAction()
        if verb == "ack":
            await acknowledge.acknowledge(ctx, int(value))
        elif verb == "info":
            await alerts.show_details(ctx, int(value))
        else:
            await alerts.cancel(ctx, int(value))
    elif verb in ("mute", "unmute"):
        if value not in rules.KINDS:
            raise StaleAction()
        await settings.toggle_kind(ctx, value, verb == "mute")
    elif verb == "quiet":
        await quiet.quiet_button(ctx, value)
    else:
        raise StaleAction()
