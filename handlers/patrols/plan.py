"""Police planning patrols: /newpatrol step by step, and managing, editing, cancelling and stopping shifts."""

from __future__ import annotations

from datetime import date

from handlers import choices, conversation
from handlers.community import GeoPoint
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, StaleAction
from handlers.messages import Verbatim
from handlers.patrols import announce, rules, views
from handlers.patrols.local_time import at_local, hhmm, local_day, parse_hhmm
from handlers.patrols.wording import shift_params
from storage.models import PatrolShift

# --- managing a shift (buttons on /patrols) ---------------------------------------------------


async def manage(ctx: Ctx, shift_id: int) -> None:
    """A shift as police see it: who is on it and who waits, with what can be changed."""
    managed = await rules.manage(ctx.repos, ctx.user, shift_id, ctx.clock.now())
    ctx.response.replies.append(views.manage(ctx.community, managed))


async def ask_cancel_shift(ctx: Ctx, shift_id: int) -> None:
    shift = await rules.managed_shift(ctx.repos, ctx.user, shift_id, ctx.clock.now())
    confirmed, waiting = await rules.roster(ctx.repos, shift)
    ctx.response.replies.append(
        views.confirm_cancel_shift(ctx.community, shift, len(confirmed) + len(waiting))
    )


async def cancel_shift(ctx: Ctx, shift_id: int) -> None:
    now = ctx.clock.now()
    shift, people = await rules.cancel_shift(ctx.repos, ctx.community, ctx.user, shift_id, now)
    told = await announce.tell(ctx.repos, ctx.community, people, views.cancelled(ctx.community, shift), now)
    ctx.say("patrol.cancel_shift.done", **shift_params(ctx.community, shift), told=told)


async def ask_stop_series(ctx: Ctx, series_id: int) -> None:
    series = await rules.series_to_stop(ctx.repos, ctx.user, series_id)
    ctx.response.replies.append(views.confirm_stop_series(series))


async def stop_series(ctx: Ctx, series_id: int) -> None:
    now = ctx.clock.now()
    stopped = await rules.stop_series(ctx.repos, ctx.community, ctx.user, series_id, now)
    for person, shifts in stopped.affected:
        reply = views.series_stopped(ctx.community, stopped.series, shifts)
        await announce.tell(ctx.repos, ctx.community, (person,), reply, now)
    ctx.say("patrol.stop_series.done", area=Verbatim(stopped.series.area), count=stopped.cancelled)


async def edit_time(ctx: Ctx, shift_id: int) -> None:
    await _edit(ctx, shift_id, "time")


async def edit_size(ctx: Ctx, shift_id: int) -> None:
    await _edit(ctx, shift_id, "size")


async def _edit(ctx: Ctx, shift_id: int, step: str) -> None:
    shift = await rules.managed_shift(ctx.repos, ctx.user, shift_id, ctx.clock.now())
    await conversation.begin(ctx, EDIT_FLOW, step, {"shift_id": shift.id})


# --- /newpatrol -----------------------------------------------------------------------------


def _new_action(ctx: Ctx, verb: str) -> str | None:
    """The argument of a /newpatrol button of kind `verb`, if that is what was pressed."""
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == views.NEW and parts[1] == verb:
        return parts[2]
    return None


def _wrong_input(ctx: Ctx, key: str) -> None:
    """Anything other than what the step asks for: say what is expected, then ask again."""
    if ctx.inp.action:
        ctx.say("error.stale_button")
    else:
        ctx.say(key)


def _explained(ctx: Ctx, refused: DomainError) -> None:
    ctx.say(refused.key, **refused.params)


def _today(ctx: Ctx) -> date:
    return local_day(ctx.clock.now(), ctx.community.tz)


def _day(ctx: Ctx) -> date:
    return date.fromisoformat(ctx.data["day"])


async def new_patrol(ctx: Ctx) -> None:
    """/newpatrol (police and admins): plan a shift or a recurring series, step by step."""
    rules.require_manager(ctx.user)
    await conversation.begin(ctx, NEW_FLOW, "area", {})


async def ask_area(ctx: Ctx) -> None:
    ctx.say("patrol.new.ask_area", max=rules.AREA_MAX_CHARS)


async def handle_area(ctx: Ctx) -> str | None:
    if ctx.inp.action or ctx.inp.text is None:
        _wrong_input(ctx, "patrol.new.use_text")
        return None
    area = ctx.short_answer(rules.AREA_MAX_CHARS, "patrol.new.need_area")
    if area is None:
        return None
    ctx.data["area"] = area
    return "date"


async def ask_date(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_date(_today(ctx), ctx.data["area"]))


async def handle_date(ctx: Ctx) -> str | None:
    today = _today(ctx)
    pressed = _new_action(ctx, "day")
    try:
        if pressed is not None:
            try:
                day = date.fromisoformat(pressed)
            except ValueError:
                raise StaleAction() from None
            rules.check_day(day, today)
        elif ctx.inp.text and not ctx.inp.action:
            day = rules.parse_date(ctx.inp.text, today)
        else:
            _wrong_input(ctx, "patrol.new.use_date")
            return None
    except DomainError as refused:
        _explained(ctx, refused)
        return None
    ctx.data["day"] = day.isoformat()
    return "time"


async def ask_time(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_time(_day(ctx)))


async def handle_time(ctx: Ctx) -> str | None:
    if ctx.inp.action or not ctx.inp.text:
        _wrong_input(ctx, "patrol.new.use_time")
        return None
    try:
        start, end = rules.parse_time_range(ctx.inp.text)
    except DomainError as refused:
        _explained(ctx, refused)
        return None
    if at_local(_day(ctx), start, ctx.community.tz) <= ctx.clock.now():
        ctx.say("patrol.new.time_past")
        return None
    ctx.data["start"], ctx.data["end"] = hhmm(start), hhmm(end)
    return "meeting"


async def ask_meeting(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_meeting(ctx.community))


async def handle_meeting(ctx: Ctx) -> str | None:
    community = ctx.community
    grid_key = _new_action(ctx, "grid")
    if grid_key is not None:
        grid = community.grid(grid_key)
        if grid is None or grid.center is None:
            _wrong_input(ctx, "patrol.new.use_location")
            return None
        point, label = grid.center, grid.name
    elif _new_action(ctx, "centre") is not None and community.center is not None:
        point, label = community.center, community.name
    elif ctx.inp.location is not None and not ctx.inp.action:
        point = GeoPoint(lat=ctx.inp.location.lat, lon=ctx.inp.location.lon)
        if not community.is_inside(point):
            ctx.say("patrol.new.meeting_outside", community=community.name)
            return None
        label = None
    else:
        _wrong_input(ctx, "patrol.new.use_location")
        return None
    ctx.data.update(lat=point.lat, lon=point.lon, label=label)
    return "size"


async def ask_size(ctx: Ctx) -> None:
    ctx.say("patrol.new.ask_size", max=rules.MAX_VOLUNTEERS)


async def handle_size(ctx: Ctx) -> str | None:
    if ctx.inp.action or not ctx.inp.text:
        _wrong_input(ctx, "patrol.new.use_size")
        return None
    try:
        ctx.data["min"], ctx.data["max"] = rules.parse_size(ctx.inp.text)
    except DomainError as refused:
        _explained(ctx, refused)
        return None
    return "leader"


async def ask_leader(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_leader())


async def handle_leader(ctx: Ctx) -> str | None:
    answer = _new_action(ctx, "lead")
    if answer not in ("me", "none"):
        _wrong_input(ctx, "patrol.new.use_buttons")
        return None
    ctx.data["leader"] = ctx.user.id if answer == "me" else None
    return "repeat"


async def ask_repeat(ctx: Ctx) -> None:
    ctx.response.replies.append(views.ask_repeat(_day(ctx)))


async def handle_repeat(ctx: Ctx) -> str | None:
    answer = _new_action(ctx, "rep")
    if answer not in rules.REPEATS:
        _wrong_input(ctx, "patrol.new.use_buttons")
        return None
    ctx.data["repeat"] = answer
    return "confirm"


# What create() may refuse about a plan that was fine when its date and time were typed.
_DATE_AGAIN = frozenset({"patrol.new.time_past", "patrol.new.date_past"})


def _plan(ctx: Ctx) -> rules.Plan:
    data = ctx.data
    day = _day(ctx)
    return rules.Plan(
        area=data["area"],
        day=day,
        start=parse_hhmm(data["start"]),
        end=parse_hhmm(data["end"]),
        meeting_lat=float(data["lat"]),
        meeting_lon=float(data["lon"]),
        meeting_label=data.get("label"),
        min_volunteers=int(data["min"]),
        max_volunteers=int(data["max"]),
        leader_id=data.get("leader"),
        weekdays=rules.weekdays_for(data["repeat"], day),
    )


async def ask_confirm(ctx: Ctx) -> None:
    ctx.response.replies.append(views.plan_summary(_plan(ctx), ctx.user))


async def handle_confirm(ctx: Ctx) -> str | None:
    if _new_action(ctx, "no") is not None:
        ctx.say("patrol.new.discarded", keyboard="main")
        return END
    if _new_action(ctx, "ok") is None:
        _wrong_input(ctx, "patrol.new.use_buttons")
        return None
    plan = _plan(ctx)
    try:
        created = await rules.create(ctx.repos, ctx.community, ctx.user, plan, ctx.clock.now())
    except DomainError as refused:
        _explained(ctx, refused)
        # Time passed while the summary waited: pick the date and time again, keep the rest.
        return "date" if refused.key in _DATE_AGAIN else END
    ctx.response.replies.append(views.created(ctx.community, plan, created))
    return END


NEW_FLOW = Flow(
    "newpatrol",
    {
        "area": Step(ask_area, handle_area),
        "date": Step(ask_date, handle_date),
        "time": Step(ask_time, handle_time),
        "meeting": Step(ask_meeting, handle_meeting),
        "size": Step(ask_size, handle_size),
        "leader": Step(ask_leader, handle_leader),
        "repeat": Step(ask_repeat, handle_repeat),
        "confirm": Step(ask_confirm, handle_confirm),
    },
    expired_key="patrol.new.expired",
)


# --- editing a shift (police) -----------------------------------------------------------------


async def _edited_shift(ctx: Ctx) -> PatrolShift:
    shift = await ctx.repos.patrols.shift(int(ctx.data["shift_id"]))
    if shift is None:
        raise StaleAction()
    return shift


async def ask_edit_time(ctx: Ctx) -> None:
    shift = await _edited_shift(ctx)
    ctx.say("patrol.edit.ask_time", **shift_params(ctx.community, shift))


# Mistakes in what was typed: explained, and the question asked again.
_TYPED_WRONG = frozenset(
    {
        "patrol.new.bad_time",
        "patrol.new.time_past",
        "patrol.new.end_before_start",
        "patrol.edit.clash",
        "patrol.new.bad_size",
        "patrol.edit.below_taken",
    }
)


def _after_refusal(ctx: Ctx, refused: DomainError) -> str | None:
    """Ask again after a typing mistake; stop when the shift itself can no longer be edited."""
    _explained(ctx, refused)
    return None if refused.key in _TYPED_WRONG else END


async def handle_edit_time(ctx: Ctx) -> str | None:
    if ctx.inp.action or not ctx.inp.text:
        _wrong_input(ctx, "patrol.new.use_time")
        return None
    now = ctx.clock.now()
    try:
        start, end = rules.parse_time_range(ctx.inp.text)
        retimed = await rules.retime(
            ctx.repos, ctx.community, ctx.user, int(ctx.data["shift_id"]), start, end, now
        )
    except DomainError as refused:
        return _after_refusal(ctx, refused)
    if retimed is None:
        ctx.say("patrol.edit.unchanged")
        return END
    reply = views.retimed(ctx.community, retimed.old, retimed.shift)
    await announce.tell(ctx.repos, ctx.community, retimed.people, reply, now)
    ctx.say("patrol.edit.retimed", **shift_params(ctx.community, retimed.shift))
    return END


async def ask_edit_size(ctx: Ctx) -> None:
    shift = await _edited_shift(ctx)
    taken = (await ctx.repos.patrols.taken([shift.id])).get(shift.id, 0)
    ctx.say(
        "patrol.edit.ask_size",
        **shift_params(ctx.community, shift),
        taken=taken,
        min=shift.min_volunteers,
        max=shift.max_volunteers,
        limit=rules.MAX_VOLUNTEERS,
    )


async def handle_edit_size(ctx: Ctx) -> str | None:
    if ctx.inp.action or not ctx.inp.text:
        _wrong_input(ctx, "patrol.new.use_size")
        return None
    now = ctx.clock.now()
    try:
        low, high = rules.parse_places(ctx.inp.text)
        resized = await rules.resize(
            ctx.repos, ctx.community, ctx.user, int(ctx.data["shift_id"]), low, high, now
        )
    except DomainError as refused:
        return _after_refusal(ctx, refused)
    shift = resized.shift
    await announce.promoted(ctx.repos, ctx.community, shift, resized.promoted, now)
    await announce.tell(ctx.repos, ctx.community, resized.people, views.resized(ctx.community, shift), now)
    ctx.say(
        "patrol.edit.resized",
        **shift_params(ctx.community, shift),
        min=shift.min_volunteers,
        max=shift.max_volunteers,
        promoted=len(resized.promoted),
    )
    return END


EDIT_FLOW = Flow(
    "patrol_edit",
    {"time": Step(ask_edit_time, handle_edit_time), "size": Step(ask_edit_size, handle_edit_size)},
)
