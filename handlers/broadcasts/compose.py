"""/alert (police, admins): kind → text (and photo) → audience → priority → when → preview → confirm."""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers import choices, conversation
from handlers.broadcasts import audience, rules, views
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import StaleAction
from handlers.messages import When
from storage import audit

# Buttons of the /alert dialogue: not registered with the engine, so they reach the running draft.
FLOW_ACTION = "bca"

BUTTONS = audience.FlowButtons(FLOW_ACTION, "broadcast.use_buttons")


def _next(ctx: Ctx, step: str) -> str:
    # While changing one thing from the preview, go back to the preview after it.
    return "confirm" if ctx.data.get("editing") else step


async def start_alert(ctx: Ctx) -> None:
    rules.check_author(ctx.user)
    await conversation.begin(ctx, ALERT_FLOW, "kind")


async def ask_kind(ctx: Ctx) -> None:
    ctx.say("broadcast.ask_kind", choices=views.kind_buttons(BUTTONS))


async def handle_kind(ctx: Ctx) -> str | None:
    kind = BUTTONS.pressed(ctx, "kind")
    if kind not in rules.KINDS:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["kind"] = kind
    return _next(ctx, "text")


async def ask_text(ctx: Ctx) -> None:
    ctx.say("broadcast.ask_text", max=rules.MAX_TEXT_CHARS)


async def handle_text(ctx: Ctx) -> str | None:
    if ctx.inp.photo is not None:
        # Re-encoded like every photo we keep: no EXIF position of the officer's phone goes out.
        ctx.data["photo_id"] = await ctx.media.save_photo(ctx.repos, ctx.inp.photo, ctx.clock.now())
        if not (ctx.inp.text or "").strip():
            ctx.say("broadcast.photo_kept")
            return "text"
    elif ctx.inp.action or ctx.inp.unsupported or ctx.inp.location is not None or not ctx.inp.text:
        ctx.say("error.stale_button" if ctx.inp.action else "broadcast.text_expected")
        return None
    text = (ctx.inp.text or "").strip()
    if not text:
        ctx.say("broadcast.text_empty")
        return None
    if len(text) > rules.MAX_TEXT_CHARS:
        ctx.say("broadcast.text_too_long", max=rules.MAX_TEXT_CHARS, length=len(text))
        return None
    ctx.data["text"] = text
    return _next(ctx, "audience")


async def ask_priority(ctx: Ctx) -> None:
    ctx.say("broadcast.ask_priority", choices=views.priority_buttons(BUTTONS, rules.PRIORITIES))


async def handle_priority(ctx: Ctx) -> str | None:
    priority = BUTTONS.pressed(ctx, "prio")
    if priority not in rules.PRIORITIES:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["priority"] = priority
    return _next(ctx, "when")


async def ask_when(ctx: Ctx) -> None:
    tomorrow = (ctx.clock.now().astimezone(ctx.community.tz) + timedelta(days=1)).replace(hour=8, minute=0)
    ctx.say(
        "broadcast.ask_when",
        choices=views.now_button(BUTTONS),
        example=views.example_time(tomorrow, with_year=True),
        example_short=views.example_time(tomorrow, with_year=False),
    )


async def handle_when(ctx: Ctx) -> str | None:
    if BUTTONS.pressed(ctx, "when") == "now":
        ctx.data["at"] = None
        return "confirm"
    if ctx.inp.action or not ctx.inp.text:
        BUTTONS.wrong_input(ctx)
        return None
    now = ctx.clock.now()
    at = rules.parse_when(ctx.inp.text, now, ctx.community.tz)
    if at is None:
        ctx.say("broadcast.when_unreadable", text=views.typed(ctx.inp.text))
        return None
    if at <= now:
        ctx.say("broadcast.when_past", at=When(at))
        return None
    if at - now > rules.MAX_AHEAD:
        ctx.say("broadcast.when_too_far", days=rules.MAX_AHEAD.days)
        return None
    ctx.data["at"] = at.isoformat()
    return "confirm"


def _at(ctx: Ctx) -> datetime | None:
    return datetime.fromisoformat(ctx.data["at"]) if ctx.data.get("at") else None


async def ask_confirm(ctx: Ctx) -> None:
    ctx.data.pop("editing", None)
    data = ctx.data
    # The 收到 button as residents will see it; pressing it here only explains what it does.
    sample = views.alert_reply(
        ctx.community,
        kind=data["kind"],
        priority=data["priority"],
        text=data["text"],
        photo_id=data.get("photo_id"),
        group=False,
        ack=choices.encode(FLOW_ACTION, "sample", 0),
    )
    ctx.response.replies.append(sample)
    reach = await rules.reach(
        ctx.repos,
        ctx.community,
        data["audience"],
        data["kind"],
        data["priority"],
        ctx.clock.now(),
        exclude_user_id=ctx.user.id,
    )
    ctx.response.replies.append(views.preview(ctx.community, BUTTONS, data, reach, _at(ctx)))


async def handle_confirm(ctx: Ctx) -> str | None:
    if BUTTONS.pressed(ctx, "sample") is not None:
        ctx.notice("broadcast.sample_button")
        return "confirm"
    if BUTTONS.pressed(ctx, "drop"):
        ctx.say("broadcast.discarded")
        return END
    if BUTTONS.pressed(ctx, "edit"):
        return "edit"
    if not BUTTONS.pressed(ctx, "ok"):
        BUTTONS.wrong_input(ctx)
        return None
    now = ctx.clock.now()
    at = _at(ctx)
    if at is not None and at <= now:
        ctx.say("broadcast.when_passed", at=When(at))
        ctx.data["editing"] = True
        return "when"
    # Two quick presses of Confirm: only the press that takes the draft away publishes.
    draft = ctx.draft
    if draft is None or not await ctx.repos.conversations.delete_if_unchanged(
        ctx.user.id, ctx.channel, draft.updated_at
    ):
        raise StaleAction()
    data = ctx.data
    broadcast_id = await rules.publish(
        ctx.repos,
        ctx.community,
        ctx.user,
        kind=data["kind"],
        priority=data["priority"],
        text=data["text"],
        audience=data["audience"],
        now=now,
        photo_id=data.get("photo_id"),
        at=at,
    )
    await ctx.repos.audit.record(
        now,
        audit.BROADCAST_SEND,
        via=ctx.channel,
        actor_id=ctx.user.id,
        target=f"broadcast:{broadcast_id}",
        detail={
            "kind": data["kind"],
            "priority": data["priority"],
            "audience": data["audience"]["type"],
            "scheduled": at is not None,
        },
    )
    if at is not None:
        ctx.say("broadcast.scheduled", id=broadcast_id, at=When(at))
    else:
        figures = await ctx.repos.broadcasts.figures(broadcast_id)
        ctx.say("broadcast.sending", id=broadcast_id, people=figures.people, groups=figures.groups)
    return END


async def ask_edit(ctx: Ctx) -> None:
    ctx.say("broadcast.ask_edit", choices=views.edit_buttons(BUTTONS))


async def handle_edit(ctx: Ctx) -> str | None:
    name = BUTTONS.pressed(ctx, "field")
    if name == "back":
        return "confirm"
    if name not in views.FIELDS:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["editing"] = True
    return name


ALERT_FLOW = Flow(
    name="alert",
    steps={
        "kind": Step(ask_kind, handle_kind),
        "text": Step(ask_text, handle_text),
        **audience.steps(BUTTONS, lambda ctx: _next(ctx, "priority")),
        "priority": Step(ask_priority, handle_priority),
        "when": Step(ask_when, handle_when),
        "confirm": Step(ask_confirm, handle_confirm),
        "edit": Step(ask_edit, handle_edit),
    },
    expired_key="broadcast.draft_expired",
)
