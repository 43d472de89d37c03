"""/start: language, privacy notice, home building → grid. Invites and deep links arrive here too.

A deep link's payload other than an invite names what to open once the person is onboarded
(`/start report`); the engine hands the features' deep links in as `ctx.links`.
"""

from __future__ import annotations

from dataclasses import replace

from handlers import choices, conversation, notify
from handlers.accounts import rules as accounts
from handlers.accounts import views
from handlers.accounts.views import INVITE_PREFIX, language_choices
from handlers.community import LANGUAGES
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.messages import Choice, Text

# The step a draft is left at while the deep link it was opened for runs (that flow's draft replaces it).
HANDED_OVER = "__handed_over__"


async def ask_language(ctx: Ctx) -> None:
    ctx.say("onboarding.ask_language", choices=language_choices())


async def handle_language(ctx: Ctx) -> str | None:
    parts = choices.decode(ctx.inp.action)
    if not parts or parts[0] != "lang" or len(parts) != 2 or parts[1] not in LANGUAGES:
        ctx.say("onboarding.pick_language")
        return None
    await accounts.set_language(ctx.repos, ctx.user, parts[1])
    ctx.user = replace(ctx.user, language=parts[1])
    return "privacy"


async def ask_privacy(ctx: Ctx) -> None:
    accept = Choice(Text("button.accept"), action=choices.encode("onb", "accept"))
    decline = Choice(Text("button.decline"), action=choices.encode("onb", "decline"))
    days = ctx.community.privacy.retention_days
    retention = (
        Text("onboarding.retention_off")
        if days is None
        else Text("onboarding.retention_days", {"days": days})
    )
    ctx.say(
        "onboarding.privacy", choices=((accept, decline),), community=ctx.community.name, retention=retention
    )


async def handle_privacy(ctx: Ctx) -> str | None:
    parts = choices.decode(ctx.inp.action)
    if parts == ("onb", "accept"):
        if ctx.user.display_name in (ctx.inp.user_external_id, accounts.DECLINED_NAME):
            # Consenting now is when the bot may keep the name the platform gives (none was kept
            # before, or declining dropped it).
            await ctx.update_user(display_name=ctx.inp.display_name[:128] or ctx.user.display_name)
        await ctx.update_user(privacy_accepted_at=ctx.clock.now(), declined_at=None)
        if ctx.user.role in accounts.STAFF:
            return await _complete(ctx)
        return "building"
    if parts == ("onb", "decline"):
        await accounts.decline_privacy(ctx.repos, ctx.user, ctx.clock.now())
        await ctx.reload_user()
        ctx.say("onboarding.declined")
        return END
    ctx.say("onboarding.press_button")
    return None


async def ask_building(ctx: Ctx) -> None:
    ctx.say("onboarding.ask_building", example=ctx.community.grids[0].buildings[0])


async def handle_building(ctx: Ctx) -> str | None:
    text = (ctx.inp.text or "").strip()
    if not text:
        ctx.say("onboarding.building_as_text")
        return None
    building, _, unit = text.partition(" ")
    grid = ctx.community.grid_for_building(building)
    if grid is None:
        ctx.say("onboarding.unknown_building", building=building[:32])
        return None
    await ctx.update_user(building=building[:32], unit=unit.strip()[:32] or None, grid_key=grid.key)
    return await _complete(ctx)


async def _complete(ctx: Ctx) -> str:
    await ctx.update_user(onboarded_at=ctx.clock.now())
    grid = ctx.community.grid(ctx.user.grid_key) if ctx.user.grid_key else None
    ctx.say(
        "onboarding.done",
        keyboard="main",
        community=ctx.community.name,
        grid=grid.name if grid else "-",
        role=Text(f"role.{ctx.user.role}"),
    )
    follow = ctx.links.get(str(ctx.data.get("then", "")))
    if follow is not None:
        await follow(ctx)
        return HANDED_OVER
    return END


async def _never(ctx: Ctx) -> None:
    return None


async def _handed_over(ctx: Ctx) -> str | None:
    return END


FLOW = Flow(
    "onboarding",
    {
        "language": Step(ask_language, handle_language),
        "privacy": Step(ask_privacy, handle_privacy),
        "building": Step(ask_building, handle_building),
        HANDED_OVER: Step(_never, _handed_over),
    },
    expired_key="onboarding.expired",
)


async def start(ctx: Ctx, payload: str = "") -> None:
    """The /start command, with an optional deep-link payload."""
    if payload.startswith(INVITE_PREFIX):
        now = ctx.clock.now()
        change = await accounts.redeem_invite(
            ctx.repos, ctx.user, ctx.channel, payload.removeprefix(INVITE_PREFIX), now
        )
        await ctx.reload_user()
        ctx.say("invite.welcome", role=Text(f"role.{change.person.role}"))
        # The person was just told (above); the police hear who joined as what.
        await notify.to_police(ctx.repos, ctx.community, views.role_granted_note(change), now)
    follow = ctx.links.get(payload)
    if ctx.user.declined_at is not None and ctx.inp.command != "start":
        # They said no: the bot does not ask again until they send /start themselves.
        ctx.say("onboarding.declined_before")
        return
    if ctx.user.onboarded_at is None:
        await conversation.begin(ctx, FLOW, "language", {"then": payload} if follow else {})
        return
    if follow is not None:
        await follow(ctx)
        return
    ctx.say("onboarding.welcome_back", keyboard="main", community=ctx.community.name)


async def start_command(ctx: Ctx) -> None:
    """/start [payload]."""
    await start(ctx, ctx.inp.args.strip())
