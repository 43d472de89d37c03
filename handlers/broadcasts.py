"""Police broadcasts: /alert (compose, preview, confirm), /alerts (list, details, cancel),
the 收到 button of urgent alerts, and /settings (kinds received, quiet hours).

The rules live in handlers/services/broadcasts.py; this module is the conversation.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, tzinfo

from handlers import audience_picker, choices, conversation
from handlers.accounts import rules as accounts
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import StaleAction
from handlers.messages import Choice, Lines, Reply, Text, Verbatim, When
from handlers.registry import Feature, OutboxKind
from handlers.services import broadcasts as service

# Buttons of the /alert dialogue: not registered with the engine, so they reach the running draft.
FLOW_ACTION = "bca"
FIELDS = ("kind", "text", "audience", "priority", "when")
# How far ahead a broadcast may be scheduled: further is more likely a mistyped year than a plan.
MAX_AHEAD = timedelta(days=90)
RECENT = timedelta(days=7)

_DATE_TIME_RE = re.compile(r"^(?:(?:(\d{4})[-/.])?(\d{1,2})[-/.](\d{1,2})\s+)?(\d{1,2}):(\d{2})$")


BUTTONS = audience_picker.FlowButtons(FLOW_ACTION, "broadcast.use_buttons")


def _next(ctx: Ctx, step: str) -> str:
    # While changing one thing from the preview, go back to the preview after it.
    return "confirm" if ctx.data.get("editing") else step


# --- /alert ---------------------------------------------------------------------------------


async def start_alert(ctx: Ctx) -> None:
    service.check_author(ctx.user)
    await conversation.begin(ctx, ALERT_FLOW, "kind")


async def ask_kind(ctx: Ctx) -> None:
    buttons = [BUTTONS.button(service.kind_label(kind), "kind", kind) for kind in service.KINDS]
    ctx.say("broadcast.ask_kind", choices=audience_picker.rows(buttons))


async def handle_kind(ctx: Ctx) -> str | None:
    kind = BUTTONS.pressed(ctx, "kind")
    if kind not in service.KINDS:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["kind"] = kind
    return _next(ctx, "text")


async def ask_text(ctx: Ctx) -> None:
    ctx.say("broadcast.ask_text", max=service.MAX_TEXT_CHARS)


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
    if len(text) > service.MAX_TEXT_CHARS:
        ctx.say("broadcast.text_too_long", max=service.MAX_TEXT_CHARS, length=len(text))
        return None
    ctx.data["text"] = text
    return _next(ctx, "audience")


async def ask_priority(ctx: Ctx) -> None:
    row = tuple(BUTTONS.button(service.priority_label(p), "prio", p) for p in service.PRIORITIES)
    ctx.say("broadcast.ask_priority", choices=(row,))


async def handle_priority(ctx: Ctx) -> str | None:
    priority = BUTTONS.pressed(ctx, "prio")
    if priority not in service.PRIORITIES:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["priority"] = priority
    return _next(ctx, "when")


async def ask_when(ctx: Ctx) -> None:
    tomorrow = (ctx.clock.now().astimezone(ctx.community.tz) + timedelta(days=1)).replace(hour=8, minute=0)
    ctx.say(
        "broadcast.ask_when",
        choices=((BUTTONS.button(Text("broadcast.button_now"), "when", "now"),),),
        example=Verbatim(tomorrow.strftime("%Y-%m-%d %H:%M")),
        example_short=Verbatim(tomorrow.strftime("%m-%d %H:%M")),
    )


def parse_when(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    """A typed local date-time: "2026-11-28 19:00", "11-28 19:00" (this year) or "19:00" (today)."""
    cleaned = unicodedata.normalize("NFKC", text).strip().replace("：", ":")
    cleaned = re.sub(r"\s+", " ", cleaned)
    match = _DATE_TIME_RE.match(cleaned)
    if match is None:
        return None
    year, month, day, hour, minute = match.groups()
    local_now = now.astimezone(tz)
    try:
        return datetime(
            int(year) if year else local_now.year,
            int(month) if month else local_now.month,
            int(day) if day else local_now.day,
            int(hour),
            int(minute),
            tzinfo=tz,
        )
    except ValueError:
        return None


async def handle_when(ctx: Ctx) -> str | None:
    if BUTTONS.pressed(ctx, "when") == "now":
        ctx.data["at"] = None
        return "confirm"
    if ctx.inp.action or not ctx.inp.text:
        BUTTONS.wrong_input(ctx)
        return None
    now = ctx.clock.now()
    at = parse_when(ctx.inp.text, now, ctx.community.tz)
    if at is None:
        ctx.say("broadcast.when_unreadable", text=Verbatim(ctx.inp.text.strip()[:40]))
        return None
    if at <= now:
        ctx.say("broadcast.when_past", at=When(at))
        return None
    if at - now > MAX_AHEAD:
        ctx.say("broadcast.when_too_far", days=MAX_AHEAD.days)
        return None
    ctx.data["at"] = at.isoformat()
    return "confirm"


def _at(ctx: Ctx) -> datetime | None:
    return datetime.fromisoformat(ctx.data["at"]) if ctx.data.get("at") else None


async def ask_confirm(ctx: Ctx) -> None:
    ctx.data.pop("editing", None)
    data = ctx.data
    # The 收到 button as residents will see it; pressing it here only explains what it does.
    sample = service.alert_reply(
        ctx.community,
        kind=data["kind"],
        priority=data["priority"],
        text=data["text"],
        photo_id=data.get("photo_id"),
        group=False,
        ack=choices.encode(FLOW_ACTION, "sample", 0),
    )
    ctx.response.replies.append(sample)
    reach = await service.reach(
        ctx.repos,
        ctx.community,
        data["audience"],
        data["kind"],
        data["priority"],
        ctx.clock.now(),
        exclude_user_id=ctx.user.id,
    )
    at = _at(ctx)
    lines = [
        Text(
            "broadcast.preview",
            {
                "kind": service.kind_label(data["kind"]),
                "priority": service.priority_label(data["priority"]),
                "audience": service.audience_label(ctx.community, data["audience"]),
                "when": Text("broadcast.when_scheduled", {"at": When(at)})
                if at
                else Text("broadcast.when_now"),
                "people": reach.people,
                "groups": reach.groups,
            },
        )
    ]
    if reach.muted:
        urgent = data["priority"] == service.URGENT
        key = "broadcast.preview_muted_urgent" if urgent else "broadcast.preview_muted"
        lines.append(Text(key, {"muted": reach.muted}))
    if reach.held and at is None:
        lines.append(Text("broadcast.preview_held", {"held": reach.held}))
    row = (
        BUTTONS.button(Text("broadcast.button_confirm"), "ok", 1),
        BUTTONS.button(Text("broadcast.button_edit"), "edit", 1),
        BUTTONS.button(Text("broadcast.button_discard"), "drop", 1),
    )
    ctx.response.replies.append(Reply(Lines(tuple(lines)), (row,)))


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
    broadcast_id = await service.publish(
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
    if at is not None:
        ctx.say("broadcast.scheduled", id=broadcast_id, at=When(at))
    else:
        figures = await ctx.repos.broadcasts.figures(broadcast_id)
        ctx.say("broadcast.sending", id=broadcast_id, people=figures.people, groups=figures.groups)
    return END


async def ask_edit(ctx: Ctx) -> None:
    buttons = [BUTTONS.button(Text(f"broadcast.field_{name}"), "field", name) for name in FIELDS]
    buttons.append(BUTTONS.button(Text("broadcast.button_back"), "field", "back"))
    ctx.say("broadcast.ask_edit", choices=audience_picker.rows(buttons, 3))


async def handle_edit(ctx: Ctx) -> str | None:
    name = BUTTONS.pressed(ctx, "field")
    if name == "back":
        return "confirm"
    if name not in FIELDS:
        BUTTONS.wrong_input(ctx)
        return None
    ctx.data["editing"] = True
    return name


ALERT_FLOW = conversation.register(
    Flow(
        name="alert",
        steps={
            "kind": Step(ask_kind, handle_kind),
            "text": Step(ask_text, handle_text),
            **audience_picker.steps(BUTTONS, lambda ctx: _next(ctx, "priority")),
            "priority": Step(ask_priority, handle_priority),
            "when": Step(ask_when, handle_when),
            "confirm": Step(ask_confirm, handle_confirm),
            "edit": Step(ask_edit, handle_edit),
        },
        expired_key="broadcast.draft_expired",
    )
)


# --- /alerts ------------------------------------------------------------------------------


async def list_alerts(ctx: Ctx) -> None:
    service.check_author(ctx.user)
    now = ctx.clock.now()
    found = await ctx.repos.broadcasts.recent(None, now - RECENT)
    opt_outs = await ctx.repos.broadcasts.opt_outs()
    opt_out_line = Text(
        "broadcast.opt_outs",
        {
            "counts": Lines(
                tuple(
                    Text(
                        "broadcast.opt_out_count",
                        {"kind": service.kind_label(kind), "count": opt_outs.get(kind, 0)},
                    )
                    for kind in service.KINDS
                )
            )
        },
    )
    if not found:
        ctx.response.replies.append(Reply(Lines((Text("broadcast.list_empty"), opt_out_line))))
        return
    lines: list[Text] = [Text("broadcast.list_title", {"days": RECENT.days})]
    rows: list[tuple[Choice, ...]] = []
    for broadcast in found:
        figures = await ctx.repos.broadcasts.figures(broadcast.id)
        lines.append(
            Text(
                "broadcast.list_line",
                {
                    "id": broadcast.id,
                    "kind": service.kind_label(broadcast.kind),
                    "priority": service.priority_label(broadcast.priority),
                    "state": Text(f"broadcast.state_{broadcast.state}"),
                    "when": When(broadcast.scheduled_at or broadcast.expanded_at or broadcast.created_at),
                    "excerpt": Verbatim(_excerpt(broadcast.text)),
                    "delivered": figures.delivered,
                    "total": figures.people + figures.groups,
                    "acked": figures.acked,
                },
            )
        )
        row = [
            Choice(
                Text("broadcast.button_details_id", {"id": broadcast.id}), action=_bc("info", broadcast.id)
            )
        ]
        if broadcast.state in ("scheduled", "sending"):
            row.append(
                Choice(
                    Text("broadcast.button_cancel_id", {"id": broadcast.id}), action=_bc("stop", broadcast.id)
                )
            )
        rows.append(tuple(row))
    lines.append(opt_out_line)
    ctx.response.replies.append(Reply(Lines(tuple(lines)), tuple(rows)))


def _excerpt(text: str, length: int = 24) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


def _bc(verb: str, value: str | int) -> str:
    return choices.encode(service.ACTION, verb, value)


async def _details(ctx: Ctx, broadcast_id: int) -> None:
    broadcast = await service.visible(ctx.repos, ctx.user, broadcast_id)
    report = await service.report_lines(ctx.repos, ctx.community, broadcast, buildings=True)
    message = service.message_text(ctx.community, broadcast.kind, broadcast.priority, broadcast.text)
    ctx.response.replies.append(Reply(Lines((message, *report.items)), service.report_buttons(broadcast)))


async def _stop(ctx: Ctx, broadcast_id: int) -> None:
    broadcast, stopped = await service.cancel(ctx.repos, ctx.user, broadcast_id, ctx.clock.now())
    if broadcast.state == "scheduled":
        ctx.say("broadcast.cancelled_scheduled", id=broadcast.id)
    else:
        ctx.say("broadcast.cancelled_sending", id=broadcast.id, stopped=stopped)


# --- buttons outside the dialogue ------------------------------------------------------------


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    if len(parts) != 3:
        raise StaleAction()
    verb, value = parts[1], parts[2]
    if verb in ("ack", "info", "stop"):
        if not value.isdigit():
            raise StaleAction()
        if verb == "ack":
            await _acknowledge(ctx, int(value))
        elif verb == "info":
            await _details(ctx, int(value))
        else:
            await _stop(ctx, int(value))
    elif verb in ("mute", "unmute"):
        if value not in service.KINDS:
            raise StaleAction()
        await service.set_muted(ctx.repos, ctx.user, value, verb == "mute", ctx.clock.now())
        ctx.notice(
            "broadcast.muted_short" if verb == "mute" else "broadcast.unmuted_short",
            kind=service.kind_label(value),
        )
        await show_settings(ctx)
    elif verb == "quiet":
        await _quiet_button(ctx, value)
    else:
        raise StaleAction()


async def _acknowledge(ctx: Ctx, broadcast_id: int) -> None:
    first = await service.acknowledge(ctx.repos, ctx.user, broadcast_id, ctx.clock.now())
    # A toast is thanks enough; channels without toasts show it as a reply.
    ctx.notice("broadcast.ack_thanks" if first else "broadcast.ack_again")


# --- /settings ------------------------------------------------------------------------------


async def show_settings(ctx: Ctx) -> None:
    current = await ctx.repos.broadcasts.subscription(ctx.user.id)
    muted = set(current.muted_kinds) if current else set()
    kinds = Lines(
        tuple(
            Text(
                "broadcast.settings_kind_off" if kind in muted else "broadcast.settings_kind_on",
                {"kind": service.kind_label(kind)},
            )
            for kind in service.KINDS
        )
    )
    quiet = (
        Text("broadcast.quiet_range", {"start": current.quiet_from, "end": current.quiet_until})
        if current and current.quiet_from and current.quiet_until
        else Text("broadcast.quiet_none")
    )
    toggles = [
        Choice(
            Text(
                "broadcast.button_kind_off" if kind in muted else "broadcast.button_kind_on",
                {"kind": service.kind_label(kind)},
            ),
            action=_bc("unmute" if kind in muted else "mute", kind),
        )
        for kind in service.KINDS
    ]
    quiet_row = (
        Choice(Text("broadcast.button_quiet_off"), action=_bc("quiet", "off")),
        *(
            Choice(
                Text("broadcast.button_quiet_preset", {"start": start, "end": end}), action=_bc("quiet", key)
            )
            for key, (start, end) in service.QUIET_PRESETS.items()
        ),
        Choice(Text("broadcast.button_quiet_other"), action=_bc("quiet", "ask")),
    )
    ctx.say(
        "broadcast.settings", choices=(*audience_picker.rows(toggles), quiet_row), kinds=kinds, quiet=quiet
    )


async def _quiet_button(ctx: Ctx, value: str) -> None:
    now = ctx.clock.now()
    if value == "ask":
        await conversation.begin(ctx, QUIET_FLOW, "quiet")
        return
    if value == "off":
        await service.set_quiet_hours(ctx.repos, ctx.user, None, None, now)
        ctx.notice("broadcast.quiet_cleared")
    elif value in service.QUIET_PRESETS:
        start, end = service.QUIET_PRESETS[value]
        await service.set_quiet_hours(ctx.repos, ctx.user, start, end, now)
        ctx.notice("broadcast.quiet_saved", start=start, end=end)
    else:
        raise StaleAction()
    await show_settings(ctx)


async def ask_quiet(ctx: Ctx) -> None:
    ctx.say("broadcast.ask_quiet")


async def handle_quiet(ctx: Ctx) -> str | None:
    if ctx.inp.action or not ctx.inp.text:
        ctx.say("error.stale_button" if ctx.inp.action else "broadcast.quiet_unreadable")
        return None
    parsed = service.parse_quiet_hours(ctx.inp.text)
    if parsed is None:
        ctx.say("broadcast.quiet_unreadable")
        return None
    start, end = parsed
    await service.set_quiet_hours(ctx.repos, ctx.user, start, end, ctx.clock.now())
    await show_settings(ctx)
    return END


QUIET_FLOW = conversation.register(
    Flow(
        name="alert_quiet",
        steps={"quiet": Step(ask_quiet, handle_quiet)},
        expired_key="broadcast.quiet_expired",
    )
)


_EVERYONE = ("settings",)
_COMMANDERS = ("alert", "alerts", "settings")

FEATURE = Feature(
    name="broadcasts",
    commands={"alert": start_alert, "alerts": list_alerts, "settings": show_settings},
    actions={service.ACTION: on_action},
    schedules={
        service.SCHEDULE_SEND: service.fire_send,
        service.SCHEDULE_ACK: service.fire_ack_reminder,
        service.SCHEDULE_REPORT: service.fire_report,
    },
    help={
        accounts.RESIDENT: _EVERYONE,
        accounts.VOLUNTEER: _EVERYONE,
        accounts.GRID_WORKER: _EVERYONE,
        accounts.POLICE: _COMMANDERS,
        accounts.ADMIN: _COMMANDERS,
    },
    outbox={
        service.COPY: OutboxKind(service.render_copy),
        service.SUMMARY: OutboxKind(service.render_summary, service.summary_settled),
        service.SUMMARY_EDIT: OutboxKind(service.render_summary, service.summary_settled),
    },
)
