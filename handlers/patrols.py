"""Volunteer patrols (群防群治): /patrols, /myshifts, /volunteer, /newpatrol and the buttons on shifts.

The rules live in handlers/services/patrols.py; this module turns commands,
buttons and typed answers into calls to it and shows the outcome.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from handlers import choices, conversation
from handlers.community import GeoPoint
from handlers.context import Ctx
from handlers.conversation import END, Flow, Step
from handlers.errors import DomainError, PermissionDenied, StaleAction
from handlers.messages import Choice, Document, Lines, Reply, Text, Verbatim, When
from handlers.registry import Feature
from handlers.services import accounts
from handlers.services import patrols as rules
from handlers.services import timebank as bank
from handlers.services.patrols import Listed, shift_params
from storage.models import PatrolShift, User
from storage.patrols import CONFIRMED, WAITING

# Buttons on lists, cards and group messages: the engine hands them to on_action at any time.
KIND = "pat"
# Buttons of the /newpatrol dialogue: not a feature action, so they reach the running draft.
NEW = "pnew"
# Date buttons offered by /newpatrol: today and the six days after.
DATE_BUTTONS = 7
CALENDAR_FILE = "shouwang-patrols.ics"
# Requests, and banned people, listed by /volunteers at a time.
DESK_SHOWN = 10


def _button(key: str, verb: str, arg: int | str, **params: Any) -> Choice:
    return Choice(Text(key, params), action=choices.encode(KIND, verb, arg))


def _names(people: list[User]) -> Text | Lines:
    if not people:
        return Text("patrol.nobody")
    return Lines(tuple(Text("patrol.roster_name", {"name": Verbatim(p.display_name)}) for p in people))


# --- /patrols and /myshifts ---------------------------------------------------------------


def _line(ctx: Ctx, n: int, item: Listed) -> Text:
    shift = item.shift
    if item.mine == CONFIRMED:
        key = "patrol.line_mine"
    elif item.mine == WAITING:
        key = "patrol.line_waiting"
    elif item.taken >= shift.max_volunteers:
        key = "patrol.line_full"
    else:
        key = "patrol.line"
    params = shift_params(ctx.community, shift)
    return Text(
        key, {**params, "n": n, "taken": item.taken, "max": shift.max_volunteers, "position": item.position}
    )


def _signup_button(n: int, item: Listed) -> Choice:
    shift_id = item.shift.id
    if item.mine == CONFIRMED:
        return _button("patrol.button.leave", "leave", shift_id, n=n)
    if item.mine == WAITING:
        return _button("patrol.button.leave_waiting", "leave", shift_id, n=n)
    if item.taken >= item.shift.max_volunteers:
        return _button("patrol.button.wait", "wait", shift_id, n=n)
    return _button("patrol.button.join", "join", shift_id, n=n)


async def list_patrols(ctx: Ctx) -> None:
    """/patrols: the next two weeks' shifts with places, and a button per shift."""
    listed = await rules.upcoming(ctx.repos, ctx.user, ctx.clock.now())
    manager = rules.can_manage(ctx.user)
    if not listed:
        ctx.say("patrol.list_empty_staff" if manager else "patrol.list_empty", days=rules.LIST_DAYS)
        return
    rows = []
    for n, item in enumerate(listed, 1):
        row = [_signup_button(n, item)]
        if manager:
            row.append(_button("patrol.button.manage", "mng", item.shift.id, n=n))
        rows.append(tuple(row))
    lines = Lines(tuple(_line(ctx, n, item) for n, item in enumerate(listed, 1)))
    key = "patrol.list" if ctx.user.role in rules.CAN_PATROL else "patrol.list_resident"
    ctx.say(key, choices=tuple(rows), lines=lines, days=rules.LIST_DAYS)


async def list_mine(ctx: Ctx) -> None:
    """/myshifts: the person's shifts not over yet, with cancel buttons and the calendar file."""
    now = ctx.clock.now()
    listed = await rules.my_shifts(ctx.repos, ctx.user, now)
    if not listed:
        ctx.say("patrol.mine_empty")
        return
    lines = []
    rows = []
    for n, item in enumerate(listed, 1):
        params = shift_params(ctx.community, item.shift)
        key = "patrol.mine_line" if item.mine == CONFIRMED else "patrol.mine_line_waiting"
        lines.append(Text(key, {**params, "n": n, "position": item.position}))
        if item.shift.starts_at > now:
            rows.append((_signup_button(n, item),))
    if any(item.mine == CONFIRMED for item in listed):
        rows.append((_button("patrol.button.calendar", "ics", 0),))
    ctx.say("patrol.mine", choices=tuple(rows), lines=Lines(tuple(lines)))


async def send_calendar(ctx: Ctx) -> None:
    now = ctx.clock.now()
    shifts = [
        item.shift for item in await rules.my_shifts(ctx.repos, ctx.user, now) if item.mine == CONFIRMED
    ]
    if not shifts:
        ctx.say("patrol.calendar_empty")
        return
    data = rules.calendar(ctx.community, shifts, now)
    document = Document(CALENDAR_FILE, "text/calendar", data)
    ctx.say("patrol.calendar", document=document, count=len(shifts))


# --- signing up and withdrawing -------------------------------------------------------------


async def _join(ctx: Ctx, shift_id: int, *, waiting_ok: bool) -> None:
    try:
        joined = await rules.join(
            ctx.repos, ctx.community, ctx.user, shift_id, ctx.clock.now(), waiting_ok=waiting_ok
        )
    except rules.ShiftFull:
        ctx.say("patrol.full", choices=((_button("patrol.button.wait_now", "wait", shift_id),),))
        ctx.notice("patrol.full")
        return
    params = shift_params(ctx.community, joined.shift)
    if joined.position:
        ctx.say("patrol.waiting", **params, position=joined.position)
        ctx.notice("patrol.waiting_notice", position=joined.position)
    else:
        ctx.say("patrol.signed_up", **params)
        ctx.notice("patrol.signed_up_notice")


async def _leave(ctx: Ctx, shift_id: int) -> None:
    shift, was = await rules.leave(ctx.repos, ctx.community, ctx.user, shift_id, ctx.clock.now())
    key = "patrol.left" if was == CONFIRMED else "patrol.left_waiting"
    ctx.say(key, **shift_params(ctx.community, shift))
    ctx.notice("patrol.left_notice")


# --- police: managing a shift -------------------------------------------------------------


async def _manage(ctx: Ctx, shift_id: int) -> None:
    """A shift as police see it: who is on it and who waits, with what can be changed."""
    shift = await rules.managed_shift(ctx.repos, ctx.user, shift_id, ctx.clock.now())
    confirmed, waiting = await rules.roster(ctx.repos, shift)
    series = await ctx.repos.patrols.series(shift.series_id) if shift.series_id else None
    leader = await ctx.repos.users.get(shift.leader_id) if shift.leader_id else None
    rows: list[tuple[Choice, ...]] = [
        (
            _button("patrol.button.edit_time", "etime", shift.id),
            _button("patrol.button.edit_size", "esize", shift.id),
        ),
        (_button("patrol.button.cancel_shift", "csh", shift.id),),
    ]
    if series is not None and series.active:
        rows.append((_button("patrol.button.stop_series", "stop", series.id),))
    ctx.say(
        "patrol.manage",
        choices=tuple(rows),
        **shift_params(ctx.community, shift),
        taken=len(confirmed),
        min=shift.min_volunteers,
        max=shift.max_volunteers,
        leader=Verbatim(leader.display_name) if leader else Text("patrol.no_leader"),
        repeat=rules.repeat_label(series.weekdays if series else None),
        people=_names(confirmed),
        waiting=_names(waiting),
    )


async def _ask_cancel_shift(ctx: Ctx, shift_id: int) -> None:
    shift = await rules.managed_shift(ctx.repos, ctx.user, shift_id, ctx.clock.now())
    confirmed, waiting = await rules.roster(ctx.repos, shift)
    ctx.say(
        "patrol.cancel_shift.confirm",
        choices=((_button("patrol.button.cancel_shift_sure", "cshok", shift.id),),),
        **shift_params(ctx.community, shift),
        people=len(confirmed) + len(waiting),
    )


async def _cancel_shift(ctx: Ctx, shift_id: int) -> None:
    shift, told = await rules.cancel_shift(ctx.repos, ctx.community, ctx.user, shift_id, ctx.clock.now())
    ctx.say("patrol.cancel_shift.done", **shift_params(ctx.community, shift), told=told)


async def _ask_stop_series(ctx: Ctx, series_id: int) -> None:
    if not rules.can_manage(ctx.user):
        raise PermissionDenied()
    series = await ctx.repos.patrols.series(series_id)
    if series is None:
        raise StaleAction()
    if not series.active:
        raise DomainError("patrol.series_already_stopped")
    ctx.say(
        "patrol.stop_series.confirm",
        choices=((_button("patrol.button.stop_series_sure", "stopok", series.id),),),
        area=Verbatim(series.area),
        repeat=rules.repeat_label(series.weekdays),
        start=series.start_time,
        end=series.end_time,
    )


async def _stop_series(ctx: Ctx, series_id: int) -> None:
    series, cancelled = await rules.stop_series(
        ctx.repos, ctx.community, ctx.user, series_id, ctx.clock.now()
    )
    ctx.say("patrol.stop_series.done", area=Verbatim(series.area), count=cancelled)


async def _lift_ban(ctx: Ctx, user_id: int) -> None:
    person = await rules.lift_ban(ctx.repos, ctx.community, ctx.user, user_id, ctx.clock.now())
    ctx.notice("patrol.ban_lifted", name=Verbatim(person.display_name))


async def _decide_volunteer(ctx: Ctx, user_id: int, approved: bool) -> None:
    person = await rules.decide_volunteer(
        ctx.repos, ctx.community, ctx.user, user_id, approved, ctx.clock.now()
    )
    key = "patrol.volunteer.you_approved" if approved else "patrol.volunteer.you_rejected"
    ctx.notice(key, name=Verbatim(person.display_name))


async def _edit(ctx: Ctx, shift_id: int, step: str) -> None:
    shift = await rules.managed_shift(ctx.repos, ctx.user, shift_id, ctx.clock.now())
    await conversation.begin(ctx, EDIT_FLOW, step, {"shift_id": shift.id})


async def on_action(ctx: Ctx, parts: tuple[str, ...]) -> None:
    """A `pat:<verb>:<id>` button: on a list, a shift card, or a police group message."""
    if len(parts) != 3 or not parts[2].isdigit():
        raise StaleAction()
    verb, ref = parts[1], int(parts[2])
    if verb == "join":
        await _join(ctx, ref, waiting_ok=False)
    elif verb == "wait":
        await _join(ctx, ref, waiting_ok=True)
    elif verb == "leave":
        await _leave(ctx, ref)
    elif verb == "ics":
        await send_calendar(ctx)
    elif verb == "mng":
        await _manage(ctx, ref)
    elif verb == "etime":
        await _edit(ctx, ref, "time")
    elif verb == "esize":
        await _edit(ctx, ref, "size")
    elif verb == "csh":
        await _ask_cancel_shift(ctx, ref)
    elif verb == "cshok":
        await _cancel_shift(ctx, ref)
    elif verb == "stop":
        await _ask_stop_series(ctx, ref)
    elif verb == "stopok":
        await _stop_series(ctx, ref)
    elif verb == "unban":
        await _lift_ban(ctx, ref)
    elif verb in ("vok", "vno"):
        await _decide_volunteer(ctx, ref, verb == "vok")
    else:
        raise StaleAction()


async def become_volunteer(ctx: Ctx) -> None:
    """/volunteer: join the patrols, at once or after police approve."""
    key = await rules.volunteer(ctx.repos, ctx.community, ctx.user, ctx.clock.now())
    await ctx.reload_user()
    ctx.say(key)


async def volunteer_desk(ctx: Ctx) -> None:
    """/volunteers: requests to volunteer to decide, and sign-up bans to lift, with their buttons."""
    desk = await rules.volunteer_desk(ctx.repos, ctx.community, ctx.user, DESK_SHOWN)
    if not desk.requests and not desk.banned:
        ctx.say("patrol.desk.empty")
        return
    lines: list[Text] = []
    rows: list[tuple[Choice, ...]] = []
    if desk.requests:
        shown = {"count": desk.requests_total, "shown": len(desk.requests)}
        lines.append(Text("patrol.desk.requests", shown))
    for person, asked_at in desk.requests:
        label = bank.person_label(ctx.community, person)
        lines.append(Text("patrol.desk.request", {"person": label, "when": When(asked_at)}))
        name = Verbatim(person.display_name)
        rows.append(
            (
                _button("patrol.button.approve_name", "vok", person.id, name=name),
                _button("patrol.button.reject_name", "vno", person.id, name=name),
            )
        )
    if desk.banned:
        lines.append(Text("patrol.desk.banned"))
    for person, count in desk.banned:
        label = bank.person_label(ctx.community, person)
        lines.append(Text("patrol.desk.banned_person", {"person": label, "count": count}))
        name = Verbatim(person.display_name)
        rows.append((_button("patrol.button.lift_ban_name", "unban", person.id, name=name),))
    ctx.response.replies.append(Reply(Lines(tuple(lines)), tuple(rows)))


# --- /newpatrol -----------------------------------------------------------------------------


def _new_action(ctx: Ctx, verb: str) -> str | None:
    """The argument of a /newpatrol button of kind `verb`, if that is what was pressed."""
    parts = choices.decode(ctx.inp.action)
    if parts and len(parts) == 3 and parts[0] == NEW and parts[1] == verb:
        return parts[2]
    return None


def _new_button(key: str, verb: str, arg: str | int, **params: Any) -> Choice:
    return Choice(Text(key, params), action=choices.encode(NEW, verb, arg))


def _wrong_input(ctx: Ctx, key: str) -> None:
    """Anything other than what the step asks for: say what is expected, then ask again."""
    if ctx.inp.action:
        ctx.say("error.stale_button")
    else:
        ctx.say(key)


def _explained(ctx: Ctx, refused: DomainError) -> None:
    ctx.say(refused.key, **refused.params)


def _today(ctx: Ctx) -> date:
    return rules.local_day(ctx.clock.now(), ctx.community.tz)


def _day(ctx: Ctx) -> date:
    return date.fromisoformat(ctx.data["day"])


async def new_patrol(ctx: Ctx) -> None:
    """/newpatrol (police and admins): plan a shift or a recurring series, step by step."""
    if not rules.can_manage(ctx.user):
        raise PermissionDenied()
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
    today = _today(ctx)
    buttons = [
        _new_button(
            "patrol.button.day",
            "day",
            day.isoformat(),
            month=day.month,
            day=day.day,
            weekday=rules.weekday_label(day),
        )
        for day in (today + timedelta(days=offset) for offset in range(DATE_BUTTONS))
    ]
    rows = tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
    ctx.say("patrol.new.ask_date", choices=rows, area=Verbatim(ctx.data["area"]))


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
    day = _day(ctx)
    ctx.say("patrol.new.ask_time", month=day.month, day=day.day, weekday=rules.weekday_label(day))


async def handle_time(ctx: Ctx) -> str | None:
    if ctx.inp.action or not ctx.inp.text:
        _wrong_input(ctx, "patrol.new.use_time")
        return None
    try:
        start, end = rules.parse_time_range(ctx.inp.text)
    except DomainError as refused:
        _explained(ctx, refused)
        return None
    if rules.at_local(_day(ctx), start, ctx.community.tz) <= ctx.clock.now():
        ctx.say("patrol.new.time_past")
        return None
    ctx.data["start"], ctx.data["end"] = rules.hhmm(start), rules.hhmm(end)
    return "meeting"


async def ask_meeting(ctx: Ctx) -> None:
    community = ctx.community
    buttons = [
        _new_button("patrol.button.grid_centre", "grid", grid.key, grid=Verbatim(grid.name))
        for grid in community.grids
        if grid.center is not None
    ]
    if community.center is not None:
        buttons.append(_new_button("patrol.button.community_centre", "centre", 0, community=community.name))
    rows = tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
    ctx.say("patrol.new.ask_meeting", choices=rows, keyboard="location")


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
    row = (
        _new_button("patrol.button.lead_me", "lead", "me"),
        _new_button("patrol.button.no_leader", "lead", "none"),
    )
    ctx.say("patrol.new.ask_leader", choices=(row,))


async def handle_leader(ctx: Ctx) -> str | None:
    answer = _new_action(ctx, "lead")
    if answer not in ("me", "none"):
        _wrong_input(ctx, "patrol.new.use_buttons")
        return None
    ctx.data["leader"] = ctx.user.id if answer == "me" else None
    return "repeat"


async def ask_repeat(ctx: Ctx) -> None:
    weekday = rules.weekday_label(_day(ctx))
    rows = (
        (
            _new_button("patrol.repeat.once", "rep", "once"),
            _new_button("patrol.repeat.daily", "rep", "daily"),
        ),
        (
            _new_button("patrol.repeat.weekly", "rep", "weekly", weekday=weekday),
            _new_button("patrol.repeat.weekdays", "rep", "weekdays"),
        ),
    )
    ctx.say("patrol.new.ask_repeat", choices=rows)


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
        start=rules.parse_hhmm(data["start"]),
        end=rules.parse_hhmm(data["end"]),
        meeting_lat=float(data["lat"]),
        meeting_lon=float(data["lon"]),
        meeting_label=data.get("label"),
        min_volunteers=int(data["min"]),
        max_volunteers=int(data["max"]),
        leader_id=data.get("leader"),
        weekdays=rules.weekdays_for(data["repeat"], day),
    )


async def ask_confirm(ctx: Ctx) -> None:
    plan = _plan(ctx)
    row = (
        _new_button("patrol.button.create", "ok", 1),
        _new_button("patrol.button.discard", "no", 1),
    )
    ctx.say(
        "patrol.new.summary",
        choices=(row,),
        area=Verbatim(plan.area),
        month=plan.day.month,
        day=plan.day.day,
        weekday=rules.weekday_label(plan.day),
        start=rules.hhmm(plan.start),
        end=rules.hhmm(plan.end),
        meeting=rules.meeting_label(plan.meeting_label, plan.meeting_lat, plan.meeting_lon),
        min=plan.min_volunteers,
        max=plan.max_volunteers,
        leader=Verbatim(ctx.user.display_name) if plan.leader_id else Text("patrol.no_leader"),
        repeat=rules.repeat_label(plan.weekdays),
    )


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
    if created.series is None:
        ctx.say("patrol.new.created", keyboard="main", **shift_params(ctx.community, created.shifts[0]))
    else:
        ctx.say(
            "patrol.new.series_created",
            keyboard="main",
            area=Verbatim(plan.area),
            repeat=rules.repeat_label(plan.weekdays),
            start=rules.hhmm(plan.start),
            end=rules.hhmm(plan.end),
            count=len(created.shifts),
            days=ctx.community.patrols.generate_days_ahead,
        )
    return END


NEW_FLOW = conversation.register(
    Flow(
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
)


# --- editing a shift (police) -----------------------------------------------------------------


async def _edited_shift(ctx: Ctx) -> PatrolShift | None:
    return await ctx.repos.patrols.shift(int(ctx.data["shift_id"]))


async def ask_edit_time(ctx: Ctx) -> None:
    shift = await _edited_shift(ctx)
    if shift is None:
        raise StaleAction()
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
    try:
        start, end = rules.parse_time_range(ctx.inp.text)
        shift = await rules.retime(
            ctx.repos, ctx.community, ctx.user, int(ctx.data["shift_id"]), start, end, ctx.clock.now()
        )
    except DomainError as refused:
        return _after_refusal(ctx, refused)
    if shift is None:
        ctx.say("patrol.edit.unchanged")
    else:
        ctx.say("patrol.edit.retimed", **shift_params(ctx.community, shift))
    return END


async def ask_edit_size(ctx: Ctx) -> None:
    shift = await _edited_shift(ctx)
    if shift is None:
        raise StaleAction()
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
    try:
        low, high = rules.parse_places(ctx.inp.text)
        shift, promoted = await rules.resize(
            ctx.repos, ctx.community, ctx.user, int(ctx.data["shift_id"]), low, high, ctx.clock.now()
        )
    except DomainError as refused:
        return _after_refusal(ctx, refused)
    ctx.say(
        "patrol.edit.resized",
        **shift_params(ctx.community, shift),
        min=shift.min_volunteers,
        max=shift.max_volunteers,
        promoted=len(promoted),
    )
    return END


EDIT_FLOW = conversation.register(
    Flow(
        "patrol_edit",
        {"time": Step(ask_edit_time, handle_edit_time), "size": Step(ask_edit_size, handle_edit_size)},
    )
)


_FOR_EVERYONE = ("patrols", "myshifts")
FEATURE = Feature(
    name="patrols",
    commands={
        "newpatrol": new_patrol,
        "patrols": list_patrols,
        "myshifts": list_mine,
        "volunteer": become_volunteer,
        "volunteers": volunteer_desk,
    },
    actions={KIND: on_action},
    schedules={
        rules.GENERATE: rules.fire_generate,
        rules.REMIND: rules.fire_reminder,
        rules.UNDERSTAFFED: rules.fire_understaffed,
    },
    help={
        accounts.RESIDENT: (*_FOR_EVERYONE, "volunteer"),
        accounts.VOLUNTEER: (*_FOR_EVERYONE, "volunteer"),
        accounts.GRID_WORKER: _FOR_EVERYONE,
        accounts.POLICE: ("newpatrol", *_FOR_EVERYONE, "volunteers"),
        accounts.ADMIN: ("newpatrol", *_FOR_EVERYONE, "volunteers"),
    },
    on_start=rules.on_start,
)
