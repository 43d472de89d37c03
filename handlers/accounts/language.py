"""/language: the language buttons, any time (during onboarding they answer its first question)."""

from __future__ import annotations

from dataclasses import replace

from handlers.accounts import onboarding
from handlers.accounts import rules as accounts
from handlers.accounts.views import language_choices
from handlers.community import LANGUAGES
from handlers.context import Ctx
from handlers.errors import PassToDraft, StaleAction


async def ask_language(ctx: Ctx) -> None:
    ctx.say("language.ask", choices=language_choices())


async def on_language(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if ctx.draft is not None and ctx.draft.flow == onboarding.FLOW.name:
        raise PassToDraft()
    if len(parts) != 2 or parts[1] not in LANGUAGES:
        raise StaleAction()
    await accounts.set_language(ctx.repos, ctx.user, parts[1])
    ctx.user = replace(ctx.user, language=parts[1])
    ctx.say("language.changed", keyboard="main")
