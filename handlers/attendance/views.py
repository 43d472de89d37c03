"""What attendance says and which buttons it offers, built from what the rules return."""

from __future__ import annotations

from typing import Any

from handlers import choices
from handlers.attendance.rules import IN, OUT, SUMMARY_NAMES, ByHand, Closed, local_date
from handlers.attendance.wording import area, at, meeting, name
from handlers.community import Community
from handlers.messages import Choice, Lines, Reply, Text
from storage.attendance import Attendance, PatrolStats, RosterLine
from storage.models import PatrolShift, User

# `att:<verb>:...` buttons: asking for, and giving, a confirmation by hand; reviewing a flagged check-out.
ACTION = "att"

Rows = tuple[tuple[Choice, ...], ...]


def report_button(shift_id: int) -> Rows:
    """File a hazard report from the patrol (it is linked to the shift while checked in)."""
    return ((Choice(Text("button.attendance_report"), action=choices.encode(ACTION, "rpt", shift_id)),),)


def ask_button(direction: str, signup_id: int) -> Rows:
    label = "button.attendance_ask_in" if direction == IN else "button.attendance_ask_out"
    return ((Choice(Text(label), action=choices.encode(ACTION, "ask", direction, signup_id)),),)


def confirm_choice(direction: str, signup_id: int, display_name: str) -> Choice:
    label = "button.attendance_confirm_in" if direction == IN else "button.attendance_confirm_out"
    verb = "cin" if direction == IN else "cout"
    return Choice(Text(label, {"name": name(display_name)}), action=choices.encode(ACTION, verb, signup_id))


# --- checking in and out -----------------------------------------------------------------------


def ask_location(community: Community, shift: PatrolShift, direction: str) -> Reply:
    key = "attendance.ask_checkin_location" if direction == IN else "attendance.ask_checkout_location"
    params = {
        "area": area(shift),
        "meeting": meeting(shift),
        "radius": round(community.patrols.checkin_radius_m),
    }
    return Reply(Text(key, params), keyboard="location")


def location_needed(direction: str, signup_id: int) -> Reply:
    return Reply(Text("attendance.location_needed"), ask_button(direction, signup_id))


def too_far(community: Community, signup_id: int, distance_m: int, direction: str) -> Reply:
    params = {"distance": distance_m, "radius": round(community.patrols.checkin_radius_m)}
    return Reply(Text("attendance.too_far", params), ask_button(direction, signup_id))


def checked_in(shift: PatrolShift) -> Reply:
    params = {"area": area(shift), "ends": at(shift.ends_at)}
    return Reply(Text("attendance.checked_in", params), report_button(shift.id), keyboard="main")


def checked_out(shift: PatrolShift, minutes: int, points: int) -> Reply:
    params = {"area": area(shift), "minutes": minutes, "points": points}
    return Reply(Text("attendance.checked_out", params), keyboard="main")


def confirm_request(user: User, found: Attendance, direction: str) -> Reply:
    """To the leader, or the police group: please confirm this person's check-in or check-out."""
    shift = found.shift
    key = "attendance.confirm_request_in" if direction == IN else "attendance.confirm_request_out"
    params = {"name": name(user.display_name), "area": area(shift), "starts": at(shift.starts_at)}
    return Reply(Text(key, params), ((confirm_choice(direction, found.signup.id, user.display_name),),))


def told_by_hand(done: ByHand, actor: User, direction: str) -> Reply:
    """To the volunteer checked in or out by the leader or police."""
    shift = done.attendance.shift
    if direction == IN:
        said = {"area": area(shift), "by": name(actor.display_name)}
        return Reply(Text("attendance.checked_in_by_hand", said), report_button(shift.id))
    params: dict[str, Any] = {
        "area": area(shift),
        "by": name(actor.display_name),
        "minutes": done.minutes,
        "points": done.points,
    }
    return Reply(Text("attendance.checked_out_by_hand", params))


# --- closing a shift and reviewing it ------------------------------------------------------------


def auto_checked_out(shift: PatrolShift, minutes: int, points: int) -> Reply:
    params = {"area": area(shift), "ended": at(shift.ends_at), "minutes": minutes, "points": points}
    return Reply(Text("attendance.auto_checked_out", params))


def closed_summary(closed: Closed) -> Reply:
    """To the police: who came, who did not, whose forgotten check-out to review."""
    shift, roster, no_shows, flagged = closed.shift, closed.roster, closed.no_shows, closed.flagged
    attended = sum(1 for line in roster if line.signup.checked_in_at is not None)
    names = {line.signup.user_id: line.display_name for line in roster}
    lines = tuple(
        Text("attendance.summary_no_show", {"name": name(names.get(user_id, "?"))})
        for user_id in no_shows[:SUMMARY_NAMES]
    ) + tuple(
        Text("attendance.summary_flagged", {"name": name(auto.line.display_name), "minutes": auto.minutes})
        for auto in flagged[:SUMMARY_NAMES]
    )
    summary = Text(
        "attendance.closed_summary",
        {
            "area": area(shift),
            "starts": at(shift.starts_at),
            "confirmed": len(roster),
            "attended": attended,
            "no_shows": len(no_shows),
            "flagged": len(flagged),
            "lines": Lines(lines),
        },
    )
    buttons = tuple(
        (
            Choice(
                Text("button.attendance_keep", {"name": name(auto.line.display_name)}),
                action=choices.encode(ACTION, "keep", auto.line.signup.id),
            ),
            Choice(
                Text("button.attendance_void", {"name": name(auto.line.display_name)}),
                action=choices.encode(ACTION, "void", auto.line.signup.id),
            ),
        )
        for auto in flagged[:SUMMARY_NAMES]
    )
    return Reply(summary, buttons)


def hours_voided(community: Community, shift: PatrolShift) -> Reply:
    params = {"area": area(shift), "date": local_date(community, shift.starts_at)}
    return Reply(Text("attendance.hours_voided", params))


# --- /roster and /patrolstats ----------------------------------------------------------------------


def _roster_line(line: RosterLine) -> Text:
    signup, who = line.signup, name(line.display_name)
    if signup.checked_out_at is not None:
        return Text("attendance.roster_out", {"name": who, "minutes": signup.minutes_worked or 0})
    if signup.checked_in_at is not None:
        return Text("attendance.roster_in", {"name": who, "at": at(signup.checked_in_at)})
    if signup.no_show:
        return Text("attendance.roster_no_show", {"name": who})
    return Text("attendance.roster_waiting", {"name": who})


def _roster_buttons(line: RosterLine) -> tuple[Choice, ...]:
    signup = line.signup
    if signup.checked_in_at is None:
        return (confirm_choice(IN, signup.id, line.display_name),)
    if signup.checked_out_at is None:
        return (confirm_choice(OUT, signup.id, line.display_name),)
    return ()


def roster(shift: PatrolShift, lines: list[RosterLine], viewer: User, may_confirm: bool) -> Reply:
    """A shift's people and where each stands, with confirmation buttons while that makes sense."""
    buttons: Rows = ()
    if may_confirm:
        buttons = tuple(
            row
            for row in (_roster_buttons(line) for line in lines if line.signup.user_id != viewer.id)
            if row
        )
    text = Text(
        "attendance.roster" if lines else "attendance.roster_empty",
        {
            "area": area(shift),
            "starts": at(shift.starts_at),
            "ends": at(shift.ends_at),
            "count": len(lines),
            "max": shift.max_volunteers,
            "lines": Lines(tuple(_roster_line(line) for line in lines)),
        },
    )
    return Reply(text, buttons)


def _hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}"


def month_stats(month: str, stats: PatrolStats) -> Reply:
    if stats.shifts == 0:
        return Reply(Text("attendance.stats_empty", {"month": month}))
    top = Lines(
        tuple(
            Text(
                "attendance.stats_line",
                {"rank": rank, "name": name(person.display_name), "hours": _hours(person.minutes)},
            )
            for rank, person in enumerate(stats.top, start=1)
        )
    )
    params = {
        "month": month,
        "shifts": stats.shifts,
        "confirmed": stats.confirmed,
        "places": stats.places,
        "fill_rate": round(100 * stats.confirmed / stats.places) if stats.places else 0,
        "no_shows": stats.no_shows,
        "flagged": stats.flagged,
        "hours": _hours(stats.minutes),
        "reports": stats.reports,
        "top": top if stats.top else Text("attendance.stats_nobody"),
    }
    return Reply(Text("attendance.stats", params))
