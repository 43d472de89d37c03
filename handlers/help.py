"""/help (what this person's role can do) and /language."""

from __future__ import annotations

from dataclasses import replace

from handlers import features
from handlers.community import LANGUAGES
from handlers.context import Ctx
from handlers.errors import StaleAction
from handlers.messages import Lines, Text
from handlers.onboarding import language_choices
from handlers.services import accounts

# What everyone can do; staff roles add their own commands in front, features theirs in between.
_EVERYONE = ("report", "myreports")
_ALWAYS = ("language", "link", "cancel", "help")
_STAFF = {
    accounts.GRID_WORKER: ("tasks",),
    accounts.POLICE: ("tasks", "invite"),
    accounts.ADMIN: ("tasks", "invite"),
}
COMMANDS_BY_ROLE: dict[str, tuple[str, ...]] = {
    role: (*_STAFF.get(role, ()), *_EVERYONE, *features.help_commands(role), *_ALWAYS)
    for role in accounts.ROLES
}


async def show_help(ctx: Ctx) -> None:
    commands = COMMANDS_BY_ROLE.get(ctx.user.role, COMMANDS_BY_ROLE[accounts.RESIDENT])
    lines = Lines(tuple(Text(f"help.command.{name}") for name in commands))
    ctx.say(
        "help.text",
        keyboard="main",
        role=Text(f"role.{ctx.user.role}"),
        lines=lines,
        community=ctx.community.name,
    )


async def ask_language(ctx: Ctx) -> None:
    ctx.say("language.ask", choices=language_choices())


async def on_language(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if len(parts) != 2 or parts[1] not in LANGUAGES:
        raise StaleAction()
    await accounts.set_language(ctx.repos, ctx.user, parts[1])
    ctx.user = replace(ctx.user, language=parts[1])
    ctx.say("language.changed", keyboard="main")
