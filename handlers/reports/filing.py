"""/report: category → urgency → description → photos → location → anonymous → confirm."""

from __future__ import annotations

from typing import Any

from handlers import choices, conversation
from handlers.community import GeoPoint
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError
from handlers.messages import Choice, DeepLink, Lines, Reply, Text, Verbatim
from handlers.reports import rules, tell
from handlers.reports.rules import ticket_label
from handlers.reports.views import category_label, grid_label, location_label, urgency_label

# `/start report`: the deep link that opens a new report in the private chat.
DEEP_LINK = "report"
# Typed words that start a report, as residents say it in chat.
WORDS = frozenset({"上报", "报告", "举报", "上報", "報告", "舉報", "report", "/report"})
FIELDS = ("category", "urgency", "description", "photos", "location", "anonymous")
SKIP_WORDS = frozenset({"skip", "done", "跳过", "完成", "略過", "完成了", "没有", "無", "无", "ok"})


def _action(ctx: Ctx, verb: str) -> str | None:
    """The argument of a report-flow button of kind `verb`, if that is what was pressed."""
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == "rpt" and parts[1] == verb:
        return parts[2]
    return None


def _next(ctx: Ctx, step: str) -> str:
    # While editing one field from the summary, go back to the summary after it.
    return "confirm" if ctx.data.get("editing") else step


def _wrong_input(ctx: Ctx, expected: str) -> None:
    if ctx.inp.action:
        ctx.say("error.stale_button")
    elif ctx.inp.unsupported:
        ctx.say("report.unsupported_here", expected=Text(f"report.expected_{expected}"))
    else:
        ctx.say("report.use_buttons")


async def ask_category(ctx: Ctx) -> None:
    buttons = [
        Choice(category_label(ctx.community, c.key), action=choices.encode("rpt", "cat", c.key))
        for c in ctx.community.categories
    ]
    rows = tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
    question = Text("report.ask_category")
    if ctx.data.pop("intro", False):
        # One message, not two: every message costs the resident a notification and us an API call.
        ctx.response.replies.append(Reply(Lines((Text("report.intro"), question)), rows))
        return
    ctx.response.replies.append(Reply(question, rows))


async def handle_category(ctx: Ctx) -> str | None:
    key = _action(ctx, "cat")
    if key is None or ctx.community.category(key) is None:
        _wrong_input(ctx, "button")
        return None
    ctx.data["category"] = key
    return _next(ctx, "urgency")


async def ask_urgency(ctx: Ctx) -> None:
    row = tuple(
        Choice(Text(f"button.urgency_{level}"), action=choices.encode("rpt", "urg", level))
        for level in ("normal", "urgent")
    )
    ctx.say("report.ask_urgency", choices=(row,))


async def handle_urgency(ctx: Ctx) -> str | None:
    level = _action(ctx, "urg")
    if level not in ("normal", "urgent"):
        _wrong_input(ctx, "button")
        return None
    ctx.data["urgency"] = level
    return _next(ctx, "description")


async def ask_description(ctx: Ctx) -> None:
    ctx.say("report.ask_description", max=ctx.community.limits.description_max_chars)


async def handle_description(ctx: Ctx) -> str | None:
    text = ctx.inp.text
    if ctx.inp.photo is not None:
        # A photo with a caption answers two questions at once.
        if not await _add_photo(ctx):
            return None
        text = ctx.inp.text
        if not text:
            ctx.say("report.photo_kept_need_text")
            return None
    if text is None:
        _wrong_input(ctx, "text")
        return None
    text = text.strip()
    limits = ctx.community.limits
    if len(text) < limits.description_min_chars:
        ctx.say("report.description_too_short", min=limits.description_min_chars)
        return None
    if len(text) > limits.description_max_chars:
        ctx.say("report.description_too_long", max=limits.description_max_chars, length=len(text))
        return None
    ctx.data["description"] = text
    if ctx.data.get("editing"):
        return "confirm"
    return "photos" if ctx.community.limits.max_photos > 0 else "location"


def _done_button() -> tuple[tuple[Choice, ...], ...]:
    return ((Choice(Text("button.photos_done"), action=choices.encode("rpt", "ph", "done")),),)


async def ask_photos(ctx: Ctx) -> None:
    count = len(ctx.data.get("photos", []))
    if count == 0:
        ctx.say("report.ask_photos", choices=_done_button(), max=ctx.community.limits.max_photos)
    else:
        ctx.say(
            "report.photo_or_done", choices=_done_button(), count=count, max=ctx.community.limits.max_photos
        )


async def _add_photo(ctx: Ctx) -> bool:
    photos: list[int] = ctx.data.setdefault("photos", [])
    if len(photos) >= ctx.community.limits.max_photos:
        ctx.say("report.too_many_photos", max=ctx.community.limits.max_photos)
        return False
    assert ctx.inp.photo is not None
    media_id = await ctx.media.save_photo(ctx.repos, ctx.inp.photo, ctx.clock.now())
    photos.append(media_id)
    return True


async def handle_photos(ctx: Ctx) -> str | None:
    limits = ctx.community.limits
    if ctx.inp.photo is not None:
        if await _add_photo(ctx):
            count = len(ctx.data["photos"])
            if count >= limits.max_photos:
                ctx.say("report.photo_received_last", count=count, max=limits.max_photos)
                return _next(ctx, "location")
            ctx.say("report.photo_received", choices=_done_button(), count=count, max=limits.max_photos)
            return "photos"
        return _next(ctx, "location")
    text = (ctx.inp.text or "").strip().lower()
    if _action(ctx, "ph") == "done" or text in SKIP_WORDS:
        return _next(ctx, "location")
    _wrong_input(ctx, "photo")
    return None


async def ask_location(ctx: Ctx) -> None:
    rows: list[tuple[Choice, ...]] = []
    if ctx.user.building:
        rows.append(
            (
                Choice(
                    Text("button.my_building", {"building": ctx.user.building}),
                    action=choices.encode("rpt", "loc", "home"),
                ),
            )
        )
    ctx.say("report.ask_location", choices=tuple(rows), keyboard="location")


def _set_location(ctx: Ctx, **values: Any) -> None:
    for key in ("grid_key", "building", "unit", "latitude", "longitude"):
        ctx.data[key] = values.get(key)
    ctx.data["location_noted"] = True


async def handle_location(ctx: Ctx) -> str | None:
    community = ctx.community
    if _action(ctx, "loc") == "home" and ctx.user.building:
        _set_location(ctx, grid_key=ctx.user.grid_key, building=ctx.user.building, unit=ctx.user.unit)
        return _next(ctx, "anonymous")
    if ctx.inp.location is not None:
        point = GeoPoint(lat=ctx.inp.location.lat, lon=ctx.inp.location.lon)
        if not community.is_inside(point):
            ctx.say("report.location_outside", community=community.name)
            return None
        grid = community.grid_for_location(point)
        _set_location(ctx, grid_key=grid.key if grid else None, latitude=point.lat, longitude=point.lon)
        return _next(ctx, "anonymous")
    if ctx.inp.text:
        building, _, unit = ctx.inp.text.strip().partition(" ")
        grid = community.grid_for_building(building)
        if grid is None:
            ctx.say("report.unknown_building", building=Verbatim(building[:32]))
            return None
        _set_location(ctx, grid_key=grid.key, building=building[:32], unit=unit.strip()[:32] or None)
        return _next(ctx, "anonymous")
    _wrong_input(ctx, "location")
    return None


async def ask_anonymous(ctx: Ctx) -> None:
    row = (
        Choice(Text("button.named"), action=choices.encode("rpt", "anon", "no")),
        Choice(Text("button.anonymous"), action=choices.encode("rpt", "anon", "yes")),
    )
    question: Text | Lines = Text("report.ask_anonymous")
    if ctx.data.pop("location_noted", False):
        # Confirm where, in the same message as the next question.
        question = Lines((Text("report.location_noted", {"location": location_label(ctx.data)}), question))
    ctx.response.replies.append(Reply(question, (row,)))


async def handle_anonymous(ctx: Ctx) -> str | None:
    answer = _action(ctx, "anon")
    if answer not in ("yes", "no"):
        _wrong_input(ctx, "button")
        return None
    ctx.data["anonymous"] = answer == "yes"
    return "confirm"


async def ask_confirm(ctx: Ctx) -> None:
    ctx.data.pop("editing", None)
    ctx.data.pop("location_noted", None)
    data = ctx.data
    summary = Text(
        "report.summary",
        {
            "category": category_label(ctx.community, data["category"]),
            "urgency": urgency_label(data["urgency"]),
            "description": Verbatim(data["description"]),
            "photos": len(data.get("photos", [])),
            "location": location_label(data),
            "grid": grid_label(ctx.community, data.get("grid_key")),
            "anonymous": Text("report.anonymous_yes" if data["anonymous"] else "report.anonymous_no"),
        },
    )
    row = (
        Choice(Text("button.confirm"), action=choices.encode("rpt", "ok", "1")),
        Choice(Text("button.edit"), action=choices.encode("rpt", "edit", "1")),
        Choice(Text("button.cancel"), action=choices.encode("rpt", "cancel", "1")),
    )
    ctx.response.replies.append(Reply(summary, (row,), tuple(data.get("photos", []))[:1]))


async def handle_confirm(ctx: Ctx) -> str | None:
    if _action(ctx, "ok"):
        draft = rules.Draft(
            category=ctx.data["category"],
            urgency=ctx.data["urgency"],
            description=ctx.data["description"],
            anonymous=bool(ctx.data["anonymous"]),
            photos=list(ctx.data.get("photos", [])),
            grid_key=ctx.data.get("grid_key"),
            building=ctx.data.get("building"),
            unit=ctx.data.get("unit"),
            latitude=ctx.data.get("latitude"),
            longitude=ctx.data.get("longitude"),
        )
        report = await rules.submit(ctx.repos, ctx.community, ctx.user, draft, ctx.clock.now())
        await tell.filed(ctx.repos, ctx.community, report, ctx.clock.now())
        ctx.say(
            "report.submitted",
            keyboard="main",
            ticket=ticket_label(report),
            grid=grid_label(ctx.community, report.grid_key),
        )
        return END
    if _action(ctx, "edit"):
        return "pick_field"
    if _action(ctx, "cancel"):
        ctx.say("report.cancelled", keyboard="main")
        return END
    _wrong_input(ctx, "button")
    return None


async def ask_pick_field(ctx: Ctx) -> None:
    buttons = [
        Choice(Text(f"report.field_{name}"), action=choices.encode("rpt", "f", name)) for name in FIELDS
    ]
    ctx.say("report.ask_field", choices=tuple(tuple(buttons[i : i + 3]) for i in range(0, len(buttons), 3)))


async def handle_pick_field(ctx: Ctx) -> str | None:
    name = _action(ctx, "f")
    if name not in FIELDS:
        _wrong_input(ctx, "button")
        return None
    ctx.data["editing"] = True
    if name == "photos":
        ctx.data["photos"] = []
    return name


FLOW = Flow(
    "report",
    {
        "category": Step(ask_category, handle_category),
        "urgency": Step(ask_urgency, handle_urgency),
        "description": Step(ask_description, handle_description),
        "photos": Step(ask_photos, handle_photos),
        "location": Step(ask_location, handle_location),
        "anonymous": Step(ask_anonymous, handle_anonymous),
        "confirm": Step(ask_confirm, handle_confirm),
        "pick_field": Step(ask_pick_field, handle_pick_field),
    },
    expired_key="report.expired",
)


async def start(ctx: Ctx) -> None:
    """Open a new draft, unless this reporter has filed too many lately."""
    try:
        await rules.check_rate_limit(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    except DomainError as refused:
        ctx.say(refused.key, **refused.params)
        return
    await conversation.begin(ctx, FLOW, "category", {"intro": True})


async def start_or_resume(ctx: Ctx) -> None:
    """/report: resume a draft report rather than throw away what was typed so far."""
    draft = ctx.draft
    if draft is not None and draft.flow == FLOW.name:
        ctx.data = dict(draft.data)
        ctx.say("report.resuming")
        await FLOW.steps[draft.step].ask(ctx)
        return
    await start(ctx)


async def in_group(ctx: Ctx) -> None:
    """/report typed in a group: reports are filed in private, one button away."""
    button = Choice(Text("group.open_private_report"), deep_link=DeepLink(DEEP_LINK).payload)
    ctx.say("group.report_privately", choices=((button,),))
