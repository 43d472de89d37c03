"""/help: what this person's role can do, as the features declare it."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.messages import Lines, Text
from handlers.registry import Registry
from storage.roles import RESIDENT, ROLES


def commands_by_role(registry: Registry) -> dict[str, tuple[str, ...]]:
    return {role: (*registry.help_commands(role), *registry.engine_commands) for role in ROLES}


async def show_help(ctx: Ctx, registry: Registry) -> None:
    by_role = commands_by_role(registry)
    commands = by_role.get(ctx.user.role, by_role[RESIDENT])
    lines = Lines(tuple(Text(f"help.command.{name}") for name in commands))
    ctx.say(
        "help.text",
        keyboard="main",
        role=Text(f"role.{ctx.user.role}"),
        lines=lines,
        community=ctx.community.name,
    )
