"""/notice (police, admins): text → kind → audience → priority → every day / week / month → time → preview
→ confirm."""

from __future__ import annotations

from handlers import conversation
from handlers.broadcasts import audience
from handlers.broadcasts import rules as broadcasts
from handlers.broadcasts import views as broadcast_views
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError
from handlers.messages import When
from handlers.notices import rules, views

# Buttons of the dialogue (they reach the running draft).
FLOW_ACTION = "ntf"

BUTTONS = audience.FlowButtons(FLOW_ACTION, "notice.use_buttons")


async def start(ctx: Ctx) -> None:
    rules.require_commander(ctx.user)
    await conversation.begin(ctx, FLOW, "text")


async def ask_text(ctx: Ctx) -> None:
    ctx.say("notice.ask_text", max=broadcasts.MAX_TEXT_CHARS)


async def handle_text(ctx: Ctx) -> str | None:
    if ctx.inp.action:
        BUTTONS.wrong_input(ctx)
        return "text"
    text = ctx.short_answer(broadcasts.MAX_TEXT_CHARS, "notice.text_empty")
    if text is None:
        return "text"
    ctx.data["text"] = text
    return "kind"


async def ask_kind(ctx: Ctx) -> None:
    ctx.say("notice.ask_kind", choices=views.kind_buttons(BUTTONS))


async def handle_kind(ctx: Ctx) -> str | None:
    kind = BUTTONS.pressed(ctx, "kind")
    if kind not in broadcasts.KINDS:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["kind"] = kind
    return "audience"


async def ask_priority(ctx: Ctx) -> None:
    ctx.say("notice.ask_priority", choices=broadcast_views.priority_buttons(BUTTONS, rules.NOTICE_PRIORITIES))


async def handle_priority(ctx: Ctx) -> str | None:
    priority = BUTTONS.pressed(ctx, "prio")
    if priority not in rules.NOTICE_PRIORITIES:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["priority"] = priority
    return "frequency"


async def ask_frequency(ctx: Ctx) -> None:
    ctx.say("notice.ask_frequency", choices=views.frequency_buttons(BUTTONS))


async def handle_frequency(ctx: Ctx) -> str | None:
    frequency = BUTTONS.pressed(ctx, "freq")
    if frequency not in rules.FREQUENCIES:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["frequency"] = frequency
    ctx.data.pop("day", None)
    return {rules.DAILY: "time", rules.WEEKLY: "weekday", rules.MONTHLY: "monthday"}[frequency]


async def ask_weekday(ctx: Ctx) -> None:
    ctx.say("notice.ask_weekday", choices=views.weekday_buttons(BUTTONS))


async def handle_weekday(ctx: Ctx) -> str | None:
    day = BUTTONS.pressed(ctx, "wd")
    if day is None or not day.isdigit() or not 1 <= int(day) <= 7:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["day"] = int(day)
    return "time"


async def ask_monthday(ctx: Ctx) -> None:
    ctx.say("notice.ask_monthday", choices=views.monthday_buttons(BUTTONS), max=rules.MONTH_DAYS[-1])


async def handle_monthday(ctx: Ctx) -> str | None:
    typed = (ctx.inp.text or "").strip().removesuffix("日").removesuffix("号").removesuffix("號").strip()
    day = BUTTONS.pressed(ctx, "md") or typed
    if not day.isdigit() or int(day) not in rules.MONTH_DAYS:
        if ctx.inp.action and BUTTONS.pressed(ctx, "md") is None:
            BUTTONS.wrong_input(ctx)
        else:
            ctx.say("notice.bad_monthday", max=rules.MONTH_DAYS[-1])
        return "monthday"
    ctx.data["day"] = int(day)
    return "time"


async def ask_time(ctx: Ctx) -> None:
    ctx.say("notice.ask_time")


async def handle_time(ctx: Ctx) -> str | None:
    if ctx.inp.action:
        BUTTONS.wrong_input(ctx)
        return "time"
    try:
        at = rules.parse_time(ctx.inp.text or "")
    except DomainError as refused:
        ctx.say(refused.key, **refused.params)
        return "time"
    ctx.data["time"] = f"{at.hour:02d}:{at.minute:02d}"
    return "confirm"


def _rule(ctx: Ctx) -> rules.Rule:
    data = ctx.data
    return rules.rule_of(data["frequency"], data.get("day"), data["time"])


async def ask_confirm(ctx: Ctx) -> None:
    data = ctx.data
    rule = _rule(ctx)
    reach = await broadcasts.audience_size(
        ctx.repos,
        ctx.community,
        data["audience"],
        data["kind"],
        data["priority"],
        exclude_user_id=ctx.user.id,
    )
    upcoming = rules.occurrences(rule, ctx.clock.now(), ctx.community.tz, rules.PREVIEW_OCCURRENCES)
    ctx.response.replies.append(views.preview(ctx.community, BUTTONS, data, reach, rule, upcoming))


async def handle_confirm(ctx: Ctx) -> str | None:
    if BUTTONS.pressed(ctx, "ok"):
        data = ctx.data
        rule = _rule(ctx)
        notice, first = await rules.create(
            ctx.repos,
            ctx.community,
            ctx.user,
            text=data["text"],
            kind=data["kind"],
            priority=data["priority"],
            audience=data["audience"],
            rule=rule,
            now=ctx.clock.now(),
        )
        ctx.say("notice.created", id=notice.id, rule=views.rule_label(rule), first=When(first))
        return END
    if BUTTONS.pressed(ctx, "no"):
        ctx.say("notice.cancelled")
        return END
    BUTTONS.wrong_input(ctx)
    return None


FLOW = Flow(
    "notice",
    {
        "text": Step(ask_text, handle_text),
        "kind": Step(ask_kind, handle_kind),
        **audience.steps(BUTTONS, lambda ctx: "priority"),
        "priority": Step(ask_priority, handle_priority),
        "frequency": Step(ask_frequency, handle_frequency),
        "weekday": Step(ask_weekday, handle_weekday),
        "monthday": Step(ask_monthday, handle_monthday),
        "time": Step(ask_time, handle_time),
        "confirm": Step(ask_confirm, handle_confirm),
    },
    expired_key="notice.expired",
)
