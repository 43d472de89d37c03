"""/notice (police, admins): text → kind → audience → priority → every day / week / month → time → preview
→ confirm; /notices: the running ones with their next time and a Stop button. Also carries the schedule
of the weekly digest to the police groups (handlers/services/digest.py).

The rules live in handlers/services/notices.py.
"""

from __future__ import annotations

from handlers import choices, conversation
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, When
from handlers.registry import Feature
from handlers.services import accounts, broadcasts, digest
from handlers.services import notices as rules

# Buttons of the dialogue (they reach the running draft); Stop buttons of /notices work any time.
FLOW_ACTION = "ntf"
ACTION = "ntc"
AUDIENCES = ("community", "grids", "volunteers", "groups")
AUDIENCE_KEYS = {
    "community": "notice.audience_community",
    "grids": "notice.audience_grids",
    "volunteers": "notice.audience_volunteers",
    "groups": "notice.audience_groups",
}
FREQUENCY_KEYS = {
    rules.DAILY: "notice.button_daily",
    rules.WEEKLY: "notice.button_weekly",
    rules.MONTHLY: "notice.button_monthly",
}
# 社区通知 first: most recurring notices are community announcements.
KINDS = ("community", *(kind for kind in broadcasts.KINDS if kind != "community"))


def _pressed(ctx: Ctx, verb: str) -> str | None:
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == FLOW_ACTION and parts[1] == verb:
        return parts[2]
    return None


def _button(label: Text, verb: str, value: str | int) -> Choice:
    return Choice(label, action=choices.encode(FLOW_ACTION, verb, value))


def _rows(buttons: list[Choice], per_row: int = 2) -> tuple[tuple[Choice, ...], ...]:
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


def _use_buttons(ctx: Ctx) -> None:
    ctx.say("error.stale_button" if ctx.inp.action else "notice.use_buttons")


async def start(ctx: Ctx) -> None:
    rules.require_commander(ctx.user)
    await conversation.begin(ctx, FLOW, "text")


async def ask_text(ctx: Ctx) -> None:
    ctx.say("notice.ask_text", max=broadcasts.MAX_TEXT_CHARS)


async def handle_text(ctx: Ctx) -> str | None:
    if ctx.inp.action:
        _use_buttons(ctx)
        return "text"
    text = ctx.short_answer(broadcasts.MAX_TEXT_CHARS, "notice.text_empty")
    if text is None:
        return "text"
    ctx.data["text"] = text
    return "kind"


async def ask_kind(ctx: Ctx) -> None:
    buttons = [_button(broadcasts.kind_label(kind), "kind", kind) for kind in KINDS]
    ctx.say("notice.ask_kind", choices=_rows(buttons))


async def handle_kind(ctx: Ctx) -> str | None:
    kind = _pressed(ctx, "kind")
    if kind not in broadcasts.KINDS:
        _use_buttons(ctx)
        return None
    ctx.data["kind"] = kind
    return "audience"


async def ask_audience(ctx: Ctx) -> None:
    buttons = [_button(Text(AUDIENCE_KEYS[kind]), "aud", kind) for kind in AUDIENCES]
    ctx.say("notice.ask_audience", choices=_rows(buttons))


async def handle_audience(ctx: Ctx) -> str | None:
    kind = _pressed(ctx, "aud")
    if kind not in AUDIENCES:
        _use_buttons(ctx)
        return None
    if kind == "grids":
        ctx.data["chosen_grids"] = []
        return "grids"
    ctx.data["audience"] = {"type": kind, "grids": []}
    return "priority"


async def ask_grids(ctx: Ctx) -> None:
    chosen = set(ctx.data.get("chosen_grids", []))
    buttons = [
        _button(
            Text(
                "notice.grid_chosen" if grid.key in chosen else "notice.grid_not_chosen",
                {"grid": Verbatim(grid.name)},
            ),
            "grid",
            grid.key,
        )
        for grid in ctx.community.grids
    ]
    rows = (*_rows(buttons), (_button(Text("notice.button_grids_done"), "grid", "-done"),))
    ctx.say("notice.ask_grids", choices=rows, count=len(chosen))


async def handle_grids(ctx: Ctx) -> str | None:
    key = _pressed(ctx, "grid")
    if key is None:
        _use_buttons(ctx)
        return None
    chosen: list[str] = ctx.data.setdefault("chosen_grids", [])
    if key == "-done":
        if not chosen:
            ctx.say("notice.no_grids_chosen")
            return None
        ctx.data["audience"] = broadcasts.check_audience(ctx.community, {"type": "grids", "grids": chosen})
        del ctx.data["chosen_grids"]
        return "priority"
    if ctx.community.grid(key) is None:
        raise StaleAction()
    if key in chosen:
        chosen.remove(key)
    else:
        chosen.append(key)
    return None  # asked again: the buttons show what is chosen now


async def ask_priority(ctx: Ctx) -> None:
    row = tuple(_button(broadcasts.priority_label(p), "prio", p) for p in rules.NOTICE_PRIORITIES)
    ctx.say("notice.ask_priority", choices=(row,))


async def handle_priority(ctx: Ctx) -> str | None:
    priority = _pressed(ctx, "prio")
    if priority not in rules.NOTICE_PRIORITIES:
        _use_buttons(ctx)
        return None
    ctx.data["priority"] = priority
    return "frequency"


async def ask_frequency(ctx: Ctx) -> None:
    row = tuple(_button(Text(FREQUENCY_KEYS[f]), "freq", f) for f in rules.FREQUENCIES)
    ctx.say("notice.ask_frequency", choices=(row,))


async def handle_frequency(ctx: Ctx) -> str | None:
    frequency = _pressed(ctx, "freq")
    if frequency not in rules.FREQUENCIES:
        _use_buttons(ctx)
        return None
    ctx.data["frequency"] = frequency
    ctx.data.pop("day", None)
    return {rules.DAILY: "time", rules.WEEKLY: "weekday", rules.MONTHLY: "monthday"}[frequency]


async def ask_weekday(ctx: Ctx) -> None:
    buttons = [_button(rules.weekday_label(day), "wd", day) for day in range(1, 8)]
    ctx.say("notice.ask_weekday", choices=_rows(buttons, per_row=4))


async def handle_weekday(ctx: Ctx) -> str | None:
    day = _pressed(ctx, "wd")
    if day is None or not day.isdigit() or not 1 <= int(day) <= 7:
        _use_buttons(ctx)
        return None
    ctx.data["day"] = int(day)
    return "time"


async def ask_monthday(ctx: Ctx) -> None:
    buttons = [_button(Text("notice.day_button", {"day": day}), "md", day) for day in rules.MONTH_DAYS]
    ctx.say("notice.ask_monthday", choices=_rows(buttons, per_row=7), max=rules.MONTH_DAYS[-1])


async def handle_monthday(ctx: Ctx) -> str | None:
    typed = (ctx.inp.text or "").strip().removesuffix("日").removesuffix("号").removesuffix("號").strip()
    day = _pressed(ctx, "md") or typed
    if not day.isdigit() or int(day) not in rules.MONTH_DAYS:
        if ctx.inp.action and _pressed(ctx, "md") is None:
            _use_buttons(ctx)
        else:
            ctx.say("notice.bad_monthday", max=rules.MONTH_DAYS[-1])
        return "monthday"
    ctx.data["day"] = int(day)
    return "time"


async def ask_time(ctx: Ctx) -> None:
    ctx.say("notice.ask_time")


async def handle_time(ctx: Ctx) -> str | None:
    if ctx.inp.action:
        _use_buttons(ctx)
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
    row = (_button(Text("notice.button_confirm"), "ok", 1), _button(Text("notice.button_cancel"), "no", 1))
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
    if _pressed(ctx, "ok"):
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
    if _pressed(ctx, "no"):
        ctx.say("notice.cancelled")
        return END
    _use_buttons(ctx)
    return None


FLOW = conversation.register(
    Flow(
        "notice",
        {
            "text": Step(ask_text, handle_text),
            "kind": Step(ask_kind, handle_kind),
            "audience": Step(ask_audience, handle_audience),
            "grids": Step(ask_grids, handle_grids),
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
    schedules={rules.NOTICE: rules.fire, digest.DIGEST: digest.fire},
    help={role: ("notice", "notices") for role in accounts.COMMANDERS},
    on_start=digest.on_start,
)
