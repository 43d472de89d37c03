"""What patrols say and which buttons they offer, built from what the rules return."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from handlers import choices
from handlers.community import Community
from handlers.messages import Choice, Document, Lines, Reply, Text, Verbatim, When
from handlers.patrols import calendar, rules
from handlers.patrols.local_time import hhmm
from handlers.patrols.wording import contact, meeting_label, repeat_label, shift_params, weekday_label
from handlers.timebank import views as bank
from storage.models import PatrolSeries, PatrolShift, User
from storage.patrols import CONFIRMED, WAITING

# Buttons on lists, cards and group messages: the engine hands them to the feature's action at any time.
KIND = "pat"
# Buttons of the /newpatrol dialogue: not a feature action, so they reach the running draft.
NEW = "pnew"
# Date buttons offered by /newpatrol: today and the six days after.
DATE_BUTTONS = 7

Rows = tuple[tuple[Choice, ...], ...]


def button(key: str, verb: str, arg: int | str, **params: Any) -> Choice:
    return Choice(Text(key, params), action=choices.encode(KIND, verb, arg))


def _pairs(buttons: Sequence[Choice]) -> Rows:
    return tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))


def names(people: list[User]) -> Text | Lines:
    if not people:
        return Text("patrol.nobody")
    return Lines(tuple(Text("patrol.roster_name", {"name": Verbatim(p.display_name)}) for p in people))


# --- /patrols and /myshifts ---------------------------------------------------------------


def _line(community: Community, n: int, item: rules.Listed) -> Text:
    shift = item.shift
    if item.mine == CONFIRMED:
        key = "patrol.line_mine"
    elif item.mine == WAITING:
        key = "patrol.line_waiting"
    elif item.taken >= shift.max_volunteers:
        key = "patrol.line_full"
    else:
        key = "patrol.line"
    params = shift_params(community, shift)
    return Text(
        key, {**params, "n": n, "taken": item.taken, "max": shift.max_volunteers, "position": item.position}
    )


def _signup_button(n: int, item: rules.Listed) -> Choice:
    shift_id = item.shift.id
    if item.mine == CONFIRMED:
        return button("patrol.button.leave", "leave", shift_id, n=n)
    if item.mine == WAITING:
        return button("patrol.button.leave_waiting", "leave", shift_id, n=n)
    if item.taken >= item.shift.max_volunteers:
        return button("patrol.button.wait", "wait", shift_id, n=n)
    return button("patrol.button.join", "join", shift_id, n=n)


def patrol_list(community: Community, viewer: User, listed: list[rules.Listed]) -> Reply:
    """/patrols: the shifts with places, a button per shift (and one to manage it, for police)."""
    manager = rules.can_manage(viewer)
    if not listed:
        key = "patrol.list_empty_staff" if manager else "patrol.list_empty"
        return Reply(Text(key, {"days": rules.LIST_DAYS}))
    rows = []
    for n, item in enumerate(listed, 1):
        row = [_signup_button(n, item)]
        if manager:
            row.append(button("patrol.button.manage", "mng", item.shift.id, n=n))
        rows.append(tuple(row))
    lines = Lines(tuple(_line(community, n, item) for n, item in enumerate(listed, 1)))
    key = "patrol.list" if viewer.role in rules.CAN_PATROL else "patrol.list_resident"
    return Reply(Text(key, {"lines": lines, "days": rules.LIST_DAYS}), tuple(rows))


def my_shifts(community: Community, listed: list[rules.Listed], now: datetime) -> Reply:
    """/myshifts: the person's shifts not over yet, with cancel buttons and the calendar file."""
    if not listed:
        return Reply(Text("patrol.mine_empty"))
    lines = []
    rows = []
    for n, item in enumerate(listed, 1):
        params = shift_params(community, item.shift)
        key = "patrol.mine_line" if item.mine == CONFIRMED else "patrol.mine_line_waiting"
        lines.append(Text(key, {**params, "n": n, "position": item.position}))
        if item.shift.starts_at > now:
            rows.append((_signup_button(n, item),))
    if any(item.mine == CONFIRMED for item in listed):
        rows.append((button("patrol.button.calendar", "ics", 0),))
    return Reply(Text("patrol.mine", {"lines": Lines(tuple(lines))}), tuple(rows))


def calendar_file(community: Community, shifts: list[PatrolShift], now: datetime) -> Reply:
    if not shifts:
        return Reply(Text("patrol.calendar_empty"))
    data = calendar.calendar(community, shifts, now)
    document = Document(calendar.FILENAME, calendar.MIME, data)
    return Reply(Text("patrol.calendar", {"count": len(shifts)}), document=document)


def shift_full(shift_id: int) -> Reply:
    return Reply(Text("patrol.full"), ((button("patrol.button.wait_now", "wait", shift_id),),))


# --- police: managing a shift -------------------------------------------------------------


def manage(community: Community, managed: rules.Managed) -> Reply:
    """A shift as police see it: who is on it and who waits, with what can be changed."""
    shift, series, leader = managed.shift, managed.series, managed.leader
    rows: list[tuple[Choice, ...]] = [
        (
            button("patrol.button.edit_time", "etime", shift.id),
            button("patrol.button.edit_size", "esize", shift.id),
        ),
        (button("patrol.button.cancel_shift", "csh", shift.id),),
    ]
    if series is not None and series.active:
        rows.append((button("patrol.button.stop_series", "stop", series.id),))
    params = {
        **shift_params(community, shift),
        "taken": len(managed.confirmed),
        "min": shift.min_volunteers,
        "max": shift.max_volunteers,
        "leader": Verbatim(leader.display_name) if leader else Text("patrol.no_leader"),
        "repeat": repeat_label(series.weekdays if series else None),
        "people": names(managed.confirmed),
        "waiting": names(managed.waiting),
    }
    return Reply(Text("patrol.manage", params), tuple(rows))


def confirm_cancel_shift(community: Community, shift: PatrolShift, people: int) -> Reply:
    return Reply(
        Text("patrol.cancel_shift.confirm", {**shift_params(community, shift), "people": people}),
        ((button("patrol.button.cancel_shift_sure", "cshok", shift.id),),),
    )


def confirm_stop_series(series: PatrolSeries) -> Reply:
    params = {
        "area": Verbatim(series.area),
        "repeat": repeat_label(series.weekdays),
        "start": series.start_time,
        "end": series.end_time,
    }
    return Reply(
        Text("patrol.stop_series.confirm", params),
        ((button("patrol.button.stop_series_sure", "stopok", series.id),),),
    )


# --- volunteers ------------------------------------------------------------------------------


_VOLUNTEER_OUTCOMES = {
    rules.ALREADY: "patrol.volunteer.already",
    rules.STAFF: "patrol.volunteer.staff",
    rules.WELCOME: "patrol.volunteer.welcome",
    rules.PENDING: "patrol.volunteer.pending",
    rules.REQUESTED: "patrol.volunteer.requested",
}


def volunteer_outcome(outcome: str) -> Reply:
    return Reply(Text(_VOLUNTEER_OUTCOMES[outcome]))


def volunteer_request(community: Community, user: User) -> Reply:
    """The police card asking to approve someone as a volunteer."""
    grid = community.grid(user.grid_key) if user.grid_key else None
    card = Text(
        "patrol.police.volunteer_request",
        {
            "name": Verbatim(user.display_name),
            "building": Verbatim(user.building or "-"),
            "grid": Verbatim(grid.name) if grid else Text("patrol.no_grid"),
        },
    )
    row = (
        Choice(Text("patrol.button.approve"), action=choices.encode(KIND, "vok", user.id)),
        Choice(Text("patrol.button.reject"), action=choices.encode(KIND, "vno", user.id)),
    )
    return Reply(card, (row,))


def volunteer_decided(approved: bool) -> Reply:
    return Reply(Text("patrol.volunteer.approved" if approved else "patrol.volunteer.rejected"))


def volunteer_desk(community: Community, desk: rules.VolunteerDesk) -> Reply:
    """/volunteers: requests to volunteer to decide, and sign-up bans to lift, with their buttons."""
    if not desk.requests and not desk.banned:
        return Reply(Text("patrol.desk.empty"))
    lines: list[Text] = []
    rows: list[tuple[Choice, ...]] = []
    if desk.requests:
        shown = {"count": desk.requests_total, "shown": len(desk.requests)}
        lines.append(Text("patrol.desk.requests", shown))
    for person, asked_at in desk.requests:
        label = bank.person_label(community, person)
        lines.append(Text("patrol.desk.request", {"person": label, "when": When(asked_at)}))
        name = Verbatim(person.display_name)
        rows.append(
            (
                button("patrol.button.approve_name", "vok", person.id, name=name),
                button("patrol.button.reject_name", "vno", person.id, name=name),
            )
        )
    if desk.banned:
        lines.append(Text("patrol.desk.banned"))
    for person, count in desk.banned:
        label = bank.person_label(community, person)
        lines.append(Text("patrol.desk.banned_person", {"person": label, "count": count}))
        name = Verbatim(person.display_name)
        rows.append((button("patrol.button.lift_ban_name", "unban", person.id, name=name),))
    return Reply(Lines(tuple(lines)), tuple(rows))


# --- what people are told --------------------------------------------------------------------


def promoted(community: Community, shift: PatrolShift) -> Reply:
    return Reply(Text("patrol.notify.promoted", shift_params(community, shift)))


def retimed(community: Community, old: PatrolShift, shift: PatrolShift) -> Reply:
    params = {
        **shift_params(community, shift),
        "old": When(old.starts_at),
        "old_end": hhmm(old.ends_at.astimezone(community.tz).time()),
    }
    return Reply(Text("patrol.notify.retimed", params))


def resized(community: Community, shift: PatrolShift) -> Reply:
    params = {**shift_params(community, shift), "min": shift.min_volunteers, "max": shift.max_volunteers}
    return Reply(Text("patrol.notify.resized", params))


def cancelled(community: Community, shift: PatrolShift) -> Reply:
    return Reply(Text("patrol.notify.cancelled", shift_params(community, shift)))


def series_stopped(community: Community, series: PatrolSeries, shifts: list[PatrolShift]) -> Reply:
    lines = Lines(tuple(Text("patrol.notify.series_line", shift_params(community, s)) for s in shifts))
    return Reply(Text("patrol.notify.series_stopped", {"area": Verbatim(series.area), "lines": lines}))


def reminder(community: Community, due: rules.Reminder) -> Reply:
    key = "patrol.reminder.soon" if due.late else "patrol.reminder.ahead"
    return Reply(Text(key, {**shift_params(community, due.shift), "contact": contact(due.leader)}))


def understaffed(community: Community, shift: PatrolShift, taken: int) -> Reply:
    params = {**shift_params(community, shift), "taken": taken, "min": shift.min_volunteers}
    return Reply(Text("patrol.police.understaffed", params))


def lift_ban_choice(user_id: int) -> Choice:
    return Choice(Text("patrol.button.lift_ban"), action=choices.encode(KIND, "unban", user_id))


def banned(count: int) -> Reply:
    return Reply(Text("patrol.notify.banned", {"count": count}))


def banned_card(user: User, count: int) -> Reply:
    card = Text("patrol.police.banned", {"name": Verbatim(user.display_name), "count": count})
    return Reply(card, ((lift_ban_choice(user.id),),))


def unbanned() -> Reply:
    return Reply(Text("patrol.notify.unbanned"))


# --- /newpatrol --------------------------------------------------------------------------------


def _new_button(key: str, verb: str, arg: str | int, **params: Any) -> Choice:
    return Choice(Text(key, params), action=choices.encode(NEW, verb, arg))


def ask_date(today: date, area: str) -> Reply:
    buttons = [
        _new_button(
            "patrol.button.day",
            "day",
            day.isoformat(),
            month=day.month,
            day=day.day,
            weekday=weekday_label(day),
        )
        for day in (today + timedelta(days=offset) for offset in range(DATE_BUTTONS))
    ]
    return Reply(Text("patrol.new.ask_date", {"area": Verbatim(area)}), _pairs(buttons))


def ask_time(day: date) -> Reply:
    return Reply(
        Text("patrol.new.ask_time", {"month": day.month, "day": day.day, "weekday": weekday_label(day)})
    )


def ask_meeting(community: Community) -> Reply:
    buttons = [
        _new_button("patrol.button.grid_centre", "grid", grid.key, grid=Verbatim(grid.name))
        for grid in community.grids
        if grid.center is not None
    ]
    if community.center is not None:
        buttons.append(_new_button("patrol.button.community_centre", "centre", 0, community=community.name))
    return Reply(Text("patrol.new.ask_meeting"), _pairs(buttons), keyboard="location")


def ask_leader() -> Reply:
    row = (
        _new_button("patrol.button.lead_me", "lead", "me"),
        _new_button("patrol.button.no_leader", "lead", "none"),
    )
    return Reply(Text("patrol.new.ask_leader"), (row,))


def ask_repeat(day: date) -> Reply:
    weekday = weekday_label(day)
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
    return Reply(Text("patrol.new.ask_repeat"), rows)


def plan_summary(plan: rules.Plan, planner: User) -> Reply:
    row = (
        _new_button("patrol.button.create", "ok", 1),
        _new_button("patrol.button.discard", "no", 1),
    )
    params = {
        "area": Verbatim(plan.area),
        "month": plan.day.month,
        "day": plan.day.day,
        "weekday": weekday_label(plan.day),
        "start": hhmm(plan.start),
        "end": hhmm(plan.end),
        "meeting": meeting_label(plan.meeting_label, plan.meeting_lat, plan.meeting_lon),
        "min": plan.min_volunteers,
        "max": plan.max_volunteers,
        "leader": Verbatim(planner.display_name) if plan.leader_id else Text("patrol.no_leader"),
        "repeat": repeat_label(plan.weekdays),
    }
    return Reply(Text("patrol.new.summary", params), (row,))


def created(community: Community, plan: rules.Plan, done: rules.Created) -> Reply:
    if done.series is None:
        return Reply(Text("patrol.new.created", shift_params(community, done.shifts[0])), keyboard="main")
    params = {
        "area": Verbatim(plan.area),
        "repeat": repeat_label(plan.weekdays),
        "start": hhmm(plan.start),
        "end": hhmm(plan.end),
        "count": len(done.shifts),
        "days": community.patrols.generate_days_ahead,
    }
    return Reply(Text("patrol.new.series_created", params), keyboard="main")
