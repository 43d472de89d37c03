"""/notice (police, admins): text → kind → audience → priority → every day / week / month → time → preview
→ confirm; /notices: the running ones with their next time and a Stop button.

The rules live in handlers/services/notices.py.
"""

from __future__ import annotations

from handlers import audience_picker, choices, conversation
from handlers.accounts import rules as accounts
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, When
from handlers.registry import Feature
from handlers.services import broadcasts
from handlers.services import notices as rules

# Buttons of the dialogue (they reach the running draft); Stop buttons of /notices work any time.
FLOW_ACTION = "ntf"
ACTION = "ntc"
FREQUENCY_KEYS = {
    rules.DAILY: "notice.button_daily",
    rules.WEEKLY: "notice.button_weekly",
    rules.MONTHLY: "notice.button_monthly",
}
# 社区通知 first: most recurring notices are community announcements.
KINDS = ("community", *(kind for kind in broadcasts.KINDS if kind != "community"))


BUTTONS = audience_picker.FlowButtons(FLOW_ACTION, "notice.use_buttons")


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
    buttons = [BUTTONS.button(broadcasts.kind_label(kind), "kind", kind) for kind in KINDS]
    ctx.say("notice.ask_kind", choices=audience_picker.rows(buttons))


async def handle_kind(ctx: Ctx) -> str | None:
    kind = BUTTONS.pressed(ctx, "kind")
    if kind not in broadcasts.KINDS:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["kind"] = kind
    return "audience"


async def ask_priority(ctx: Ctx) -> None:
    row = tuple(BUTTONS.button(broadcasts.priority_label(p), "prio", p) for p in rules.NOTICE_PRIORITIES)
    ctx.say("notice.ask_priority", choices=(row,))


async def handle_priority(ctx: Ctx) -> str | None:
    priority = BUTTONS.pressed(ctx, "prio")
    if priority not in rules.NOTICE_PRIORITIES:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["priority"] = priority
    return "frequency"


async def ask_frequency(ctx: Ctx) -> None:
    row = tuple(BUTTONS.button(Text(FREQUENCY_KEYS[f]), "freq", f) for f in rules.FREQUENCIES)
    ctx.say("notice.ask_frequency", choices=(row,))


async def handle_frequency(ctx: Ctx) -> str | None:
    frequency = BUTTONS.pressed(ctx, "freq")
    if frequency not in rules.FREQUENCIES:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["frequency"] = frequency
    ctx.data.pop("day", None)
    return {rules.DAILY: "time", rules.WEEKLY: "weekday", rules.MONTHLY: "monthday"}[frequency]


async def ask_weekday(ctx: Ctx) -> None:
    buttons = [BUTTONS.button(rules.weekday_label(day), "wd", day) for day in range(1, 8)]
    ctx.say("notice.ask_weekday", choices=audience_picker.rows(buttons, per_row=4))


async def handle_weekday(ctx: Ctx) -> str | None:
    day = BUTTONS.pressed(ctx, "wd")
    if day is None or not day.isdigit() or not 1 <= int(day) <= 7:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["day"] = int(day)
    return "time"


async def ask_monthday(ctx: Ctx) -> None:
    buttons = [BUTTONS.button(Text("notice.day_button", {"day": day}), "md", day) for day in rules.MONTH_DAYS]
    ctx.say("notice.ask_monthday", choices=audience_picker.rows(buttons, per_row=7), max=rules.MONTH_DAYS[-1])


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
    people, groups = await broadcasts.audience_size(
        ctx.repos,
        ctx.community,
        data["audience"],
        data["kind"],
        data["priority"],
        exclude_user_id=ctx.user.id,
    )
    upcoming = rules.occurrences(rule, ctx.clock.now(), ctx.community.tz, rules.PREVIEW_OCCURRENCES)
    row = (
        BUTTONS.button(Text("notice.button_confirm"), "ok", 1),
        BUTTONS.button(Text("notice.button_cancel"), "no", 1),
    )
    ctx.say(
        "notice.preview",
        choices=(row,),
        message=broadcasts.message_text(ctx.community, data["kind"], data["priority"], data["text"]),
        audience=broadcasts.audience_label(ctx.community, data["audience"]),
        people=people,
        groups=groups,
        rule=rules.rule_label(rule),
        upcoming=Lines(tuple(Text("notice.upcoming_line", {"when": When(at)}) for at in upcoming)),
    )


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
        ctx.say("notice.created", id=notice.id, rule=rules.rule_label(rule), first=When(first))
        return END
    if BUTTONS.pressed(ctx, "no"):
        ctx.say("notice.cancelled")
        return END
    BUTTONS.wrong_input(ctx)
    return None


FLOW = conversation.register(
    Flow(
        "notice",
        {
            "text": Step(ask_text, handle_text),
            "kind": Step(ask_kind, handle_kind),
            **audience_picker.steps(BUTTONS, lambda ctx: "priority"),
            "priority": Step(ask_priority, handle_priority),
            "frequency": Step(ask_frequency, handle_frequency),
            "weekday": Step(ask_weekday, handle_weekday),
            "monthday": Step(ask_monthday, handle_monthday),
            "time": Step(ask_time, handle_time),
            "confirm": Step(ask_confirm, handle_confirm),
        },
        expired_key="notice.expired",
    )
)


# --- /notices -------------------------------------------------------------------------------


async def list_notices(ctx: Ctx) -> None:
    running = await rules.active(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    if not running:
        ctx.say("notice.none")
        return
    ctx.say("notice.list_header", count=len(running))
    for item in running:
        notice = item.notice
        stop = Choice(Text("notice.button_stop"), action=choices.encode(ACTION, "stop", notice.id))
        text = Text(
            "notice.line",
            {
                "id": notice.id,
                "kind": broadcasts.kind_label(notice.kind),
                "rule": rules.rule_label(item.rule),
                "next": When(item.next_at),
                "audience": broadcasts.audience_label(ctx.community, notice.audience),
                "text": Verbatim(notice.text),
            },
        )
        ctx.response.replies.append(Reply(text, ((stop,),)))


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if len(parts) != 3 or parts[1] != "stop" or not parts[2].isdigit():
        raise StaleAction()
    notice = await rules.stop(ctx.repos, ctx.user, int(parts[2]))
    ctx.notice("notice.stopped", id=notice.id)
    ctx.say("notice.stopped", id=notice.id)


FEATURE = Feature(
    name="notices",
    commands={"notice": start, "notices": list_notices},
    actions={ACTION: on_action},
    schedules={rules.NOTICE: rules.fire},
    help={role: ("notice", "notices") for role in accounts.COMMANDERS},
)
